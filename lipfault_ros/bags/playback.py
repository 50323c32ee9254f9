"""What a live replay plays, ROS-free: the chosen connections of a bag, its messages in the
played range, and the bookkeeping of a play.

The bag is read with ``rosbags`` (receive-time order, raw CDR bytes), so choosing what to play
needs no ROS runtime; the replay node (:mod:`lipfault_ros.nodes.replay`) publishes the bytes and
fills in :class:`Played`, which :func:`lipfault_ros.evaluation.live.score_live` reads after the
play. Times are integer nanoseconds: bag receive times for the range, ``time.monotonic_ns`` for
the wall-clock fields of :class:`Played`, header stamps for the camera stamps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from lipfault_ros.errors import BagError
from lipfault_ros.topics import TopicConfig
from lipfault_ros.tuples import MODALITIES

__all__ = ['Played', 'open_playback', 'playback_messages']


@dataclass
class Played:
    """Bookkeeping of one play: publish times of camera frames and loop boundaries."""

    camera_wall: dict[int, list[tuple[int, int]]] = dataclasses.field(default_factory=dict)
    loop_start_wall: list[int] = dataclasses.field(default_factory=list)
    published: dict[str, int] = dataclasses.field(default_factory=dict)
    loops_done: int = 0
    finished_wall: int | None = None
    first_stamp: int | None = None
    last_stamp: int | None = None
    shift_ns: int = 0


def open_playback(bag: Path, topics: str, sensor_topics: TopicConfig) -> tuple[Any, list[Any]]:
    """The opened ``AnyReader`` of ``bag`` and the connections to play; ``topics`` is the
    replay's setting: empty for the three sensor topics of ``sensor_topics``, ``all`` for every
    topic, else comma-separated names. BagError, naming the bag and the topics, for a bag that
    cannot be read, an absent topic or nothing to play; the caller closes the reader."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    reader = AnyReader([bag], default_typestore=get_typestore(Stores.LATEST))
    try:
        reader.open()
    except Exception as exc:  # rosbags raises several unrelated types for damaged files
        raise BagError(f'bag {bag} cannot be read ({exc})') from None
    have = {c.topic for c in reader.connections}
    if topics.strip() == 'all':
        chosen = sorted(have)
    elif topics.strip():
        chosen = [t.strip() for t in topics.split(',') if t.strip()]
    else:
        chosen = [sensor_topics.of(m) for m in MODALITIES]
    absent = [t for t in chosen if t not in have]
    if absent:
        reader.close()
        raise BagError(f'bag {bag} has no topic {", ".join(absent)}; it has '
                       f'{sorted(have)}')
    conns = [c for c in reader.connections if c.topic in chosen]
    if sum(c.msgcount for c in conns) == 0:
        reader.close()
        raise BagError(f'bag {bag} holds no messages on {chosen}')
    return reader, conns


def playback_messages(reader: Any, connections: list[Any], *, start_offset_s: float,
                      duration_s: float) -> Iterator[tuple[Any, int, bytes]]:
    """``(connection, bag time ns, raw bytes)`` of ``connections`` in bag-time order, from
    ``start_offset_s`` seconds into the bag for ``duration_s`` seconds (0: to the end)."""
    start = reader.start_time + int(start_offset_s * 1e9)
    stop = reader.end_time + 1 if duration_s <= 0 else start + int(duration_s * 1e9)
    yield from reader.messages(connections=connections, start=start, stop=stop)
