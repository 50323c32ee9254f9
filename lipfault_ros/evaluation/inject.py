"""``lipfault inject``: write a fault-injected copy of a clean bag, with the ground truth in it.

The copy keeps every message of the clean bag at its bag time and header stamp, and changes only
the content of sensor messages while a scheduled fault is active on their modality (through
:class:`lipfault_ros.faults.StreamFault`, the injector the simulated robot uses live). So tuples
assembled from the clean and the faulty bag line up stamp for stamp, which is what lets evaluation
measure correction against the clean signal. The one exception is ``dropout``, which drops
messages as a failing sensor would.

The ground truth goes to the truth topic (``/lipfault_sim/fault_truth`` unless the scenario says
otherwise) as ``diagnostic_msgs/DiagnosticArray``, at 10 Hz and on every change, exactly as the
simulator publishes it. A truth topic already in the clean bag is replaced; a clean bag whose
truth already records faults is refused (it is not clean).

Signal faults are sized by the per-channel standard deviation of the clean bag (the ``scale`` of
the fault library), so severity means the same on any robot.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lipfault_ros.errors import BagError, InputError
from lipfault_ros.evaluation.faulty_messages import TimedFault, apply_faults, joint_vector
from lipfault_ros.topics import MESSAGE_TYPES, TRUTH_TYPE, TopicConfig
from lipfault_ros.tuples import MODALITIES, Modality, stamp_to_ns

__all__ = ['InjectResult', 'add_arguments', 'inject', 'main']

_log = logging.getLogger(__name__)

_TRUTH_PERIOD_NS = 100_000_000  # 10 Hz, as the simulator publishes it


@dataclasses.dataclass(frozen=True)
class InjectResult:
    """What :func:`inject` wrote: the bag, the truth intervals (ns) and message counts."""

    path: Path
    intervals: tuple[Any, ...]
    origin_ns: int
    duration_s: float
    written: dict[str, int]
    dropped: dict[str, int]
    modified: dict[str, int]


def _stamp(msg: Any) -> int:
    return stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec)


def _open_reader(path: Path) -> Any:
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    if not path.exists():
        raise FileNotFoundError(f'bag {path} does not exist')
    try:
        reader = AnyReader([path], default_typestore=get_typestore(Stores.LATEST))
        reader.open()
    except FileNotFoundError:
        raise
    except Exception as exc:  # rosbags raises several unrelated types for damaged files
        raise BagError(f'bag {path} cannot be read ({exc})') from None
    return reader


def _scan(reader: Any, topics: TopicConfig) -> dict[str, Any]:
    """First pass: origin stamp, stamp->bag-time offset, per-channel scale, existing truth."""
    conns = [c for c in reader.connections
             if c.topic in (topics.wrench, topics.joints, topics.camera)]
    origin = None
    offset = None
    sums: dict[str, list[np.ndarray]] = {topics.wrench: [], topics.joints: []}
    for conn, t_ns, raw in reader.messages(connections=conns):
        msg = reader.deserialize(raw, conn.msgtype)
        stamp = _stamp(msg)
        if origin is None or stamp < origin:
            origin = stamp
        if offset is None:
            offset = int(t_ns) - stamp
        if conn.topic == topics.wrench:
            w = msg.wrench
            sums[conn.topic].append(np.array([w.force.x, w.force.y, w.force.z, w.torque.x,
                                              w.torque.y, w.torque.z]))
        elif conn.topic == topics.joints:
            vec, _ = joint_vector(msg)
            if not sums[conn.topic] or len(sums[conn.topic][0]) == len(vec):
                sums[conn.topic].append(vec)
    scale: dict[Modality, np.ndarray | float] = {Modality.CAMERA: 1.0}
    for m, topic in ((Modality.WRENCH, topics.wrench), (Modality.JOINTS, topics.joints)):
        rows = np.asarray(sums[topic], np.float64)
        if rows.size == 0:
            scale[m] = 1.0
            continue
        with np.errstate(invalid='ignore'):
            sd = np.nanstd(rows, axis=0)
        # A channel that never moves in the clean bag still needs a visible fault size.
        floor = max(1e-3, float(np.nanmedian(sd[sd > 0])) * 0.1) if np.any(sd > 0) else 1.0
        scale[m] = np.where(np.isfinite(sd) & (sd > floor), sd, floor)
    return {'origin': origin, 'offset': offset or 0, 'scale': scale}


def _existing_truth(reader: Any, topic: str) -> list[Any]:
    from lipfault_ros.truth import intervals_from_statuses

    conns = [c for c in reader.connections if c.topic == topic]
    if not conns:
        return []

    def statuses():
        for conn, _t, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            yield _stamp(msg), [(s.name, int(s.level), s.message,
                                 {kv.key: kv.value for kv in s.values}) for s in msg.status]

    return intervals_from_statuses(statuses())


def _truth_messages(ts: Any, intervals: Sequence[Any], start_ns: int, end_ns: int
                    ) -> list[tuple[int, Any]]:
    """(stamp, DiagnosticArray) at 10 Hz over [start, end] plus one at every change."""
    from lipfault_ros.truth import truth_status_fields

    Header = ts.types['std_msgs/msg/Header']
    Time = ts.types['builtin_interfaces/msg/Time']
    Array = ts.types['diagnostic_msgs/msg/DiagnosticArray']
    Status = ts.types['diagnostic_msgs/msg/DiagnosticStatus']
    KeyValue = ts.types['diagnostic_msgs/msg/KeyValue']
    stamps = set(range(start_ns, end_ns + 1, _TRUTH_PERIOD_NS))
    for iv in intervals:
        for t in (iv.start_ns, iv.end_ns):
            if start_ns <= t <= end_ns:
                stamps.add(int(t))
    out = []
    for t in sorted(stamps):
        status = [Status(level=int(f['level']),
                         name=f['name'], message=f['message'], hardware_id='lipfault_inject',
                         values=[KeyValue(key=k, value=v) for k, v in f['values'].items()])
                  for f in truth_status_fields(list(intervals), t)]
        header = Header(stamp=Time(sec=t // 1_000_000_000, nanosec=t % 1_000_000_000),
                        frame_id='')
        out.append((t, Array(header=header, status=status)))
    return out


def inject(clean_bag: str | Path, scenario: Any, out: str | Path, *, overwrite: bool = False,
           fit: bool = False, topics: TopicConfig | None = None, storage: str | None = None,
           progress: bool = False) -> InjectResult:
    """Write ``out``: ``clean_bag`` with the faults of ``scenario`` applied (see module doc).

    ``scenario`` is an :class:`~lipfault_ros.evaluation.scenario.Scenario`; its ``topics`` (when
    set) override ``topics``. ``fit`` compresses a schedule longer than the bag into it; without
    it such a scenario is refused. ``storage`` ('mcap' or 'sqlite3') defaults to the clean bag's.
    The bag is written to a temporary sibling and renamed when complete.
    """
    clean_bag, out = Path(clean_bag), Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f'{out} exists; pass --overwrite to replace it')
    if out.resolve() == clean_bag.resolve():
        raise BagError(f'{out}: the injected bag must not replace the clean bag')
    if scenario.topics:
        topics = TopicConfig.from_mapping({**dataclasses.asdict(topics or TopicConfig()),
                                           **scenario.topics})
    topics = topics or TopicConfig()
    reader = _open_reader(clean_bag)
    try:
        _check_clean_bag(reader, clean_bag, topics, scenario.source)
        scan = _scan(reader, topics)
        origin = scan['origin']
        if origin is None:
            raise BagError(f'bag {clean_bag} holds no sensor messages')
        span_s = (reader.end_time - reader.start_time) / 1e9
        if fit:
            scenario = scenario.fitted(span_s)
        if scenario.end_s() > span_s + 1e-9:
            raise BagError(f'{scenario.source}: the schedule runs to {scenario.end_s():.2f} s but '
                           f'bag {clean_bag} spans {span_s:.2f} s; record longer, move the '
                           f'faults, or pass --fit to compress the schedule into the bag')
        streams, intervals = _fault_streams(scenario, scan)
        plugin = _storage_plugin(storage, clean_bag)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + '.partial')
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
        try:
            written, dropped, modified = _copy_with_faults(
                reader, tmp, plugin, topics, streams, intervals, scan,
                origin + int(round(span_s * 1e9)), progress)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        reader.close()
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    tmp.rename(out)
    _fix_metadata_name(out, tmp.name)
    _log.info('wrote %s: %d faults, %s messages dropped', out, len(intervals), dropped or 'no')
    return InjectResult(out, intervals, origin, span_s, written, dropped, modified)


def _check_clean_bag(reader: Any, clean_bag: Path, topics: TopicConfig, source: Any) -> None:
    """Every sensor topic there with its type, some sensor messages, and no fault truth yet."""
    have = {c.topic: c.msgtype for c in reader.connections}
    for m in MODALITIES:
        topic = topics.of(m)
        if topic not in have:
            raise BagError(f'{source}: topic {topic} ({m.value}) is not in bag '
                           f'{clean_bag}; it has {sorted(have)}')
        if have[topic] != MESSAGE_TYPES[m]:
            raise BagError(f'bag {clean_bag}: topic {topic} has type {have[topic]}, '
                           f'expected {MESSAGE_TYPES[m]}')
    if sum(c.msgcount for c in reader.connections if c.topic in
           {topics.of(m) for m in MODALITIES}) == 0:
        raise BagError(f'bag {clean_bag} holds no sensor messages')
    if topics.truth in have and have[topics.truth] != TRUTH_TYPE:
        raise BagError(f'bag {clean_bag}: topic {topics.truth} has type '
                       f'{have[topics.truth]}, expected {TRUTH_TYPE}')
    old = _existing_truth(reader, topics.truth)
    if old:
        raise BagError(f'bag {clean_bag} already records {len(old)} fault(s) on '
                       f'{topics.truth} (first: {old[0].modality.value}:{old[0].kind}); '
                       f'inject needs a clean recording')


def _fault_streams(scenario: Any, scan: dict[str, Any]
                   ) -> tuple[dict[Modality, list[TimedFault]], tuple[Any, ...]]:
    """Per modality the scheduled faults, each with its own random stream spawned from the
    scenario's seed, and every fault's truth interval."""
    from lipfault_ros.faults import StreamFault

    origin = scan['origin']
    specs = scenario.fault_specs()
    seed = np.random.SeedSequence(int(scenario.seed))
    streams: dict[Modality, list[Any]] = {m: [] for m in MODALITIES}
    for spec, child in zip(specs, seed.spawn(len(specs))):
        streams[spec.modality].append(TimedFault(
            StreamFault(spec, np.random.default_rng(child), scale=scan['scale'][spec.modality]),
            spec.interval(origin), origin))
    return streams, tuple(spec.interval(origin) for spec in specs)


def _storage_plugin(storage: str | None, clean_bag: Path) -> Any:
    """The rosbag2 storage to write: ``storage`` or the clean bag's own."""
    from rosbags.rosbag2 import StoragePlugin

    storage = storage or ('mcap' if any(p.suffix == '.mcap' for p in
                                        ([clean_bag] if clean_bag.is_file()
                                         else clean_bag.iterdir())) else 'sqlite3')
    plugin = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}.get(storage)
    if plugin is None:
        raise BagError(f'storage {storage!r} is not supported; use mcap or sqlite3')
    return plugin


