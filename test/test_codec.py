"""Message <-> NumPy conversions on rosbags dataclass messages (the same field names as rclpy's)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lipfault_ros.codec import (ENCODINGS, decode_image, decode_image_native, encode_image,
                                image_sample, joint_sample, wrench_sample)
from lipfault_ros.errors import InputError

from msg_types import Header, Image, JointState, Time, Vector3, Wrench, WrenchStamped


def header(stamp_ns: int = 1_500_000_123, frame: str = 'cam') -> object:
    return Header(stamp=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=frame)


def image_msg(image: np.ndarray, encoding: str, *, pad: int = 0, bigendian: bool = False):
    arr = image if image.ndim == 3 else image[:, :, None]
    h, w, c = arr.shape
    if bigendian:
        arr = arr.astype(arr.dtype.newbyteorder('>'))
    row = arr.reshape(h, w * c).view(np.uint8).reshape(h, -1)
    padded = np.concatenate([row, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    return Image(header=header(), height=h, width=w, encoding=encoding,
                 is_bigendian=int(bigendian), step=padded.shape[1], data=padded.reshape(-1))


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize('pad', [0, 3])
def test_color_encodings_decode_to_rgb(rgb: np.ndarray, pad: int) -> None:
    cases = {'rgb8': rgb, 'bgr8': rgb[:, :, ::-1], '8UC3': rgb[:, :, ::-1],
             'rgba8': np.concatenate([rgb, np.zeros((5, 7, 1), np.uint8)], 2),
             'bgra8': np.concatenate([rgb[:, :, ::-1], np.zeros((5, 7, 1), np.uint8)], 2)}
    for encoding, wire in cases.items():
        sample = image_sample(image_msg(np.ascontiguousarray(wire), encoding, pad=pad))
        np.testing.assert_array_equal(sample.image, rgb, err_msg=encoding)
        assert sample.stamp_ns == 1_500_000_123 and sample.frame_id == 'cam'


def test_mono_encodings_are_replicated_to_three_channels() -> None:
    mono = np.arange(35, dtype=np.uint8).reshape(5, 7)
    for encoding in ('mono8', '8UC1'):
        out = image_sample(image_msg(mono, encoding, pad=1)).image
        assert out.shape == (5, 7, 3)
        np.testing.assert_array_equal(out[:, :, 1], mono)


@pytest.mark.parametrize('bigendian', [False, True])
@pytest.mark.parametrize('encoding', ['16UC1', 'mono16'])
def test_sixteen_bit_honours_endianness_and_padding(encoding: str, bigendian: bool) -> None:
    depth = (np.arange(35, dtype=np.uint16) * 1800).reshape(5, 7)
    msg = image_msg(depth, encoding, pad=2, bigendian=bigendian)
    native = decode_image_native(msg.encoding, msg.height, msg.width, msg.step,
                                 msg.is_bigendian, msg.data)
    np.testing.assert_array_equal(native[:, :, 0], depth)
    np.testing.assert_array_equal(image_sample(msg).image[:, :, 0], (depth >> 8).astype(np.uint8))


@pytest.mark.parametrize('bigendian', [False, True])
def test_float_image_maps_unit_range_and_nan(bigendian: bool) -> None:
    values = np.array([[0.0, 0.5, 1.0, 2.0, -1.0, math.nan]], np.float32)
    out = image_sample(image_msg(values, '32FC1', bigendian=bigendian)).image[0, :, 0]
    np.testing.assert_array_equal(out, [0, 128, 255, 255, 0, 0])


@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
def test_encode_then_decode_round_trips(rgb: np.ndarray, encoding: str) -> None:
    step, data = encode_image(rgb, encoding)
    out = decode_image(encoding, 5, 7, step, False, data)
    if ENCODINGS[encoding][0] >= 3:
        np.testing.assert_array_equal(out, rgb)
    else:
        grey = np.rint(rgb.astype(np.float32).mean(2))
        np.testing.assert_allclose(out[:, :, 0], grey, atol=1)


def test_encode_native_array_is_written_as_is() -> None:
    depth = np.arange(6, dtype=np.uint16).reshape(2, 3) * 1000
    step, data = encode_image(depth, '16UC1')
    assert step == 6
    np.testing.assert_array_equal(np.frombuffer(data, '<u2').reshape(2, 3), depth)


def test_unknown_encoding_is_refused(rgb: np.ndarray) -> None:
    with pytest.raises(InputError, match="unsupported image encoding 'yuv422'"):
        image_sample(image_msg(rgb, 'yuv422'))
    with pytest.raises(InputError, match="unsupported image encoding 'bayer_rggb8'"):
        encode_image(rgb, 'bayer_rggb8')


def test_short_data_and_short_step_are_refused(rgb: np.ndarray) -> None:
    msg = image_msg(rgb, 'rgb8')
    with pytest.raises(InputError, match='image data has 104 bytes'):
        decode_image('rgb8', 5, 7, msg.step, False, msg.data[:104])
    with pytest.raises(InputError, match='step 20 is shorter than one row'):
        decode_image('rgb8', 5, 7, 20, False, msg.data)
    with pytest.raises(InputError, match='image has no pixels'):
        decode_image('rgb8', 0, 7, 21, False, b'')
    with pytest.raises(InputError, match='cannot encode an array of shape'):
        encode_image(np.zeros((2, 2, 2, 2), np.uint8), 'rgb8')


def test_unpadded_last_row_is_accepted(rgb: np.ndarray) -> None:
    msg = image_msg(rgb, 'rgb8', pad=4)
    out = decode_image('rgb8', 5, 7, msg.step, False, msg.data[:-4])
    np.testing.assert_array_equal(out, rgb)


def test_wrench_keeps_values_and_non_finite() -> None:
    msg = WrenchStamped(header=header(7, 'hand'), wrench=Wrench(
        force=Vector3(x=1.0, y=-2.0, z=math.inf), torque=Vector3(x=0.1, y=math.nan, z=0.3)))
    sample = wrench_sample(msg)
    assert sample.stamp_ns == 7 and sample.frame_id == 'hand'
    np.testing.assert_array_equal(sample.values, [1.0, -2.0, math.inf, 0.1, math.nan, 0.3])


def test_joint_state_keeps_names_and_fills_empty_fields_with_nan() -> None:
    msg = JointState(header=header(9, ''), name=['b', 'a'],
                     position=np.array([1.0, 2.0]), velocity=np.array([]),
                     effort=np.array([3.0, 4.0]))
    sample = joint_sample(msg)
    assert sample.names == ('b', 'a')
    np.testing.assert_array_equal(sample.position, [1.0, 2.0])
    assert np.isnan(sample.velocity).all() and sample.velocity.shape == (2,)


def test_joint_state_with_mismatched_lengths_or_duplicates_is_refused() -> None:
    msg = JointState(header=header(), name=['a', 'b'], position=np.array([1.0]),
                     velocity=np.array([]), effort=np.array([]))
    with pytest.raises(InputError, match=r"position has 1 values for 2 joint names \['a', 'b'\]"):
        joint_sample(msg)
    msg = JointState(header=header(), name=['a', 'a'], position=np.array([1.0, 2.0]),
                     velocity=np.array([]), effort=np.array([]))
    with pytest.raises(InputError, match='duplicate joint names'):
        joint_sample(msg)


def test_rclpy_messages_decode_the_same_way(rgb: np.ndarray) -> None:
    """The live path hands rclpy messages (array.array payloads) to the same functions."""
    from sensor_msgs.msg import Image, JointState  # test requirements: never skipped
    msg = Image(height=5, width=7, encoding='bgr8', step=21)
    msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = 3, 4, 'c'
    msg.data = rgb[:, :, ::-1].tobytes()
    sample = image_sample(msg)
    assert sample.stamp_ns == 3_000_000_004
    np.testing.assert_array_equal(sample.image, rgb)
    js = JointState(name=['j1'], position=[0.5], velocity=[], effort=[1.0])
    assert joint_sample(js).position.tolist() == [0.5]
