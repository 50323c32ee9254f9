"""Tuples from streams: the matcher plus history windows, joint names, headerless messages and
the silence watchdog (see :mod:`lipfault_ros.sync`)."""

from __future__ import annotations

import logging
from bisect import bisect_right
from dataclasses import dataclass, replace
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from lipfault_ros.errors import ConfigError, SyncError
from lipfault_ros.sync.config import NS, Headerless, SyncConfig
from lipfault_ros.sync.history import History, pad
from lipfault_ros.sync.matcher import ApproximateTimeSync, Match
from lipfault_ros.tuples import (MODALITIES, ImageSample, JointSample, Modality, Sample,
                                 SensorTuple, WrenchSample)

__all__ = ['SyncStats', 'TupleAssembler', 'assemble']

_log = logging.getLogger(__name__)


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
    #: how much later than usual the newest wrench and joint samples arrived (ns; live only,
    #: see ``TupleAssembler.push``): the pipeline falling behind its inputs
    backlog: dict[Modality, int]


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
        self._silent_after = [max(int(config.silent_periods * p), int(config.silent_min * NS))
                              for p in self._period]
        self._sync = ApproximateTimeSync([config.queue_size(m) for m in MODALITIES],
                                         slop_ns=int(round(config.slop * NS)), reference=0,
                                         settle_ns=int(round(config.settle * NS)),
                                         jump_back_ns=int(round(config.jump_back * NS)),
                                         partial=config.partial,
                                         max_lag_ns=self._silent_after)
        self._jump_ns = int(round(config.jump_back * NS))
        self._slop_ns = int(round(config.slop * NS))
        self._hist = [None, History(4 * config.wrench_window + config.queue_size(
            Modality.WRENCH)), History(4 * config.joints_window + config.queue_size(
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
        """Add one sample; return the tuples it completes (oldest first, increasing stamps).
        With ``arrival_ns``, a wrench or joint sample's backlog is measured too (how much later
        than usual it arrived, see :mod:`~lipfault_ros.sync.history`), and each window carries
        its largest (``SensorTuple.backlogs_ns``)."""
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
                      (newest - stamp) / NS)
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
            hist.add(stamp, item, arrival_ns)
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

    def buffered_stamps(self, modality: Modality) -> list[int]:
        """The stamps (ns) of the wrench or joint samples held for the next windows, oldest
        first: the stamp each sample was filed under (its header's, or its arrival's)."""
        m = MODALITIES.index(Modality(modality))
        if m == 0:
            raise ValueError('camera frames are not buffered; only wrench and joints are')
        return list(self._hist[m].stamps)

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
            resets=self._resets + s.resets,
            backlog=per([h.last_backlog if h is not None else 0 for h in self._hist]))

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
                         MODALITIES[i], self._silent_after[i] / NS)
        else:
            _log.info('%s is back', MODALITIES[i])

    def _fallback_pivot(self) -> int | None:
        for i in (1, 2):
            if not (self._silent[i] or self._unusable[i]):
                return i
        return None

    def set_slop(self, slop: float) -> None:
        """Pair with a new tolerance (s) from the next arrival on; what is queued stays (a
        live ``ros2 param set slop``)."""
        if not slop >= 0.0:
            raise ConfigError(f'slop must be >= 0 s, got {slop}')
        self.config = replace(self.config, slop=float(slop))
        self._slop_ns = self._sync.slop_ns = int(round(slop * NS))

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
        end = match.stamps_ns[1]
        backlogs: dict[Modality, int] = {}
        wrench = joints = None
        if end is not None:
            wrench = self._hist[1].window(end, cfg.wrench_window)
            backlogs[Modality.WRENCH] = self._hist[1].backlog(end, cfg.wrench_window)
        end = match.stamps_ns[2]
        if end is not None:
            joints = self._hist[2].window(end, cfg.joints_window)
            backlogs[Modality.JOINTS] = self._hist[2].backlog(end, cfg.joints_window)
        return self._make(stamp, match.messages[0], wrench, joints,
                          backlogs if self._live else None)

    def build(self, camera: ImageSample | None, wrench: Sequence[WrenchSample],
              joints: Sequence[JointSample]) -> SensorTuple:
        """A tuple from partners and windows chosen elsewhere (message_filters), converted
        like the tuples of :meth:`push` so both backends feed the model the same arrays.
        Windows are oldest first, ending at the partner; empty: missing; short: padded with
        the oldest. A joint state lacking a configured joint makes joints missing (counted as
        rejected). Stamped by the camera frame, else by the newest partner."""
        items = [(s, self._joint_index(s)) for s in joints]
        if bad := next((ix for _, ix in items if isinstance(ix, str)), None):
            self._rejected[2] += 1
            self._problems[Modality.JOINTS] = bad
            items = []
        w = pad(list(wrench), self.config.wrench_window) if wrench else None
        j = pad(items, self.config.joints_window) if items else None
        stamps = [s.stamp_ns for s in (camera, w and w[-1], j and j[-1][0]) if s]
        return self._make(camera.stamp_ns if camera else max(stamps, default=0), camera, w, j)

    def _make(self, stamp: int, cam: ImageSample | None, wrench_items: list[Any] | None,
              joint_items: list[Any] | None,
              backlogs: dict[Modality, int] | None = None) -> SensorTuple:
        """The tuple of one frame and its windows (None: that modality is missing)."""
        missing: set[Modality] = set()
        stamps: dict[Modality, int] = {}
        frames: dict[Modality, str] = {}
        spans: dict[Modality, int] = {}
        image = None
        if cam is not None:
            image = cam.image
            stamps[Modality.CAMERA] = cam.stamp_ns
            frames[Modality.CAMERA] = cam.frame_id
        else:
            missing.add(Modality.CAMERA)
        wrench = None
        if (items := wrench_items) is None:
            missing.add(Modality.WRENCH)
        else:
            wrench = np.concatenate([s.values for s in items]).reshape(
                len(items), len(items[0].values)).astype(np.float32)
            last = items[-1]
            stamps[Modality.WRENCH] = last.stamp_ns
            frames[Modality.WRENCH] = last.frame_id
            spans[Modality.WRENCH] = last.stamp_ns - items[0].stamp_ns
        joints = None
        if (items := joint_items) is None:
            missing.add(Modality.JOINTS)
        else:
            joints = self._joint_window(items)
            last = items[-1][0]
            stamps[Modality.JOINTS] = last.stamp_ns
            frames[Modality.JOINTS] = last.frame_id
            spans[Modality.JOINTS] = last.stamp_ns - items[0][0].stamp_ns
        for mod in missing:
            self._missing[_INDEX[mod]] += 1
        self._tuples += 1
        return SensorTuple(stamp, image, wrench, joints, self.joint_names, stamps, frames,
                           frozenset(missing), spans, backlogs or {})

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
