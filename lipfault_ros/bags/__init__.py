"""rosbag2 recordings without a ROS runtime, through ``rosbags``: writing simulated sensor data
and fault truth (``writer``), reading samples and truth back (``reader``)."""

from lipfault_ros.bags.writer import STORAGES, SensorBagWriter

__all__ = ['STORAGES', 'SensorBagWriter']
