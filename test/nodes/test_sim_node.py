"""sim_node over real DDS: the three sensor topics at their rates, fault truth, run-time faults,
parameter validation and the parameter file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from lipfault_ros.errors import ConfigError, FaultError
from lipfault_ros.ros.params import file_parameters, parameter_names

from polling import wait_until

PIPELINE_YAML = Path(__file__).resolve().parents[2] / 'config' / 'pipeline.yaml'


@pytest.fixture
def sim(ros_context):
    """A running sim node (on a MultiThreadedExecutor, as in ``main``) and a probe node that
    records what arrives (on its own executor, so receiving never slows the sim down)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import WrenchStamped
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image, JointState

    from lipfault_ros.nodes.sim import SimNode
    from lipfault_ros.ros.qos import qos_profile

    node = SimNode(context=ros_context, parameter_overrides=[Parameter('seed', value=3)])
    probe = Node('sim_probe', context=ros_context)
    got: dict[str, list] = {'camera': [], 'wrench': [], 'joints': [], 'truth': []}
    qos = qos_profile('sensor_data', depth=50)

    def keep(key):
        return lambda msg: got[key].append((time.monotonic(), msg))

    probe.create_subscription(Image, 'camera/image_raw', keep('camera'), qos)
    probe.create_subscription(WrenchStamped, 'wrench', keep('wrench'), qos)
    probe.create_subscription(JointState, 'joint_states', keep('joints'), qos)
    probe.create_subscription(DiagnosticArray, '/lipfault_sim/fault_truth', keep('truth'),
                              qos_profile('reliable', depth=50))
    sim_executor = MultiThreadedExecutor(num_threads=3, context=ros_context)
    sim_executor.add_node(node)
    probe_executor = SingleThreadedExecutor(context=ros_context)
    probe_executor.add_node(probe)
    threads = [threading.Thread(target=e.spin, daemon=True)
               for e in (sim_executor, probe_executor)]
    for thread in threads:
        thread.start()
    try:
        yield node, got
    finally:
        for executor, member in ((sim_executor, node), (probe_executor, probe)):
            executor.remove_node(member)
            executor.shutdown()
        for thread in threads:
            thread.join(timeout=5.0)
        probe.destroy_node()
        node.destroy_node()


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def test_sim_node_publishes_the_three_streams_at_their_rates(sim):
    node, got = sim
    assert wait_until(lambda: all(got[k] for k in ('camera', 'wrench', 'joints')), 15.0), \
        {k: len(v) for k, v in got.items()}
    for v in got.values():
        v.clear()
    window = 2.0
    start, sent = time.monotonic(), dict(node.counts)
    wait_until(lambda: time.monotonic() - start > window, window + 1.0)
    rates = {k: len([t for t, _ in got[k] if t - start <= window]) / window
             for k in ('camera', 'wrench', 'joints')}
    elapsed = time.monotonic() - start
    published = {k: (node.counts[k] - sent[k]) / elapsed for k in sent}
    print(f'published rates (Hz): {published}; received rates (Hz): {rates}')
    for key, configured in (('camera', 30.0), ('wrench', 500.0), ('joints', 250.0)):
        assert 0.5 * configured <= rates[key] <= 1.3 * configured, (key, rates)

    image = got['camera'][-1][1]
    assert (image.height, image.width, image.encoding) == (128, 128, 'rgb8')
    assert image.header.frame_id == 'sim_camera'
    assert got['wrench'][-1][1].header.frame_id == 'panda_hand'
    joints = got['joints'][-1][1]
    assert list(joints.name[:7]) == [f'panda_joint{i}' for i in range(1, 8)]
    now_ns = node.get_clock().now().nanoseconds
    for key in ('camera', 'wrench', 'joints'):
        stamps = np.array([_stamp(m) for _, m in got[key]])
        assert np.all(np.diff(stamps) > 0), key
        assert abs(now_ns - stamps[-1]) < 0.5e9, 'stamps are on the node clock'
    truth = got['truth'][-1][1]
    assert [s.name for s in truth.status] == ['camera', 'wrench', 'joints']
    assert all(s.level == b'\x00' and s.message == 'ok' for s in truth.status)


