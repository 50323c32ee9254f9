"""One stream's recent samples, sorted by stamp, and the fixed-length windows cut from them:
the history each tuple carries (both synchroniser backends cut their windows the same way).

Live, each sample also carries its *backlog*: how much later than usual it arrived, i.e. its
lag (arrival minus header stamp) over the stream's lag floor, the lowest lag seen, which may
rise by 1 ms per second of stamps (``BACKLOG_DRIFT``) so that it follows two clocks drifting
apart (NTP slews at most 0.5 ms/s); the clocks' offset cancels. A sensor that loses messages
does not delay the ones it still sends (backlog ~0); a pipeline whose input queue of N
messages overflowed receives the oldest of the N newest, at least N - 1 periods late (50
messages at 500 Hz: 98 ms), so its own losses show as a backlog.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Any

__all__ = ['BACKLOG_DRIFT', 'History', 'pad']

#: the lag floor's allowed rise: 1 ns per this many ns of stamps (1 ms/s)
BACKLOG_DRIFT = 1000


def pad(items: list[Any], length: int) -> list[Any]:
    """The last ``length`` of ``items``, the oldest repeated in front when there are fewer."""
    items = items[-length:]
    if len(items) < length:
        items = [items[0]] * (length - len(items)) + items
    return items


class History:
    """Recent samples of one stream, sorted by stamp, for history windows."""

    __slots__ = ('stamps', 'items', 'backlogs', 'capacity', 'last_backlog', '_floor')

    def __init__(self, capacity: int) -> None:
        self.stamps: list[int] = []
        self.items: list[Any] = []
        self.backlogs: list[int] = []
        self.capacity = capacity
        #: the backlog of the newest sample added (ns)
        self.last_backlog = 0
        self._floor: tuple[int, int] | None = None  # (lag, stamp) the floor was last set at

    def add(self, stamp: int, item: Any, arrival_ns: int | None = None) -> None:
        """File one sample; with ``arrival_ns`` (live), its backlog too."""
        backlog = 0
        if arrival_ns is not None:
            lag = arrival_ns - stamp
            floor = self._floor
            if floor is not None:
                backlog = max(0, lag - floor[0] - (stamp - floor[1]) // BACKLOG_DRIFT)
            if floor is None or backlog == 0:
                self._floor = (lag, stamp)
        self.last_backlog = backlog
        stamps = self.stamps
        if not stamps or stamp > stamps[-1]:
            stamps.append(stamp)
            self.items.append(item)
            self.backlogs.append(backlog)
            if len(stamps) > 2 * self.capacity:
                del stamps[:-self.capacity]
                del self.items[:-self.capacity]
                del self.backlogs[:-self.capacity]
        else:
            k = bisect_left(stamps, stamp)
            if k < len(stamps) and stamps[k] == stamp:
                self.items[k] = item
                self.backlogs[k] = backlog
            else:
                stamps.insert(k, stamp)
                self.items.insert(k, item)
                self.backlogs.insert(k, backlog)

    def window(self, end_stamp: int, length: int) -> list[Any] | None:
        """The ``length`` items ending at ``end_stamp`` (inclusive), oldest first; the oldest
        item is repeated when the history is shorter (start of a stream). None if empty."""
        k = bisect_right(self.stamps, end_stamp)
        if k == 0:
            return None
        return pad(self.items[max(0, k - length):k], length)

    def backlog(self, end_stamp: int, length: int) -> int:
        """The largest backlog among the samples of :meth:`window` (0 when empty)."""
        k = bisect_right(self.stamps, end_stamp)
        return max(self.backlogs[max(0, k - length):k], default=0)

    def clear(self) -> None:
        self.stamps.clear()
        self.items.clear()
        self.backlogs.clear()
        self.last_backlog = 0
        self._floor = None
