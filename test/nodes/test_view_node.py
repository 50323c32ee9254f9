"""view_node over real DDS and a real Foxglove WebSocket: one message on each input topic comes
out on its channel with its content; topics follow the namespace; config/view.yaml mirrors the
declarations."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest
import yaml

from lipfault_ros.ros.params import file_parameters, parameter_names
from lipfault_ros.topics import PIPELINE_OUTPUTS
from lipfault_ros.view import Channel
from view.wsclient import FoxgloveClient

ROOT = Path(__file__).resolve().parents[2]
VIEW_YAML = ROOT / 'config' / 'view.yaml'


@pytest.fixture
def view_node(ros_context):
    """A view node in namespace arm1 on a free port, spun on its own thread."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from lipfault_ros.nodes.view import ViewNode

    node = ViewNode(context=ros_context, namespace='arm1', parameter_overrides=[
        Parameter('port', value=0), Parameter('image_rate_hz', value=0.0),
        Parameter('signal_rate_hz', value=0.0)])
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield node
    finally:
        executor.remove_node(node)
        executor.shutdown()
        thread.join(timeout=5.0)
        node.destroy_node()


def _messages():
    """One message per input topic (absolute names in namespace arm1) and what to expect."""
    from builtin_interfaces.msg import Time
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from geometry_msgs.msg import WrenchStamped
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Header

    hdr = Header(stamp=Time(sec=5, nanosec=6), frame_id='f')

    def image(width: int, value: int) -> Image:
        return Image(header=hdr, height=4, width=width, encoding='rgb8', step=width * 3,
                     data=bytes([value]) * (4 * width * 3))

    def wrench(fx: float) -> WrenchStamped:
        msg = WrenchStamped(header=hdr)
        msg.wrench.force.x = fx
        return msg

    def joints(q: float) -> JointState:
        return JointState(header=hdr, name=['j1'], position=[q], velocity=[0.0], effort=[0.0])

    status = DiagnosticArray(header=hdr, status=[DiagnosticStatus(
        level=b'\x01', name='wrench', message='fault (raised)',
        values=[KeyValue(key='score', value='2.5'), KeyValue(key='threshold', value='1'),
                KeyValue(key='alarm', value='raised')])])
    pipe = '/arm1/lipfault_pipeline/'
    return [
        (Image, '/arm1/camera/image_raw', image(6, 10), Channel.CAMERA_RAW),
        (Image, pipe + PIPELINE_OUTPUTS['camera'], image(8, 20), Channel.CAMERA_CORRECTED),
        (WrenchStamped, '/arm1/wrench', wrench(1.5), Channel.WRENCH_RAW),
        (WrenchStamped, pipe + PIPELINE_OUTPUTS['wrench'], wrench(-0.5),
         Channel.WRENCH_CORRECTED),
        (JointState, '/arm1/joint_states', joints(0.25), Channel.JOINTS_RAW),
        (JointState, pipe + PIPELINE_OUTPUTS['joints'], joints(0.75), Channel.JOINTS_CORRECTED),
        (DiagnosticArray, pipe + PIPELINE_OUTPUTS['status'], status, Channel.FAULT_STATUS),
    ]


