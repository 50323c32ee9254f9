"""Header-stamp order from receive order: the bounded reorder buffer of
:meth:`~lipfault_ros.bags.reader.bag.BagReader.samples` (see that module's docstring)."""

from __future__ import annotations

from bisect import insort
from typing import Any

__all__ = ['StampReorder']


class StampReorder:
    """Releases items in stamp order, each once a stamp ``reorder_ns`` newer has been pushed or
    when more than ``max_buffer`` are held. An item older than the last one released is dropped
    as late (``stats['dropped_late']``), or, when it lies more than ``jump_ns`` back, taken as a
    time jump (``stats['time_jumps']``): everything held is released and ordering starts over.

    Held items are (stamp, seq, item), sorted, from index ``head`` on: an item not older than
    the newest held is appended (the usual case), an older one is inserted by bisection; items
    leave from the head. Seq is unique, so items are never compared, and equal stamps keep their
    arrival order.
    """

    def __init__(self, reorder_ns: int, max_buffer: int, jump_ns: int,
                 stats: dict[str, int]) -> None:
        self.reorder_ns, self.max_buffer, self.jump_ns = reorder_ns, max_buffer, jump_ns
        self.stats = stats
        self._held: list[tuple[int, int, Any]] = []
        self._head = 0
        self._newest: int | None = None  # newest stamp seen since the last flush
        self._released: int | None = None  # stamp of the last item released
        self._seq = 0

    def push(self, stamp: int, item: Any) -> list[Any]:
        """Take ``item`` stamped ``stamp``; the items it releases, in stamp order."""
        out: list[Any] = []
        if self._released is not None and stamp < self._released:
            if self._released - stamp <= self.jump_ns:
                self.stats['dropped_late'] += 1
                return out
            # time went backwards (reset, loop): release what is held and start over
            self.stats['time_jumps'] += 1
            out = self.flush()
        held = self._held
        self._seq += 1
        if self._newest is None or stamp > self._newest:
            self._newest = stamp
        if self._head == len(held) or stamp >= held[-1][0]:
            held.append((stamp, self._seq, item))
        else:
            insort(held, (stamp, self._seq, item), self._head)
        limit = self._newest - self.reorder_ns
        head = self._head
        while head < len(held):
            stamp_out, _, ready = held[head]
            if stamp_out > limit and len(held) - head <= self.max_buffer:
                break
            head += 1
            self._released = stamp_out
            out.append(ready)
        if head >= 256:
            del held[:head]
            head = 0
        self._head = head
        return out

    def flush(self) -> list[Any]:
        """Everything still held, in stamp order; the next push starts afresh."""
        out = [entry[2] for entry in self._held[self._head:]]
        self._held, self._head = [], 0
        self._released = self._newest = None
        return out
