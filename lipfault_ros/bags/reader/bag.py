""":class:`BagReader`: one rosbag2 recording read as decoded sensor samples and fault truth.

Order. A bag is stored in *receive* order (the bag time is when the recorder got the message);
synchronisation must use ``header.stamp``. :meth:`BagReader.samples` therefore passes messages
through a bounded reorder buffer: a sample is released once a header stamp ``reorder_ns`` newer
has been seen, so streams whose transport delays differ by less than that come out in exact
header-stamp order. A sample arriving later than that is dropped and counted
(``stats['dropped_late']``); a backwards jump of more than ``jump_ns`` (a simulator reset, a
looped recording) flushes the buffer and carries on from the new time, as the live synchroniser
does. Memory stays bounded by the buffer whatever the bag size.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from lipfault_ros.bags.reader.info import DISTROS, BagInfo, distro_of, storage_of
from lipfault_ros.bags.reader.reorder import StampReorder
from lipfault_ros.errors import BagError, InputError
from lipfault_ros.topics import MESSAGE_TYPES, TRUTH_TYPE, TopicConfig
from lipfault_ros.tuples import MODALITIES, Modality, Sample, stamp_to_ns

__all__ = ['BagReader']


_log = logging.getLogger(__name__)


# Everything a damaged bag file can make rosbags, sqlite3 or the deserialiser raise.
def _read_errors() -> tuple[type[BaseException], ...]:
    from rosbags.highlevel import AnyReaderError
    from rosbags.rosbag2 import ReaderError
    from rosbags.serde import SerdeError
    from rosbags.typesys import TypesysError
    return (AnyReaderError, ReaderError, SerdeError, TypesysError, sqlite3.Error, struct.error,
            EOFError, ValueError, KeyError, IndexError, AssertionError, UnicodeDecodeError)


class BagReader:
    """One rosbag2 recording, opened for reading sensor samples.

    Validate in ``__init__`` (the path exists), acquire in :meth:`open`, release in
    :meth:`close`; use it as a context manager::

        with BagReader(path, topics=TopicConfig()) as bag:
            bag.check()
            for sample in bag.samples():
                ...

    ``typestore`` names a ``rosbags.typesys.Stores`` member (``'ROS2_HUMBLE'`` ...) used when the
    bag carries no message definitions; None picks it from the bag's ``ros_distro``.
    """

    def __init__(self, path: str | Path, *, topics: TopicConfig | None = None,
                 typestore: str | None = None, reorder_ns: int = 500_000_000,
                 jump_ns: int = 2_000_000_000, max_buffer: int = 20_000) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f'bag {self.path} does not exist')
        if self.path.is_dir() and not (self.path / 'metadata.yaml').is_file():
            raise BagError(f'bag {self.path} is a directory without metadata.yaml; pass a '
                           f'rosbag2 directory (ros2 bag record -o DIR) or a .mcap/.db3 file')
        if reorder_ns < 0 or jump_ns <= 0 or max_buffer < 1:
            raise BagError(f'bag {self.path}: reorder_ns must be >= 0, jump_ns and max_buffer > 0')
        self.topics = topics or TopicConfig()
        self.typestore_name = typestore
        self.reorder_ns = int(reorder_ns)
        self.jump_ns = int(jump_ns)
        self.max_buffer = int(max_buffer)
        self.stats: dict[str, int] = {'read': 0, 'decoded': 0, 'decode_errors': 0,
                                      'dropped_late': 0, 'time_jumps': 0}
        self._reader: Any = None

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> None:
        """Open the bag and its index; damaged files raise BagError."""
        if self._reader is not None:
            raise BagError(f'bag {self.path} is already open')
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore

        name = self.typestore_name or DISTROS.get((distro_of(self.path) or '').lower(),
                                                   'LATEST')
        try:
            store = get_typestore(Stores[name])
        except KeyError:
            raise BagError(f'unknown typestore {name!r} for bag {self.path}; use one of '
                           f'{sorted(s.name for s in Stores)}') from None
        try:
            reader = AnyReader([self.path], default_typestore=store)
            reader.open()
        except FileNotFoundError:
            raise
        except _read_errors() as exc:
            raise BagError(f'bag {self.path} cannot be read ({exc}); it is truncated or corrupt: '
                           f're-record it, or try `ros2 bag reindex` on it') from None
        self._reader = reader

    def close(self) -> None:
        """Release the files; closing twice is harmless."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def __enter__(self) -> BagReader:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_reader(self) -> Any:
        if self._reader is None:
            raise BagError(f'bag {self.path} is not open; use BagReader as a context manager')
        return self._reader

    # -- index ---------------------------------------------------------------------------------

    @property
    def info(self) -> BagInfo:
        """Storage, distro, time span and per-topic counts and types."""
        reader = self._open_reader()
        counts: dict[str, int] = {}
        types: dict[str, str] = {}
        for conn in reader.connections:
            counts[conn.topic] = counts.get(conn.topic, 0) + int(conn.msgcount)
            types.setdefault(conn.topic, conn.msgtype)
        start = reader.start_time if reader.message_count else 0
        end = reader.end_time if reader.message_count else 0
        return BagInfo(self.path, storage_of(self.path), distro_of(self.path), int(start),
                       int(end), counts, types)

    def _connections(self, topic: str, msgtype: str, *, required: bool) -> list[Any]:
        reader = self._open_reader()
        conns = [c for c in reader.connections if c.topic == topic]
        if not conns:
            if not required:
                return []
            have = sorted({c.topic for c in reader.connections})
            raise BagError(f'bag {self.path} has no topic {topic} ({msgtype}); it has {have}. '
                           f'Record that topic, or pass the topic name this bag uses '
                           f'(--camera-topic/--wrench-topic/--joints-topic or the config file)')
        wrong = sorted({c.msgtype for c in conns if c.msgtype != msgtype})
        if wrong:
            raise BagError(f'bag {self.path}: topic {topic} has type {", ".join(wrong)}, expected '
                           f'{msgtype}; point the topic setting at a {msgtype} topic')
        return conns

    def check(self, modalities: Sequence[Modality] = MODALITIES) -> BagInfo:
        """Raise BagError unless every needed sensor topic exists with the right type and
        holds messages. Returns :attr:`info`."""
        info = self.info
        for m in modalities:
            topic = self.topics.of(m)
            conns = self._connections(topic, MESSAGE_TYPES[Modality(m)], required=True)
            if sum(int(c.msgcount) for c in conns) == 0:
                raise BagError(f'bag {self.path}: topic {topic} holds no messages; record it '
                               f'while the sensor publishes')
        if self.topics.truth in info.types and info.types[self.topics.truth] != TRUTH_TYPE:
            raise BagError(f'bag {self.path}: topic {self.topics.truth} has type '
                           f'{info.types[self.topics.truth]}, expected {TRUTH_TYPE}')
        return info

    # -- messages ------------------------------------------------------------------------------

    def _messages(self, conns: list[Any], raw_topics: frozenset[str] = frozenset()
                  ) -> Iterator[tuple[Any, int, Any]]:
        """(connection, bag time ns, deserialised message); damage mid-file becomes BagError.
        Messages on ``raw_topics`` come as their serialised bytes (see :meth:`_deserialize`)."""
        reader = self._open_reader()
        errors = _read_errors()
        gen = reader.messages(connections=conns)
        expected = sum(int(c.msgcount) for c in conns)
        count = 0
        while True:
            try:
                item = next(gen)
            except StopIteration:
                if count < expected:
                    topics = sorted({c.topic for c in conns})
                    raise BagError(f'bag {self.path} is damaged: its index lists {expected} '
                                   f'messages on {topics} but only {count} could be read; '
                                   f're-record it, or try `ros2 bag reindex` on it') from None
                return
            except errors as exc:
                raise BagError(f'bag {self.path} is damaged after {self.stats["read"]} messages '
                               f'({exc}); it is truncated or corrupt: re-record it, or cut it '
                               f'before the damage with `ros2 bag convert`') from None
            conn, t_ns, raw = item
            count += 1
            if raw_topics and conn.topic in raw_topics:
                self.stats['read'] += 1
                yield conn, int(t_ns), raw
                continue
            try:
                msg = reader.deserialize(raw, conn.msgtype)
            except errors as exc:
                raise BagError(f'bag {self.path}: a {conn.msgtype} message on {conn.topic} at '
                               f'bag time {t_ns} ns cannot be deserialised ({exc}); the bag is '
                               f'corrupt or was recorded with other message definitions') from None
            self.stats['read'] += 1
            yield conn, int(t_ns), msg

    def _deserialize(self, conn: Any, t_ns: int, raw: Any) -> Any:
        """One serialised message, deserialised as :meth:`_messages` does."""
        try:
            return self._open_reader().deserialize(raw, conn.msgtype)
        except _read_errors() as exc:
            raise BagError(f'bag {self.path}: a {conn.msgtype} message on {conn.topic} at '
                           f'bag time {t_ns} ns cannot be deserialised ({exc}); the bag is '
                           f'corrupt or was recorded with other message definitions') from None

    def _standard_types(self, typenames: Sequence[str]) -> bool:
        """Whether this bag's definitions of ``typenames`` are the standard ROS 2 ones (so their
        serialised layout is known)."""
        reader = self._open_reader()
        if not getattr(reader, 'is2', False):
            return False
        store = getattr(reader, 'typestore', None)
        if store is None:
            return False
        reference = _reference_fielddefs()
        try:
            if int(store.max_sequence_length) < 2**32 - 1:
                return False
            return all(store.fielddefs.get(t) == reference[t] for t in typenames)
        except Exception:  # noqa: BLE001 - any doubt: take the ordinary path
            return False

    def raw_messages(self, modalities: Sequence[Modality] = MODALITIES
                     ) -> Iterator[tuple[str, int, Any]]:
        """(topic, bag time ns, rosbags message) in bag order: the bare read + deserialise, with
        no decoding (what benchmarks compare against)."""
        conns = [c for m in modalities
                 for c in self._connections(self.topics.of(m), MESSAGE_TYPES[Modality(m)],
                                            required=True)]
        for conn, t_ns, msg in self._messages(conns):
            yield conn.topic, t_ns, msg

    def samples(self, modalities: Sequence[Modality] = MODALITIES, *,
                progress: Callable[[int], None] | None = None,
                truth: list[tuple[int, list[tuple[str, int, str, dict[str, str]]]]] | None = None
                ) -> Iterator[Sample]:
        """Decoded :class:`~lipfault_ros.tuples.Sample` records in header-stamp order.

        ``progress`` (if given) is called with the number of bag messages consumed since its last
        call, for progress bars. Messages the codec cannot decode (an unknown image encoding,
        joint fields of the wrong length) are skipped and counted in ``stats['decode_errors']``,
        as the live node drops them.

        ``truth`` (if given, a list) also reads the fault truth topic in the same pass: each of its
        messages is appended as ``(stamp_ns, statuses)`` in bag order (the input of
        :func:`lipfault_ros.truth.intervals_from_statuses`); they are not yielded and not counted
        by ``progress``.
        """
        from lipfault_ros import codec

        decoders: dict[str, Callable[[Any], Sample]] = {}
        conns = []
        for m in modalities:
            m = Modality(m)
            topic = self.topics.of(m)
            conns += self._connections(topic, MESSAGE_TYPES[m], required=True)
            decoders[topic] = {Modality.CAMERA: codec.image_sample,
                               Modality.WRENCH: codec.wrench_sample,
                               Modality.JOINTS: codec.joint_sample}[m]
        # WrenchStamped (most of the messages) is read straight from its bytes when the bag
        # uses the standard definition; anything that read does not accept is deserialised.
        fast: dict[str, Callable[[Any], Sample | None]] = {}
        wrench_topic = self.topics.of(Modality.WRENCH)
        if wrench_topic in decoders and self._standard_types(_WRENCH_TYPES):
            fast[wrench_topic] = codec.wrench_sample_cdr
        joints_topic = self.topics.of(Modality.JOINTS)
        if joints_topic in decoders and self._standard_types(_JOINT_TYPES):
            fast[joints_topic] = codec.joint_sample_cdr
        truth_topic = None
        if truth is not None:
            truth_conns = self._connections(self.topics.truth, TRUTH_TYPE, required=False)
            if truth_conns and self.topics.truth not in decoders:
                truth_topic = self.topics.truth
                conns += truth_conns
        stats = self.stats
        reorder = StampReorder(self.reorder_ns, self.max_buffer, self.jump_ns, stats)
        pending = 0
        for conn, t_ns, msg in self._messages(conns, frozenset(fast)):
            topic = conn.topic
            if topic == truth_topic:
                truth.append(_truth_entry(msg))  # type: ignore[union-attr]
                continue
            pending += 1
            if progress is not None and pending >= 256:
                progress(pending)
                pending = 0
            try:
                if fast and topic in fast:
                    sample = fast[topic](msg)
                    if sample is None:
                        sample = decoders[topic](self._deserialize(conn, t_ns, msg))
                else:
                    sample = decoders[topic](msg)
            except InputError as exc:
                stats['decode_errors'] += 1
                if stats['decode_errors'] == 1:
                    _log.warning('bag %s: skipping undecodable messages on %s (%s)', self.path,
                                 topic, exc)
                continue
            stats['decoded'] += 1
            yield from reorder.push(sample.stamp_ns, sample)
        yield from reorder.flush()
        if progress is not None and pending:
            progress(pending)

    def joint_names(self) -> tuple[str, ...]:
        """Joint names of the first joint_states message (the order the bag uses)."""
        from lipfault_ros import codec

        conns = self._connections(self.topics.joints, MESSAGE_TYPES[Modality.JOINTS],
                                  required=True)
        for _conn, _t, msg in self._messages(conns):
            try:
                return codec.joint_sample(msg).names
            except InputError:
                continue
        raise BagError(f'bag {self.path}: no decodable message on {self.topics.joints}')

    def truth(self) -> list[Any]:
        """Fault intervals (``truth.FaultInterval``) from the truth topic; [] when the bag has
        none (a recording from a real robot)."""
        from lipfault_ros import truth

        conns = self._connections(self.topics.truth, TRUTH_TYPE, required=False)
        if not conns:
            return []

        statuses = (_truth_entry(msg) for _conn, _t, msg in self._messages(conns))
        return list(truth.intervals_from_statuses(statuses))


_WRENCH_TYPES = ('geometry_msgs/msg/WrenchStamped', 'std_msgs/msg/Header',
                 'builtin_interfaces/msg/Time', 'geometry_msgs/msg/Wrench',
                 'geometry_msgs/msg/Vector3')
_JOINT_TYPES = ('sensor_msgs/msg/JointState', 'std_msgs/msg/Header',
                'builtin_interfaces/msg/Time')
_REFERENCE: dict[str, Any] = {}


def _reference_fielddefs() -> Mapping[str, Any]:
    if not _REFERENCE:
        from rosbags.typesys import Stores, get_typestore
        store = get_typestore(Stores.ROS2_HUMBLE)
        _REFERENCE.update({t: store.fielddefs[t] for t in _WRENCH_TYPES + _JOINT_TYPES})
    return _REFERENCE


def _truth_entry(msg: Any) -> tuple[int, list[tuple[str, int, str, dict[str, str]]]]:
    """``(stamp_ns, statuses)`` of one fault truth (DiagnosticArray) message."""
    stamp = stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec)
    return stamp, [(str(s.name), int(s.level), str(s.message),
                    {str(kv.key): str(kv.value) for kv in s.values})
                   for s in msg.status]
