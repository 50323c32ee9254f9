"""What the live view sends to Foxglove, built from rosbags messages (no ROS runtime, no
Foxglove) and from the pipeline's own fault-status builder."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from lipfault_ros.alarm import AlarmState, AlarmStatus
from lipfault_ros.errors import InputError
from lipfault_ros.tuples import MODALITIES, Modality
from lipfault_ros.view import (SCHEMAS, Channel, Kind, RateGate, image_frame, joints_payload,
                               status_payload, wrench_payload)

from msg_types import (DiagnosticArray, DiagnosticStatus, Header, Image, JointState,
                       KeyValue, Time, Vector3, Wrench, WrenchStamped)


STAMP_NS = 12 * 10**9 + 345


def header(frame: str = 'cam') -> object:
    return Header(stamp=Time(sec=STAMP_NS // 10**9, nanosec=STAMP_NS % 10**9), frame_id=frame)


def image(encoding: str, pixels: np.ndarray, *, pad: int = 0, bigendian: bool = False):
    h, w = pixels.shape[:2]
    arr = pixels.astype(pixels.dtype.newbyteorder('>')) if bigendian else pixels
    rows = np.ascontiguousarray(arr).reshape(h, -1).view(np.uint8).reshape(h, -1)
    rows = np.concatenate([rows, np.full((h, pad), 7, np.uint8)], axis=1)
    return Image(header=header(), height=h, width=w, encoding=encoding,
                 is_bigendian=int(bigendian), step=rows.shape[1], data=rows.reshape(-1))


def test_an_rgb_image_passes_through_with_its_stamp_size_and_row_padding():
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    frame = image_frame(image('rgb8', pixels, pad=2))
    assert (frame.stamp_ns, frame.frame_id) == (STAMP_NS, 'cam')
    assert (frame.width, frame.height, frame.encoding, frame.step) == (3, 2, 'rgb8', 11)
    rows = np.frombuffer(frame.data, np.uint8).reshape(2, 11)
    assert np.array_equal(rows[:, :9].reshape(2, 3, 3), pixels)


def test_a_big_endian_mono16_image_becomes_little_endian():
    pixels = np.array([[[1], [0x0203]]], np.uint16)
    frame = image_frame(image('mono16', pixels, bigendian=True))
    assert frame.step == 4
    assert np.array_equal(np.frombuffer(frame.data, '<u2'), [1, 0x0203])


def test_an_encoding_foxglove_cannot_draw_is_refused_by_name():
    msg = image('rgb8', np.zeros((2, 2, 3), np.uint8))
    msg.encoding = 'yuv420_weird'
    with pytest.raises(InputError, match="'yuv420_weird' cannot be shown"):
        image_frame(msg)


def test_image_data_shorter_than_its_rows_is_refused():
    msg = image('rgb8', np.zeros((2, 2, 3), np.uint8))
    msg.data = msg.data[:-1]
    with pytest.raises(InputError, match='has 11 bytes.*needs 12'):
        image_frame(msg)


def test_an_image_without_pixels_is_refused():
    msg = image('rgb8', np.zeros((2, 2, 3), np.uint8))
    msg.width = 0
    with pytest.raises(InputError, match='no pixels'):
        image_frame(msg)


def test_a_wrench_is_force_and_torque_vectors_and_nan_becomes_null():
    msg = WrenchStamped(header=header('hand'), wrench=Wrench(
        force=Vector3(x=1.0, y=float('nan'), z=-3.0), torque=Vector3(x=0.1, y=0.2, z=0.3)))
    out = wrench_payload(msg)
    assert out == {'timestamp': {'sec': 12, 'nsec': 345}, 'frame_id': 'hand',
                   'force': {'x': 1.0, 'y': None, 'z': -3.0},
                   'torque': {'x': 0.1, 'y': 0.2, 'z': 0.3}}
    json.dumps(out, allow_nan=False)  # valid JSON, as Foxglove parses it


def test_joint_values_are_keyed_by_name_and_an_empty_field_stays_empty():
    msg = JointState(header=header('base'), name=['j1', 'j2'],
                     position=np.array([0.5, -0.5]), velocity=np.array([]),
                     effort=np.array([1.0, float('inf')]))
    out = joints_payload(msg)
    assert out['name'] == ['j1', 'j2']
    assert out['position'] == {'j1': 0.5, 'j2': -0.5}
    assert out['velocity'] == {}
    assert out['effort'] == {'j1': 1.0, 'j2': None}


def test_joint_values_that_do_not_match_the_names_are_refused():
    msg = JointState(header=header(), name=['j1', 'j2'], position=np.array([0.5]),
                     velocity=np.array([]), effort=np.array([]))
    with pytest.raises(InputError, match='2 names but 1 position values'):
        joints_payload(msg)


def _pipeline_status(score: float, alarm: AlarmStatus) -> object:
    """A ~/fault_status as the pipeline builds it (lipfault_ros.ros.statuses)."""
    from lipfault_ros.ros import convert, statuses

    from lipfault_ros.inference import ModalityResult

    res = ModalityResult(score=score, threshold=1.0, fault=score > 1.0, missing=False,
                         corrected=score > 1.0)
    result = SimpleNamespace(results={m: res for m in MODALITIES}, bypassed=False,
                             latency_ms=4.5)
    alarms = {m: alarm if m is Modality.WRENCH else AlarmStatus() for m in MODALITIES}
    return convert.diagnostic_array(STAMP_NS, statuses.tuple_statuses(result, alarms, 'hw'))


def test_the_pipeline_status_comes_back_typed_per_modality_with_alarm_level_and_margin():
    raised = AlarmStatus(AlarmState.RAISED, onset_ns=99, duration_s=0.5, count=2)
    out = status_payload(_pipeline_status(1.75, raised))
    assert out['timestamp'] == {'sec': 12, 'nsec': 345}
    assert set(out) == {'timestamp', 'camera', 'wrench', 'joints'}
    wrench = out['wrench']
    assert wrench['score'] == pytest.approx(1.75) and wrench['threshold'] == 1.0
    assert wrench['margin'] == pytest.approx(0.75)
    assert (wrench['fault'], wrench['alarm'], wrench['alarm_level'], wrench['active']) == \
        (True, 'raised', 1, True)
    assert (wrench['alarm_onset_ns'], wrench['alarm_count'], wrench['level']) == (99, 2, 1)
    assert (out['camera']['alarm'], out['camera']['alarm_level'], out['camera']['level']) == \
        ('clear', 0, 0)
    json.dumps(out, allow_nan=False)


def test_a_status_score_that_is_not_finite_is_null():
    msg = DiagnosticArray(header=header(''), status=[DiagnosticStatus(
        level=2, name='camera', message='missing', hardware_id='hw',
        values=[KeyValue(key='score', value='nan'), KeyValue(key='threshold', value='1'),
                KeyValue(key='alarm', value='latched')])])
    out = status_payload(msg)['camera']
    assert (out['level'], out['score'], out['alarm_level']) == (2, None, 2)
    assert 'margin' not in out


def test_every_json_channel_has_a_schema_naming_its_fields():
    for channel in Channel:
        if channel.kind is Kind.IMAGE:
            continue
        name, schema = SCHEMAS[channel.kind]
        assert name.startswith('lipfault.') and 'timestamp' in schema['properties']
    assert set(SCHEMAS[Kind.STATUS][1]['properties']) == {'timestamp', 'camera', 'wrench',
                                                          'joints'}


def test_the_rate_gate_passes_at_most_its_rate_and_everything_at_zero():
    gate = RateGate(10.0)  # one per 100 ms
    arrivals = [i * 10_000_000 for i in range(100)]  # 100 Hz for one second
    assert sum(gate.due(t) for t in arrivals) == 10
    assert all(RateGate(0.0).due(t) for t in (5, 5, 6))


def test_the_rate_gate_does_not_burst_after_a_pause():
    gate = RateGate(10.0)
    assert gate.due(0)
    assert gate.due(5 * 10**9) and not gate.due(5 * 10**9 + 1)


def test_a_negative_rate_is_refused():
    with pytest.raises(InputError, match='rate must be >= 0'):
        RateGate(-1.0)
