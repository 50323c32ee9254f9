"""Configuration of the simulated robot: rates, clocks, image size, noise, seed and faults.

One frozen record, validated on construction, shared by the recorder and the live node (whose
ROS parameters map one to one onto these fields). Rates are in Hz, times in seconds; each sensor
stream gets its own clock offset (header stamp minus true sample time) and jitter (standard
deviation of the stamp noise, clipped to a quarter period so stamps stay strictly increasing),
as on a real robot where camera, force/torque sensor and joint encoders run on separate clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from lipfault_ros.errors import ConfigError
from lipfault_ros.faults import FaultSpec
from lipfault_ros.settings import check_declared, param
from lipfault_ros.sim.ft_sensor import FTSensorConfig

__all__ = ['IMAGE_SIZE_RANGE', 'SIM_REVISION', 'SimConfig', 'VISUAL_MESHES', 'WRENCH_SOURCES']

#: Revision of what the simulator records, raised whenever the same seed starts to give data a
#: model trained on the old would notice (2: the arm keeps to the Panda's joint velocity
#: limits); a cached model made from simulated data is made again when it changes.
SIM_REVISION = 2

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

    camera_rate_hz: float = param(30.0, 'camera frame rate (Hz)', low=0.1, high=240.0,
                                  aliases=('--camera-rate',), metavar='HZ')
    wrench_rate_hz: float = param(500.0, 'force/torque rate (Hz)', low=1.0, high=5000.0,
                                  aliases=('--wrench-rate',), metavar='HZ')
    joints_rate_hz: float = param(250.0, 'joint state rate (Hz)', low=1.0, high=5000.0,
                                  aliases=('--joints-rate',), metavar='HZ')
    physics_rate_hz: float = param(500.0, 'physics step rate (Hz); at least the fastest stream '
                                          'and the controller', low=10.0, high=10000.0)
    #: the controller runs inverse kinematics and sets the motor targets
    control_rate_hz: float = param(100.0, 'arm controller rate (Hz)', low=1.0, high=1000.0)
    #: the model's default input size; the renderer can do larger
    image_width: int = param(128, 'camera image width (pixels)', low=IMAGE_SIZE_RANGE[0],
                             high=IMAGE_SIZE_RANGE[1])
    image_height: int = param(128, 'camera image height (pixels)', low=IMAGE_SIZE_RANGE[0],
                              high=IMAGE_SIZE_RANGE[1])
    visual_meshes: str = param('collision', 'Panda meshes the camera renders: light collision '
                               'meshes (fast) or detailed visual meshes', choices=VISUAL_MESHES)
    #: 'ft_sensor' reads like a real wrist sensor (the tool weight turning with the hand, plus
    #: contact forces, a per-episode offset and noise; never zero, so sign and gain faults show
    #: in free space too); 'contact' sums only the contact forces on the hand and fingers (an
    #: ideal tared sensor, zero in free space); 'joint_sensor' reads pybullet's joint
    #: force/torque sensor on panda_hand_joint minus the tool weight, which also shows
    #: velocity-dependent solver artefacts of tens of newtons while the arm moves
    wrench_source: str = param('ft_sensor', 'force/torque model: a real wrist sensor (tool '
                               'weight, contact, offset, noise), the ideal tared contact '
                               "forces, or pybullet's joint sensor", choices=WRENCH_SOURCES)
    # the 'ft_sensor' model (see sim/ft_sensor.py)
    #: the Franka Hand weighs 0.73 kg
    tool_mass_kg: float = param(0.73, 'ft_sensor: tool mass on the sensor (kg)', low=0.0,
                                high=20.0)
    #: it makes a tilted tool load the sensor with a torque
    tool_com_offset_m: float = param(0.03, "ft_sensor: tool's centre of mass along the tool "
                                           '(hand z) axis from the sensor origin (m)',
                                     low=-0.5, high=0.5)
    #: a real sensor's zero point differs after every power-up or re-bias
    force_bias_n: float = param(0.5, 'ft_sensor: per-episode force offset, standard deviation '
                                     'per axis (N)', low=0.0, high=100.0)
    torque_bias_nm: float = param(0.02, 'ft_sensor: per-episode torque offset (Nm)', low=0.0,
                                  high=10.0)
    #: thermal drift; 0: none
    force_drift_n_per_min: float = param(0.0, 'ft_sensor: drift rate of the force offset, '
                                              'standard deviation (N/min)', low=0.0, high=100.0)
    torque_drift_nm_per_min: float = param(0.0, 'ft_sensor: drift rate of the torque offset '
                                                '(Nm/min)', low=0.0, high=10.0)
    camera_offset_s: float = param(0.004, 'camera clock offset: stamp minus true time (s)',
                                   low=-1.0, high=1.0)
    wrench_offset_s: float = param(-0.001, 'force/torque clock offset (s)', low=-1.0, high=1.0)
    joints_offset_s: float = param(0.0015, 'joint state clock offset (s)', low=-1.0, high=1.0)
    camera_jitter_s: float = param(0.001, 'camera stamp jitter, standard deviation (s)',
                                   low=0.0, high=0.1)
    wrench_jitter_s: float = param(0.0001, 'force/torque stamp jitter (s)', low=0.0, high=0.1)
    joints_jitter_s: float = param(0.0002, 'joint state stamp jitter (s)', low=0.0, high=0.1)
    image_noise: float = param(2.0, 'camera pixel noise, standard deviation (grey levels '
                                    '0-255)', low=0.0, high=100.0)
    #: per sample: a 500 Hz F/T sensor
    force_noise_n: float = param(0.05, 'force noise, standard deviation (N)', low=0.0,
                                 high=100.0)
    torque_noise_nm: float = param(0.002, 'torque noise, standard deviation (Nm)', low=0.0,
                                   high=10.0)
    position_noise_rad: float = param(1e-4, 'joint position noise (rad; m for the fingers)',
                                      low=0.0, high=1.0)
    velocity_noise_rad_s: float = param(1e-3, 'joint velocity noise (rad/s)', low=0.0,
                                        high=10.0)
    effort_noise_nm: float = param(0.02, 'joint effort noise (Nm; N for the fingers)', low=0.0,
                                   high=100.0)
    seed: int = param(0, 'seed of task variation, noise, jitter and faults', low=0,
                      high=2**31 - 1)
    camera_frame_id: str = param('sim_camera', 'frame id of the camera images')
    wrench_frame_id: str = param('panda_hand', 'frame id of the force/torque readings')
    joints_frame_id: str = param('panda_link0', 'frame id of the joint states')
    #: faults to inject, times in seconds since the stream started
    faults: tuple[FaultSpec, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in ('image_width', 'image_height'):  # 128.0 from a YAML file is 128
            value = getattr(self, name)
            if isinstance(value, float) and value.is_integer():
                object.__setattr__(self, name, int(value))
        check_declared(self)
        fastest = max(self.wrench_rate_hz, self.joints_rate_hz, self.camera_rate_hz,
                      self.control_rate_hz)
        if self.physics_rate_hz < fastest:
            raise ConfigError(f'physics_rate_hz ({self.physics_rate_hz:g}) must be at least the '
                              f'fastest stream or control rate ({fastest:g})')
        faults = tuple(self.faults)
        for spec in faults:
            if not isinstance(spec, FaultSpec):
                raise ConfigError(f'faults must be FaultSpec records, got {spec!r}')
        object.__setattr__(self, 'faults', faults)

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
