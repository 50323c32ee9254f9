"""Approximate-time synchronisation of camera, force/torque and joint streams.

One synchroniser serves the live node and the offline bag path, so the tuples a model is trained
on are built exactly like the tuples it sees on the robot. Timestamps are integer nanoseconds
(``header.stamp``), never floats.

:class:`ApproximateTimeSync` follows message_filters' ``ApproximateTimeSynchronizer``: one queue
per input, a ``slop`` tolerance, every arrival (the newest message, the pivot) triggers a search,
and the first combination found within ``slop`` is emitted and consumed. It departs from it where
users of message_filters get hurt:

- **Deterministic matching.** The combination for a reference message (the camera frame) takes,
  from every other input, the message *nearest* to the reference stamp, and is emitted once every
  other input has passed the reference stamp (plus ``settle``), so the result does not depend on
  how the inputs interleave on arrival (message_filters takes whatever is in the queue first).
- **Backwards jumps reset** the queues (bag loop, simulator restart) instead of stalling forever.
- **Strictly increasing output** stamps: a late reference message is dropped and counted.
- **Per-input queue sizes**, derived from the input rates (a 500 Hz queue of 10 spans 20 ms).
- **Counters** for overflow drops, unmatched and late messages and resets.
- **Silent inputs** (the watchdog) are not waited for, nor is an input whose stamps lag the
  frame by more than its silence limit (a clock far off, or one sensor that jumped back alone).
- **Partial combinations** (``partial=True``, what the tuples use): a frame whose partner on one
  input is not within ``slop`` still goes out, without that input, and is counted (``unpaired``);
  message_filters drops the frame (``partial=False``, counted as ``unmatched``).

:class:`TupleAssembler` builds :class:`~lipfault_ros.tuples.SensorTuple` objects on top: it keeps
rate-aware history caches of the wrench and joint streams so each tuple carries the history
windows the model needs, ending at the matched message; joint states are matched by *name* to
the configured joint order; messages without a header stamp are handled by an explicit policy;
and a watchdog turns a modality that stays silent for ``silent_periods`` of its periods into a
*missing* modality while tuples keep flowing (it is used again as soon as it returns).
Non-finite values are passed through untouched: the model scores them as a fault.
"""

from __future__ import annotations

import enum
import logging
import math
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, replace
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from lipfault_ros.errors import ConfigError, SyncError
from lipfault_ros.tuples import (MODALITIES, ImageSample, JointSample, Modality, Sample,
                                 SensorTuple, WrenchSample)

__all__ = [
    'ApproximateTimeSync',
    'Headerless',
    'Match',
    'SyncConfig',
    'SyncStats',
    'TupleAssembler',
    'assemble',
]

_log = logging.getLogger(__name__)
_NS = 1_000_000_000


