"""The replay node: publishes a bag's messages on the bag's schedule and records what the
pipeline answers (see :mod:`lipfault_ros.nodes.replay` for playing, looping and restamping).

Playing runs on a thread of its own, so the executor keeps delivering the pipeline's answers;
the recorded messages carry their receive time (``time.monotonic_ns``), from which scoring takes
the end-to-end latency.
"""

from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import WrenchStamped
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState

from lipfault_ros.bags.playback import Played, open_playback, playback_messages
from lipfault_ros.errors import BagError, ConfigError
from lipfault_ros.nodes.replay.replay_params import ReplayParams
from lipfault_ros.ros import params
from lipfault_ros.ros.qos import qos_profile
from lipfault_ros.topics import TopicConfig
from lipfault_ros.tuples import MODALITIES, stamp_to_ns

__all__ = ['NODE_NAME', 'ReplayNode']

NODE_NAME = 'lipfault_replay'


def _message_class(msgtype: str) -> Any:
    pkg, _, name = msgtype.split('/')
    try:
        return getattr(importlib.import_module(f'{pkg}.msg'), name)
    except (ImportError, AttributeError):
        raise BagError(f'message type {msgtype} is not installed for rclpy; install its '
                       f'package or leave its topic out (topics parameter)') from None


class ReplayNode(Node):
    """Publishes a bag's messages on schedule and records the pipeline's outputs."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        params.declare(self, ReplayParams)
        self.p = params.read(self, ReplayParams)
        if not self.p.bag:
            raise ConfigError('parameter bag is empty: give the rosbag2 to play')
        self.bag = Path(self.p.bag).expanduser()
        if not self.bag.exists():
            raise FileNotFoundError(f'bag {self.bag} does not exist')
        self.sensor_topics = TopicConfig.from_yaml()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.played = Played()
        self.status: list[tuple[int, Any]] = []     # (receive monotonic ns, msg)
        self.corrected: dict[str, list[tuple[int, Any]]] = {'image': [], 'wrench': [],
                                                          'joints': []}
        self._reader, self._connections = open_playback(self.bag, self.p.topics,
                                                         self.sensor_topics)
        remap = self.p.remaps()
        qos = qos_profile(self.p.qos, self.p.depth)
        self._pubs: dict[str, Any] = {}
        self._classes: dict[str, Any] = {}
        for conn in self._connections:
            if conn.topic in self._pubs:
                continue
            cls = _message_class(conn.msgtype)
            self._classes[conn.topic] = cls
            self._pubs[conn.topic] = self.create_publisher(cls, remap.get(conn.topic, conn.topic),
                                                           qos)
        self._clock_pub = self.create_publisher(Clock, '/clock', 10) if self.p.clock else None
        out_qos = qos_profile('reliable', 1000)
        base = self.p.pipeline.rstrip('/')
        self.create_subscription(DiagnosticArray, f'{base}/fault_status',
                                 lambda m: self._keep(self.status, m), out_qos)
        self.create_subscription(Image, f'{base}/camera/image_corrected',
                                 lambda m: self._keep(self.corrected['image'], m), out_qos)
        self.create_subscription(WrenchStamped, f'{base}/wrench_corrected',
                                 lambda m: self._keep(self.corrected['wrench'], m), out_qos)
        self.create_subscription(JointState, f'{base}/joint_states_corrected',
                                 lambda m: self._keep(self.corrected['joints'], m), out_qos)
        self.pipeline_sync: dict[str, str] = {}
        sync_name = f'{base.rsplit("/", 1)[-1]}: sync'
        self.create_subscription(DiagnosticArray, '/diagnostics',
                                 lambda m: self._diagnostics(m, sync_name),
                                 qos_profile('reliable', 10))
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    # -- bag ----------------------------------------------------------------------------------
    def destroy_node(self) -> None:
        self.stop()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        super().destroy_node()

    @property
    def bag_duration_s(self) -> float:
        """The bag's span, first to last message stamp (s)."""
        if self._reader is None:
            raise BagError(f'bag {self.bag} is closed')
        return (self._reader.end_time - self._reader.start_time) / 1e9

    # -- recording ----------------------------------------------------------------------------
    def _keep(self, store: list[tuple[int, Any]], msg: Any) -> None:
        now = time.monotonic_ns()
        with self._lock:
            store.append((now, msg))

    def answers(self) -> int:
        """How many fault statuses have arrived so far."""
        with self._lock:
            return len(self.status)

    def recorded(self) -> tuple[list[tuple[int, Any]], dict[str, list[tuple[int, Any]]],
                                dict[int, list[tuple[int, int]]]]:
        """Copies, taken together: the fault statuses and corrected outputs received (receive
        monotonic ns, message) and the wall time each camera stamp was played at."""
        with self._lock:
            return (list(self.status), {k: list(v) for k, v in self.corrected.items()},
                    {k: list(v) for k, v in self.played.camera_wall.items()})

    def _diagnostics(self, msg: Any, name: str) -> None:
        for st in msg.status:
            if st.name == name:
                with self._lock:
                    self.pipeline_sync = {kv.key: kv.value for kv in st.values}

    # -- playing ------------------------------------------------------------------------------
    def wait_for_pipeline(self, timeout_s: float,
                          check: Callable[[], None] | None = None) -> None:
        """Block until the pipeline subscribes to every played sensor topic and publishes its
        fault status; BagError naming the topic otherwise. ``check`` runs at every poll (it
        raises to end the wait: a Ctrl-C)."""
        deadline = time.monotonic() + timeout_s
        status_topic = f'{self.p.pipeline.rstrip("/")}/fault_status'
        self.get_logger().info(f'waiting up to {timeout_s:g} s for {self.p.pipeline} to listen')
        while True:
            waiting = [pub.topic_name for topic, pub in self._pubs.items()
                       if topic in {self.sensor_topics.of(m) for m in MODALITIES}
                       and pub.get_subscription_count() == 0]
            if not waiting and self.count_publishers(status_topic) > 0:
                return
            if check is not None:
                check()
            if time.monotonic() > deadline:
                what = waiting or [f'{status_topic} (no publisher)']
                raise BagError(f'no pipeline is listening on {", ".join(what)} after '
                               f'{timeout_s:g} s: start pipeline_node with these topics (or '
                               f'pass --start-pipeline), and check ROS_DOMAIN_ID')
            time.sleep(0.05)

    def start(self) -> None:
        """Play in a background thread (publishing is thread-safe in rclpy)."""
        self.get_logger().info(f'playing {self.bag} at {self.p.rate:g}x')
        self._thread = threading.Thread(target=self._play_safe, name='lipfault_replay',
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def done(self) -> bool:
        return self.played.finished_wall is not None

    def _play_safe(self) -> None:
        try:
            self._play()
        except BaseException as exc:  # reported to the caller, which re-raises it
            self.error = exc
        finally:
            if self.played.finished_wall is None:
                self.played.finished_wall = time.monotonic_ns()

    def _messages(self) -> Iterator[tuple[Any, int, bytes]]:
        yield from playback_messages(self._reader, self._connections,
                                     start_offset_s=self.p.start_offset,
                                     duration_s=self.p.duration)

    def _play(self) -> None:
        from rclpy.serialization import deserialize_message

        p = self.p
        camera_topic = self.sensor_topics.camera
        # the span of header stamps played, for restamping and loop attribution
        stamps = []
        for conn, _t, raw in self._messages():
            if conn.topic == camera_topic:
                msg = deserialize_message(raw, self._classes[conn.topic])
                stamps.append(stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec))
        if not stamps:
            raise BagError(f'bag {self.bag}: no camera frame on {camera_topic} in the played '
                           f'range')
        first, last = min(stamps), max(stamps)
        period = int(np.median(np.diff(sorted(stamps)))) if len(stamps) > 1 else 33_000_000
        self.played.first_stamp, self.played.last_stamp = first, last
        self.played.shift_ns = last - first + period
        loop = 0
        start_bag = None
        next_clock = 0
        while not self._stop.is_set() and (p.loops == 0 or loop < p.loops):
            shift = loop * self.played.shift_ns if p.restamp else 0
            wall0 = time.monotonic_ns()
            self.played.loop_start_wall.append(wall0)
            for conn, t_bag, raw in self._messages():
                if self._stop.is_set():
                    return
                if start_bag is None:  # messages come in bag-time order
                    start_bag = t_bag
                due = wall0 + int((t_bag - start_bag) / p.rate)
                while True:
                    now = time.monotonic_ns()
                    if self._clock_pub is not None and now >= next_clock:
                        bag_now = start_bag + int((now - wall0) * p.rate) + shift
                        self._clock_pub.publish(Clock(clock=_time(bag_now)))
                        self.played.published['/clock'] = \
                            self.played.published.get('/clock', 0) + 1
                        next_clock = now + int(1e9 / p.clock_rate)
                    if now >= due:
                        break
                    if self._stop.wait(min(due - now, 2_000_000) / 1e9):
                        return
                cls = self._classes[conn.topic]
                if shift or conn.topic == camera_topic:
                    msg = deserialize_message(raw, cls)
                    if shift and hasattr(msg, 'header'):
                        s = stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec) + shift
                        msg.header.stamp = _time(s)
                    if conn.topic == camera_topic:
                        s = stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec)
                        with self._lock:
                            self.played.camera_wall.setdefault(s, []).append(
                                (loop, time.monotonic_ns()))
                    self._pubs[conn.topic].publish(msg)
                else:
                    self._pubs[conn.topic].publish(raw)
                self.played.published[conn.topic] = self.played.published.get(conn.topic, 0) + 1
            loop += 1
            self.played.loops_done = loop
        self.played.finished_wall = time.monotonic_ns()


def _time(stamp_ns: int) -> Any:
    from builtin_interfaces.msg import Time

    return Time(sec=int(stamp_ns // 1_000_000_000), nanosec=int(stamp_ns % 1_000_000_000))
