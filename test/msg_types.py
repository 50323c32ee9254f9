"""ROS message classes from rosbags' typestore, for tests that build messages without a ROS
runtime (rosbags' dataclasses carry the same field names as rclpy's messages)."""

from __future__ import annotations

from rosbags.typesys import Stores, get_typestore

TS = get_typestore(Stores.LATEST)
Header = TS.types['std_msgs/msg/Header']
Time = TS.types['builtin_interfaces/msg/Time']
Image = TS.types['sensor_msgs/msg/Image']
JointState = TS.types['sensor_msgs/msg/JointState']
WrenchStamped = TS.types['geometry_msgs/msg/WrenchStamped']
Wrench = TS.types['geometry_msgs/msg/Wrench']
Vector3 = TS.types['geometry_msgs/msg/Vector3']
DiagnosticArray = TS.types['diagnostic_msgs/msg/DiagnosticArray']
DiagnosticStatus = TS.types['diagnostic_msgs/msg/DiagnosticStatus']
KeyValue = TS.types['diagnostic_msgs/msg/KeyValue']