class Headerless(str, enum.Enum):
    """What to do with a message whose header stamp is zero (the driver set no header)."""

    #: drop it and count it in ``SyncStats.headerless`` (default: never guess a time)
    DROP = 'drop'
    #: stamp it with its arrival time (only where an arrival time is given, i.e. live)
    ARRIVAL = 'arrival'
    #: raise SyncError
    REFUSE = 'refuse'

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SyncConfig:
    """How the three streams are put together. Times in seconds, rates in Hz.

    Per-input queue sizes are ``ceil(rate * queue_span) + 1`` unless ``queue_sizes`` gives them
    (camera, wrench, joints): a queue must span more than the worst latency difference between
    the inputs, whatever the rate.
    """

    #: nominal rates of camera, wrench and joints; they size queues, windows and the watchdog
    camera_rate: float = 30.0
    wrench_rate: float = 500.0
    joints_rate: float = 250.0
    #: largest stamp difference between the camera frame and the nearest wrench/joint message
    slop: float = 0.02
    #: time span each input queue covers (sets the queue sizes from the rates)
    queue_span: float = 0.5
    #: explicit queue sizes (camera, wrench, joints), overriding ``queue_span``
    queue_sizes: tuple[int, int, int] | None = None
    #: history window lengths (samples) handed to the model with each tuple
    wrench_window: int = 32
    joints_window: int = 32
    #: a modality silent for this many of its periods is marked missing ...
    silent_periods: float = 10.0
    #: ... but never before this many seconds, so a busy executor is not taken for a dead sensor
    silent_min: float = 0.3
    #: wait until every input is this far past a frame's stamp before matching it (covers
    #: messages of one input arriving out of order; 0 means past the stamp is enough)
    settle: float = 0.0
    #: a stamp older than its input's newest by more than this is a backwards jump -> reset
    jump_back: float = 0.5
    #: messages with a zero header stamp
    headerless: Headerless = Headerless.DROP
    #: a frame whose wrench or joints have no message within ``slop`` still makes a tuple, with
    #: that modality missing (False: the frame is dropped, as message_filters does)
    partial: bool = True

    def __post_init__(self) -> None:
        for name in ('camera_rate', 'wrench_rate', 'joints_rate', 'queue_span',
                     'silent_periods', 'jump_back'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f'sync parameter {name} must be a positive number, '
                                  f'got {value!r}')
        for name in ('slop', 'settle', 'silent_min'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f'sync parameter {name} must be >= 0, got {value!r}')
        for name in ('wrench_window', 'joints_window'):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f'sync parameter {name} must be >= 1, got '
                                  f'{getattr(self, name)!r}')
        if self.queue_sizes is not None:
            sizes = tuple(int(q) for q in self.queue_sizes)
            if len(sizes) != 3 or min(sizes) < 1:
                raise ConfigError(f'sync parameter queue_sizes must be three sizes >= 1 '
                                  f'(camera, wrench, joints), got {self.queue_sizes!r}')
            object.__setattr__(self, 'queue_sizes', sizes)
        try:
            object.__setattr__(self, 'headerless', Headerless(self.headerless))
        except ValueError:
            raise ConfigError(f'sync parameter headerless must be one of '
                              f'{[h.value for h in Headerless]}, got {self.headerless!r}') from None

    def rate(self, modality: Modality) -> float:
        """Nominal rate of one modality in Hz."""
        return {Modality.CAMERA: self.camera_rate, Modality.WRENCH: self.wrench_rate,
                Modality.JOINTS: self.joints_rate}[Modality(modality)]

    def period_ns(self, modality: Modality) -> int:
        """Nominal period of one modality in ns."""
        return int(round(_NS / self.rate(modality)))

    def queue_size(self, modality: Modality) -> int:
        """Queue length of one input."""
        if self.queue_sizes is not None:
            return self.queue_sizes[MODALITIES.index(Modality(modality))]
        return int(math.ceil(self.rate(modality) * self.queue_span)) + 1

    def window(self, modality: Modality) -> int:
        """History window length of wrench or joints (1 for the camera)."""
        return {Modality.CAMERA: 1, Modality.WRENCH: self.wrench_window,
                Modality.JOINTS: self.joints_window}[Modality(modality)]


class Match(NamedTuple):
    """One combination found by :class:`ApproximateTimeSync`: ``stamp_ns`` is the reference
    input's stamp; ``messages``/``stamps_ns`` hold one entry per input (None for a silent one)."""

    stamp_ns: int
    messages: tuple[Any, ...]
    stamps_ns: tuple[int | None, ...]


