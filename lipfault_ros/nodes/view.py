"""``view_node`` (node ``lipfault_view``) and ``lipfault view``: the pipeline live in Foxglove.

Subscribes to the raw sensor topics, the pipeline's corrected streams and its
``~/fault_status``, and serves them on a Foxglove WebSocket (``ws://127.0.0.1:8765`` by
default; Foxglove's "Open connection" dialog takes it), so a machine without rviz can watch
raw next to corrected images, wrench and joint plots and the per-modality scores, thresholds
and alarm states. Channels and payloads: :mod:`lipfault_ros.view`.

The view must never slow the pipeline down, so it is a process of its own and only ever
drops: every subscription is best effort with a history of ``depth`` (1: a message not yet
taken is replaced by the next one, the publisher never waits), nothing is converted while no
client subscribes to its channel, images and signals are thinned to ``image_rate_hz`` and
``signal_rate_hz``, and the server drops the oldest data for a client that reads too slowly.
Topic names are relative, so the view follows its namespace (``namespace:=arm1``).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import WrenchStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState

from lipfault_ros.errors import InputError, LipfaultError
from lipfault_ros.ros.params import declare, param, read
from lipfault_ros.ros.qos import QOS_NAMES, qos_profile
from lipfault_ros.ros.shutdown import run_node
from lipfault_ros.topics import INPUT_NAMES, PIPELINE_OUTPUTS
from lipfault_ros.tuples import Modality
from lipfault_ros.view import (Channel, Kind, LiveView, RateGate, image_frame, joints_payload,
                               status_payload, wrench_payload)

__all__ = ['NODE_NAME', 'ViewNode', 'ViewParams', 'add_arguments', 'main']

NODE_NAME = 'lipfault_view'
_TYPES = {Kind.IMAGE: Image, Kind.WRENCH: WrenchStamped, Kind.JOINTS: JointState,
          Kind.STATUS: DiagnosticArray}
_CONVERT: dict[Kind, Callable[[Any], Any]] = {
    Kind.IMAGE: image_frame, Kind.WRENCH: wrench_payload, Kind.JOINTS: joints_payload,
    Kind.STATUS: status_payload}


@dataclass(frozen=True)
class ViewParams:
    """Every parameter of ``lipfault_view`` (``config/view.yaml`` mirrors this)."""

    host: str = param('127.0.0.1', 'address the Foxglove WebSocket listens on (127.0.0.1: '
                                   'this machine only)')
    port: int = param(8765, 'port of the Foxglove WebSocket (0: any free port, logged)',
                      low=0, high=65535)
    camera_topic: str = param(INPUT_NAMES[Modality.CAMERA], 'raw sensor_msgs/Image topic (the '
                                                  'pipeline\'s input)')
    wrench_topic: str = param(INPUT_NAMES[Modality.WRENCH],
                              'raw geometry_msgs/WrenchStamped topic')
    joints_topic: str = param(INPUT_NAMES[Modality.JOINTS],
                              'raw sensor_msgs/JointState topic')
    pipeline: str = param('lipfault_pipeline', 'name of the pipeline node whose corrected '
                                               'streams and ~/fault_status are shown (relative: '
                                               'in this node\'s namespace)')
    qos: str = param('sensor_data', 'QoS of every subscription (best effort never holds a '
                                    'publisher up)', choices=QOS_NAMES)
    depth: int = param(1, 'history depth of each subscription; older messages are dropped, '
                          'not queued', low=1, high=100)
    image_rate_hz: float = param(15.0, 'most images per second sent per image channel (0: '
                                       'every image)', low=0.0, high=1000.0)
    signal_rate_hz: float = param(50.0, 'most wrench or joint messages per second sent per '
                                        'channel (0: every message)', low=0.0, high=100000.0)
    backlog: int = param(64, 'messages the server buffers per client before it drops the '
                             'oldest', low=1, high=100000)

    def topic(self, channel: Channel) -> str:
        """The ROS topic shown on ``channel`` (relative names stay relative)."""
        pipeline = self.pipeline.rstrip('/')
        return {
            Channel.CAMERA_RAW: self.camera_topic,
            Channel.WRENCH_RAW: self.wrench_topic,
            Channel.JOINTS_RAW: self.joints_topic,
            Channel.CAMERA_CORRECTED: f'{pipeline}/{PIPELINE_OUTPUTS["camera"]}',
            Channel.WRENCH_CORRECTED: f'{pipeline}/{PIPELINE_OUTPUTS["wrench"]}',
            Channel.JOINTS_CORRECTED: f'{pipeline}/{PIPELINE_OUTPUTS["joints"]}',
            Channel.FAULT_STATUS: f'{pipeline}/{PIPELINE_OUTPUTS["status"]}',
        }[channel]

    def rate(self, channel: Channel) -> float:
        """Most messages per second sent on ``channel`` (0: all; the fault status: all)."""
        return {Kind.IMAGE: self.image_rate_hz, Kind.WRENCH: self.signal_rate_hz,
                Kind.JOINTS: self.signal_rate_hz, Kind.STATUS: 0.0}[channel.kind]


class ViewNode(Node):
    """See the module docstring. ``sent`` and ``refused`` count messages per channel."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare(self, ViewParams)
        self.p = p = read(self, ViewParams)
        ns = self.get_namespace().strip('/')
        self.view = LiveView(host=p.host, port=p.port, backlog=p.backlog,
                             name=f'lipfault ({ns})' if ns else 'lipfault').open()
        self.sent = {c: 0 for c in Channel}
        self.refused = {c: 0 for c in Channel}
        self._gates = {c: RateGate(p.rate(c)) for c in Channel}
        self._said: set[Channel] = set()
        qos = qos_profile(p.qos, p.depth)
        self._subs = [self.create_subscription(
            _TYPES[c.kind], p.topic(c), lambda msg, c=c: self._on_msg(c, msg), qos)
            for c in Channel]
        topics = ', '.join(f'{c.value} <- {s.topic_name}' for c, s in zip(Channel, self._subs))
        self.get_logger().info(f'live view on {self.view.url} (Foxglove: Open connection, '
                               f'Foxglove WebSocket, this URL); channels {topics}')

    def _on_msg(self, channel: Channel, msg: Any) -> None:
        """Convert and send, unless no client watches or the channel's rate is spent."""
        if not self.view.wants(channel) or not self._gates[channel].due(time.monotonic_ns()):
            return
        try:
            payload = _CONVERT[channel.kind](msg)
        except InputError as exc:
            self.refused[channel] += 1
            if channel not in self._said:
                self._said.add(channel)
                self.get_logger().warning(f'{self.p.topic(channel)}: not shown on '
                                          f'{channel.value}: {exc}')
            return
        if channel.kind is Kind.IMAGE:
            self.view.log_image(channel, payload)
        else:
            self.view.log_json(channel, payload)
        self.sent[channel] += 1

    def destroy_node(self) -> None:
        self.view.close()
        super().destroy_node()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--port', type=int, help='port of the Foxglove WebSocket (default: '
                        'the parameter port, 8765)')
    parser.add_argument('--namespace', default='', help='namespace of the pipeline to show '
                        '(e.g. arm1)')
    parser.add_argument('--pipeline', help='name of the pipeline node (default '
                        'lipfault_pipeline)')
    parser.add_argument('--params-file', help='parameter file with a /**/lipfault_view '
                        'section (e.g. config/view.yaml)')
    parser.add_argument('--layout', metavar='FILE', help='write the Foxglove layout for the '
                        'view to FILE (import it in Foxglove: Layouts, Import) and exit')
    parser.add_argument('--joint-names', help='with --layout: the arm\'s joints, comma '
                        'separated (default: the Panda\'s panda_joint1..7)')


def ros_arguments(args: argparse.Namespace) -> list[str]:
    """The ``--ros-args`` that ``lipfault view`` options stand for."""
    out = ['--ros-args']
    if args.params_file:
        out += ['--params-file', str(args.params_file)]
    if args.port is not None:
        out += ['-p', f'port:={int(args.port)}']
    if args.pipeline:
        out += ['-p', f'pipeline:={args.pipeline}']
    if args.namespace:
        out += ['-r', f'__ns:=/{args.namespace.strip("/")}']
    return out


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    """``lipfault view`` (given a Namespace) or the ``view_node`` console script."""
    if isinstance(args, argparse.Namespace):
        if args.layout:
            from lipfault_ros.view.layout import write_layout
            names = [n.strip() for n in (args.joint_names or '').split(',') if n.strip()]
            print(f'Foxglove layout written to {write_layout(args.layout, *(names and [names]))}')
            return 0
        args = [sys.argv[0]] + ros_arguments(args)
    return run_node(ViewNode, SingleThreadedExecutor, args, name=NODE_NAME,
                    refused=(LipfaultError,))


if __name__ == '__main__':
    sys.exit(main())