def test_one_message_per_input_topic_arrives_on_its_foxglove_channel(view_node, ros_context):
    from rclpy.node import Node

    from lipfault_ros.ros.qos import qos_profile

    sender = Node('view_test_sender', context=ros_context)  # root namespace: absolute names
    try:
        outgoing = [(sender.create_publisher(kind, topic, qos_profile('reliable', 10)), msg,
                     channel) for kind, topic, msg, channel in _messages()]
        with FoxgloveClient(view_node.view.url) as client:
            assert client.wait_for(lambda: all(view_node.view.wants(c) for c in Channel),
                                   10.0), 'the client did not subscribe to every channel'
            deadline = time.monotonic() + 20.0
            while time.monotonic() < deadline:
                missing = [(pub, msg) for pub, msg, c in outgoing
                           if c.value not in client.messages]
                if not missing:
                    break
                for pub, msg in missing:  # best effort: discovery may still be under way
                    if pub.get_subscription_count():
                        pub.publish(msg)
                client.wait_for(lambda: False, 0.2)
            assert set(client.messages) == {c.value for c in Channel}, \
                (sorted(client.messages), view_node.refused)
            raw, corrected = client.last('/camera/raw'), client.last('/camera/corrected')
            assert (raw.width, raw.height, raw.encoding, raw.data[:1]) == (6, 4, 'rgb8', b'\n')
            assert (corrected.width, corrected.data[:1]) == (8, bytes([20]))
            assert (raw.timestamp.seconds, raw.timestamp.nanos, raw.frame_id) == (5, 6, 'f')
            assert client.last('/wrench/raw')['force']['x'] == 1.5
            assert client.last('/wrench/corrected')['force']['x'] == -0.5
            assert client.last('/joints/raw')['position'] == {'j1': 0.25}
            assert client.last('/joints/corrected')['position'] == {'j1': 0.75}
            wrench = client.last('/fault_status')['wrench']
            assert (wrench['score'], wrench['threshold'], wrench['margin']) == (2.5, 1, 1.5)
            assert (wrench['alarm'], wrench['alarm_level'], wrench['level']) == ('raised', 1, 1)
    finally:
        sender.destroy_node()


def test_nothing_is_converted_while_no_client_watches(view_node, ros_context):
    from rclpy.node import Node

    from lipfault_ros.ros.qos import qos_profile

    kind, topic, msg, channel = _messages()[2]
    sender = Node('view_test_idle', context=ros_context)
    try:
        pub = sender.create_publisher(kind, topic, qos_profile('reliable', 10))
        deadline = time.monotonic() + 10.0
        while not pub.get_subscription_count() and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(20):
            pub.publish(msg)
            time.sleep(0.01)
        time.sleep(0.3)
        assert view_node.sent[channel] == 0
    finally:
        sender.destroy_node()


def test_the_subscriptions_are_relative_so_they_follow_the_namespace(view_node):
    names = sorted(s.topic_name for s in view_node.subscriptions)
    assert names == sorted(['/arm1/camera/image_raw', '/arm1/wrench', '/arm1/joint_states',
                            '/arm1/lipfault_pipeline/camera/image_corrected',
                            '/arm1/lipfault_pipeline/wrench_corrected',
                            '/arm1/lipfault_pipeline/joint_states_corrected',
                            '/arm1/lipfault_pipeline/fault_status'])


def test_a_taken_port_ends_the_console_script_with_an_error(view_node, capsys):
    import signal

    from lipfault_ros.nodes.view import main

    sigint = signal.getsignal(signal.SIGINT)
    try:
        assert main(['view_node', '--ros-args', '-p', f'port:={view_node.view.port}']) == 2
    finally:
        signal.signal(signal.SIGINT, sigint)  # main installs its own Ctrl-C handler
    assert f'127.0.0.1:{view_node.view.port}' in capsys.readouterr().err


def test_view_yaml_mirrors_the_declarations_with_a_comment_per_parameter():
    from lipfault_ros.nodes.view import NODE_NAME, ViewParams

    doc = yaml.safe_load(VIEW_YAML.read_text())
    assert set(doc) == {f'/**/{NODE_NAME}'}
    section = file_parameters(doc, NODE_NAME, '/arm1')
    assert list(section) == parameter_names(ViewParams)
    for f in dataclasses.fields(ViewParams):
        assert section[f.name] == f.default, f.name
    lines = VIEW_YAML.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith('    ') and not line.strip().startswith('#'):
            assert lines[i - 1].strip().startswith('#'), f'no comment above {line!r}'


def test_lipfault_view_serves_in_the_namespace_given_and_stops_on_ctrl_c(ctrl_c):
    code, text = ctrl_c(['view', '--port', '0', '--namespace', 'arm1'],
                        'live view on ws://127.0.0.1:')
    assert '/fault_status <- /arm1/lipfault_pipeline/fault_status' in text, text
    assert code == 0, text
