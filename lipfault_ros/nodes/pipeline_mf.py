"""The ``sync_backend: message_filters`` input side: message_filters picks each tuple's partners
and gives its history windows, the node only decodes, watches for time jumps and converts.

Each input message is decoded once on arrival (bad input is counted as with the builtin
backend) and passed on as a :class:`Decoded` (its header plus the sample), so message_filters
sees the stamps it always sees while nothing is converted twice. The chain per build is::

    camera  --------------------------------\\
    wrench  -> Cache(window + queue) --------> ApproximateTimeSynchronizer -> tuple
    joints  -> Cache(window + queue) -------/

A triple from the synchroniser is the tuple's (image, wrench, joints); each Cache gives the
last ``window`` samples up to its partner's stamp; :meth:`TupleAssembler.build
<lipfault_ros.sync.TupleAssembler.build>` makes the SensorTuple, as the builtin backend does.

message_filters' Python synchroniser stalls for good after a backwards time jump; a
:class:`~lipfault_ros.sync.jumps.JumpWatch` says when to rebuild the synchroniser and the caches
(the subscriptions stay); each jump is counted once and logged.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, NamedTuple

from rclpy.time import Time

from lipfault_ros.nodes.pipeline_inputs import INPUT_TYPES, decode
from lipfault_ros.ros import convert
from lipfault_ros.sync.config import NS, Headerless
from lipfault_ros.sync.jumps import Jump, JumpWatch
from lipfault_ros.tuples import MODALITIES, Modality, Sample

__all__ = ['Decoded', 'MessageFiltersInputs']


class Decoded(NamedTuple):
    """What message_filters is fed: a header (``header.stamp`` is all it reads) and the
    decoded sample (stamps in integer ns)."""

    header: Any
    sample: Sample


class MessageFiltersInputs:
    """Subscriptions, Caches and synchroniser of one activation of a pipeline node.

    ``node`` is the :class:`~lipfault_ros.nodes.pipeline.PipelineNode` (its parameters ``p``,
    ``assembler``, ``blackbox_tap`` and ``hand_over``); ``qos`` the input profile.
    ``subscribers`` are the message_filters Subscribers, one per modality in
    :data:`~lipfault_ros.tuples.MODALITIES` order (a caller may register more callbacks).
    """

    def __init__(self, node: Any, qos: Any) -> None:
        import message_filters

        self._mf = message_filters
        self._node = node
        p = node.p
        cfg = p.sync_config(node.engine.wrench_window, node.engine.joints_window)
        self._queue = max(cfg.queue_size(m) for m in MODALITIES)
        self._window = {Modality.WRENCH: cfg.wrench_window, Modality.JOINTS: cfg.joints_window}
        self._slop = p.slop
        self._jumps = JumpWatch(int(round(p.jump_back * NS)))
        self._arrival = 0
        self.subscribers = [message_filters.Subscriber(node, INPUT_TYPES[m], p.topic(m),
                                                 qos_profile=qos,
                                                 callback_group=node.input_group)
                      for m in MODALITIES]
        for m, sub in zip(MODALITIES, self.subscribers):
            sub.registerCallback(lambda msg, m=m: self._on_msg(m, msg))
        self._build()

    @property
    def resets(self) -> int:
        """Backwards jumps seen (each rebuilt the synchroniser and caches)."""
        return self._jumps.resets

    @property
    def subscriptions(self) -> list[Any]:
        """The rclpy subscriptions (for the node to destroy)."""
        return [s.sub for s in self.subscribers]

    def set_slop(self, slop: float) -> None:
        """The synchroniser's tolerance (s) from its next search on; a rebuild after a jump
        keeps it."""
        from rclpy.duration import Duration

        self._slop = float(slop)
        self.sync.slop = Duration(seconds=self._slop)  # read by every search

    def _build(self) -> None:
        """A fresh chain: relays the node feeds, a Cache per signal, the synchroniser (options
        by keyword: the positional order differs between Humble/Jazzy and Kilted)."""
        mf = self._mf
        self._relays = {m: mf.SimpleFilter() for m in MODALITIES}
        self.caches = {m: mf.Cache(self._relays[m],
                                   cache_size=self._window[m] + 2 * self._queue)
                       for m in (Modality.WRENCH, Modality.JOINTS)}
        self.sync = mf.ApproximateTimeSynchronizer(
            [self._relays[Modality.CAMERA], self.caches[Modality.WRENCH],
             self.caches[Modality.JOINTS]], queue_size=self._queue, slop=self._slop)
        self.sync.registerCallback(self._on_triple)

    def _on_msg(self, modality: Modality, msg: Any) -> None:
        node = self._node
        if (bb := node.blackbox_tap) is not None:
            bb.input(node.input_topics[modality], msg)
        sample = decode(node, modality, msg)
        if sample is None:
            return
        header = msg.header
        if sample.stamp_ns <= 0:  # headerless: stamped with the node's clock, or dropped
            if node.p.headerless != Headerless.ARRIVAL.value:
                return
            stamp = node.get_clock().now().nanoseconds
            sample = dataclasses.replace(sample, stamp_ns=stamp)
            header = convert.header(stamp, sample.frame_id)
        behind = self._jumps.behind_s(modality, sample.stamp_ns)
        verdict = self._jumps.follow(modality, sample.stamp_ns)
        if verdict is Jump.DROP:
            return
        if verdict is Jump.RESET:
            node.get_logger().warning(
                f'{modality} stamps jumped back by {behind:.3f} s: message_filters '
                f'synchroniser and caches rebuilt (reset {self.resets})')
            self._build()
        self._arrival = time.monotonic_ns()
        self._relays[modality].signalMessage(Decoded(header, sample))

    def window(self, modality: Modality, partner: Decoded) -> list[Any]:
        """The last ``window`` samples of ``modality`` up to ``partner``'s stamp, oldest first,
        from its Cache: what ``getInterval(oldest, partner stamp)`` answers, read off the
        Cache's messages on the integer stamps, since ``getInterval`` compares rclpy ``Time``
        objects (about 5 ms per query of a 90-message cache on a 2-core CPU, twice a tuple)."""
        cache = self.caches[modality]
        msgs = getattr(cache, 'cache_msgs', None)
        if msgs is None:  # a message_filters without the attribute: its own query
            oldest = cache.getOldestTime()
            end = Time.from_msg(partner.header.stamp)
            msgs = cache.getInterval(oldest, end) if oldest is not None and oldest <= end else []
        end_ns = partner.sample.stamp_ns
        return [d.sample for d in msgs if d.sample.stamp_ns <= end_ns][-self._window[modality]:]

    def _on_triple(self, image: Decoded, wrench: Decoded, joints: Decoded) -> None:
        node = self._node
        if node.assembler is None:
            return
        t = node.assembler.build(image.sample, self.window(Modality.WRENCH, wrench),
                            self.window(Modality.JOINTS, joints))
        node.hand_over([t], self._arrival)

