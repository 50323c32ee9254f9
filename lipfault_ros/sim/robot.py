"""The simulated robot: a pybullet Franka Panda on a table that reaches, presses, wipes,
inserts and pushes, seen by a camera and felt by a wrist force/torque sensor.

pybullet runs headless (DIRECT mode, TinyRenderer), so no display or GL is needed. The arm
repeats a randomised task (:mod:`lipfault_ros.sim.task`) that is in contact with the table or the
cube about 40 % of the time, so the force/torque stream shows real contact events and the camera
sees motion. Cube and clutter placement, lighting and the camera pose vary per seed
(:mod:`lipfault_ros.sim.scene`).

The wrist wrench (``SimConfig.wrench_source``) is by default that of a real wrist sensor
(``'ft_sensor'``, :mod:`lipfault_ros.sim.ft_sensor`): the tool's weight turning with the hand,
plus the contact forces, a per-episode offset and noise. ``'contact'`` is the ideal tared sensor:
only the sum of the contact forces on the hand and fingers in the hand frame, zero in free space.
pybullet's joint force/torque sensor on ``panda_hand_joint`` (``'joint_sensor'``) is available
too, but while the arm moves it reports velocity-proportional solver forces of tens of newtons
(about 85 N per m/s, measured) that no real sensor shows.

Streams are sampled at their own rates from one physics clock, stamped with per-stream clock
offsets and jitter, and pass through the fault library's
:class:`~lipfault_ros.faults.StreamFault` injectors. The same seed gives the same data.

Times: ``t_s`` is seconds of simulated time since the stream started; header stamps are integer
nanoseconds, ``origin_ns + (t_s + offset + jitter) * 1e9``. Faults and their truth intervals are
both placed on the stamp clock, so ``truth.labels_at(stamps)`` marks exactly the corrupted
samples.

Modules: :mod:`~lipfault_ros.sim.cell` (the pybullet world: bodies, arm, camera),
:mod:`~lipfault_ros.sim.sensors` (how each stream measures it, stamps and faults); this one
holds the robot's lifecycle, its control loop and the stepping that samples the streams.
"""

from __future__ import annotations

import logging
import math
import tempfile
from functools import partial
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from lipfault_ros.errors import SimError
from lipfault_ros.faults import FaultSpec, StreamFault
from lipfault_ros.sim.cell import (ARM_JOINTS, ARM_VELOCITY_LIMITS, FINGER_JOINTS, JOINT_NAMES,
                                   PandaCell)
from lipfault_ros.sim.config import SimConfig
from lipfault_ros.sim.ft_sensor import FTSensorModel
from lipfault_ros.sim.scene import SceneVariation
from lipfault_ros.sim.sensors import Sensors, signal_scale
from lipfault_ros.sim.task import TABLE_TOP_Z, Task, TaskStyle
from lipfault_ros.truth import FaultInterval
from lipfault_ros.tuples import ImageSample, Sample

# ARM_JOINTS, FINGER_JOINTS, JOINT_NAMES (sim.cell) and TABLE_TOP_Z (sim.task) are re-exported:
# they describe the robot this module simulates
__all__ = ['ARM_JOINTS', 'FINGER_JOINTS', 'JOINT_NAMES', 'SimRobot', 'TABLE_TOP_Z']

_log = logging.getLogger(__name__)

_STREAMS = ('camera', 'wrench', 'joints')


