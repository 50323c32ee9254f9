"""The fault state as rviz markers on ``~/fault_markers`` (visualization_msgs/MarkerArray).

One text per modality, stacked above the frame origin, coloured by what the lifecycle says:
green ok, red fault (alarm raised), orange latched (the evidence cleared, the alarm holds until
``~/reset_faults``), grey missing. rviz shows it next to the raw and corrected images without
any plugin; the texts never expire, the node replaces them when a state changes.
"""

from __future__ import annotations

from typing import Mapping

from visualization_msgs.msg import Marker, MarkerArray

from lipfault_ros.alarm import AlarmState, AlarmStatus
from lipfault_ros.ros import convert
from lipfault_ros.tuples import MODALITIES, Modality

__all__ = ['COLOURS', 'MarkerGate', 'fault_markers', 'marker_state']

#: RGB per displayed state
COLOURS: Mapping[str, tuple[float, float, float]] = {
    'ok': (0.2, 0.8, 0.2), 'fault': (0.9, 0.15, 0.1), 'latched': (1.0, 0.6, 0.0),
    'missing': (0.6, 0.6, 0.6)}


def marker_state(alarm: AlarmStatus, missing: bool) -> str:
    """One of ``COLOURS``' keys for a modality."""
    if missing:
        return 'missing'
    if alarm.state is AlarmState.LATCHED:
        return 'latched'
    return 'fault' if alarm.active else 'ok'


def fault_markers(stamp_ns: int, frame_id: str, alarms: Mapping[Modality, AlarmStatus],
                  missing: Mapping[Modality, bool]) -> MarkerArray:
    """A text marker per modality (ids 0..2 in namespace ``lipfault``) at 1.0, 0.9, 0.8 m above
    ``frame_id``'s origin."""
    out = MarkerArray()
    for i, m in enumerate(MODALITIES):
        alarm = alarms.get(m, AlarmStatus())
        state = marker_state(alarm, bool(missing.get(m, False)))
        marker = Marker()
        marker.header = convert.header(stamp_ns, frame_id)
        marker.ns = 'lipfault'
        marker.id = i
        marker.type = Marker.TEXT_VIEW_FACING
        marker.action = Marker.ADD
        marker.pose.position.z = 1.0 - 0.1 * i
        marker.pose.orientation.w = 1.0
        marker.scale.z = 0.06  # text height (m)
        r, g, b = COLOURS[state]
        marker.color.r, marker.color.g, marker.color.b, marker.color.a = r, g, b, 1.0
        text = f'{m.value}: {state}'
        if state in ('fault', 'latched'):
            text += f' ({alarm.duration_s:.1f} s, #{alarm.count})'
        marker.text = text
        out.markers.append(marker)
    return out


class MarkerGate:
    """When the markers go out: whenever a displayed state changes, and at least every
    ``period_s`` otherwise (an rviz started late gets them too), never per tuple for nothing."""

    def __init__(self, period_s: float = 1.0) -> None:
        self._period_ns = int(round(period_s * 1e9))
        self._shown: tuple[str, ...] | None = None
        self._at_ns = 0

    def due(self, states: tuple[str, ...], now_ns: int) -> bool:
        """Whether to publish ``states`` (one per modality) at ``now_ns`` (a steady clock)."""
        if states == self._shown and now_ns - self._at_ns < self._period_ns:
            return False
        self._shown, self._at_ns = states, now_ns
        return True
