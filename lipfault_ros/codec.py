"""Sensor messages <-> NumPy, without a ROS runtime.

The functions here read message *fields* only (``header.stamp.sec``, ``encoding``, ``data``,
``wrench.force.x``, ``name`` ...), so the same code decodes rclpy messages on the live path and
``rosbags`` dataclass messages on the bag path: both use the ROS field names. Nothing here
imports rclpy or a message package.

Images come out as (H, W, 3) uint8 RGB, the form the model consumes, whatever the wire encoding
was. Supported encodings and how they map to RGB:

- ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``8UC3`` (taken as BGR, like cv_bridge): channel order
  fixed, alpha dropped.
- ``mono8``, ``8UC1``: replicated to three channels.
- ``mono16``, ``16UC1``: the high byte (``value >> 8``), replicated; a full-range linear map.
- ``32FC1``: values in [0, 1] scaled to [0, 255] (clipped; NaN becomes 0), replicated.

Row padding (``step`` larger than ``width * pixel size``) and ``is_bigendian`` are honoured.
Timestamps are integer nanoseconds.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from lipfault_ros.errors import InputError
from lipfault_ros.tuples import ImageSample, JointSample, WrenchSample, stamp_to_ns

__all__ = [
    'ENCODINGS',
    'decode_image',
    'decode_image_native',
    'encode_image',
    'header_of',
    'image_sample',
    'joint_sample',
    'joint_sample_cdr',
    'wrench_sample',
    'wrench_sample_cdr',
]


#: encoding -> (channels, numpy dtype of one channel). The keys are the encodings understood.
ENCODINGS: dict[str, tuple[int, np.dtype]] = {
    'rgb8': (3, np.dtype(np.uint8)),
    'bgr8': (3, np.dtype(np.uint8)),
    'rgba8': (4, np.dtype(np.uint8)),
    'bgra8': (4, np.dtype(np.uint8)),
    '8UC3': (3, np.dtype(np.uint8)),
    'mono8': (1, np.dtype(np.uint8)),
    '8UC1': (1, np.dtype(np.uint8)),
    'mono16': (1, np.dtype(np.uint16)),
    '16UC1': (1, np.dtype(np.uint16)),
    '32FC1': (1, np.dtype(np.float32)),
}


def header_of(msg: Any) -> tuple[int, str]:
    """``(stamp_ns, frame_id)`` of a message with a ``std_msgs/Header``."""
    header = msg.header
    return stamp_to_ns(header.stamp.sec, header.stamp.nanosec), str(header.frame_id)


def _buffer(data: Any) -> np.ndarray:
    """The message's byte payload as a flat uint8 view (no copy where the type allows)."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8) if data.dtype.itemsize == 1 else \
            np.frombuffer(data.tobytes(), np.uint8)
    try:
        return np.frombuffer(data, np.uint8)
    except TypeError:  # a list of ints
        return np.asarray(data, dtype=np.uint8)


def decode_image_native(encoding: str, height: int, width: int, step: int, is_bigendian: bool,
                        data: Any) -> np.ndarray:
    """The pixels as (H, W, C) in the encoding's own dtype and channel order (no conversion).

    Raises InputError for an unknown encoding, a ``step`` shorter than a row, or ``data``
    shorter than ``height * step``.
    """
    if encoding not in ENCODINGS:
        raise InputError(f'unsupported image encoding {encoding!r}; supported: '
                         f'{", ".join(ENCODINGS)}')
    channels, dtype = ENCODINGS[encoding]
    height, width, step = int(height), int(width), int(step)
    if height <= 0 or width <= 0:
        raise InputError(f'image has no pixels ({height}x{width}, encoding {encoding!r})')
    row = width * channels * dtype.itemsize
    if step < row:
        raise InputError(f'image step {step} is shorter than one row of {width} {encoding} '
                         f'pixels ({row} bytes)')
    buf = _buffer(data)
    need = (height - 1) * step + row
    if buf.size < need:
        raise InputError(f'image data has {buf.size} bytes, a {height}x{width} {encoding} image '
                         f'with step {step} needs {need}')
    if buf.size < height * step:  # last row not padded: legal enough, accept it
        buf = np.concatenate([buf, np.zeros(height * step - buf.size, np.uint8)])
    rows = buf[:height * step].reshape(height, step)
    pixels = rows[:, :row]
    wire = dtype.newbyteorder('>' if is_bigendian else '<') if dtype.itemsize > 1 else dtype
    if not pixels.flags.c_contiguous:
        pixels = np.ascontiguousarray(pixels)
    out = pixels.view(wire).reshape(height, width, channels)
    if dtype.itemsize > 1:
        out = out.astype(dtype.newbyteorder('='), copy=False)
    return out


