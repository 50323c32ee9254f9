"""The pipeline's black box wiring: what the node records, and the status it reports.

Inputs are serialised in their subscription callback with ``rclpy.serialization.
serialize_message`` (5-10 us for a wrench or joint message, ~8 us for a 128x128 image, measured
on the 2-core machine; a second, raw subscription per topic would cost a whole executor callback
per message instead). Outputs cost nothing extra: each is serialised once, recorded, and
published as those bytes. The bag topics are the resolved names (``/camera/image_raw``,
``/lipfault_pipeline/wrench_corrected``), so ``lipfault replay`` finds the inputs in it.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.serialization import serialize_message

from lipfault_ros.alarm import AlarmStatus
from lipfault_ros.blackbox import BlackBox, BlackBoxConfig, BlackBoxStatus, RaiseDetector
from lipfault_ros.ros import convert
from lipfault_ros.tuples import Modality

__all__ = ['BlackBoxTap', 'blackbox_diagnostic']


def _type_name(msg: Any) -> str:
    """'sensor_msgs/msg/Image' for a sensor_msgs.msg.Image."""
    return f'{type(msg).__module__.split(".")[0]}/msg/{type(msg).__name__}'


class BlackBoxTap:
    """One :class:`~lipfault_ros.blackbox.BlackBox` fed by the node (open on activate, closed
    on deactivate)."""

    def __init__(self, config: BlackBoxConfig) -> None:
        self.box = BlackBox(config)
        self._detector = RaiseDetector()
        self._types: dict[type, str] = {}

    def open(self) -> BlackBoxTap:
        self.box.open()
        return self

    def close(self) -> None:
        self.box.close()

    def _record(self, topic: str, msg: Any, data: bytes) -> None:
        kind = self._types.get(type(msg))
        if kind is None:
            kind = self._types[type(msg)] = _type_name(msg)
        self.box.record(topic, kind, data, time.time_ns())

    def input(self, topic: str, msg: Any) -> None:
        """A received message on ``topic`` (resolved name)."""
        self._record(topic, msg, serialize_message(msg))

    def publish(self, pub: Any, msg: Any) -> None:
        """Record ``msg`` and publish it on ``pub`` as the same bytes."""
        data = serialize_message(msg)
        self._record(pub.topic_name, msg, data)
        pub.publish(data)

    def alarms(self, alarms: Mapping[Modality, AlarmStatus]) -> None:
        """After each tuple: a capture for every alarm it newly raised."""
        for m, onset in self._detector.new_raises(dict(alarms)):
            self.box.trigger(m, onset)


def blackbox_diagnostic(name: str, status: BlackBoxStatus, *, hardware_id: str
                        ) -> DiagnosticStatus:
    """The ``/diagnostics`` status of the black box: ERROR when the last bag failed or the
    folder is unusable, WARN when a bag lost the start of its window to the memory bound."""
    if status.error:
        level, message = convert.ERROR, status.error
    elif status.truncated:
        level, message = convert.WARN, (f'{status.truncated} bag(s) truncated by '
                                        f'blackbox_max_memory_mb')
    else:
        level = convert.OK
        message = (f'{status.bags_written} bag(s) written' + (f', capturing {status.capturing}'
                                                              if status.capturing else ''))
    return convert.diagnostic_status(name, level, message, hardware_id=hardware_id, values={
        'directory': status.directory, 'bags_written': status.bags_written,
        'last_bag': status.last_bag, 'bytes_held': status.bytes_held,
        'messages_held': status.messages_held, 'capturing': status.capturing,
        'pending': status.pending, 'truncated': status.truncated, 'deleted': status.deleted,
        'disk_bytes': status.disk_bytes, 'errors': status.errors, 'error': status.error})
