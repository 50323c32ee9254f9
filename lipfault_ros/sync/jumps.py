"""Backwards time jumps on several input streams, for a synchroniser that cannot take them.

message_filters' Python synchroniser keeps per-input queues keyed by stamp and trims the oldest
stamp when full: after a backwards jump (a bag loop, a simulator restart) every new message is
the oldest and is thrown away at once, so it never matches again. The only cure is a fresh
synchroniser. :class:`JumpWatch` decides when: a stamp more than ``jump_ns`` behind the newest
of its input is a jump (rebuild); after a jump the *other* inputs still deliver a few messages
of the old timeline (in flight at the jump), which must be dropped, or they would fill the new
queues with stamps that never match, until each input's first stamp of the new timeline,
which belongs to the same jump and is not a new one. ROS-free; the message_filters backend
(:mod:`lipfault_ros.nodes.pipeline_mf`) acts on its answers.
"""

from __future__ import annotations

import enum
from typing import Hashable

__all__ = ['Jump', 'JumpWatch']


class Jump(str, enum.Enum):
    """What to do with one message."""

    KEEP = 'keep'      # pass it on
    DROP = 'drop'      # the old timeline, still in flight after a jump
    RESET = 'reset'    # a backwards jump: rebuild, then pass it on


class JumpWatch:
    """Per-input newest stamps (integer ns) and the inputs yet to follow the last jump."""

    def __init__(self, jump_ns: int) -> None:
        self.jump_ns = int(jump_ns)
        #: backwards jumps seen
        self.resets = 0
        self._last: dict[Hashable, int] = {}
        self._pending: set[Hashable] = set()

    def follow(self, stream: Hashable, stamp_ns: int) -> Jump:
        """Record ``stamp_ns`` of ``stream`` and say what to do with its message."""
        last = self._last.get(stream)
        if last is None:
            self._last[stream] = stamp_ns
            return Jump.KEEP
        if stream in self._pending:
            if stamp_ns >= last - self.jump_ns:
                return Jump.DROP
            self._pending.discard(stream)
            self._last[stream] = stamp_ns
            return Jump.KEEP
        if stamp_ns < last - self.jump_ns:
            self.resets += 1
            self._pending = {s for s in self._last if s != stream}
            self._last[stream] = stamp_ns
            return Jump.RESET
        self._last[stream] = max(last, stamp_ns)
        return Jump.KEEP

    def behind_s(self, stream: Hashable, stamp_ns: int) -> float:
        """How far (s) ``stamp_ns`` is behind the newest stamp seen of ``stream``."""
        return (self._last.get(stream, stamp_ns) - stamp_ns) / 1e9
