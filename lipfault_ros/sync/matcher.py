"""The approximate-time matcher: which camera frame goes with which wrench and joint message
(see :mod:`lipfault_ros.sync`)."""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right, insort
from typing import Any, NamedTuple, Sequence

from lipfault_ros.errors import SyncError
from lipfault_ros.sync.config import NS

__all__ = ['ApproximateTimeSync', 'Match']

_log = logging.getLogger(__name__)


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
                 settle_ns: int = 0, jump_back_ns: int = NS // 2,
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
