"""Configuration of the simulated robot: rates, clocks, image size, noise, seed and faults.

One frozen record, validated on construction, shared by the recorder and the live node (whose
ROS parameters map one to one onto these fields). Rates are in Hz, times in seconds; each sensor
stream gets its own clock offset (header stamp minus true sample time) and jitter (standard
deviation of the stamp noise, clipped to a quarter period so stamps stay strictly increasing),
as on a real robot where camera, force/torque sensor and joint encoders run on separate clocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from lipfault_ros.errors import ConfigError
from lipfault_ros.faults import FaultSpec
from lipfault_ros.sim.ft_sensor import FTSensorConfig

__all__ = ['IMAGE_SIZE_RANGE', 'SimConfig', 'VISUAL_MESHES', 'WRENCH_SOURCES']

#: Image sizes (pixels per side) the TinyRenderer is asked for: below 8 it renders nothing
#: useful, above 1024 a frame takes longer than a camera period.
IMAGE_SIZE_RANGE: tuple[int, int] = (8, 1024)
#: Which Panda meshes are rendered: the light collision meshes (default, ~3 ms per 128x128 frame)
#: or the detailed visual meshes (~20 ms per frame).
VISUAL_MESHES: tuple[str, ...] = ('collision', 'visual')

#: Where the wrist wrench comes from (see ``SimConfig.wrench_source``).
WRENCH_SOURCES: tuple[str, ...] = ('ft_sensor', 'contact', 'joint_sensor')


@dataclass(frozen=True)
class SimConfig:
    """Everything that shapes the simulated data. Defaults look like a real Panda cell."""

    # stream rates (Hz)
    camera_rate_hz: float = 30.0
    wrench_rate_hz: float = 500.0
    joints_rate_hz: float = 250.0
    #: physics step rate; must be at least the fastest sensor rate
    physics_rate_hz: float = 500.0
    #: rate of the arm controller (inverse kinematics + motor targets)
    control_rate_hz: float = 100.0
    # camera image (the model's default input size; the renderer can do larger)
    image_width: int = 128
    image_height: int = 128
    visual_meshes: str = 'collision'
    #: how the wrist force/torque is measured: 'ft_sensor' reads like a real wrist sensor (the
    #: tool weight turning with the hand, plus contact forces, a per-episode offset and noise;
    #: never zero, so sign and gain faults show in free space too); 'contact' sums only the
    #: contact forces on the hand and fingers (an ideal tared sensor, zero in free space);
    #: 'joint_sensor' reads pybullet's joint force/torque sensor on panda_hand_joint minus the
    #: tool weight, which also shows velocity-dependent solver artefacts of tens of newtons
    #: while the arm moves
    wrench_source: str = 'ft_sensor'
    # the 'ft_sensor' model (see sim/ft_sensor.py)
    #: tool mass on the sensor (kg): the Franka Hand weighs 0.73 kg
    tool_mass_kg: float = 0.73
    #: the tool's centre of mass along the tool (hand z) axis from the sensor origin (m); it
    #: makes a tilted tool load the sensor with a torque
    tool_com_offset_m: float = 0.03
    #: spread (standard deviation per axis) of the offset drawn once per episode from the seed:
    #: a real sensor's zero point differs after every power-up or re-bias
    force_bias_n: float = 0.5          # N
    torque_bias_nm: float = 0.02       # Nm
    #: spread of the per-episode linear drift rate of that offset (thermal drift; 0: none)
    force_drift_n_per_min: float = 0.0      # N per minute
    torque_drift_nm_per_min: float = 0.0    # Nm per minute
    # per-stream clock offset (s): header stamp minus the true sample time
    camera_offset_s: float = 0.004
    wrench_offset_s: float = -0.001
    joints_offset_s: float = 0.0015
    # per-stream stamp jitter (s, standard deviation)
    camera_jitter_s: float = 0.001
    wrench_jitter_s: float = 0.0001
    joints_jitter_s: float = 0.0002
    # sensor noise (standard deviations); the wrench noise is per sample (a 500 Hz F/T sensor)
    image_noise: float = 2.0           # grey levels (0-255)
    force_noise_n: float = 0.05        # N
    torque_noise_nm: float = 0.002     # Nm
    position_noise_rad: float = 1e-4   # rad (m for the fingers)
    velocity_noise_rad_s: float = 1e-3  # rad/s
    effort_noise_nm: float = 0.02      # Nm (N for the fingers)
    #: seed of everything random: task variation, noise, jitter, faults
    seed: int = 0
    # frame ids of the published headers
    camera_frame_id: str = 'sim_camera'
    wrench_frame_id: str = 'panda_hand'
    joints_frame_id: str = 'panda_link0'
    #: faults to inject, times in seconds since the stream started
    faults: tuple[FaultSpec, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in ('camera_rate_hz', 'wrench_rate_hz', 'joints_rate_hz', 'physics_rate_hz',
                     'control_rate_hz'):
            value = self._number(name)
            if not value > 0 or math.isinf(value):
                raise ConfigError(f'{name} must be a positive finite rate, got {value}')
        fastest = max(self.wrench_rate_hz, self.joints_rate_hz, self.camera_rate_hz,
                      self.control_rate_hz)
        if self.physics_rate_hz < fastest:
            raise ConfigError(f'physics_rate_hz ({self.physics_rate_hz:g}) must be at least the '
                              f'fastest stream or control rate ({fastest:g})')
        lo, hi = IMAGE_SIZE_RANGE
        for name in ('image_width', 'image_height'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) and not (
                    isinstance(value, float) and value.is_integer()):
                raise ConfigError(f'{name} must be an integer, got {value!r}')
            object.__setattr__(self, name, int(value))
            if not lo <= int(value) <= hi:
                raise ConfigError(f'{name} must be in [{lo}, {hi}] pixels for the renderer, '
                                  f'got {value}')
        if self.visual_meshes not in VISUAL_MESHES:
            raise ConfigError(f'visual_meshes must be one of {VISUAL_MESHES}, got '
                              f'{self.visual_meshes!r}')
        if self.wrench_source not in WRENCH_SOURCES:
            raise ConfigError(f'wrench_source must be one of {WRENCH_SOURCES}, got '
                              f'{self.wrench_source!r}')
        for stream in ('camera', 'wrench', 'joints'):
            offset = self._number(f'{stream}_offset_s')
            if abs(offset) > 1.0:
                raise ConfigError(f'{stream}_offset_s must be within +-1 s, got {offset}')
            jitter = self._number(f'{stream}_jitter_s')
            if jitter < 0:
                raise ConfigError(f'{stream}_jitter_s must be >= 0, got {jitter}')
        for name in ('image_noise', 'force_noise_n', 'torque_noise_nm', 'position_noise_rad',
                     'velocity_noise_rad_s', 'effort_noise_nm', 'tool_mass_kg', 'force_bias_n',
                     'torque_bias_nm', 'force_drift_n_per_min', 'torque_drift_nm_per_min'):
            value = self._number(name)
            if value < 0 or math.isinf(value):
                raise ConfigError(f'{name} must be >= 0 and finite, got {value}')
        if abs(self._number('tool_com_offset_m')) > 0.5:
            raise ConfigError(f'tool_com_offset_m must be within +-0.5 m, got '
                              f'{self.tool_com_offset_m}')
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f'seed must be a non-negative integer, got {self.seed!r}')
        faults = tuple(self.faults)
        for spec in faults:
            if not isinstance(spec, FaultSpec):
                raise ConfigError(f'faults must be FaultSpec records, got {spec!r}')
        object.__setattr__(self, 'faults', faults)

    def _number(self, name: str) -> float:
        value = getattr(self, name)
        if isinstance(value, bool):
            raise ConfigError(f'{name} must be a number, got {value!r}')
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f'{name} must be a number, got {value!r}') from None
        if math.isnan(number):
            raise ConfigError(f'{name} is NaN')
        object.__setattr__(self, name, number)
        return number

    def ft_sensor_config(self) -> FTSensorConfig:
        """The wrist sensor model's parameters (``wrench_source='ft_sensor'``)."""
        return FTSensorConfig(
            tool_mass_kg=self.tool_mass_kg, tool_com_m=(0.0, 0.0, self.tool_com_offset_m),
            force_bias_n=self.force_bias_n, torque_bias_nm=self.torque_bias_nm,
            force_noise_n=self.force_noise_n, torque_noise_nm=self.torque_noise_nm,
            force_drift_n_per_min=self.force_drift_n_per_min,
            torque_drift_nm_per_min=self.torque_drift_nm_per_min)

    def rate(self, stream: str) -> float:
        """Rate (Hz) of ``'camera'``, ``'wrench'`` or ``'joints'``."""
        return float(getattr(self, f'{stream}_rate_hz'))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SimConfig:
        """Build from a flat mapping of field names (e.g. ROS parameters); unknown keys raise
        ConfigError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f'unknown sim parameters {unknown}')
        return cls(**dict(values))