def _copy_with_faults(reader: Any, tmp: Path, plugin: Any, topics: TopicConfig,
                      streams: dict[Modality, list[TimedFault]], intervals: Sequence[Any],
                      scan: dict[str, Any], end_ns: int, progress: bool
                      ) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Every message of ``reader`` into a new bag at ``tmp``, sensor messages through their
    faults, the fault truth interleaved in time: messages written, dropped and modified per
    topic."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    from lipfault_ros import codec

    ts = reader.typestore
    written: dict[str, int] = {}
    dropped: dict[str, int] = {}
    modified: dict[str, int] = {}
    by_topic = {topics.of(m): m for m in MODALITIES}
    truth_ts = get_typestore(Stores.LATEST)
    truth_msgs = _truth_messages(truth_ts, intervals, scan['origin'], end_ns)
    ti = 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=reader.message_count, desc='injecting', unit='msg', leave=False)
    writer = Writer(tmp, version=9, storage_plugin=plugin)
    writer.open()
    try:
        wconns = {}
        for c in reader.connections:
            if c.topic == topics.truth or c.topic in wconns:
                continue
            wconns[c.topic] = writer.add_connection(c.topic, c.msgtype, typestore=ts)
        truth_conn = writer.add_connection(topics.truth, TRUTH_TYPE, typestore=truth_ts)

        def write_truth(stamp: int, msg: Any) -> None:
            writer.write(truth_conn, stamp + scan['offset'],
                         truth_ts.serialize_cdr(msg, TRUTH_TYPE))
            written[topics.truth] = written.get(topics.truth, 0) + 1
        for conn, t_ns, raw in reader.messages():
            if bar is not None:
                bar.update()
            if conn.topic == topics.truth:
                continue
            while ti < len(truth_msgs) and truth_msgs[ti][0] + scan['offset'] <= t_ns:
                write_truth(*truth_msgs[ti])
                ti += 1
            m = by_topic.get(conn.topic)
            data = raw
            if m is not None and streams[m]:
                msg = reader.deserialize(raw, conn.msgtype)
                new = apply_faults(m, msg, _stamp(msg), streams[m], codec)
                if new is None:
                    dropped[conn.topic] = dropped.get(conn.topic, 0) + 1
                    continue
                if new is not msg:
                    modified[conn.topic] = modified.get(conn.topic, 0) + 1
                    data = ts.serialize_cdr(new, conn.msgtype)
            writer.write(wconns[conn.topic], t_ns, data)
            written[conn.topic] = written.get(conn.topic, 0) + 1
        for stamp, msg in truth_msgs[ti:]:
            write_truth(stamp, msg)
    finally:
        writer.close()
        if bar is not None:
            bar.close()
    return written, dropped, modified


