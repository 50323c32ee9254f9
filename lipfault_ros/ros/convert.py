"""ROS messages <-> NumPy and samples, for the nodes.

Decoding is the ROS-free :mod:`lipfault_ros.codec` (it works on rclpy and rosbags messages
alike). ``cv_bridge`` is optional: when it is importable it only widens the set of input
encodings the codec does not know (Bayer, YUV ...); it is never required, because it breaks with
NumPy 2 on several distributions. Builders here make the outgoing messages: the corrected image
in the input's encoding where that encoding can be written, WrenchStamped, JointState and
DiagnosticArray, each with the header given (the input tuple's stamp and frame).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import WrenchStamped
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header

from lipfault_ros import codec
from lipfault_ros.errors import InputError
from lipfault_ros.tuples import ImageSample, Modality, Sample

__all__ = [
    'OK', 'WARN', 'ERROR', 'STALE',
    'diagnostic_array',
    'diagnostic_status',
    'header',
    'image_msg',
    'joint_state_msg',
    'level_of',
    'sample_from_msg',
    'to_time',
    'wrench_msg',
]


OK, WARN, ERROR, STALE = (bytes([i]) for i in range(4))

try:  # optional, see module doc
    from cv_bridge import CvBridge as _CvBridge  # type: ignore[import-not-found]
except Exception:  # noqa: BLE001 - cv_bridge fails in several ways when NumPy 2 is present
    _CvBridge = None
_bridge = None


def to_time(stamp_ns: int) -> Time:
    """Integer nanoseconds -> ``builtin_interfaces/Time``."""
    stamp_ns = int(stamp_ns)
    return Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)


def header(stamp_ns: int, frame_id: str) -> Header:
    """A ``std_msgs/Header`` with the given stamp (ns) and frame."""
    return Header(stamp=to_time(stamp_ns), frame_id=str(frame_id))


def _image_sample_via_bridge(msg: Image) -> ImageSample:
    global _bridge
    if _bridge is None:
        _bridge = _CvBridge()
    try:
        image = np.asarray(_bridge.imgmsg_to_cv2(msg, desired_encoding='rgb8'), np.uint8)
    except Exception as exc:  # noqa: BLE001 - cv_bridge raises its own and cv2 errors
        raise InputError(f'unsupported image encoding {msg.encoding!r} ({exc})') from None
    stamp, frame = codec.header_of(msg)
    return ImageSample(stamp, frame, image)


def sample_from_msg(modality: Modality, msg: Any) -> Sample:
    """Decode one incoming message of ``modality``; raises InputError when it cannot."""
    if modality is Modality.CAMERA:
        if msg.encoding not in codec.ENCODINGS and _CvBridge is not None:
            return _image_sample_via_bridge(msg)
        return codec.image_sample(msg)
    if modality is Modality.WRENCH:
        return codec.wrench_sample(msg)
    return codec.joint_sample(msg)


def image_msg(image: np.ndarray, hdr: Header, encoding: str = 'rgb8') -> Image:
    """An Image of ``image`` ((H, W, 3) uint8 RGB) in ``encoding`` (rgb8 when the codec cannot
    write that encoding)."""
    if encoding not in codec.ENCODINGS:
        encoding = 'rgb8'
    step, data = codec.encode_image(image, encoding)
    msg = Image(header=hdr, height=int(image.shape[0]), width=int(image.shape[1]),
                encoding=encoding, is_bigendian=0, step=step)
    msg.data = data
    return msg


def wrench_msg(values: np.ndarray, hdr: Header) -> WrenchStamped:
    """A WrenchStamped from (6,) [fx, fy, fz, tx, ty, tz]."""
    v = [float(x) for x in np.asarray(values, np.float64).reshape(6)]
    msg = WrenchStamped(header=hdr)
    f, t = msg.wrench.force, msg.wrench.torque
    f.x, f.y, f.z, t.x, t.y, t.z = v
    return msg


def joint_state_msg(names: Sequence[str], position: np.ndarray, velocity: np.ndarray,
                    effort: np.ndarray, hdr: Header) -> JointState:
    """A JointState with the given names (the model's joint order) and (J,) arrays."""
    msg = JointState(header=hdr, name=[str(n) for n in names])
    msg.position = np.asarray(position, np.float64).tolist()
    msg.velocity = np.asarray(velocity, np.float64).tolist()
    msg.effort = np.asarray(effort, np.float64).tolist()
    return msg


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, float):
        return f'{value:.6g}'
    return str(value)


def diagnostic_status(name: str, level: bytes, message: str, *, hardware_id: str = '',
                      values: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()
                      ) -> DiagnosticStatus:
    """A DiagnosticStatus with string KeyValues (bools as ``true``/``false``)."""
    items = values.items() if isinstance(values, Mapping) else values
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=str(k), value=_text(v)) for k, v in items])


def diagnostic_array(stamp_ns: int, statuses: Sequence[DiagnosticStatus]) -> DiagnosticArray:
    """A DiagnosticArray stamped ``stamp_ns`` (no frame, as diagnostics conventionally have)."""
    return DiagnosticArray(header=header(stamp_ns, ''), status=list(statuses))


def level_of(fault: bool, missing: bool) -> bytes:
    """Per-modality level: a missing modality is ERROR, a detected fault WARN, else OK."""
    return ERROR if missing else (WARN if fault else OK)