def decode_image(encoding: str, height: int, width: int, step: int, is_bigendian: bool,
                 data: Any) -> np.ndarray:
    """Decode an Image message's fields to (H, W, 3) uint8 RGB (a fresh, writable array).

    See the module docstring for how each encoding maps to RGB. Raises InputError for an
    unknown encoding or data that does not fit ``height``, ``width`` and ``step``.
    """
    native = decode_image_native(encoding, height, width, step, is_bigendian, data)
    if encoding == 'rgb8':
        return native.copy()
    if encoding in ('bgr8', '8UC3'):
        return native[:, :, ::-1].copy()
    if encoding == 'rgba8':
        return native[:, :, :3].copy()
    if encoding == 'bgra8':
        return native[:, :, 2::-1].copy()
    if encoding in ('mono16', '16UC1'):
        mono = (native >> 8).astype(np.uint8)
    elif encoding == '32FC1':
        values = np.nan_to_num(native, nan=0.0, posinf=1.0, neginf=0.0)
        mono = np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
    else:  # mono8, 8UC1
        mono = native
    return np.repeat(mono, 3, axis=2)


def encode_image(image: np.ndarray, encoding: str) -> tuple[int, bytes]:
    """Encode an image as ``encoding``; returns ``(step, data)`` with no row padding.

    ``image`` is either (H, W, 3) uint8 RGB (the model's form: converted to the encoding by the
    inverse of :func:`decode_image`; mono encodings take the channel mean) or already an array in
    the encoding's own layout and dtype ((H, W) or (H, W, C)), which is written as is.
    Data is little-endian. Raises InputError for an unknown encoding or an unfit array.
    """
    if encoding not in ENCODINGS:
        raise InputError(f'unsupported image encoding {encoding!r}; supported: '
                         f'{", ".join(ENCODINGS)}')
    channels, dtype = ENCODINGS[encoding]
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise InputError(f'cannot encode an array of shape {image.shape} as {encoding}')
    rgb = image.shape[2] == 3 and image.dtype == np.uint8
    if image.dtype == dtype and image.shape[2] == channels and not (rgb and channels == 3
                                                                   and encoding != 'rgb8'):
        out = image
    elif rgb:
        if encoding in ('bgr8', '8UC3'):
            out = image[:, :, ::-1]
        elif encoding == 'rgba8':
            out = np.concatenate([image, np.full(image.shape[:2] + (1,), 255, np.uint8)], 2)
        elif encoding == 'bgra8':
            out = np.concatenate([image[:, :, ::-1],
                                  np.full(image.shape[:2] + (1,), 255, np.uint8)], 2)
        else:
            mono = image.astype(np.float32).mean(axis=2, keepdims=True)
            if encoding in ('mono8', '8UC1'):
                out = np.rint(mono).astype(np.uint8)
            elif encoding in ('mono16', '16UC1'):
                out = np.rint(mono).astype(np.uint16) * np.uint16(257)
            else:  # 32FC1
                out = mono / np.float32(255.0)
    else:
        raise InputError(f'cannot encode a {image.shape} {image.dtype} array as {encoding} '
                         f'(expected (H, W, 3) uint8 RGB or (H, W, {channels}) {dtype})')
    out = np.ascontiguousarray(out, dtype=dtype.newbyteorder('<') if dtype.itemsize > 1
                               else dtype)
    return out.shape[1] * channels * dtype.itemsize, out.tobytes()


def image_sample(msg: Any) -> ImageSample:
    """A ``sensor_msgs/Image`` (rclpy or rosbags) as an :class:`ImageSample` (RGB uint8)."""
    stamp, frame = header_of(msg)
    image = decode_image(str(msg.encoding), msg.height, msg.width, msg.step,
                         bool(msg.is_bigendian), msg.data)
    return ImageSample(stamp, frame, image)


def wrench_sample(msg: Any) -> WrenchSample:
    """A ``geometry_msgs/WrenchStamped`` as a :class:`WrenchSample`; NaN/Inf are kept as they
    are (the model scores non-finite input as a fault)."""
    header = msg.header
    wrench = msg.wrench
    f, t = wrench.force, wrench.torque
    values = np.array((f.x, f.y, f.z, t.x, t.y, t.z), np.float64)
    return WrenchSample(stamp_to_ns(header.stamp.sec, header.stamp.nanosec),
                        str(header.frame_id), values)


_TIME_LEN = struct.Struct('<iII')  # stamp sec, stamp nanosec, frame_id length (with its NUL)
_SIX_DOUBLES = struct.Struct('<6d')


