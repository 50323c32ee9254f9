"""One stream's recent samples, sorted by stamp, and the fixed-length windows cut from them:
the history each tuple carries (both synchroniser backends cut their windows the same way).
Each sample may carry a backlog (ns): how late the pipeline received it (see
:meth:`~lipfault_ros.sync.TupleAssembler.push`)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Any

__all__ = ['History', 'pad']


def pad(items: list[Any], length: int) -> list[Any]:
    """The last ``length`` of ``items``, the oldest repeated in front when there are fewer."""
    items = items[-length:]
    if len(items) < length:
        items = [items[0]] * (length - len(items)) + items
    return items


class History:
    """Recent samples of one stream, sorted by stamp, for history windows."""

    __slots__ = ('stamps', 'items', 'backlogs', 'capacity')

    def __init__(self, capacity: int) -> None:
        self.stamps: list[int] = []
        self.items: list[Any] = []
        self.backlogs: list[int] = []
        self.capacity = capacity

    def add(self, stamp: int, item: Any, backlog: int = 0) -> None:
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
