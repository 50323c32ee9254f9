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
Non-finite values are passed through untouched: the model scores them as a fault. Live, each
window also says how far behind its input the pipeline was while receiving it (the *backlog*,
:meth:`TupleAssembler.push`), so a message the pipeline lost itself is not taken for one the
sensor lost.

Modules: :mod:`~.config` (settings), :mod:`~.matcher` (:class:`ApproximateTimeSync`),
:mod:`~.assembler` (:class:`TupleAssembler`, :func:`assemble`).
"""

from lipfault_ros.sync.assembler import SyncStats, TupleAssembler, assemble
from lipfault_ros.sync.config import Headerless, SyncConfig
from lipfault_ros.sync.matcher import ApproximateTimeSync, Match

__all__ = [
    'ApproximateTimeSync',
    'Headerless',
    'Match',
    'SyncConfig',
    'SyncStats',
    'TupleAssembler',
    'assemble',
]