def wrench_sample_cdr(rawdata: Any) -> WrenchSample | None:
    """A little-endian CDR serialised ``geometry_msgs/WrenchStamped`` (the standard definition)
    read straight into a :class:`WrenchSample`, the same one :func:`wrench_sample` makes of the
    deserialised message.

    Returns None for anything it does not read exactly as a full deserialiser would (another
    encapsulation, a bad string, a size mismatch): the caller then deserialises the message the
    ordinary way, which also reports damage.
    """
    try:
        data = memoryview(rawdata)
        if data.ndim != 1 or data.itemsize != 1 or bytes(data[:2]) != b'\x00\x01':
            return None
        data = data[4:]
        sec, nanosec, length = _TIME_LEN.unpack_from(data, 0)
        end = 12 + length
        if length < 1 or end > len(data) or data[end - 1] != 0:
            return None
        frame = bytes(data[12:end - 1]).decode()
        pos = (end + 7) & -8
        values = _SIX_DOUBLES.unpack_from(data, pos)
        if pos + 48 + 3 < len(data):
            return None
    except (struct.error, UnicodeDecodeError, ValueError, TypeError):
        return None
    return WrenchSample(stamp_to_ns(sec, nanosec), frame, np.array(values, np.float64))


def _field(values: Any, n: int, name: str, joint_names: tuple[str, ...]) -> np.ndarray:
    if type(values) is np.ndarray and values.dtype == np.float64 and values.ndim == 1 \
            and values.size == n and n:
        return values.copy()  # the common case (a rosbags float64 array), checked cheaply
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        return np.full(n, math.nan)
    if arr.size != n:
        raise InputError(f'joint_states {name} has {arr.size} values for {n} joint names '
                         f'{list(joint_names)}')
    return arr.copy()


def joint_sample(msg: Any) -> JointSample:
    """A ``sensor_msgs/JointState`` as a :class:`JointSample`, still keyed by name.

    An empty position/velocity/effort field becomes all-NaN; a field whose length differs from
    ``name`` raises InputError (it cannot be matched by name). Duplicate names raise too.
    """
    stamp, frame = header_of(msg)
    return _joint_sample(stamp, frame, tuple(map(str, msg.name)), msg.position, msg.velocity,
                         msg.effort)


def _joint_sample(stamp: int, frame: str, names: tuple[str, ...], position: Any, velocity: Any,
                  effort: Any) -> JointSample:
    if len(set(names)) != len(names):
        raise InputError(f'joint_states has duplicate joint names {list(names)}')
    n = len(names)
    return JointSample(stamp, frame, names, _field(position, n, 'position', names),
                       _field(velocity, n, 'velocity', names),
                       _field(effort, n, 'effort', names))


_U32 = struct.Struct('<I')


def joint_sample_cdr(rawdata: Any) -> JointSample | None:
    """A little-endian CDR serialised ``sensor_msgs/JointState`` (the standard definition) read
    straight into the :class:`JointSample` :func:`joint_sample` makes of the deserialised
    message (raising the same InputError where that does).

    Returns None for anything it does not read exactly as a full deserialiser would; the caller
    then deserialises the message the ordinary way, which also reports damage.
    """
    try:
        data = memoryview(rawdata)
        if data.ndim != 1 or data.itemsize != 1 or bytes(data[:2]) != b'\x00\x01':
            return None
        data = data[4:]
        size = len(data)
        sec, nanosec, length = _TIME_LEN.unpack_from(data, 0)
        end = 12 + length
        if length < 1 or end > size or data[end - 1] != 0:
            return None
        frame = bytes(data[12:end - 1]).decode()
        pos = (end + 3) & -4
        count = _U32.unpack_from(data, pos)[0]
        pos += 4
        if pos + count * 5 > size:
            return None
        names = []
        for _ in range(count):
            pos = (pos + 3) & -4
            length = _U32.unpack_from(data, pos)[0]
            end = pos + 4 + length
            if length < 1 or end > size or data[end - 1] != 0:
                return None
            names.append(bytes(data[pos + 4:end - 1]).decode())
            pos = end
        fields = []
        for _ in range(3):
            pos = (pos + 3) & -4
            count = _U32.unpack_from(data, pos)[0]
            pos += 4
            if pos + count * 8 > size:
                return None
            if count:
                pos = (pos + 7) & -8
            fields.append(np.frombuffer(data, np.float64, count=count, offset=pos))
            pos += count * 8
        if pos + 3 < size:
            return None
    except (struct.error, UnicodeDecodeError, ValueError, TypeError):
        return None
    return _joint_sample(stamp_to_ns(sec, nanosec), frame, tuple(names), *fields)