class ApproximateTimeSync:
    """Generic approximate-time synchroniser over ``len(queue_sizes)`` inputs (see module doc).

    Input ``reference`` sets the stamp of each combination (for tuples: the camera). ``add``
    returns the combinations completed by that arrival, oldest first, with strictly increasing
    stamps. Not thread-safe: the caller serialises calls (the node does it in one callback group).
    """

    def __init__(self, queue_sizes: Sequence[int], *, slop_ns: int, reference: int = 0,
                 settle_ns: int = 0, jump_back_ns: int = _NS // 2,
                 partial: bool = False, max_lag_ns: Sequence[int] | None = None) -> None:
        self.n = len(queue_sizes)
        if self.n < 2:
            raise SyncError(f'synchronising needs at least two inputs, got {self.n}')
        if min(queue_sizes) < 1:
            raise SyncError(f'queue sizes must be >= 1, got {list(queue_sizes)}')
        if not 0 <= reference < self.n:
            raise SyncError(f'reference input {reference} out of range for {self.n} inputs')
        if slop_ns < 0 or settle_ns < 0 or jump_back_ns <= 0:
            raise SyncError(f'slop_ns and settle_ns must be >= 0 and jump_back_ns > 0, got '
                            f'{slop_ns}, {settle_ns}, {jump_back_ns}')
        self.queue_sizes = tuple(int(q) for q in queue_sizes)
        self.slop_ns = int(slop_ns)
        self.reference = reference
        self.settle_ns = int(settle_ns)
        self.jump_back_ns = int(jump_back_ns)
        self.partial = bool(partial)
        # an input whose newest stamp lags a frame by more than this is not waited for (its
        # clock is off or it jumped back alone): with ``partial`` the frame goes without it
        self.max_lag_ns = (tuple(int(v) for v in max_lag_ns) if max_lag_ns is not None
                           else None)
        self._others = tuple(i for i in range(self.n) if i != reference)
        self.received = [0] * self.n
        self.dropped = [0] * self.n     # pushed out of a full queue unmatched
        self.late = [0] * self.n        # arrived older than what was already consumed
        self.unmatched = 0              # reference messages with no partner within slop
        self.unpaired = [0] * self.n    # partial combinations that lacked this input
        self.matched = 0
        self.resets = 0
        self._stamps: list[list[int]] = [[] for _ in range(self.n)]
        self._msgs: list[dict[int, Any]] = [{} for _ in range(self.n)]
        self._newest: list[int | None] = [None] * self.n
        self._consumed: list[int | None] = [None] * self.n
        self._last_out: int | None = None

    def reset(self) -> None:
        """Forget every queued message and the output order (counters are kept)."""
        for i in range(self.n):
            self._stamps[i].clear()
            self._msgs[i].clear()
        self._newest = [None] * self.n
        self._consumed = [None] * self.n
        self._last_out = None

    def consume(self, index: int, stamp_ns: int) -> None:
        """Drop input ``index``'s queued messages up to ``stamp_ns`` as used (not counted as
        dropped): for callers that combined them by other means."""
        q, msgs = self._stamps[index], self._msgs[index]
        k = bisect_right(q, stamp_ns)
        for old in q[:k]:
            del msgs[old]
        del q[:k]
        if k:
            self._consumed[index] = stamp_ns

    def pending(self, index: int) -> int:
        """How many messages input ``index`` holds in its queue."""
        return len(self._stamps[index])

    def add(self, index: int, stamp_ns: int, msg: Any, *,
            silent: Sequence[bool] | None = None) -> list[Match]:
        """Queue one message of input ``index``; return the combinations it completes.

        ``silent[i]`` True means input i is not waited for: it joins a combination only when
        it already holds a message within slop (else its entry is None).
        """
        newest = self._newest[index]
        if newest is not None and stamp_ns < newest - self.jump_back_ns:
            _log.info('input %d jumped back in time (%d ns -> %d ns): synchroniser reset',
                      index, newest, stamp_ns)
            self.resets += 1
            self.reset()
            newest = None
        self.received[index] += 1
        consumed = self._consumed[index]
        if (consumed is not None and stamp_ns <= consumed) or (
                index == self.reference and self._last_out is not None
                and stamp_ns <= self._last_out):
            self.late[index] += 1
            return self.match(silent) if self._stamps[self.reference] else []
        queue, msgs = self._stamps[index], self._msgs[index]
        if stamp_ns in msgs:
            self.dropped[index] += 1  # same stamp twice: the newer message replaces it
        elif not queue or stamp_ns > queue[-1]:
            queue.append(stamp_ns)
        else:
            insort(queue, stamp_ns)
        msgs[stamp_ns] = msg
        if newest is None or stamp_ns > newest:
            self._newest[index] = stamp_ns
        if len(queue) > self.queue_sizes[index]:
            del msgs[queue.pop(0)]
            self.dropped[index] += 1
        if self._stamps[self.reference]:
            return self.match(silent)
        return []

    def match(self, silent: Sequence[bool] | None = None, *, final: bool = False) -> list[Match]:
        """Emit every queued reference message whose combination is complete, oldest first.

        ``final`` treats every input as settled (end of a finite stream).
        """
        out: list[Match] = []
        ref_queue = self._stamps[self.reference]
        others = self._others
        waited = [i for i in others if not (silent and silent[i])]
        while ref_queue:
            c = ref_queue[0]
            if not final:
                need = c + self.settle_ns
                for i in waited:
                    nw = self._newest[i]
                    if nw is None or nw < need:
                        lag = self.max_lag_ns
                        if lag is not None and nw is not None and c - nw > lag[i]:
                            continue
                        return out
            chosen: list[int | None] = [None] * self.n
            chosen[self.reference] = c
            ok = True
            for i in others:
                q = self._stamps[i]
                k = bisect_left(q, c)
                best = None
                if k < len(q):
                    best = q[k]
                if k > 0 and (best is None or c - q[k - 1] <= best - c):
                    best = q[k - 1]
                if best is None or abs(best - c) > self.slop_ns:
                    if silent and silent[i]:
                        continue
                    if self.partial:
                        self.unpaired[i] += 1
                        continue
                    ok = False
                    break
                chosen[i] = best
            ref_queue.pop(0)
            ref_msg = self._msgs[self.reference].pop(c)
            if not ok:
                self.unmatched += 1
                continue
            messages: list[Any] = [None] * self.n
            messages[self.reference] = ref_msg
            for i in others:
                s = chosen[i]
                if s is None:
                    continue
                q, msgs = self._stamps[i], self._msgs[i]
                messages[i] = msgs[s]
                # the nearest partner of any later frame is not older than this one
                k = bisect_right(q, s)
                for old in q[:k]:
                    del msgs[old]
                del q[:k]
                self._consumed[i] = s
            self._last_out = c
            self.matched += 1
            out.append(Match(c, tuple(messages), tuple(chosen)))
        return out


