"""The simulated robot core: seeded streams, contact forces, faults and their truth, config
validation."""

from __future__ import annotations

import numpy as np
import pytest

from lipfault_ros.errors import ConfigError, SimError
from lipfault_ros.faults import FaultSpec
from lipfault_ros.sim import ARM_JOINTS, SimConfig, SimRobot
from lipfault_ros.truth import labels_at
from lipfault_ros.tuples import ImageSample, JointSample, Modality, WrenchSample

FAST = dict(camera_rate_hz=5.0, image_width=32, image_height=32)


def _collect(config: SimConfig, duration_s: float, origin_ns: int = 10**18):
    with SimRobot(config, origin_ns=origin_ns) as robot:
        samples = list(robot.stream(duration_s))
        intervals = robot.intervals
    return samples, intervals


def _by_type(samples, kind):
    return [s for s in samples if isinstance(s, kind)]


def test_same_seed_same_data_other_seed_other_data():
    a, _ = _collect(SimConfig(seed=3, **FAST), 1.0)
    b, _ = _collect(SimConfig(seed=3, **FAST), 1.0)
    c, _ = _collect(SimConfig(seed=4, **FAST), 1.0)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert type(x) is type(y) and x.stamp_ns == y.stamp_ns
    wa = np.array([s.values for s in _by_type(a, WrenchSample)])
    wb = np.array([s.values for s in _by_type(b, WrenchSample)])
    wc = np.array([s.values for s in _by_type(c, WrenchSample)])
    assert np.array_equal(wa, wb) and not np.array_equal(wa, wc)
    ia = _by_type(a, ImageSample)[-1].image
    assert np.array_equal(ia, _by_type(b, ImageSample)[-1].image)


def test_streams_have_rates_offsets_frames_and_joint_names():
    samples, _ = _collect(SimConfig(seed=0, **FAST), 2.0, origin_ns=0)
    wrench, joints = _by_type(samples, WrenchSample), _by_type(samples, JointSample)
    images = _by_type(samples, ImageSample)
    assert (len(images), len(wrench), len(joints)) == (10, 1000, 500)
    for stream in (images, wrench, joints):
        stamps = np.array([s.stamp_ns for s in stream])
        assert np.all(np.diff(stamps) > 0)
    # per-stream clock offsets: stamps sit at the configured offsets from the nominal sample
    # times, give or take jitter
    for stream, rate, offset, tol in ((images, 5.0, 0.004, 0.0015), (wrench, 500.0, -0.001, 2e-5),
                                      (joints, 250.0, 0.0015, 5e-5)):
        error = np.array([s.stamp_ns * 1e-9 - k / rate for k, s in enumerate(stream)])
        assert abs(error.mean() - offset) < tol
        assert error.std() > 0  # jittered
    assert images[0].frame_id == 'sim_camera' and wrench[0].frame_id == 'panda_hand'
    assert images[0].image.shape == (32, 32, 3) and images[0].image.dtype == np.uint8
    assert joints[0].names[:7] == ARM_JOINTS
    assert joints[0].position.shape == joints[0].velocity.shape == joints[0].effort.shape == (9,)


def test_contact_wrench_reads_contact_forces_and_is_quiet_in_free_space():
    config = SimConfig(seed=1, wrench_source='contact', **FAST)
    forces, contact = [], []
    with SimRobot(config) as robot:
        for sample in robot.stream(12.0):
            if isinstance(sample, WrenchSample):
                forces.append(np.linalg.norm(sample.values[:3]))
                contact.append(robot.in_contact)
    forces, contact = np.array(forces), np.array(contact)
    assert 0.05 < contact.mean() < 0.8, 'the task should touch the table part of the time'
    # presses, wipes and insertions read tens of newtons; pushing the light cube only ~1 N
    assert np.percentile(forces[contact], 75) > 2.0
    assert np.median(forces[~contact]) < 0.5