def test_run_time_fault_appears_in_truth_and_bad_values_are_rejected(sim):
    from rclpy.parameter import Parameter

    node, got = sim
    result = node.set_parameters_atomically([
        Parameter('fault_modality', value='wrench'), Parameter('fault_type', value='bias'),
        Parameter('fault_severity', value=0.7), Parameter('fault_duration_s', value=0.0)])
    assert result.successful, result.reason

    def faulted():
        return any(s.name == 'wrench' and s.level == b'\x02' and s.message == 'bias'
                   and {kv.key: kv.value for kv in s.values}['severity'] == '0.7'
                   for _, m in got['truth'][-3:] for s in m.status)

    assert wait_until(faulted, 10.0)

    bad = node.set_parameters([Parameter('fault_type', value='melt')])[0]
    assert not bad.successful and "unknown wrench fault 'melt'" in bad.reason
    assert node.get_parameter('fault_type').value == 'bias'
    fixed = node.set_parameters([Parameter('seed', value=9)])[0]
    assert not fixed.successful and 'seed are read at start-up' in fixed.reason
    out_of_range = node.set_parameters([Parameter('fault_severity', value=3.0)])[0]
    assert not out_of_range.successful

    cleared = node.set_parameters([Parameter('fault_type', value='')])[0]
    assert cleared.successful
    got['truth'].clear()
    assert wait_until(lambda: got['truth'] and all(
        s.level == b'\x00' for s in got['truth'][-1][1].status), 10.0)


def test_bad_start_up_parameters_name_the_problem(ros_context):
    from rclpy.parameter import Parameter

    from lipfault_ros.nodes.sim import SimNode

    with pytest.raises(FaultError, match="unknown camera fault 'melt'"):
        SimNode(context=ros_context, parameter_overrides=[
            Parameter('fault_modality', value='camera'), Parameter('fault_type', value='melt')])
    with pytest.raises(FaultError, match="fault_type 'blur' needs fault_modality"):
        SimNode(context=ros_context, parameter_overrides=[Parameter('fault_type', value='blur')])
    with pytest.raises(ConfigError, match=r'physics_rate_hz \(100\) must be at least'):
        SimNode(context=ros_context, parameter_overrides=[
            Parameter('physics_rate_hz', value=100.0)])
    with pytest.raises(Exception, match='wrench_rate_hz'):
        SimNode(context=ros_context, parameter_overrides=[
            Parameter('wrench_rate_hz', value=-5.0)])


def test_parameter_file_section_equals_the_declared_parameters(ros_context):
    from lipfault_ros.nodes.sim import SimNode, SimNodeParams

    section = file_parameters(yaml.safe_load(PIPELINE_YAML.read_text()), 'lipfault_sim')
    names = parameter_names(SimNodeParams)
    assert list(section) == names
    node = SimNode(context=ros_context)
    try:
        declared = {n for n in node.list_parameters([], 0).names if n not in ('use_sim_time',
                                                              'start_type_description_service')}
        assert declared == set(names)
        for name, value in section.items():
            assert node.get_parameter(name).value == value, name
            descriptor = node.describe_parameter(name)
            assert descriptor.description, name
    finally:
        node.destroy_node()


def test_with_use_sim_time_the_sim_is_the_clock_source_and_its_streams_flow(ros_context):
    """Nothing else publishes /clock: the simulator must, and must not wait for one itself."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image

    from lipfault_ros.nodes.sim import SimNode
    from lipfault_ros.ros.qos import qos_profile

    node = SimNode(context=ros_context, parameter_overrides=[
        Parameter('use_sim_time', value=True), Parameter('image_width', value=32),
        Parameter('image_height', value=32)])
    probe = Node('clock_probe', context=ros_context)
    clocks, images = [], []
    probe.create_subscription(Clock, '/clock', lambda m: clocks.append(m), 50)
    probe.create_subscription(Image, 'camera/image_raw', lambda m: images.append(m),
                              qos_profile('sensor_data', depth=50))
    executor = SingleThreadedExecutor(context=ros_context)  # spun here: no thread to stop
    executor.add_node(node)
    executor.add_node(probe)
    try:
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline and not (len(clocks) >= 20 and len(images) >= 10):
            executor.spin_once(timeout_sec=0.05)
        assert len(clocks) >= 20 and len(images) >= 10
        ticks = [c.clock.sec * 10**9 + c.clock.nanosec for c in clocks]
        assert np.all(np.diff(ticks) >= 0) and ticks[-1] > ticks[0]
        # image stamps live on that clock (it started at 0: nothing published one before)
        last = images[-1].header.stamp
        assert abs(last.sec * 10**9 + last.nanosec - ticks[-1]) < 2 * 10**9
    finally:
        executor.shutdown()
        probe.destroy_node()
        node.destroy_node()
