"""ROS 2 is really there: a message crosses real DDS between two nodes in this process.

If the ROS install is broken this fails loudly; it never skips.
"""

from __future__ import annotations

import os
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import String


def test_discovery_stays_on_localhost():
    assert os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert 0 <= int(os.environ['ROS_DOMAIN_ID']) <= 232


def test_publish_and_receive_over_dds(ros_context):
    talker = rclpy.create_node('lipfault_test_talker', context=ros_context)
    listener = rclpy.create_node('lipfault_test_listener', context=ros_context)
    received: list[str] = []
    listener.create_subscription(String, 'lipfault_test_chatter',
                                 lambda msg: received.append(msg.data), 10)
    pub = talker.create_publisher(String, 'lipfault_test_chatter', 10)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(talker)
    executor.add_node(listener)
    try:
        deadline = time.monotonic() + 20.0
        count = 0
        while not received and time.monotonic() < deadline:
            pub.publish(String(data=f'hello {count}'))
            count += 1
            executor.spin_once(timeout_sec=0.1)
        assert received, 'no message crossed DDS within 20 s'
        assert received[0].startswith('hello ')
    finally:
        executor.shutdown()
        talker.destroy_node()
        listener.destroy_node()
