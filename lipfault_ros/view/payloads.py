"""ROS messages -> what the live view sends to Foxglove, without a ROS runtime or Foxglove.

Like :mod:`lipfault_ros.codec`, the functions read message *fields* only, so they take rclpy
messages on the live path and ``rosbags`` messages in tests alike, and they import neither rclpy
nor ``foxglove``: the conversion is tested on its own, and the Foxglove side
(:mod:`lipfault_ros.view.server`) only wraps the results.

- Images become an :class:`ImageFrame` (the fields of Foxglove's ``foxglove.RawImage``): the
  wire bytes pass through untouched in every encoding Foxglove draws; big-endian 16/32-bit
  pixels are turned little-endian (Foxglove reads them so).
- Wrench, joint states and the per-tuple fault status become JSON objects (described by the JSON
  schemas in :data:`SCHEMAS`), shaped for Foxglove's Plot panel: ``/wrench/raw.force.x``,
  ``/joints/corrected.position.panda_joint1``, ``/fault_status.camera.score``. Joint values
  are keyed by joint name, so a plot follows its joint whatever the message order.
- JSON has no NaN: a value that is not finite is ``null`` (Foxglove leaves a gap in a plot).

Timestamps are the header stamps, as ``{"sec", "nsec"}`` (Foxglove's own time layout), and
integer nanoseconds in :class:`ImageFrame`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, Mapping

from lipfault_ros import codec
from lipfault_ros.alarm import AlarmState
from lipfault_ros.errors import InputError
from lipfault_ros.tuples import MODALITIES

__all__ = ['ALARM_LEVELS', 'Channel', 'FOXGLOVE_ENCODINGS', 'ImageFrame', 'Kind', 'SCHEMAS',
           'RateGate', 'image_frame', 'joints_payload', 'status_payload', 'wrench_payload']

#: Raw-image encodings Foxglove's Image panel draws (``foxglove.RawImage``); others are refused.
FOXGLOVE_ENCODINGS: frozenset[str] = frozenset({
    'rgb8', 'rgba8', 'bgr8', '8UC3', 'bgra8', 'mono8', '8UC1', 'mono16', '16UC1', '32FC1',
    'yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv', 'nv12',
    'bayer_rggb8', 'bayer_bggr8', 'bayer_gbrg8', 'bayer_grbg8'})
#: The alarm lifecycle as a number a plot can draw (``alarm_level`` beside ``alarm``).
ALARM_LEVELS: Mapping[str, int] = {AlarmState.CLEAR.value: 0, AlarmState.RAISED.value: 1,
                                   AlarmState.LATCHED.value: 2}


class Kind(str, enum.Enum):
    """What a channel carries, hence its schema."""

    IMAGE = 'image'
    WRENCH = 'wrench'
    JOINTS = 'joints'
    STATUS = 'status'


class Channel(str, enum.Enum):
    """The view's Foxglove channels; the value is the Foxglove topic."""

    CAMERA_RAW = '/camera/raw'
    CAMERA_CORRECTED = '/camera/corrected'
    WRENCH_RAW = '/wrench/raw'
    WRENCH_CORRECTED = '/wrench/corrected'
    JOINTS_RAW = '/joints/raw'
    JOINTS_CORRECTED = '/joints/corrected'
    FAULT_STATUS = '/fault_status'

    @property
    def kind(self) -> Kind:
        return {'camera': Kind.IMAGE, 'wrench': Kind.WRENCH, 'joints': Kind.JOINTS,
                'fault_status': Kind.STATUS}[self.value.split('/')[1]]


@dataclass(frozen=True)
class ImageFrame:
    """One image as ``foxglove.RawImage`` has it: ``data`` is ``height`` rows of ``step`` bytes
    in ``encoding`` (little-endian); ``stamp_ns`` the header stamp in integer nanoseconds."""

    stamp_ns: int
    frame_id: str
    width: int
    height: int
    encoding: str
    step: int
    data: bytes


def _stamp(msg: Any) -> tuple[int, str, dict[str, int]]:
    stamp_ns, frame_id = codec.header_of(msg)
    return stamp_ns, frame_id, {'sec': stamp_ns // 1_000_000_000,
                                'nsec': stamp_ns % 1_000_000_000}


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def image_frame(msg: Any) -> ImageFrame:
    """A ``sensor_msgs/Image`` as an :class:`ImageFrame`; InputError (naming the encoding or
    the sizes) for an encoding Foxglove cannot draw or data shorter than ``height * step``."""
    stamp_ns, frame_id, _ = _stamp(msg)
    encoding = str(msg.encoding)
    if encoding not in FOXGLOVE_ENCODINGS:
        raise InputError(f'image encoding {encoding!r} cannot be shown; Foxglove draws '
                         f'{", ".join(sorted(FOXGLOVE_ENCODINGS))}')
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    data = bytes(msg.data)
    if height <= 0 or width <= 0 or step <= 0:
        raise InputError(f'image has no pixels ({height}x{width}, step {step})')
    if len(data) < height * step:
        raise InputError(f'image data has {len(data)} bytes, a {height}x{width} {encoding} '
                         f'image with step {step} needs {height * step}')
    wide = encoding in codec.ENCODINGS and codec.ENCODINGS[encoding][1].itemsize > 1
    if wide and bool(msg.is_bigendian):
        native = codec.decode_image_native(encoding, height, width, step, True, data)
        little = native.astype(native.dtype.newbyteorder('<'), copy=False)
        data, step = little.tobytes(), width * native.shape[2] * native.dtype.itemsize
    return ImageFrame(stamp_ns, frame_id, width, height, encoding, step, data[:height * step])


