"""One stream's recent samples, sorted by stamp, and the fixed-length windows cut from them:
the history each tuple carries (both synchroniser backends cut their windows the same way)."""

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
        return pad(self.items[max(0, k - length):k], length)

    def clear(self) -> None:
        self.stamps.clear()
        self.items.clear()
