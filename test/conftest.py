"""Shared test set-up.

DDS must stay on this machine: discovery is limited to localhost and every test session gets its
own ROS_DOMAIN_ID (unless the caller chose one), so parallel runs never see each other's topics.
This runs before any test module imports rclpy.
"""

from __future__ import annotations

import os

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('ROS_DOMAIN_ID', str(100 + os.getpid() % 100))
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
# Two cores: keep torch from oversubscribing them when several processes run.
os.environ.setdefault('OMP_NUM_THREADS', '1')

import pytest  # noqa: E402


@pytest.fixture
def ros_context():
    """A fresh rclpy Context, initialised for one test and shut down after it."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        context.try_shutdown()