def wrench_payload(msg: Any) -> dict[str, Any]:
    """A ``geometry_msgs/WrenchStamped`` as JSON: ``force``/``torque`` ``{x, y, z}`` (N, Nm)."""
    _, frame_id, stamp = _stamp(msg)
    w = msg.wrench
    return {'timestamp': stamp, 'frame_id': frame_id,
            'force': {a: _finite(getattr(w.force, a)) for a in 'xyz'},
            'torque': {a: _finite(getattr(w.torque, a)) for a in 'xyz'}}


def joints_payload(msg: Any) -> dict[str, Any]:
    """A ``sensor_msgs/JointState`` as JSON: ``position``/``velocity``/``effort`` keyed by joint
    name (a field the message leaves empty is ``{}``); InputError when a filled field's length
    differs from the names'."""
    _, frame_id, stamp = _stamp(msg)
    names = [str(n) for n in msg.name]
    out: dict[str, Any] = {'timestamp': stamp, 'frame_id': frame_id, 'name': names}
    for field in ('position', 'velocity', 'effort'):
        values = list(getattr(msg, field))
        if values and len(values) != len(names):
            raise InputError(f'joint states have {len(names)} names but {len(values)} '
                             f'{field} values')
        out[field] = {n: _finite(v) for n, v in zip(names, values)}
    return out


def _typed(text: str) -> Any:
    """A diagnostic value back in its type: true/false, integers, floats (non-finite: None)."""
    if text in ('true', 'false'):
        return text == 'true'
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return _finite(text)
    except ValueError:
        return text


def status_payload(msg: Any) -> dict[str, Any]:
    """The pipeline's ``~/fault_status`` (``diagnostic_msgs/DiagnosticArray``, one status per
    modality) as JSON: per status name its ``level`` (0 OK .. 3 STALE), ``message`` and every
    value in its type, plus ``alarm_level`` (:data:`ALARM_LEVELS`) and ``margin`` (score minus
    threshold: over 0, this tuple alone is over the threshold)."""
    _, _, stamp = _stamp(msg)
    out: dict[str, Any] = {'timestamp': stamp}
    for status in msg.status:
        level = status.level
        entry: dict[str, Any] = {'level': level[0] if isinstance(level, (bytes, bytearray))
                                 else int(level), 'message': str(status.message)}
        entry.update((str(kv.key), _typed(str(kv.value))) for kv in status.values)
        if isinstance(entry.get('alarm'), str):
            entry['alarm_level'] = ALARM_LEVELS.get(entry['alarm'])
        score, threshold = entry.get('score'), entry.get('threshold')
        if isinstance(score, (int, float)) and isinstance(threshold, (int, float)):
            entry['margin'] = float(score) - float(threshold)
        out[str(status.name)] = entry
    return out


_NUMBER = {'type': ['number', 'null']}
_TIME = {'type': 'object', 'properties': {'sec': {'type': 'integer'},
                                          'nsec': {'type': 'integer'}}}
_VECTOR = {'type': 'object', 'properties': {a: _NUMBER for a in 'xyz'}}
_BY_JOINT = {'type': 'object', 'additionalProperties': _NUMBER}
_MODALITY_STATUS = {'type': 'object', 'properties': {
    'level': {'type': 'integer'}, 'message': {'type': 'string'}, 'score': _NUMBER,
    'threshold': _NUMBER, 'margin': _NUMBER, 'fault': {'type': 'boolean'},
    'alarm': {'type': 'string', 'enum': list(ALARM_LEVELS)}, 'alarm_level': {'type': 'integer'},
    'active': {'type': 'boolean'}, 'alarm_onset_ns': {'type': 'integer'},
    'alarm_duration_s': _NUMBER, 'alarm_count': {'type': 'integer'},
    'missing': {'type': 'boolean'}, 'corrected': {'type': 'boolean'},
    'bypassed': {'type': 'boolean'}, 'latency_ms': _NUMBER}}

#: (schema name, JSON schema) of each JSON kind; images use Foxglove's ``foxglove.RawImage``.
SCHEMAS: Mapping[Kind, tuple[str, dict[str, Any]]] = {
    Kind.WRENCH: ('lipfault.Wrench', {'type': 'object', 'properties': {
        'timestamp': _TIME, 'frame_id': {'type': 'string'}, 'force': _VECTOR,
        'torque': _VECTOR}}),
    Kind.JOINTS: ('lipfault.JointState', {'type': 'object', 'properties': {
        'timestamp': _TIME, 'frame_id': {'type': 'string'},
        'name': {'type': 'array', 'items': {'type': 'string'}},
        'position': _BY_JOINT, 'velocity': _BY_JOINT, 'effort': _BY_JOINT}}),
    Kind.STATUS: ('lipfault.FaultStatus', {'type': 'object', 'properties': {
        'timestamp': _TIME, **{m.value: _MODALITY_STATUS for m in MODALITIES}}}),
}


class RateGate:
    """At most ``rate_hz`` messages per second pass (0: all), by the caller's clock in integer
    nanoseconds: what a plot or an image panel needs, without converting every 500 Hz sample."""

    def __init__(self, rate_hz: float) -> None:
        if not rate_hz >= 0.0:
            raise InputError(f'rate must be >= 0 Hz, got {rate_hz}')
        self._period_ns = int(1e9 / rate_hz) if rate_hz > 0 else 0
        self._next_ns: int | None = None

    def due(self, now_ns: int) -> bool:
        """Whether a message arriving at ``now_ns`` passes (and, if so, counts as sent)."""
        if self._next_ns is not None and now_ns < self._next_ns:
            return False
        if self._next_ns is None or now_ns - self._next_ns >= self._period_ns:
            self._next_ns = now_ns + self._period_ns  # first message, or after a pause
        else:
            self._next_ns += self._period_ns  # on the grid: the mean rate holds under jitter
        return True
