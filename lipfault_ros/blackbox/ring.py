"""A ring buffer of serialised messages, bounded by age and by bytes (not thread-safe)."""

from __future__ import annotations

import collections
from typing import Iterator

from lipfault_ros.blackbox.config import Record

__all__ = ['RingBuffer']


class RingBuffer:
    """Records in arrival order; :meth:`trim` drops the oldest.

    Arrival order is taken as time order: receive times come from one clock read at append, so
    they only go backwards when the system clock is stepped, and then a window is cut a little
    short or long rather than reordered.
    """

    def __init__(self) -> None:
        self._items: collections.deque[Record] = collections.deque()
        self.nbytes = 0
        #: receive time of the newest record dropped for the byte bound (0: none yet); a window
        #: that starts at or before it has lost messages
        self.dropped_until_ns = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Record]:
        return iter(self._items)

    def append(self, record: Record) -> None:
        self._items.append(record)
        self.nbytes += len(record.data)

    def trim(self, keep_from_ns: int, max_bytes: int) -> None:
        """Drop records received before ``keep_from_ns``, then the oldest until at most
        ``max_bytes`` are held (the newest record is dropped too if it alone is over)."""
        items = self._items
        while items and items[0].receive_ns < keep_from_ns:
            self.nbytes -= len(items.popleft().data)
        while items and self.nbytes > max_bytes:
            old = items.popleft()
            self.nbytes -= len(old.data)
            self.dropped += 1
            self.dropped_until_ns = max(self.dropped_until_ns, old.receive_ns)

    def between(self, start_ns: int, end_ns: int) -> list[Record]:
        """The records received in ``[start_ns, end_ns]``, oldest first (the bytes are shared,
        not copied)."""
        return [r for r in self._items if start_ns <= r.receive_ns <= end_ns]

    @property
    def newest_ns(self) -> int | None:
        return self._items[-1].receive_ns if self._items else None