class SimRobot:
    """The simulated Panda cell (see the module docstring).

    Construct with a :class:`SimConfig`, then ``open()``/``close()`` or use as a context manager.
    :meth:`stream` yields samples for a given duration (offline recording); :meth:`advance` and
    :meth:`capture` step the same simulation piece by piece (the live node). ``origin_ns`` is the
    stamp of ``t_s = 0``.
    """

    def __init__(self, config: SimConfig | None = None, *, origin_ns: int = 0) -> None:
        self.config = config or SimConfig()
        self.origin_ns = int(origin_ns)
        self._client: int | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._intervals: list[FaultInterval] = []

    # ----------------------------------------------------------------------------- lifecycle
    def open(self) -> None:
        """Connect pybullet, build the scene, settle the arm and tare the wrist sensor."""
        import pybullet as pb
        import pybullet_data

        if self._client is not None:
            return
        cfg = self.config
        # one child stream per purpose, so adding draws to one never shifts another
        seeds = np.random.SeedSequence(cfg.seed).spawn(8)
        self._task_rng, self._noise_rng, self._jitter_rng, self._fault_seq, scene_seq = (
            np.random.default_rng(seeds[0]), np.random.default_rng(seeds[1]),
            np.random.default_rng(seeds[2]), seeds[3], np.random.default_rng(seeds[4]))
        self._ft_model = FTSensorModel(cfg.ft_sensor_config(), np.random.default_rng(seeds[5]))
        self._style = TaskStyle.draw(np.random.default_rng(seeds[6]))
        self._scene = SceneVariation.draw(np.random.default_rng(seeds[7]))
        self._pb = pb
        self._client = pb.connect(pb.DIRECT)
        if self._client < 0:
            self._client = None
            raise SimError('pybullet could not start a DIRECT physics server')
        try:
            self._build(pybullet_data.getDataPath(), scene_seq)
        except pb.error as exc:
            self.close()
            raise SimError(f'cannot build the sim scene: {exc}') from None
        self.set_faults(cfg.faults)
        _log.debug('sim robot open: %s', cfg)

    def close(self) -> None:
        if self._client is not None:
            try:
                self._pb.disconnect(physicsClientId=self._client)
            finally:
                self._client = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SimRobot:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_open(self) -> None:
        if self._client is None:
            raise SimError('the sim robot is not open; call open() or use it as a context '
                           'manager')

    # ----------------------------------------------------------------------------- scene
    def _build(self, data_path: str, rng: np.random.Generator) -> None:
        cfg = self.config
        urdf_dir = None
        if cfg.visual_meshes == 'collision':
            self._tmp = tempfile.TemporaryDirectory(prefix='lipfault_sim_')
            urdf_dir = Path(self._tmp.name)
        self._cell = cell = PandaCell(self._pb, self._client, Path(data_path), cfg, self._scene,
                                      rng, urdf_dir=urdf_dir)
        self._dt = cell.dt
        # settle at home before time zero, then tare the sensor (a real F/T sensor is biased
        # with the tool attached, so free-space readings are near zero)
        cell.settle(0.3)
        tool_weight = float(np.linalg.norm(cell.joint_sensor_reading()[:3]))
        self._task = Task(self._task_rng, cell.tip_position(),
                          partial(cell.cube_position, self._task_rng), self._style)
        self._sensors = Sensors(cell, cfg, origin_ns=self.origin_ns, noise_rng=self._noise_rng,
                                jitter_rng=self._jitter_rng, ft_model=self._ft_model,
                                tool_weight=tool_weight)
        self._step = 0
        self._control_every = max(1, int(round(cfg.physics_rate_hz / cfg.control_rate_hz)))
        self._next = {s: 0 for s in _STREAMS}
        self._contact = False
        self._q_cmd: np.ndarray | None = None
        self._last_capture_ns: int | None = None

    # ----------------------------------------------------------------------------- control
    def _control(self, t_s: float) -> None:
        pos, euler, grip = self._task.target(t_s)
        q = self._cell.joint_targets(pos, euler)
        q[7:] = grip
        # the arm's controller keeps to the joint velocity limits, as a real Panda's does: near
        # the shoulder singularity (joint 2 near 0) the inverse kinematics can jump to a
        # solution that turns joints 1 and 3 against each other, which unlimited took 11 rad/s
        # for a fifth of a second, a motion no Panda makes (it stops with a velocity-limit
        # error first); the first command starts from where the arm settled
        prev = self._cell.joint_states()[:, 0] if self._q_cmd is None else self._q_cmd
        step = ARM_VELOCITY_LIMITS / self.config.control_rate_hz
        q[:7] = prev[:7] + np.clip(q[:7] - prev[:7], -step, step)
        qd = (q - prev) * self.config.control_rate_hz
        qd[7:] = 0.0
        self._q_cmd = q
        self._cell.command(q, qd)
        self._contact = self._cell.touching()

    @property
    def in_contact(self) -> bool:
        """Whether the arm touched the table or the cube at the last control tick."""
        return self._contact

    @property
    def time_s(self) -> float:
        """Simulated seconds since the stream started."""
        self._require_open()
        return self._step * self._dt

    @property
    def joint_names(self) -> tuple[str, ...]:
        return JOINT_NAMES

    # ----------------------------------------------------------------------------- faults
    def set_faults(self, specs: Sequence[FaultSpec]) -> None:
        """Replace the injected faults (times in seconds since the stream started); callable
        while streaming."""
        self._require_open()
        children = self._fault_seq.spawn(len(specs))
        self._sensors.faults = [StreamFault(spec, np.random.default_rng(seq),
                                            scale=signal_scale(spec.modality))
                                for spec, seq in zip(specs, children)]
        self._intervals = [spec.interval(self.origin_ns) for spec in specs]

    @property
    def intervals(self) -> list[FaultInterval]:
        """Ground truth of the injected faults, on the stamp clock (int ns)."""
        return list(self._intervals)

    # ----------------------------------------------------------------------------- stepping
    def advance(self, until_s: float, *, camera: bool = True) -> list[Sample]:
        """Step the physics up to ``until_s`` (simulated seconds) and return the samples due
        with true sample times before ``until_s``, in time order. With ``camera=False`` no frames
        are rendered (the live node captures them on its own timer with :meth:`capture`)."""
        self._require_open()
        pb, cfg = self._pb, self.config
        out: list[tuple[float, int, Sample]] = []
        streams = _STREAMS if camera else _STREAMS[1:]
        rates = {s: cfg.rate(s) for s in _STREAMS}
        while True:
            now = self._step * self._dt
            for order, stream in enumerate(streams):
                while True:
                    t_k = self._next[stream] / rates[stream]
                    if t_k > now + 1e-12 or t_k >= until_s:
                        break
                    self._next[stream] += 1
                    sample = (self._sensors.image_sample if stream == 'camera' else
                              self._sensors.wrench_sample if stream == 'wrench' else
                              self._sensors.joint_sample)(t_k)
                    if sample is not None:
                        out.append((t_k, order, sample))
            if now >= until_s:
                break
            try:
                if self._step % self._control_every == 0:
                    self._control(now)
                self._cell.step()
            except pb.error as exc:
                raise SimError(f'physics step at t={now:.3f} s failed: {exc}') from None
            self._step += 1
        if not camera:
            self._next['camera'] = max(self._next['camera'],
                                       math.ceil(min(until_s, self.time_s) * rates['camera']))
        out.sort(key=lambda item: (item[0], item[1]))
        return [sample for _, _, sample in out]

    def capture(self) -> ImageSample:
        """Render a frame of the current state, stamped with the current simulated time (the
        live node's camera timer). Stamps stay strictly increasing even when two captures fall
        on the same physics step."""
        self._require_open()
        sample = self._sensors.image_sample(self.time_s)
        if self._last_capture_ns is not None and sample.stamp_ns <= self._last_capture_ns:
            sample = ImageSample(self._last_capture_ns + 1000, sample.frame_id, sample.image)
        self._last_capture_ns = sample.stamp_ns
        return sample

    def stream(self, duration_s: float, *, chunk_s: float = 0.1) -> Iterator[Sample]:
        """Samples of the next ``duration_s`` simulated seconds, in time order (offline use)."""
        self._require_open()
        if not duration_s > 0:
            raise SimError(f'duration must be > 0 s, got {duration_s}')
        end = self.time_s + float(duration_s)
        t = self.time_s
        while t < end:
            t = min(t + chunk_s, end)
            yield from self.advance(t)
