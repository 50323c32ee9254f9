"""The wrist force/torque sensor model (pure NumPy), the per-seed scene and task variation, and one
short pybullet episode with the default sensor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lipfault_ros.errors import ConfigError
from lipfault_ros.sim import SimConfig, SimRobot
from lipfault_ros.sim.ft_sensor import FTSensorConfig, FTSensorModel
from lipfault_ros.sim.scene import CAMERA_EYE, CAMERA_TARGET, SceneVariation
from lipfault_ros.sim.task import TaskStyle
from lipfault_ros.tuples import WrenchSample

MASS, G = 0.73, 9.81
#: the hand pointing straight down (roll pi), and tilted by 30 degrees about world y
DOWN = np.diag([1.0, -1.0, -1.0])
_c, _s = math.cos(math.radians(30)), math.sin(math.radians(30))
TILTED = np.array([[_c, 0.0, _s], [0.0, 1.0, 0.0], [-_s, 0.0, _c]]) @ DOWN


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _readings(model, rotation, n=200, t_s=0.0, seed=0, contact=None):
    rng = np.random.default_rng(seed)
    return np.array([model.read(rotation, contact, t_s + k / 500, rng) for k in range(n)])


@pytest.mark.parametrize(('rotation', 'expected_force'), [
    (DOWN, (0.0, 0.0, MASS * G)),
    (TILTED, (MASS * G * _s, 0.0, MASS * G * _c)),
])
def test_free_space_reading_is_the_tool_weight_turned_into_the_hand_frame(rotation,
                                                                          expected_force):
    model = FTSensorModel(FTSensorConfig(force_bias_n=0.0, torque_bias_nm=0.0),
                          np.random.default_rng(1))
    readings = _readings(model, rotation)
    assert np.all(np.linalg.norm(readings[:, :3], axis=1) > 5.0), 'never zero in free space'
    force = np.asarray(expected_force)
    torque = np.cross([0.0, 0.0, 0.03], force)
    # each sample within 5 noise standard deviations, the mean much closer
    assert np.all(np.abs(readings[:, :3] - force) < 5 * 0.05)
    assert np.all(np.abs(readings[:, 3:] - torque) < 5 * 0.002)
    assert np.allclose(readings.mean(axis=0), np.r_[force, torque], atol=0.02)


def test_the_reading_turns_with_the_hand_and_keeps_its_magnitude():
    model = FTSensorModel(rng=np.random.default_rng(2))  # default offset and noise
    down, tilted = _readings(model, DOWN).mean(axis=0), _readings(model, TILTED).mean(axis=0)
    assert abs(down[0] - tilted[0]) > 3.0, 'a 30 degree tilt moves ~3.6 N into x'
    for mean in (down, tilted):
        assert abs(np.linalg.norm(mean[:3]) - MASS * G) < 2.5  # m g, give or take the offset
    exact = FTSensorModel(FTSensorConfig(force_bias_n=0, torque_bias_nm=0, force_noise_n=0,
                                         torque_noise_nm=0))
    rng = np.random.default_rng(3)
    for _ in range(20):
        reading = exact.read(_rotation(rng), None, 0.0, rng)
        assert np.linalg.norm(reading[:3]) == pytest.approx(MASS * G, rel=1e-12)


def test_torque_is_the_centre_of_mass_offset_cross_the_force():
    com = (0.01, -0.005, 0.04)
    model = FTSensorModel(FTSensorConfig(tool_mass_kg=1.2, tool_com_m=com))
    rng = np.random.default_rng(4)
    for _ in range(20):
        wrench = model.tool_wrench(_rotation(rng))
        assert np.linalg.norm(wrench[:3]) == pytest.approx(1.2 * G)
        assert np.allclose(wrench[3:], np.cross(com, wrench[:3]), atol=1e-12)


def test_contact_wrench_adds_to_the_weight():
    model = FTSensorModel(rng=np.random.default_rng(5))
    contact = np.array([1.0, -2.0, -15.0, 0.1, 0.2, -0.05])
    assert np.allclose(model.ideal(DOWN, contact), model.tool_wrench(DOWN) + contact)
    rng_a, rng_b = np.random.default_rng(6), np.random.default_rng(6)
    assert np.allclose(model.read(DOWN, contact, 1.0, rng_a) - model.read(DOWN, None, 1.0, rng_b),
                       contact)


def test_the_offset_is_constant_in_an_episode_and_differs_between_seeds():
    a = FTSensorModel(rng=np.random.default_rng(7))
    assert np.array_equal(a.bias(0.0), a.bias(120.0))
    early, late = _readings(a, DOWN, 500), _readings(a, DOWN, 500, t_s=100.0, seed=1)
    assert np.allclose(early.mean(axis=0), late.mean(axis=0), atol=0.02)
    offsets = np.array([FTSensorModel(rng=np.random.default_rng(s)).bias(0.0) for s in range(50)])
    assert len({tuple(o) for o in offsets}) == 50
    # the spread is the configured one: ~0.5 N and ~0.02 Nm per axis
    assert 0.35 < offsets[:, :3].std() < 0.65 and 0.014 < offsets[:, 3:].std() < 0.026


def test_same_seed_same_readings():
    def run(seed):
        model = FTSensorModel(rng=np.random.default_rng(seed))
        return _readings(model, TILTED, 50, seed=seed + 100)
    assert np.array_equal(run(8), run(8))
    assert not np.array_equal(run(8), run(9))


def test_thermal_drift_moves_the_offset_linearly_and_keeps_the_start():
    steady = FTSensorModel(rng=np.random.default_rng(10))
    drifting = FTSensorModel(FTSensorConfig(force_drift_n_per_min=0.1,
                                            torque_drift_nm_per_min=0.004),
                             np.random.default_rng(10))
    assert np.array_equal(steady.bias(0.0), drifting.bias(0.0))
    step = drifting.bias(60.0) - drifting.bias(0.0)
    assert np.allclose(drifting.bias(120.0) - drifting.bias(60.0), step)
    assert np.all(step != 0) and np.all(np.abs(step[:3]) < 0.5)


@pytest.mark.parametrize(('values', 'message'), [
    ({'tool_mass_kg': -1.0}, 'tool_mass_kg must be a finite number >= 0'),
    ({'force_noise_n': math.nan}, 'force_noise_n must be a finite number >= 0'),
    ({'tool_com_m': (0.0, 0.03)}, 'tool_com_m must be three finite numbers'),
])
def test_sensor_config_errors_name_the_field(values, message):
    with pytest.raises(ConfigError, match=message):
        FTSensorConfig(**values)


@pytest.mark.parametrize(('values', 'message'), [
    ({'wrench_source': 'magic'}, r"one of \['ft_sensor', 'contact', 'joint_sensor'\]"),
    ({'tool_mass_kg': -0.1}, r'tool_mass_kg must be in \[0, 20\]'),
    ({'force_bias_n': math.inf}, r'force_bias_n must be in \[0, 100\], got inf'),
    ({'tool_com_offset_m': 0.8}, r'tool_com_offset_m must be in \[-0.5, 0.5\]'),
])
def test_sim_config_checks_the_sensor_fields(values, message):
    with pytest.raises(ConfigError, match=message):
        SimConfig(**values)


def test_sim_config_feeds_the_sensor_model():
    assert SimConfig().wrench_source == 'ft_sensor'
    cfg = SimConfig(tool_mass_kg=1.0, tool_com_offset_m=0.05, force_bias_n=0.1,
                    torque_noise_nm=0.003).ft_sensor_config()
    assert (cfg.tool_mass_kg, cfg.tool_com_m, cfg.force_bias_n, cfg.torque_noise_nm) == (
        1.0, (0.0, 0.0, 0.05), 0.1, 0.003)


def test_scene_and_task_style_vary_by_seed_within_bounds():
    scenes = [SceneVariation.draw(np.random.default_rng(s)) for s in range(20)]
    assert SceneVariation.draw(np.random.default_rng(3)) == scenes[3]
    assert len({s.light_direction for s in scenes}) == 20
    for scene in scenes:
        assert np.all(np.abs(np.subtract(scene.camera_eye, CAMERA_EYE)) <= 0.015)
        forward = np.subtract(scene.camera_target, scene.camera_eye)
        nominal = np.subtract(CAMERA_TARGET, CAMERA_EYE)
        turn = math.degrees(math.acos(np.dot(forward, nominal)
                                      / np.linalg.norm(forward) / np.linalg.norm(nominal)))
        assert turn < 2.5
        assert scene.light_direction[2] > 0.5  # from above
    styles = [TaskStyle.draw(np.random.default_rng(s)) for s in range(5)]
    assert TaskStyle.draw(np.random.default_rng(2)) == styles[2]
    assert len({s.weights for s in styles}) == 5
    assert all(abs(sum(s.weights) - 1.0) < 1e-9 for s in styles)


def test_short_episode_reads_like_a_wrist_sensor_and_touches_often():
    """10 s of sim, once with the default sensor and once with the ideal contact-only one (the
    physics does not depend on the sensor model, so both see the same motion)."""
    fast = dict(seed=1, camera_rate_hz=2.0, image_width=16, image_height=16)
    runs = {}
    for source in ('ft_sensor', 'contact'):
        values, contact = [], []
        with SimRobot(SimConfig(wrench_source=source, **fast)) as robot:
            for sample in robot.stream(10.0):
                if isinstance(sample, WrenchSample):
                    values.append(sample.values)
                    contact.append(robot.in_contact)
        runs[source] = np.array(values), np.array(contact)
    ft, contact = runs['ft_sensor']
    assert np.array_equal(contact, runs['contact'][1])
    assert contact.mean() > 0.15, 'the planner should be in contact a good share of the time'
    free = np.linalg.norm(ft[~contact, :3], axis=1)
    assert np.all(free > 4.0) and abs(np.median(free) - MASS * G) < 2.0
    assert ft[~contact, :2].std(axis=0).max() > 0.3, 'the tool weight turns as the hand tilts'
    ideal = np.linalg.norm(runs['contact'][0][~contact, :3], axis=1)
    assert np.median(ideal) < 0.5, "'contact' stays an ideal tared sensor, zero in free space"
