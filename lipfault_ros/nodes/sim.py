"""``sim_node``: the simulated Panda cell as a live ROS 2 robot.

Publishes ``camera/image_raw`` (sensor_msgs/Image, rgb8), ``wrench`` (geometry_msgs/WrenchStamped)
and ``joint_states`` (sensor_msgs/JointState) with the sensor-data QoS, header stamps on the
node's clock and the configured frame ids; the fault ground truth on ``~/fault_truth``
(diagnostic_msgs/DiagnosticArray, 10 Hz and on every change); and, when asked, ``/clock``.

Physics runs in batches on a timer: every tick the simulation is stepped up to the time elapsed
since start and the wrench and joint samples due are published with their own (interpolated)
stamps, so 500 Hz force/torque needs no 500 Hz timer. Camera frames are rendered on their own
timer in their own callback group, so the render cost never delays the wrench stream by more than
one frame. A fault is set with the ``fault_*`` parameters at launch or at run time; invalid values
are rejected with the reason. The simulation itself lives in :mod:`lipfault_ros.sim`.
"""

from __future__ import annotations

import math
import sys
import threading
from dataclasses import dataclass
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import WrenchStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock as RosClock
from rclpy.clock import ClockType
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState

from lipfault_ros.errors import FaultError, LipfaultError
from lipfault_ros.faults import FaultSpec
from lipfault_ros.ros import convert
from lipfault_ros.ros.params import declare, param, read, shared_values
from lipfault_ros.settings import mirror
from lipfault_ros.ros.qos import QOS_NAMES, qos_profile
from lipfault_ros.ros.shutdown import run_node
from lipfault_ros.sim.config import SimConfig
from lipfault_ros.sim.robot import SimRobot
from lipfault_ros.topics import INPUT_NAMES, SIM_NODE, TRUTH_NAME
from lipfault_ros.truth import truth_status_fields
from lipfault_ros.tuples import ImageSample, JointSample, Modality, WrenchSample

__all__ = ['FAULT_PARAMETERS', 'NODE_NAME', 'SimNode', 'SimNodeParams', 'fault_spec', 'main']

NODE_NAME = SIM_NODE
#: The parameters that may change while the node runs; all others are read at start-up.
FAULT_PARAMETERS: tuple[str, ...] = ('fault_modality', 'fault_type', 'fault_severity',
                                     'fault_start_s', 'fault_duration_s')


@dataclass(frozen=True)
class SimNodeParams:
    """Every parameter of ``lipfault_sim``: the simulation's own settings mirrored from
    :class:`SimConfig`, where they are declared; the node's topics, QoS, tick, clock and fault
    parameters declared here."""

    camera_topic: str = param(INPUT_NAMES[Modality.CAMERA],
                              'camera image topic (sensor_msgs/Image)')
    wrench_topic: str = param(INPUT_NAMES[Modality.WRENCH],
                              'wrist force/torque topic (geometry_msgs/WrenchStamped)')
    joints_topic: str = param(INPUT_NAMES[Modality.JOINTS],
                              'joint state topic (sensor_msgs/JointState)')
    qos: str = param('sensor_data', 'QoS profile of the three sensor topics',
                     choices=QOS_NAMES)
    # the simulation's settings, declared on SimConfig (the tick is the node's own)
    camera_rate_hz: float = mirror(SimConfig, 'camera_rate_hz')
    wrench_rate_hz: float = mirror(SimConfig, 'wrench_rate_hz')
    joints_rate_hz: float = mirror(SimConfig, 'joints_rate_hz')
    physics_rate_hz: float = mirror(SimConfig, 'physics_rate_hz')
    control_rate_hz: float = mirror(SimConfig, 'control_rate_hz')
    tick_rate_hz: float = param(100.0, 'rate of the timer that steps the physics in batches and '
                                'publishes wrench and joint samples (Hz)', low=5.0, high=1000.0)
    image_width: int = mirror(SimConfig, 'image_width')
    image_height: int = mirror(SimConfig, 'image_height')
    visual_meshes: str = mirror(SimConfig, 'visual_meshes')
    wrench_source: str = mirror(SimConfig, 'wrench_source')
    tool_mass_kg: float = mirror(SimConfig, 'tool_mass_kg')
    tool_com_offset_m: float = mirror(SimConfig, 'tool_com_offset_m')
    force_bias_n: float = mirror(SimConfig, 'force_bias_n')
    torque_bias_nm: float = mirror(SimConfig, 'torque_bias_nm')
    force_drift_n_per_min: float = mirror(SimConfig, 'force_drift_n_per_min')
    torque_drift_nm_per_min: float = mirror(SimConfig, 'torque_drift_nm_per_min')
    camera_offset_s: float = mirror(SimConfig, 'camera_offset_s')
    wrench_offset_s: float = mirror(SimConfig, 'wrench_offset_s')
    joints_offset_s: float = mirror(SimConfig, 'joints_offset_s')
    camera_jitter_s: float = mirror(SimConfig, 'camera_jitter_s')
    wrench_jitter_s: float = mirror(SimConfig, 'wrench_jitter_s')
    joints_jitter_s: float = mirror(SimConfig, 'joints_jitter_s')
    image_noise: float = mirror(SimConfig, 'image_noise')
    force_noise_n: float = mirror(SimConfig, 'force_noise_n')
    torque_noise_nm: float = mirror(SimConfig, 'torque_noise_nm')
    position_noise_rad: float = mirror(SimConfig, 'position_noise_rad')
    velocity_noise_rad_s: float = mirror(SimConfig, 'velocity_noise_rad_s')
    effort_noise_nm: float = mirror(SimConfig, 'effort_noise_nm')
    seed: int = mirror(SimConfig, 'seed')
    camera_frame_id: str = mirror(SimConfig, 'camera_frame_id')
    wrench_frame_id: str = mirror(SimConfig, 'wrench_frame_id')
    joints_frame_id: str = mirror(SimConfig, 'joints_frame_id')
    publish_clock: bool = param(False, 'publish /clock (for nodes with use_sim_time)')
    truth_rate_hz: float = param(10.0, 'rate of ~/fault_truth (also sent on every change) (Hz)',
                                 low=0.1, high=100.0)
    fault_modality: str = param('', "modality to fault: camera, wrench, joints, or '' for none",
                                choices=('', 'camera', 'wrench', 'joints'))
    fault_type: str = param('', "fault kind (see `lipfault faults`), or '' for none")
    fault_severity: float = param(0.5, 'fault severity, in (0, 1]', low=0.0, high=1.0)
    fault_start_s: float = param(0.0, 'fault start, seconds after the node started (a start '
                                 'already past begins the fault now)', low=0.0, high=1e6)
    fault_duration_s: float = param(5.0, 'fault duration (s); 0 lasts until changed', low=0.0,
                                    high=1e6)

    def sim_config(self) -> SimConfig:
        """The simulation part of the parameters: every one named like a ``SimConfig`` field
        (whose default it takes from there)."""
        return SimConfig(**shared_values(self, SimConfig))


