"""Live replay: play a bag into the running pipeline over DDS and score what comes out.

Console script ``replay_node`` (node ``lipfault_replay``, settings as ROS parameters) and
``lipfault replay BAG --model ARTIFACT --out DIR`` (the same settings as options).

Playing works like ``ros2 bag play``: messages go out at their bag (receive) times scaled by
``rate``, from ``start_offset`` seconds into the bag for ``duration`` seconds, ``loops`` times,
on the selected topics (default: the three sensor topics) with optional remapping, and
``/clock`` carries the bag time for nodes running with ``use_sim_time``. On every loop after the
first the header stamps are shifted forward by the played span (``restamp``, the default), so
time keeps increasing and the synchroniser never sees a jump back; with ``restamp`` off the
stamps repeat and the pipeline's synchroniser must reset on the backwards jump (it does: that is
what a looped ``ros2 bag play`` does to it).

Recording: the pipeline's ``fault_status`` (one DiagnosticArray per tuple) and its corrected
topics. Scoring: the bag is also assembled offline with the same synchroniser, giving the tuples
the pipeline *should* have answered; each answer is joined to its tuple by stamp and scored with
exactly the code of offline evaluation (:func:`lipfault_ros.evaluation.live.score_live`), the
flags being the pipeline's lifecycle output (``active`` of its fault status).
Tuples never answered (dropped by the transport, the synchroniser or the latest-only inference
slot) are counted and reported; end-to-end latency is from publishing the tuple's camera frame to
receiving its fault status (it includes the synchroniser's wait for the other streams).

``start_pipeline`` starts the pipeline node in this process (same executor), with the model
given, so one command replays and scores without a second terminal.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import WrenchStamped
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState

from lipfault_ros.errors import BagError, ConfigError, LipfaultError
from lipfault_ros.evaluation.live import score_live
from lipfault_ros.ros import params
from lipfault_ros.ros.params import param
from lipfault_ros.ros.qos import QOS_NAMES, qos_profile
from lipfault_ros.topics import TopicConfig
from lipfault_ros.tuples import MODALITIES, Modality, stamp_to_ns

__all__ = ['NODE_NAME', 'ReplayNode', 'ReplayParams', 'add_arguments', 'main', 'replay',
           'score_live']

NODE_NAME = 'lipfault_replay'
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayParams:
    """Every setting of a replay (ROS parameters of ``replay_node``, options of ``lipfault
    replay``)."""

    bag: str = param('', 'rosbag2 (directory or file) to play')
    model: str = param('', 'model artifact: gives the tuple windows and joints for scoring; '
                           'loaded into the pipeline when start_pipeline is set')
    clean_bag: str = param('', 'the clean bag the played one was injected from (correction '
                               'errors); empty: none')
    out: str = param('', 'folder for the report; empty: no report written')
    overwrite: bool = param(False, 'replace an existing report folder')
    rate: float = param(1.0, 'playback speed factor', low=0.01, high=100.0)
    loops: int = param(1, 'times to play the bag (0: until shut down)', low=0, high=1000000)
    start_offset: float = param(0.0, 'seconds into the bag to start from', low=0.0, high=1e9)
    duration: float = param(0.0, 'seconds of the bag to play (0: to the end)', low=0.0,
                            high=1e9)
    topics: str = param('', 'comma-separated bag topics to play (empty: the three sensor '
                            'topics; "all": every topic)')
    remap: str = param('', 'comma-separated old:=new topic remappings for playing')
    clock: bool = param(False, 'publish /clock with the bag time (for use_sim_time)')
    clock_rate: float = param(100.0, '/clock messages per second of wall time', low=1.0,
                              high=10000.0)
    restamp: bool = param(True, 'shift header stamps forward on every loop after the first')
    pipeline: str = param('/lipfault_pipeline', 'fully qualified name of the pipeline node '
                                                'whose outputs are recorded')
    start_pipeline: bool = param(False, 'start the pipeline node in this process with model')
    qos: str = param('reliable', 'QoS of the played topics', choices=QOS_NAMES)
    depth: int = param(100, 'history depth of the played topics', low=1, high=100000)
    wait_for_pipeline: float = param(15.0, 'seconds to wait for the pipeline to subscribe '
                                           'before playing', low=0.0, high=3600.0)
    drain: float = param(2.0, 'seconds to keep recording after the last message', low=0.0,
                         high=600.0)

    def remaps(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in filter(None, (s.strip() for s in self.remap.split(','))):
            if ':=' not in item:
                raise ConfigError(f'remap entry {item!r} must be old:=new')
            old, new = (s.strip() for s in item.split(':=', 1))
            if not old.startswith('/') or not new.startswith('/'):
                raise ConfigError(f'remap entry {item!r}: give absolute topic names')
            out[old] = new
        return out


def _message_class(msgtype: str) -> Any:
    pkg, _, name = msgtype.split('/')
    try:
        return getattr(importlib.import_module(f'{pkg}.msg'), name)
    except (ImportError, AttributeError):
        raise BagError(f'message type {msgtype} is not installed for rclpy; install its '
                       f'package or leave its topic out (topics parameter)') from None


@dataclass
class _Played:
    """Bookkeeping of one play: publish times of camera frames and loop boundaries."""

    camera_wall: dict[int, list[tuple[int, int]]] = dataclasses.field(default_factory=dict)
    loop_start_wall: list[int] = dataclasses.field(default_factory=list)
    published: dict[str, int] = dataclasses.field(default_factory=dict)
    loops_done: int = 0
    finished_wall: int | None = None
    first_stamp: int | None = None
    last_stamp: int | None = None
    shift_ns: int = 0


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
        self.played = _Played()
        self.status: list[tuple[int, Any]] = []     # (receive monotonic ns, msg)
        self.corrected: dict[str, list[tuple[int, Any]]] = {'image': [], 'wrench': [],
                                                          'joints': []}
        self._reader, self._connections = self._open()
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
    def _open(self) -> tuple[Any, list[Any]]:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore

        reader = AnyReader([self.bag], default_typestore=get_typestore(Stores.LATEST))
        try:
            reader.open()
        except Exception as exc:  # rosbags raises several unrelated types for damaged files
            raise BagError(f'bag {self.bag} cannot be read ({exc})') from None
        have = {c.topic for c in reader.connections}
        if self.p.topics.strip() == 'all':
            chosen = sorted(have)
        elif self.p.topics.strip():
            chosen = [t.strip() for t in self.p.topics.split(',') if t.strip()]
        else:
            chosen = [self.sensor_topics.of(m) for m in MODALITIES]
        absent = [t for t in chosen if t not in have]
        if absent:
            reader.close()
            raise BagError(f'bag {self.bag} has no topic {", ".join(absent)}; it has '
                           f'{sorted(have)}')
        conns = [c for c in reader.connections if c.topic in chosen]
        if sum(c.msgcount for c in conns) == 0:
            reader.close()
            raise BagError(f'bag {self.bag} holds no messages on {chosen}')
        return reader, conns

    def destroy_node(self) -> None:
        self.stop()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        super().destroy_node()

    # -- recording ----------------------------------------------------------------------------
    def _keep(self, store: list[tuple[int, Any]], msg: Any) -> None:
        now = time.monotonic_ns()
        with self._lock:
            store.append((now, msg))

    def _diagnostics(self, msg: Any, name: str) -> None:
        for st in msg.status:
            if st.name == name:
                with self._lock:
                    self.pipeline_sync = {kv.key: kv.value for kv in st.values}

    # -- playing ------------------------------------------------------------------------------
    def wait_for_pipeline(self, timeout_s: float) -> None:
        """Block until the pipeline subscribes to every played sensor topic and publishes its
        fault status; BagError naming the topic otherwise."""
        deadline = time.monotonic() + timeout_s
        status_topic = f'{self.p.pipeline.rstrip("/")}/fault_status'
        while True:
            waiting = [pub.topic_name for topic, pub in self._pubs.items()
                       if topic in {self.sensor_topics.of(m) for m in MODALITIES}
                       and pub.get_subscription_count() == 0]
            if not waiting and self.count_publishers(status_topic) > 0:
                return
            if time.monotonic() > deadline:
                what = waiting or [f'{status_topic} (no publisher)']
                raise BagError(f'no pipeline is listening on {", ".join(what)} after '
                               f'{timeout_s:g} s: start pipeline_node with these topics (or '
                               f'pass --start-pipeline), and check ROS_DOMAIN_ID')
            time.sleep(0.05)

    def start(self) -> None:
        """Play in a background thread (publishing is thread-safe in rclpy)."""
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
        reader = self._reader
        start = reader.start_time + int(self.p.start_offset * 1e9)
        stop = reader.end_time + 1 if self.p.duration <= 0 else \
            start + int(self.p.duration * 1e9)
        yield from reader.messages(connections=self._connections, start=start, stop=stop)

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


def replay(settings: ReplayParams, *, context: Any = None, plots: bool = True,
           timeout_s: float | None = None) -> dict[str, Any]:
    """Play ``settings.bag`` into the pipeline (started here when ``start_pipeline``), record its
    answers and score them; returns the report (written to ``settings.out`` when set).

    ``context`` is an initialised rclpy Context (None: the default one, which must be
    initialised). ``timeout_s`` bounds the whole play (None: the bag's length / rate + margin).
    """
    from rclpy.parameter import Parameter

    if settings.loops == 0 and timeout_s is None:
        raise ConfigError('loops=0 plays forever; scoring needs a finite replay (give loops or '
                          'a timeout)')
    if not settings.model:
        raise ConfigError('model is empty: scoring needs the artifact (the pipeline\'s model)')
    if settings.out and Path(settings.out).exists() and not settings.overwrite:
        raise FileExistsError(f'output folder {settings.out} exists; pass --overwrite')
    overrides = [Parameter(f.name, value=getattr(settings, f.name))
                 for f in dataclasses.fields(ReplayParams)]
    node = ReplayNode(parameter_overrides=overrides, context=context)
    nodes: list[Any] = [node]
    from lipfault_ros.nodes.pipeline import pipeline_executor
    try:
        if settings.start_pipeline:
            nodes.append(_pipeline_node(settings, node, context))
        executor = pipeline_executor(context)
        for n in nodes:
            executor.add_node(n)
        spinner = threading.Thread(target=_spin, args=(executor,), daemon=True)
        spinner.start()
        try:
            node.wait_for_pipeline(settings.wait_for_pipeline)
            node.start()
            bag_s = (node._reader.end_time - node._reader.start_time) / 1e9
            span = bag_s - settings.start_offset if settings.duration <= 0 else settings.duration
            limit = timeout_s if timeout_s is not None else \
                max(1, settings.loops) * span / settings.rate + 30.0
            deadline = time.monotonic() + limit
            while not node.done() and time.monotonic() < deadline:
                time.sleep(0.05)
            node.stop()
            if node.error is not None:
                raise node.error
            # drain: until the answers stop coming for 0.5 s (or the drain time is up)
            end = time.monotonic() + settings.drain
            seen, changed = -1, time.monotonic()
            while time.monotonic() < end:
                with node._lock:
                    n = len(node.status)
                if n != seen:
                    seen, changed = n, time.monotonic()
                elif time.monotonic() - changed > 0.5:
                    break
                time.sleep(0.05)
        finally:
            executor.shutdown(timeout_sec=5.0)
            spinner.join(timeout=5.0)
        pipeline = nodes[1] if len(nodes) > 1 else None  # its settings, when it runs here
        return score_live(node, model=settings.model,
                          clean_bag=settings.clean_bag or None, out_dir=settings.out or None,
                          overwrite=settings.overwrite, plots=plots,
                          alarm=getattr(getattr(pipeline, 'alarms', None), 'config', None),
                          threshold_offsets=getattr(getattr(pipeline, 'p', None),
                                                    'threshold_offsets', None))
    finally:
        for n in nodes:
            n.destroy_node()


def _spin(executor: Any) -> None:
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


def _pipeline_node(settings: ReplayParams, replay_node: ReplayNode, context: Any) -> Any:
    """The pipeline node in this process, on the played topics, with the bag's rates."""
    from rclpy.parameter import Parameter

    from lipfault_ros.bags.reader import BagReader
    from lipfault_ros.nodes.pipeline import PipelineNode

    remap = settings.remaps()
    topics = replay_node.sensor_topics
    with BagReader(replay_node.bag, topics=topics) as reader:
        info = reader.check()
    span = max(info.duration_ns / 1e9, 1e-3)
    # a deep input history: on a loaded machine a shallow one loses wrench samples, and the
    # windows (so the scores) then differ from offline for reasons of this machine, not the model
    overrides = [Parameter('model', value=str(settings.model)),
                 Parameter('device', value='cpu'),
                 Parameter('input_depth', value=1000),
                 Parameter('output_qos', value='reliable')]
    for m, key in ((Modality.CAMERA, 'camera'), (Modality.WRENCH, 'wrench'),
                   (Modality.JOINTS, 'joints')):
        overrides.append(Parameter(f'{key}_topic', value=remap.get(topics.of(m), topics.of(m))))
        n = info.counts.get(topics.of(m), 0)
        if n > 1:
            overrides.append(Parameter(f'{key}_rate', value=float(n - 1) / span))
    node = PipelineNode(parameter_overrides=overrides, context=context)
    if node.lifecycle_state != 'active':
        error = getattr(node, '_error', '') or 'the pipeline did not activate'
        node.destroy_node()
        raise LipfaultError(f'pipeline with artifact {settings.model}: {error}')
    return node


# -- command line ----------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('bag', type=Path, help='the bag to play')
    parser.add_argument('--model', type=Path, required=True,
                        help='the artifact the pipeline runs (windows, joints, thresholds)')
    parser.add_argument('--out', type=Path, default=None, help='report folder')
    parser.add_argument('--overwrite', action='store_true', help='replace --out if it exists')
    parser.add_argument('--clean', type=Path, default=None,
                        help='the clean bag BAG was injected from (correction errors)')
    parser.add_argument('--rate', type=float, default=1.0, help='playback speed factor')
    parser.add_argument('--loops', type=int, default=1, help='times to play the bag')
    parser.add_argument('--start-offset', type=float, default=0.0, metavar='S',
                        help='seconds into the bag to start from')
    parser.add_argument('--duration', type=float, default=0.0, metavar='S',
                        help='seconds to play (0: to the end)')
    parser.add_argument('--topics', default='',
                        help='comma-separated topics to play (default: the sensor topics; all)')
    parser.add_argument('--remap', default='', help='old:=new[,old:=new...]')
    parser.add_argument('--clock', action='store_true', help='publish /clock (use_sim_time)')
    parser.add_argument('--no-restamp', action='store_true',
                        help='keep header stamps on loops (the synchroniser resets instead)')
    parser.add_argument('--pipeline', default='/lipfault_pipeline',
                        help='name of the pipeline node to record')
    parser.add_argument('--start-pipeline', action='store_true',
                        help='start the pipeline node in this process with --model')
    parser.add_argument('--wait', type=float, default=15.0,
                        help='seconds to wait for the pipeline to subscribe')
    parser.add_argument('--no-plots', action='store_true', help='skip the PNG plots')


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    """``lipfault replay`` (given a Namespace) or the ``replay_node`` console script."""
    if not isinstance(args, argparse.Namespace):
        return _node_main(args)
    settings = ReplayParams(
        bag=str(args.bag), model=str(args.model), clean_bag=str(args.clean or ''),
        out=str(args.out or ''), overwrite=args.overwrite, rate=args.rate, loops=args.loops,
        start_offset=args.start_offset, duration=args.duration, topics=args.topics,
        remap=args.remap, clock=args.clock, restamp=not args.no_restamp,
        pipeline=args.pipeline, start_pipeline=args.start_pipeline,
        wait_for_pipeline=args.wait)
    rclpy.init()
    try:
        report = replay(settings, plots=not args.no_plots)
    finally:
        rclpy.try_shutdown()
    live = report['live']
    print(f'replayed {args.bag}: {live["tuples_received"]}/{live["tuples_expected"]} tuples '
          f'answered ({live["tuples_dropped"]} dropped), end-to-end p50 '
          f'{live["end_to_end_ms_p50"]} ms')
    for row in ('camera', 'wrench', 'joints', 'overall'):
        b = report.get(row) or {}
        print(f'  {row:<8} auroc {b.get("auroc")}  f1 {b.get("f1")}  fa/1000 '
              f'{b.get("false_alarms_per_1000")}')
    if args.out:
        print(f'report: {args.out / "report.md"}')
    return 0


def _node_main(argv: list[str] | None) -> int:
    """Console script ``replay_node``: settings from ROS parameters (``--ros-args -p bag:=...``)."""
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    rclpy.init(args=argv)
    try:
        probe = Node('lipfault_replay_settings', allow_undeclared_parameters=True,
                     automatically_declare_parameters_from_overrides=True)
        values = {f.name: probe.get_parameter(f.name).value
                  for f in dataclasses.fields(ReplayParams) if probe.has_parameter(f.name)}
        probe.destroy_node()
        settings = ReplayParams(**values)
        report = replay(settings, timeout_s=None if settings.loops else 3600.0)
        live = report['live']
        logging.getLogger(NODE_NAME).info(
            'answered %d/%d tuples (%d dropped); overall auroc %s', live['tuples_received'],
            live['tuples_expected'], live['tuples_dropped'], report['overall'].get('auroc'))
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (LipfaultError, FileNotFoundError, FileExistsError) as exc:
        logging.getLogger(NODE_NAME).error(str(exc))
        return 2
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