@dataclass(frozen=True)
class SyncStats:
    """A snapshot of the synchroniser's counters, per modality where that makes sense."""

    received: dict[Modality, int]
    #: messages pushed out of a full queue unmatched
    dropped: dict[Modality, int]
    #: messages that arrived older than what was already used (out of order beyond the queue)
    late: dict[Modality, int]
    #: messages with a zero stamp (see ``SyncConfig.headerless``)
    headerless: dict[Modality, int]
    #: messages refused as unusable (joint names that do not fit), with the last reason
    rejected: dict[Modality, int]
    problems: dict[Modality, str]
    #: tuples emitted with the modality missing
    missing: dict[Modality, int]
    #: modalities the watchdog currently holds silent
    silent: frozenset[Modality]
    #: camera frames dropped for want of partners within slop (``partial=False`` only)
    unmatched: int
    #: tuples made without this modality because it had no message within slop
    unpaired: dict[Modality, int]
    tuples: int
    resets: int


class _History:
    """Recent samples of one stream, sorted by stamp, for history windows."""

    __slots__ = ('stamps', 'items', 'capacity')

    def __init__(self, capacity: int) -> None:
        self.stamps: list[int] = []
        self.items: list[Any] = []
        self.capacity = capacity

    def add(self, stamp: int, item: Any) -> None:
        stamps = self.stamps
        if not stamps or stamp > stamps[-1]:
            stamps.append(stamp)
            self.items.append(item)
            if len(stamps) > 2 * self.capacity:
                del stamps[:-self.capacity]
                del self.items[:-self.capacity]
        else:
            k = bisect_left(stamps, stamp)
            if k < len(stamps) and stamps[k] == stamp:
                self.items[k] = item
            else:
                stamps.insert(k, stamp)
                self.items.insert(k, item)

    def window(self, end_stamp: int, length: int) -> list[Any] | None:
        """The ``length`` items ending at ``end_stamp`` (inclusive), oldest first; the oldest
        item is repeated when the history is shorter (start of a stream). None if empty."""
        k = bisect_right(self.stamps, end_stamp)
        if k == 0:
            return None
        items = self.items[max(0, k - length):k]
        if len(items) < length:
            items = [items[0]] * (length - len(items)) + items
        return items

    def clear(self) -> None:
        self.stamps.clear()
        self.items.clear()


