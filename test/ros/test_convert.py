"""Outgoing message builders and QoS by name, on real rclpy message types."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.qos import ReliabilityPolicy

from lipfault_ros.codec import image_sample, joint_sample, wrench_sample
from lipfault_ros.errors import ConfigError, InputError
from lipfault_ros.ros import convert
from lipfault_ros.ros.qos import qos_profile
from lipfault_ros.tuples import Modality


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'mono8', '16UC1', '32FC1'])
def test_image_msg_round_trips_through_the_codec(encoding):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    msg = convert.image_msg(rgb, convert.header(3_000_000_007, 'cam'), encoding)
    assert msg.encoding == encoding and msg.header.stamp.nanosec == 7
    back = image_sample(msg)
    assert back.stamp_ns == 3_000_000_007 and back.frame_id == 'cam'
    if encoding in ('rgb8', 'bgr8'):
        np.testing.assert_array_equal(back.image, rgb)
    else:
        np.testing.assert_allclose(back.image[:, :, 0], rgb.mean(2), atol=1.5)


def test_image_in_an_unwritable_encoding_goes_out_as_rgb8():
    msg = convert.image_msg(np.zeros((2, 2, 3), np.uint8), convert.header(1, 'c'), 'yuv422')
    assert msg.encoding == 'rgb8' and msg.step == 6


def test_unknown_input_encoding_is_an_input_error_without_cv_bridge():
    msg = convert.image_msg(np.zeros((2, 2, 3), np.uint8), convert.header(1, 'c'))
    msg.encoding = 'yuv422'
    with pytest.raises(InputError, match="unsupported image encoding 'yuv422'"):
        convert.sample_from_msg(Modality.CAMERA, msg)


def test_wrench_and_joint_state_builders_round_trip():
    w = convert.wrench_msg(np.arange(6.0), convert.header(5, 'hand'))
    np.testing.assert_array_equal(wrench_sample(w).values, np.arange(6.0))
    j = convert.joint_state_msg(['a', 'b'], np.array([1.0, 2.0]), np.array([3.0, 4.0]),
                                np.array([5.0, 6.0]), convert.header(6, 'base'))
    s = joint_sample(j)
    assert s.names == ('a', 'b') and s.effort.tolist() == [5.0, 6.0]
    assert convert.sample_from_msg(Modality.JOINTS, j).position.tolist() == [1.0, 2.0]


def test_diagnostics_use_string_values_and_levels():
    st = convert.diagnostic_status('lipfault_pipeline: camera', convert.level_of(True, False),
                                   'fault', hardware_id='hw', values={'fault': True,
                                                                      'score': 0.25})
    assert st.level == convert.WARN and st.hardware_id == 'hw'
    assert [(kv.key, kv.value) for kv in st.values] == [('fault', 'true'), ('score', '0.25')]
    assert convert.level_of(False, True) == convert.ERROR
    arr = convert.diagnostic_array(2_500_000_000, [st])
    assert arr.header.stamp.sec == 2 and arr.header.stamp.nanosec == 500_000_000


def test_qos_by_name():
    assert qos_profile('sensor_data').reliability == ReliabilityPolicy.BEST_EFFORT
    assert qos_profile('reliable', 3).depth == 3
    with pytest.raises(ConfigError, match="unknown QoS profile 'fast'"):
        qos_profile('fast')
    with pytest.raises(ConfigError, match='QoS depth must be >= 1'):
        qos_profile('reliable', 0)
