"""A wrist force/torque sensor model: what a real 6-axis F/T sensor between flange and tool reads.

Pure NumPy and ROS-free, so it can be tested without pybullet and reused on other simulators.

Why not just the contact forces? A real wrist sensor is never zero: it carries the tool, so even
in free space it reads the tool's weight, and that weight turns in the sensor frame as the hand
tilts (the reading says something about the arm's pose). On top it has an offset that is
different every time it is powered up or re-biased, a slow thermal drift of that offset, and
white electronic noise. A contact-only, tared signal is exactly zero most of the time, so sensor
faults such as a sign flip or a gain error change nothing there and a fault detector learns
nothing from it. This model gives the simulator those properties.

Conventions: the reading is the wrench *applied to the tool* (gravity plus contact), expressed in
the sensor frame, as ``[fx, fy, fz, tx, ty, tz]`` in N and Nm; torques are about the sensor
origin. ``rotation`` is the sensor (hand) frame's orientation in the world frame, so a world
vector ``v`` reads ``rotation.T @ v`` in the sensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lipfault_ros.errors import ConfigError

__all__ = ['FTSensorConfig', 'FTSensorModel', 'STANDARD_GRAVITY', 'cross3']

#: Gravity in the world frame (m/s^2), z up.
STANDARD_GRAVITY: tuple[float, float, float] = (0.0, 0.0, -9.81)


#: the Levi-Civita symbol: ``(a x b)_i = eps_ijk a_j b_k``
_EPS = np.zeros((3, 3, 3))
_EPS[0, 1, 2] = _EPS[1, 2, 0] = _EPS[2, 0, 1] = 1.0
_EPS[0, 2, 1] = _EPS[2, 1, 0] = _EPS[1, 0, 2] = -1.0


def cross3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a x b`` for (..., 3) arrays. ``np.cross`` spends ~20 us per call on axis handling
    (a fifth of the simulation's time at 500 samples per simulated second); this takes ~3 us."""
    return np.einsum('ijk,...j,...k->...i', _EPS, a, b)


@dataclass(frozen=True)
class FTSensorConfig:
    """Parameters of the sensor model. Defaults: a Franka Hand on an ATI-Mini45-class sensor.

    Standard deviations are per axis; noise is per sample (the defaults fit a 500 Hz stream).
    """

    #: tool mass hanging on the sensor (kg); the Franka Hand weighs about 0.73 kg
    tool_mass_kg: float = 0.73
    #: the tool's centre of mass in the sensor frame (m): a few cm out along the tool (z) axis,
    #: so a tilted tool also loads the sensor with a torque
    tool_com_m: tuple[float, float, float] = (0.0, 0.0, 0.03)
    #: gravity in the world frame (m/s^2)
    gravity_m_s2: tuple[float, float, float] = STANDARD_GRAVITY
    #: spread of the per-episode offset (zero-point error after power-up or re-bias)
    force_bias_n: float = 0.5
    torque_bias_nm: float = 0.02
    #: white noise of each sample
    force_noise_n: float = 0.05
    torque_noise_nm: float = 0.002
    #: spread of the per-episode drift rate of the offset (thermal drift), per minute
    force_drift_n_per_min: float = 0.0
    torque_drift_nm_per_min: float = 0.0

    def __post_init__(self) -> None:
        for name in ('tool_com_m', 'gravity_m_s2'):
            vector = tuple(float(v) for v in getattr(self, name))
            if len(vector) != 3 or not all(math.isfinite(v) for v in vector):
                raise ConfigError(f'{name} must be three finite numbers, got '
                                  f'{getattr(self, name)!r}')
            object.__setattr__(self, name, vector)
        for name in ('tool_mass_kg', 'force_bias_n', 'torque_bias_nm', 'force_noise_n',
                     'torque_noise_nm', 'force_drift_n_per_min', 'torque_drift_nm_per_min'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise ConfigError(f'{name} must be a finite number >= 0, got {value!r}')
            object.__setattr__(self, name, float(value))


class FTSensorModel:
    """One sensor for one episode: the offset and its drift rate are drawn once, from ``rng``, at
    construction (a sensor is biased once per power-up, not per sample), so they are constant
    within an episode, differ between seeds and repeat for the same seed.

    :meth:`read` adds the tool's weight, the offset (plus drift) and fresh noise to a contact
    wrench; the noise comes from the ``rng`` passed to it, so the caller decides which random
    stream the per-sample noise is drawn from (and with it what stays reproducible).
    """

    def __init__(self, config: FTSensorConfig | None = None,
                 rng: np.random.Generator | None = None) -> None:
        self.config = cfg = config or FTSensorConfig()
        rng = rng if rng is not None else np.random.default_rng(0)
        self._noise_sd = np.r_[np.full(3, cfg.force_noise_n), np.full(3, cfg.torque_noise_nm)]
        bias_sd = np.r_[np.full(3, cfg.force_bias_n), np.full(3, cfg.torque_bias_nm)]
        drift_sd = np.r_[np.full(3, cfg.force_drift_n_per_min),
                         np.full(3, cfg.torque_drift_nm_per_min)] / 60.0
        # both drawn always, so switching drift on leaves the offset of a seed unchanged
        self._bias = rng.normal(0.0, 1.0, 6) * bias_sd
        self._drift_per_s = rng.normal(0.0, 1.0, 6) * drift_sd
        self._weight = cfg.tool_mass_kg * np.asarray(cfg.gravity_m_s2, np.float64)
        # r x F as a matrix product: the torque of the weight is this times the force
        self._com_cross = np.einsum('ijk,j->ik', _EPS, np.asarray(cfg.tool_com_m, np.float64))

    def bias(self, t_s: float) -> np.ndarray:
        """The sensor's offset at ``t_s`` seconds into the episode (6,): the power-up offset plus
        a linear thermal drift (zero by default)."""
        return self._bias + self._drift_per_s * float(t_s)

    def tool_wrench(self, rotation: np.ndarray) -> np.ndarray:
        """The tool's weight as the sensor sees it (6,): force ``R^T m g``, torque ``r x F``
        about the sensor origin. It turns with the hand, which is why it cannot be tared away
        once and for all on a moving robot."""
        force = np.asarray(rotation, np.float64).T @ self._weight
        return np.concatenate([force, self._com_cross @ force])

    def ideal(self, rotation: np.ndarray, contact_wrench: np.ndarray | None = None) -> np.ndarray:
        """Tool weight plus contact wrench (sensor frame), without offset or noise."""
        wrench = self.tool_wrench(rotation)
        if contact_wrench is not None:
            wrench = wrench + np.asarray(contact_wrench, np.float64)
        return wrench

    def read(self, rotation: np.ndarray, contact_wrench: np.ndarray | None, t_s: float,
             rng: np.random.Generator) -> np.ndarray:
        """One sample (6,): tool weight + contact wrench + offset at ``t_s`` + white noise."""
        return (self.ideal(rotation, contact_wrench) + self.bias(t_s)
                + rng.normal(0.0, 1.0, 6) * self._noise_sd)