def fault_spec(values: dict[str, Any], now_s: float) -> FaultSpec | None:
    """The fault the ``fault_*`` values ask for (None for no fault); a start already past
    begins at ``now_s``. Raises FaultError/ConfigError naming the parameter."""
    modality, kind = str(values['fault_modality']), str(values['fault_type'])
    if not modality and kind in ('', 'none'):
        return None
    if not modality:
        raise FaultError(f"fault_type {kind!r} needs fault_modality (camera, wrench or "
                            f"joints)")
    if kind in ('', 'none'):
        return None
    duration = float(values['fault_duration_s'])
    return FaultSpec(modality, kind, float(values['fault_severity']),
                     max(float(values['fault_start_s']), now_s),
                     math.inf if duration <= 0 else duration)


class SimNode(Node):
    """The simulated robot node (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.robot: SimRobot | None = None
        self._lock = threading.RLock()
        self.counts = {'camera': 0, 'wrench': 0, 'joints': 0}  # messages published
        try:
            self._setup()
        except Exception:
            self.destroy_node()  # a node that cannot start leaves nothing behind
            raise

    def _setup(self) -> None:
        declare(self, SimNodeParams)
        self.params = read(self, SimNodeParams)
        config = self.params.sim_config()
        # the simulation advances with a steady clock and stamps from the node's clock at start:
        # with use_sim_time the node's clock is the /clock this simulator itself publishes, so
        # nothing may wait for it (time and timers would never start)
        self._steady = RosClock(clock_type=ClockType.STEADY_TIME)
        self._steady_start = self._steady.now().nanoseconds
        self._sim_time = bool(self.get_parameter('use_sim_time').value)
        self._origin_ns = self.get_clock().now().nanoseconds
        spec = fault_spec({n: getattr(self.params, n) for n in FAULT_PARAMETERS}, 0.0)
        self.robot = SimRobot(config, origin_ns=self._origin_ns)
        self.robot.open()
        self.robot.set_faults([spec] if spec else [])

        sensor_qos = qos_profile(self.params.qos, depth=10)
        p = self.params
        self._image_pub = self.create_publisher(Image, p.camera_topic, sensor_qos)
        self._wrench_pub = self.create_publisher(WrenchStamped, p.wrench_topic, sensor_qos)
        self._joints_pub = self.create_publisher(JointState, p.joints_topic, sensor_qos)
        self._truth_pub = self.create_publisher(DiagnosticArray, f'~/{TRUTH_NAME}',
                                                qos_profile('reliable', depth=10))
        clock_source = p.publish_clock or self._sim_time
        if self._sim_time and not p.publish_clock:
            self.get_logger().info('use_sim_time: this simulator is the clock source; '
                                   'publishing /clock')
        self._clock_pub = self.create_publisher(Clock, '/clock', 10) if clock_source else None
        physics_group = MutuallyExclusiveCallbackGroup()
        camera_group = MutuallyExclusiveCallbackGroup()
        truth_group = MutuallyExclusiveCallbackGroup()
        steady = self._steady
        self.create_timer(1.0 / p.tick_rate_hz, self._on_tick, callback_group=physics_group,
                          clock=steady)
        self.create_timer(1.0 / p.camera_rate_hz, self._on_camera, callback_group=camera_group,
                          clock=steady)
        self.create_timer(1.0 / p.truth_rate_hz, self._publish_truth, callback_group=truth_group,
                          clock=steady)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(
            f'simulating the Panda cell: camera {p.camera_rate_hz:g} Hz '
            f'{p.image_width}x{p.image_height}, wrench {p.wrench_rate_hz:g} Hz, joints '
            f'{p.joints_rate_hz:g} Hz, seed {p.seed}' + (f', fault {spec}' if spec else ''))
        self._publish_truth()

    # ----------------------------------------------------------------------- callbacks
    def _elapsed_s(self) -> float:
        return (self._steady.now().nanoseconds - self._steady_start) * 1e-9

    def _step(self) -> list[Any]:
        """Advance the physics to the clock; the wrench and joint samples that fell due.
        Call with the lock held (stepping and publishing together keep stamps in order)."""
        target = self._elapsed_s()
        behind = target - self.robot.time_s
        if behind > 1.0:
            self.get_logger().warning(f'the simulation runs {behind:.1f} s behind the clock',
                                      throttle_duration_sec=5.0)
        return self.robot.advance(target, camera=False)

    def _publish(self, samples: list[Any]) -> None:
        for sample in samples:
            hdr = convert.header(sample.stamp_ns, sample.frame_id)
            if isinstance(sample, WrenchSample):
                self._wrench_pub.publish(convert.wrench_msg(sample.values, hdr))
                self.counts['wrench'] += 1
            elif isinstance(sample, JointSample):
                self._joints_pub.publish(convert.joint_state_msg(
                    sample.names, sample.position, sample.velocity, sample.effort, hdr))
                self.counts['joints'] += 1
            elif isinstance(sample, ImageSample):
                self._image_pub.publish(convert.image_msg(sample.image, hdr))
                self.counts['camera'] += 1

    def _on_tick(self) -> None:
        with self._lock:
            self._publish(self._step())
            if self._clock_pub is not None:
                sim_ns = self._origin_ns + int(round(self.robot.time_s * 1e9))
                self._clock_pub.publish(Clock(clock=convert.to_time(sim_ns)))

    def _on_camera(self) -> None:
        # catch the physics up first, so the frame shows the present and stamps stay ordered
        with self._lock:
            samples = self._step()
            self._publish(samples + [self.robot.capture()])

    def _publish_truth(self) -> None:
        with self._lock:
            now_ns = self._origin_ns + int(round(self.robot.time_s * 1e9))  # the sim's present
            intervals = self.robot.intervals
        statuses = [convert.diagnostic_status(
            f['name'], bytes([f['level']]), f['message'], hardware_id=NODE_NAME,
            values=f['values']) for f in truth_status_fields(intervals, now_ns)]
        self._truth_pub.publish(convert.diagnostic_array(now_ns, statuses))

    def _on_set_parameters(self, parameters: list[Any]) -> SetParametersResult:
        changed = {p.name: p.value for p in parameters}
        fixed = sorted(set(changed) - set(FAULT_PARAMETERS) - {'use_sim_time'})
        if fixed:
            live = ', '.join(FAULT_PARAMETERS)
            return SetParametersResult(
                successful=False, reason=f'{", ".join(fixed)} are read at start-up; restart the '
                                         f'node to change them (only {live} change at run time)')
        if not set(changed) & set(FAULT_PARAMETERS):
            return SetParametersResult(successful=True)
        values = {n: self.get_parameter(n).value for n in FAULT_PARAMETERS}
        values.update({k: v for k, v in changed.items() if k in FAULT_PARAMETERS})
        try:
            spec = fault_spec(values, self._elapsed_s())
        except LipfaultError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        with self._lock:
            self.robot.set_faults([spec] if spec else [])
        self.get_logger().info(f'fault set to {spec}' if spec else 'fault cleared')
        self._publish_truth()
        return SetParametersResult(successful=True)

    def destroy_node(self) -> None:
        if self.robot is not None:
            with self._lock:
                self.robot.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console script ``sim_node`` (three executor threads: stepping, camera, parameters)."""
    return run_node(SimNode, lambda: MultiThreadedExecutor(num_threads=3), args,
                    name=NODE_NAME, refused=(LipfaultError, InvalidParameterTypeException,
                                             InvalidParameterValueException))

if __name__ == '__main__':
    sys.exit(main())
