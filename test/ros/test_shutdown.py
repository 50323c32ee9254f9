"""A Ctrl-C stops a quiet node at once: run_node's spin never waits unbounded in rclpy, where
a signal rclpy does not handle itself would not wake it (a node without timers or traffic then
sat on the Ctrl-C for good)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

QUIET_NODE = '''
import sys
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from lipfault_ros.ros.shutdown import run_node

class Quiet(Node):
    def __init__(self):
        super().__init__('lipfault_quiet')
        print('up', flush=True)

sys.exit(run_node(Quiet, SingleThreadedExecutor, name='quiet'))
'''


def test_a_ctrl_c_right_after_start_stops_a_node_with_nothing_to_do():
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               ROS_DOMAIN_ID=os.environ.get('ROS_DOMAIN_ID', '0'))
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, '-c', QUIET_NODE], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        assert proc.stdout.readline().strip() == 'up'
        time.sleep(1.0)  # past the start-up traffic: from here nothing wakes the wait
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError('the node sat on the Ctrl-C') from None
        assert proc.returncode == 0, out
        assert time.monotonic() - sent < 3.0
        assert 'Traceback' not in out