class TupleAssembler:
    """Turn camera, wrench and joint samples into :class:`SensorTuple` objects.

    ``push`` one sample at a time (live: with its arrival time in ns from the node clock, which
    arms the arrival-time watchdog; offline: without, and silence is judged on the stream's own
    stamps), call ``poll(now_ns)`` periodically when live, and ``flush()`` at the end of a
    finite stream. Each camera frame gives at most one tuple, stamped with the frame's stamp.
    While the camera is silent, tuples keep coming at the camera rate, stamped by the wrench (or
    joint) stream, with the camera missing.
    """

    def __init__(self, config: SyncConfig, joint_names: Sequence[str]) -> None:
        self.config = config
        self.joint_names = tuple(str(n) for n in joint_names)
        if not self.joint_names:
            raise ConfigError('joint_names is empty: the joints modality needs the joint order')
        if len(set(self.joint_names)) != len(self.joint_names):
            raise ConfigError(f'joint_names has duplicates: {list(self.joint_names)}')
        self._period = [config.period_ns(m) for m in MODALITIES]
        self._silent_after = [max(int(config.silent_periods * p), int(config.silent_min * _NS))
                              for p in self._period]
        self._sync = ApproximateTimeSync([config.queue_size(m) for m in MODALITIES],
                                         slop_ns=int(round(config.slop * _NS)), reference=0,
                                         settle_ns=int(round(config.settle * _NS)),
                                         jump_back_ns=int(round(config.jump_back * _NS)),
                                         partial=config.partial,
                                         max_lag_ns=self._silent_after)
        self._jump_ns = int(round(config.jump_back * _NS))
        self._slop_ns = int(round(config.slop * _NS))
        self._hist = [None, _History(4 * config.wrench_window + config.queue_size(
            Modality.WRENCH)), _History(4 * config.joints_window + config.queue_size(
                Modality.JOINTS))]
        self._name_index: dict[tuple[str, ...], tuple[int, ...] | str] = {}
        self._identity = tuple(range(len(self.joint_names)))
        self._newest: list[int | None] = [None, None, None]
        self._arrival: list[int | None] = [None, None, None]
        self._start_arrival: int | None = None
        self._start_stamp: int | None = None
        self._clock = 0  # newest stamp over all inputs
        self._silent = [False, False, False]
        self._unusable = [False, False, False]
        self._live = False
        self._last_out: int | None = None
        self._received = [0, 0, 0]
        self._headerless = [0, 0, 0]
        self._rejected = [0, 0, 0]
        self._missing = [0, 0, 0]
        self._problems: dict[Modality, str] = {}
        self._tuples = 0
        self._resets = 0
        self._late_frames = 0
        self._check_at = 0
        self._skipv = [False, False, False]

    # -- public API --
    def push(self, sample: Sample, *, arrival_ns: int | None = None) -> list[SensorTuple]:
        """Add one sample; return the tuples it completes (oldest first, increasing stamps)."""
        m = _TYPE_INDEX.get(type(sample))
        if m is None:
            m = _INDEX[sample.modality]
        stamp = sample.stamp_ns
        self._received[m] += 1
        if stamp <= 0:
            policy = self.config.headerless
            if policy is Headerless.ARRIVAL and arrival_ns is not None and arrival_ns > 0:
                stamp = int(arrival_ns)
                sample = replace(sample, stamp_ns=stamp)
            elif policy is Headerless.REFUSE:
                raise SyncError(f'{MODALITIES[m]} message (frame {sample.frame_id!r}) has no '
                                f'header stamp')
            else:
                self._headerless[m] += 1
                self._problems[MODALITIES[m]] = 'message without header stamp dropped'
                return []
        newest = self._newest[m]
        if newest is not None and stamp < newest - self._jump_ns:
            _log.info('%s stamps jumped back by %.3f s: synchroniser reset', MODALITIES[m],
                      (newest - stamp) / _NS)
            self.reset()
            self._resets += 1
        item: Any = sample
        if m == 2:
            index = self._joint_index(sample)
            if isinstance(index, str):
                self._rejected[m] += 1
                self._problems[Modality.JOINTS] = index
                if not self._unusable[m]:
                    self._unusable[m] = True
                    self._refresh_skip()
                return self._after_arrival(arrival_ns)
            item = (sample, index)
            if self._unusable[2]:
                self._unusable[2] = False
                self._refresh_skip()
        if newest is None or stamp > newest:
            self._newest[m] = stamp
            if stamp > self._clock:
                self._clock = stamp
        if self._start_stamp is None:
            self._start_stamp = stamp
        if arrival_ns is not None:
            self._live = True
            self._arrival[m] = arrival_ns
            if self._start_arrival is None:
                self._start_arrival = arrival_ns
        hist = self._hist[m]
        if hist is not None:
            hist.add(stamp, item)
        if self._live or self._silent[m] or self._clock >= self._check_at:
            self._update_silence(arrival_ns)
        matches = self._sync.add(m, stamp, sample, silent=self._skipv)
        out = self._build_all(matches) if matches else []
        if self._silent[0] and m == self._fallback_pivot():
            out += self._fallback_tuple(stamp)
        return out

    def poll(self, now_ns: int) -> list[SensorTuple]:
        """Watchdog tick (live): judge silence at ``now_ns`` (the clock of the arrival times
        given to ``push``) and return tuples that were only waiting for a silent modality."""
        return self._after_arrival(now_ns)

    def flush(self) -> list[SensorTuple]:
        """End of a finite stream: emit what is still queued with what is available."""
        return self._build_all(self._sync.match(self._skipv, final=True))

    def reset(self) -> None:
        """Forget queues, histories and output order (counters are kept)."""
        self._sync.reset()
        for hist in self._hist:
            if hist is not None:
                hist.clear()
        self._newest = [None, None, None]
        self._start_stamp = None
        self._clock = 0
        self._last_out = None
        self._silent = [False, False, False]
        self._check_at = 0
        self._refresh_skip()

    @property
    def stats(self) -> SyncStats:
        """Current counters (a snapshot)."""
        s = self._sync

        def per(values: Sequence[int]) -> dict[Modality, int]:
            return {mod: int(v) for mod, v in zip(MODALITIES, values)}

        return SyncStats(
            received=per(self._received), dropped=per(s.dropped),
            late=per([s.late[0] + self._late_frames, s.late[1], s.late[2]]),
            headerless=per(self._headerless), rejected=per(self._rejected),
            problems=dict(self._problems), missing=per(self._missing),
            silent=frozenset(mod for mod, q in zip(MODALITIES, self._silent) if q),
            unmatched=s.unmatched, unpaired=per(s.unpaired), tuples=self._tuples,
            resets=self._resets + s.resets)

    # -- internals --
    def _refresh_skip(self) -> None:
        self._skipv = [a or b for a, b in zip(self._silent, self._unusable)]

    def _after_arrival(self, now_ns: int | None) -> list[SensorTuple]:
        before = list(self._silent)
        self._update_silence(now_ns)
        if self._silent != before or any(self._unusable):
            return self._build_all(self._sync.match(self._skipv))
        return []

    def _update_silence(self, now_ns: int | None) -> None:
        """Judge silence: live (``now_ns`` on the arrival clock), nothing arrived for the
        modality's limit; offline, its newest stamp lags the newest stamp of any stream by more
        than that (and note the stream time at which this can next change, so pushes skip the
        check until then)."""
        silent = self._silent
        if self._live:
            if now_ns is None:
                return
            for i in range(3):
                last = self._arrival[i]
                ref = last if last is not None else self._start_arrival
                s = ref is not None and now_ns - ref > self._silent_after[i]
                if s != silent[i]:
                    self._set_silent(i, s)
            return
        start = self._start_stamp
        if start is None:
            return
        clock = self._clock
        check_at = 1 << 62
        for i in range(3):
            nw = self._newest[i]
            limit = (nw if nw is not None else start) + self._silent_after[i]
            s = clock > limit
            if s != silent[i]:
                self._set_silent(i, s)
            if not s and limit + 1 < check_at:
                check_at = limit + 1
        self._check_at = check_at

    def _set_silent(self, i: int, value: bool) -> None:
        self._silent[i] = value
        self._refresh_skip()
        if value:
            _log.warning('%s silent for more than %.3f s: marked missing',
                         MODALITIES[i], self._silent_after[i] / _NS)
        else:
            _log.info('%s is back', MODALITIES[i])

    def _fallback_pivot(self) -> int | None:
        for i in (1, 2):
            if not (self._silent[i] or self._unusable[i]):
                return i
        return None

    def _fallback_tuple(self, stamp: int) -> list[SensorTuple]:
        """A tuple while the camera is silent: one per camera period of the pivot stream."""
        if self._last_out is not None and stamp < self._last_out + self._period[0]:
            return []
        chosen: list[int | None] = [None, None, None]
        for i in (1, 2):
            if self._silent[i] or self._unusable[i]:
                continue
            stamps = self._hist[i].stamps
            k = bisect_right(stamps, stamp)
            if k and stamp - stamps[k - 1] <= self._slop_ns:
                chosen[i] = stamps[k - 1]
            self._sync.consume(i, stamp)
        return self._build_all([Match(stamp, (None, None, None), tuple(chosen))])

    def _joint_index(self, sample: JointSample) -> tuple[int, ...] | str:
        names = sample.names
        index = self._name_index.get(names)
        if index is None:
            lookup = {n: k for k, n in enumerate(names)}
            absent = [n for n in self.joint_names if n not in lookup]
            if absent:
                index = (f'joint_states (frame {sample.frame_id!r}) lacks joints {absent}; '
                         f'got {list(names)}')
            else:
                index = tuple(lookup[n] for n in self.joint_names)
            if len(self._name_index) < 64:
                self._name_index[names] = index
        return index

    def _build_all(self, matches: list[Match]) -> list[SensorTuple]:
        out = []
        for match in matches:
            if self._last_out is not None and match.stamp_ns <= self._last_out:
                # a returning camera's first frame older than a tuple made without it
                self._late_frames += 1
                continue
            out.append(self._build(match))
        return out

    def _build(self, match: Match) -> SensorTuple:
        stamp = match.stamp_ns
        self._last_out = stamp
        cfg = self.config
        missing: set[Modality] = set()
        stamps: dict[Modality, int] = {}
        frames: dict[Modality, str] = {}
        image = None
        cam = match.messages[0]
        if cam is not None:
            image = cam.image
            stamps[Modality.CAMERA] = cam.stamp_ns
            frames[Modality.CAMERA] = cam.frame_id
        else:
            missing.add(Modality.CAMERA)
        wrench = None
        end = match.stamps_ns[1]
        items = self._hist[1].window(end, cfg.wrench_window) if end is not None else None
        if items is None:
            missing.add(Modality.WRENCH)
        else:
            wrench = np.concatenate([s.values for s in items]).reshape(
                len(items), len(items[0].values)).astype(np.float32)
            last = items[-1]
            stamps[Modality.WRENCH] = last.stamp_ns
            frames[Modality.WRENCH] = last.frame_id
        joints = None
        end = match.stamps_ns[2]
        items = self._hist[2].window(end, cfg.joints_window) if end is not None else None
        if items is None:
            missing.add(Modality.JOINTS)
        else:
            joints = self._joint_window(items)
            last = items[-1][0]
            stamps[Modality.JOINTS] = last.stamp_ns
            frames[Modality.JOINTS] = last.frame_id
        for mod in missing:
            self._missing[_INDEX[mod]] += 1
        self._tuples += 1
        return SensorTuple(stamp, image, wrench, joints, self.joint_names, stamps, frames,
                           frozenset(missing))

    def _joint_window(self, items: list[tuple[JointSample, tuple[int, ...]]]) -> np.ndarray:
        """(T, J, 3) float32 [position, velocity, effort] in ``joint_names`` order. One array
        build for the whole window when every sample has the same name order (the usual case:
        the index tuple is then the very same cached object)."""
        index = items[0][1]
        if all(ix is index or ix == index for _, ix in items):
            data = np.concatenate([a for s, _ in items for a in (s.position, s.velocity,
                                                                 s.effort)])
            width = len(items[0][0].names)
            if data.size == len(items) * 3 * width:
                data = data.reshape(len(items), 3, width)  # (T, 3, J')
                if width != len(index) or index != self._identity:
                    data = data[:, :, list(index)]
                return np.ascontiguousarray(data.transpose(0, 2, 1), dtype=np.float32)
        out = np.empty((len(items), len(self.joint_names), 3), np.float32)
        for t, (s, ix) in enumerate(items):
            idx = list(ix)
            out[t, :, 0] = s.position[idx]
            out[t, :, 1] = s.velocity[idx]
            out[t, :, 2] = s.effort[idx]
        return out


_INDEX = {Modality.CAMERA: 0, Modality.WRENCH: 1, Modality.JOINTS: 2}
# by exact type: hashing a Modality (an Enum) runs Python code, on every message
_TYPE_INDEX = {ImageSample: 0, WrenchSample: 1, JointSample: 2}


def assemble(samples: Iterable[Sample | tuple[str, Sample]], config: SyncConfig,
             joint_names: Sequence[str]) -> Iterator[SensorTuple]:
    """Synchronise a finite stream (a bag, a simulation) into tuples.

    ``samples`` are :class:`Sample` objects or ``(topic, sample)`` pairs (what the bag reader
    yields), in arrival or stamp order. A clean stream gives exactly one tuple per camera frame;
    stamps strictly increase. Silence is judged on the stream's own stamps.
    """
    asm = TupleAssembler(config, joint_names)
    push = asm.push
    for item in samples:
        if type(item) is tuple:
            item = item[1]
        out = push(item)
        if out:
            yield from out
    yield from asm.flush()