def test_faults_corrupt_exactly_their_truth_interval():
    faults = tuple(FaultSpec.parse(s) for s in ('wrench:bias:0.5:0.5:0.5',
                                                'camera:black_frame:1:1:0.5',
                                                'joints:noise:0.5:0.2:0.3'))
    clean, _ = _collect(SimConfig(seed=2, **FAST), 2.0)
    faulty, intervals = _collect(SimConfig(seed=2, faults=faults, **FAST), 2.0)
    assert len(intervals) == 3
    for kind, modality in ((WrenchSample, Modality.WRENCH), (ImageSample, Modality.CAMERA),
                           (JointSample, Modality.JOINTS)):
        a, b = _by_type(clean, kind), _by_type(faulty, kind)
        assert [s.stamp_ns for s in a] == [s.stamp_ns for s in b]
        stamps = np.array([s.stamp_ns for s in a])
        field = {WrenchSample: 'values', ImageSample: 'image', JointSample: 'position'}[kind]
        changed = np.array([not np.array_equal(getattr(x, field), getattr(y, field))
                            for x, y in zip(a, b)])
        truth = labels_at(stamps, intervals)[:, [Modality.CAMERA, Modality.WRENCH,
                                                 Modality.JOINTS].index(modality)]
        assert truth.any()
        assert np.array_equal(changed, truth), modality


def test_dropout_drops_messages_and_faults_change_at_run_time():
    config = SimConfig(seed=0, faults=(FaultSpec.parse('wrench:dropout:1:0.5:0.5'),), **FAST)
    with SimRobot(config) as robot:
        first = list(robot.stream(1.0))
        robot.set_faults([FaultSpec.parse('camera:noise_frame:1:1.2:0.5')])
        assert [i.kind for i in robot.intervals] == ['noise_frame']
        rest = list(robot.stream(1.0))
    # 249 or 250 of the 500 wrench messages fall into [0.5, 1.0) s on the stamp clock
    assert 250 <= len(_by_type(first, WrenchSample)) <= 251
    assert len(_by_type(rest, WrenchSample)) == 500


def test_robot_must_be_open():
    robot = SimRobot(SimConfig(**FAST))
    with pytest.raises(SimError, match='not open'):
        robot.advance(0.1)
    with SimRobot(SimConfig(**FAST)) as robot:
        with pytest.raises(SimError, match='duration must be > 0'):
            next(robot.stream(0.0))


@pytest.mark.parametrize(('values', 'message'), [
    ({'wrench_rate_hz': -5.0}, r'wrench_rate_hz must be in \[1, 5000\]'),
    ({'camera_rate_hz': 0}, r'camera_rate_hz must be in \[0.1, 240\]'),
    ({'joints_rate_hz': 2000.0}, r'physics_rate_hz \(500\) must be at least'),
    ({'image_width': 4}, r'image_width must be in \[8, 1024\]'),
    ({'image_height': 5000}, r'image_height must be in \[8, 1024\]'),
    ({'image_width': 12.5}, 'image_width must be int'),
    ({'visual_meshes': 'fancy'}, 'visual_meshes must be one of'),
    ({'wrench_source': 'magic'}, 'wrench_source must be one of'),
    ({'camera_jitter_s': -0.1}, r'camera_jitter_s must be in \[0, 0.1\]'),
    ({'image_noise': -1.0}, r'image_noise must be in \[0, 100\]'),
    ({'seed': -1}, r'seed must be in \[0, '),
    ({'force_noise_n': float('nan')}, 'force_noise_n must be a number, got NaN'),
    ({'faults': ('camera:blur:0.5:1:1',)}, 'faults must be FaultSpec records'),
])
def test_config_errors_name_the_parameter(values, message):
    with pytest.raises(ConfigError, match=message):
        SimConfig(**values)


def test_config_from_mapping_rejects_unknown_keys():
    assert SimConfig.from_mapping({'seed': 4}).seed == 4
    with pytest.raises(ConfigError, match=r"unknown sim parameters \['colour'\]"):
        SimConfig.from_mapping({'colour': 'red'})


def test_the_arm_keeps_to_the_pandas_joint_velocity_limits_through_the_shoulder_singularity():
    # seed 1604's task takes joint 2 through 0 at about 8.2 s, where the inverse kinematics
    # jumps between solutions: unlimited, joints 1 and 3 turned against each other at 11 rad/s
    from lipfault_ros.sim.cell import ARM_VELOCITY_LIMITS

    samples, _ = _collect(SimConfig(seed=1604, **FAST), 8.6)
    joints = _by_type(samples, JointSample)
    t = np.array([s.stamp_ns for s in joints]) - joints[0].stamp_ns
    v = np.abs(np.array([s.velocity[:7] for s in joints]))[t > 100_000_000]
    p2 = np.array([s.position[1] for s in joints])
    assert p2.min() < 0.0 < p2.max()  # the singularity was crossed
    assert (v.max(axis=0) <= 1.1 * ARM_VELOCITY_LIMITS).all(), v.max(axis=0)
