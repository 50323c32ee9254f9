"""rosbag2 recordings without a ROS runtime, through ``rosbags``: writing simulated sensor data
and fault truth (``writer``), reading samples and truth back (``reader``) and turning bags into
training tuples with a disk cache (``dataset``)."""

from lipfault_ros.bags.dataset import (BagDataset, DatasetConfig, build_dataset,
                                       split_dataset)
from lipfault_ros.bags.reader import BagReader, check_bags, read_samples, read_truth
from lipfault_ros.bags.writer import STORAGES, SensorBagWriter

__all__ = ['STORAGES', 'BagDataset', 'BagReader', 'DatasetConfig', 'SensorBagWriter',
           'build_dataset', 'check_bags', 'read_samples', 'read_truth', 'split_dataset']