def _fix_metadata_name(bag: Path, old_name: str) -> None:
    """rosbag2 metadata names its files relative to the bag directory; the rename of the
    directory keeps them valid, so only the bag's own name (if written) needs no change."""
    meta = bag / 'metadata.yaml'
    if meta.is_file():
        text = meta.read_text()
        if old_name in text:
            meta.write_text(text.replace(old_name, bag.name))
            for f in bag.iterdir():
                if old_name in f.name:
                    f.rename(f.with_name(f.name.replace(old_name, bag.name)))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('clean_bag', type=Path, help='the clean rosbag2 (directory or file)')
    parser.add_argument('--scenario', type=Path, default=None,
                        help='fault scenario YAML (default: config/fault_scenario.yaml unless '
                             '--fault is given)')
    parser.add_argument('--fault', action='append', default=[], metavar='SPEC',
                        help='modality:kind:severity:start_s:duration_s instead of a scenario '
                             'file (repeatable)')
    parser.add_argument('--seed', type=int, default=0, help='seed for --fault injections')
    parser.add_argument('--out', type=Path, required=True, help='the bag to write')
    parser.add_argument('--overwrite', action='store_true', help='replace --out if it exists')
    parser.add_argument('--fit', action='store_true',
                        help='compress a schedule longer than the bag into it')
    parser.add_argument('--storage', choices=['mcap', 'sqlite3'], default=None,
                        help='storage of the new bag (default: that of the clean bag)')


def main(args: argparse.Namespace) -> int:
    from lipfault_ros.evaluation.scenario import Scenario, default_scenario_path, load_scenario

    if args.fault and args.scenario is not None:
        raise InputError('give either --scenario or --fault, not both')
    if args.fault:
        scenario = Scenario.from_specs(args.fault, seed=args.seed)
    else:
        path = args.scenario or default_scenario_path()
        if path is None:
            raise FileNotFoundError('no --scenario given and config/fault_scenario.yaml not found')
        scenario = load_scenario(path)
    result = inject(args.clean_bag, scenario, args.out, overwrite=args.overwrite, fit=args.fit,
                    storage=args.storage, progress=True)
    print(f'wrote {result.path}: {len(result.intervals)} faults over {result.duration_s:.1f} s')
    for iv in result.intervals:
        print(f'  {iv.modality.value:<7} {iv.kind:<16} severity {iv.severity:.2f}  '
              f'{(iv.start_ns - result.origin_ns) / 1e9:7.2f} s .. '
              f'{(iv.end_ns - result.origin_ns) / 1e9:7.2f} s')
    if result.dropped:
        print(f'  messages dropped (dropout): {result.dropped}')
    return 0
