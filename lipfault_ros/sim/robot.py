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
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from lipfault_ros.errors import SimError
from lipfault_ros.faults import FaultSpec, StreamFault
from lipfault_ros.sim.config import SimConfig
from lipfault_ros.sim.ft_sensor import FTSensorModel, cross3
from lipfault_ros.sim.scene import CLUTTER, SceneVariation
from lipfault_ros.sim.task import TABLE_TOP_Z, WORKSPACE, Task, TaskStyle
from lipfault_ros.truth import FaultInterval
from lipfault_ros.tuples import ImageSample, JointSample, Modality, Sample, WrenchSample

__all__ = ['ARM_JOINTS', 'FINGER_JOINTS', 'JOINT_NAMES', 'SimRobot', 'TABLE_TOP_Z']

_log = logging.getLogger(__name__)

ARM_JOINTS: tuple[str, ...] = tuple(f'panda_joint{i}' for i in range(1, 8))
FINGER_JOINTS: tuple[str, ...] = ('panda_finger_joint1', 'panda_finger_joint2')
#: Names of the joint_states message, in order.
JOINT_NAMES: tuple[str, ...] = ARM_JOINTS + FINGER_JOINTS

_HOME = (0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.785, 0.04, 0.04)
_FT_JOINT = 'panda_hand_joint'   # fixed joint between the flange and the hand: the wrist sensor
_TIP_LINK = 'panda_grasptarget'  # the point between the fingertips the task moves
_STREAMS = ('camera', 'wrench', 'joints')
_CONTACT_STIFFNESS = 4000.0  # N/m
_CONTACT_DAMPING = 200.0     # N s/m
_POSITION_GAIN = 0.08
_VELOCITY_GAIN = 1.0
# Nominal signal scale per channel, used to size signal faults (StreamFault ``scale``).
_WRENCH_SCALE = np.array([5.0, 5.0, 5.0, 0.5, 0.5, 0.5])
_JOINT_SCALE = np.concatenate([np.full(9, 0.3), np.full(9, 0.3),
                               np.r_[np.full(7, 5.0), np.full(2, 1.0)]])


def _light_urdf(data_path: Path, out_dir: Path) -> Path:
    """A copy of the Panda URDF that renders its light collision meshes instead of the detailed
    visual ones (TinyRenderer time scales with triangles: ~3 ms instead of ~17 ms per frame)."""
    src = data_path / 'franka_panda'
    text = (src / 'panda.urdf').read_text()
    text = re.sub(r'package://meshes/visual/(\w+)\.obj',
                  lambda m: str(src / 'meshes' / 'collision' / f'{m.group(1)}.obj'), text)
    text = text.replace('package://meshes/', f'{src}/meshes/')
    path = out_dir / 'panda_light.urdf'
    path.write_text(text)
    return path


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
        self._faults: list[StreamFault] = []
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
        pb, cid, cfg = self._pb, self._client, self.config
        pb.setGravity(0, 0, -9.81, physicsClientId=cid)
        self._dt = 1.0 / cfg.physics_rate_hz
        pb.setTimeStep(self._dt, physicsClientId=cid)

        def box(half: Sequence[float], pos: Sequence[float], rgba: Sequence[float],
                mass: float = 0.0) -> int:
            col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=cid)
            vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=rgba,
                                       physicsClientId=cid)
            return pb.createMultiBody(mass, col, vis, pos, physicsClientId=cid)

        self._table = box([0.75, 0.55, 0.025], [0.4, 0.0, TABLE_TOP_Z - 0.025],
                          [0.55, 0.42, 0.3, 1])
        box([0.02, 0.9, 0.4], [-0.5, 0.0, TABLE_TOP_Z + 0.4], [0.8, 0.82, 0.85, 1])
        # a compliant table top: a stiff contact would make presses read hundreds of newtons
        pb.changeDynamics(self._table, -1, contactStiffness=_CONTACT_STIFFNESS,
                          contactDamping=_CONTACT_DAMPING, lateralFriction=0.4,
                          physicsClientId=cid)
        # a 0.4 kg block with grip on the table: pushing it takes ~1 N the wrist sensor can feel
        self._cube = box([0.025, 0.025, 0.025], self._random_cube_pos(rng), [0.85, 0.15, 0.1, 1],
                         mass=0.4)
        pb.changeDynamics(self._cube, -1, lateralFriction=0.8,
                          contactStiffness=_CONTACT_STIFFNESS, contactDamping=_CONTACT_DAMPING,
                          physicsClientId=cid)
        # static clutter the camera sees and the arm avoids
        for (x, y, height), (_, rgba) in zip(self._scene.clutter, CLUTTER):
            box([0.04, 0.04, height / 2], [x, y, TABLE_TOP_Z + height / 2], rgba)

        if self.config.visual_meshes == 'collision':
            self._tmp = tempfile.TemporaryDirectory(prefix='lipfault_sim_')
            urdf = str(_light_urdf(Path(data_path), Path(self._tmp.name)))
        else:
            urdf = str(Path(data_path) / 'franka_panda' / 'panda.urdf')
        self._robot = pb.loadURDF(urdf, [0, 0, TABLE_TOP_Z], useFixedBase=True,
                                  physicsClientId=cid)
        index = {pb.getJointInfo(self._robot, j, physicsClientId=cid)[1].decode(): j
                 for j in range(pb.getNumJoints(self._robot, physicsClientId=cid))}
        links = {pb.getJointInfo(self._robot, j, physicsClientId=cid)[12].decode(): j
                 for j in range(pb.getNumJoints(self._robot, physicsClientId=cid))}
        missing = [n for n in JOINT_NAMES + (_FT_JOINT,) if n not in index]
        if missing:
            raise SimError(f'the Panda URDF lacks joints {missing}')
        self._joints = [index[n] for n in JOINT_NAMES]
        self._ft = index[_FT_JOINT]
        self._tip = links[_TIP_LINK]
        info = [pb.getJointInfo(self._robot, j, physicsClientId=cid) for j in self._joints]
        self._lower = [i[8] for i in info]
        self._upper = [i[9] for i in info]
        self._ranges = [u - lo for lo, u in zip(self._lower, self._upper)]
        self._max_force = [i[10] for i in info]
        for j, q in zip(self._joints, _HOME):
            pb.resetJointState(self._robot, j, q, physicsClientId=cid)
        pb.enableJointForceTorqueSensor(self._robot, self._ft, True, physicsClientId=cid)

        # camera: fixed, in front of the robot, looking at the workspace (pose varies by seed)
        scene = self._scene
        self._view = pb.computeViewMatrix(scene.camera_eye, scene.camera_target, scene.camera_up,
                                          physicsClientId=cid)
        self._light = scene.light_kwargs()
        self._proj = pb.computeProjectionMatrixFOV(
            55.0, cfg.image_width / cfg.image_height, 0.05, 6.0, physicsClientId=cid)

        # settle at home before time zero, then tare the sensor (a real F/T sensor is biased
        # with the tool attached, so free-space readings are near zero)
        self._command(np.array(_HOME))
        for _ in range(int(0.3 / self._dt)):
            pb.stepSimulation(physicsClientId=cid)
        self._hand = links['panda_hand']
        self._tool_links = frozenset(links[n] for n in ('panda_hand', 'panda_leftfinger',
                                                        'panda_rightfinger'))
        self._tool_weight = float(np.linalg.norm(self._joint_sensor_reading()[:3]))
        start = pb.getLinkState(self._robot, self._tip, physicsClientId=cid)[4]
        self._task = Task(self._task_rng, tuple(start), self._cube_position, self._style)
        self._step = 0
        self._control_every = max(1, int(round(cfg.physics_rate_hz / cfg.control_rate_hz)))
        self._next = {s: 0 for s in _STREAMS}
        self._contact = False
        self._q_cmd: np.ndarray | None = None
        self._noise_bank: np.ndarray | None = None
        self._last_capture_ns: int | None = None
        self._wrench_sd = np.r_[np.full(3, cfg.force_noise_n), np.full(3, cfg.torque_noise_nm)]

    def _random_cube_pos(self, rng: np.random.Generator) -> list[float]:
        (x0, x1), (y0, y1) = WORKSPACE
        return [float(rng.uniform(x0 + 0.05, x1 - 0.05)), float(rng.uniform(y0 + 0.05, y1 - 0.05)),
                TABLE_TOP_Z + 0.025]

    def _cube_position(self) -> tuple[float, float, float]:
        pb = self._pb
        pos, _ = pb.getBasePositionAndOrientation(self._cube, physicsClientId=self._client)
        (x0, x1), (y0, y1) = WORKSPACE
        if not (x0 <= pos[0] <= x1 and y0 <= pos[1] <= y1) or pos[2] < TABLE_TOP_Z:
            new = self._random_cube_pos(self._task_rng)
            pb.resetBasePositionAndOrientation(self._cube, new, [0, 0, 0, 1],
                                               physicsClientId=self._client)
            return tuple(new)
        return tuple(pos)

    # ----------------------------------------------------------------------------- control
    def _command(self, q: np.ndarray, qd: np.ndarray | None = None) -> None:
        pb = self._pb
        pb.setJointMotorControlArray(self._robot, self._joints, pb.POSITION_CONTROL,
                                     targetPositions=list(q),
                                     targetVelocities=list(np.zeros(9) if qd is None else qd),
                                     forces=self._max_force,
                                     positionGains=[_POSITION_GAIN] * 7 + [0.2, 0.2],
                                     velocityGains=[_VELOCITY_GAIN] * 7 + [1.0, 1.0],
                                     physicsClientId=self._client)

    def _control(self, t_s: float) -> None:
        pb, cid = self._pb, self._client
        pos, euler, grip = self._task.target(t_s)
        orn = pb.getQuaternionFromEuler(euler)
        q = pb.calculateInverseKinematics(
            self._robot, self._tip, list(pos), orn, lowerLimits=self._lower,
            upperLimits=self._upper, jointRanges=self._ranges, restPoses=list(_HOME),
            maxNumIterations=20, physicsClientId=cid)
        q = np.array(q[:9])
        q[7:] = grip
        qd = np.zeros(9) if self._q_cmd is None else \
            (q - self._q_cmd) * self.config.control_rate_hz
        qd[7:] = 0.0
        self._q_cmd = q
        self._command(q, qd)
        self._contact = bool(pb.getContactPoints(self._robot, self._table, physicsClientId=cid)
                             or pb.getContactPoints(self._robot, self._cube, physicsClientId=cid))

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

    # ----------------------------------------------------------------------------- sensors
    def _joint_sensor_reading(self) -> np.ndarray:
        state = self._pb.getJointState(self._robot, self._ft, physicsClientId=self._client)
        return np.asarray(state[2], np.float64)

    def _hand_frame(self) -> tuple[np.ndarray, np.ndarray]:
        pb = self._pb
        state = pb.getLinkState(self._robot, self._hand, physicsClientId=self._client)
        rot = np.asarray(pb.getMatrixFromQuaternion(state[5]), np.float64).reshape(3, 3)
        return np.asarray(state[4], np.float64), rot

    def _wrench_values(self, t_s: float) -> np.ndarray:
        """The wrist reading [fx, fy, fz, tx, ty, tz] in the hand frame, as the configured
        ``wrench_source`` measures it, noise included."""
        origin, rot = self._hand_frame()
        source = self.config.wrench_source
        if source == 'ft_sensor':
            return self._ft_model.read(rot, self._contact_wrench(origin, rot), t_s,
                                       self._noise_rng)
        if source == 'joint_sensor':  # tared: tool weight removed
            raw = self._joint_sensor_reading()
            raw[:3] -= rot.T @ np.array([0.0, 0.0, self._tool_weight])
        else:
            raw = self._contact_wrench(origin, rot)
        return raw + self._noise_rng.normal(0.0, 1.0, 6) * self._wrench_sd

    def _contact_wrench(self, origin: np.ndarray, rot: np.ndarray) -> np.ndarray:
        """The summed contact wrench on hand and fingers, in the hand frame about its origin."""
        points = [c for c in self._pb.getContactPoints(bodyA=self._robot,
                                                       physicsClientId=self._client)
                  if c[3] in self._tool_links]
        if not points:
            return np.zeros(6)
        # normal force and the two friction forces along their directions, per point
        size = np.array([(c[9], c[10], c[12]) for c in points])
        axes = np.array([(c[7], c[11], c[13]) for c in points])
        forces = np.einsum('nk,nkj->nj', size, axes)
        arms = np.array([c[5] for c in points]) - origin
        return np.concatenate([rot.T @ forces.sum(axis=0),
                               rot.T @ cross3(arms, forces).sum(axis=0)])

    def _stamp(self, stream: str, t_s: float) -> int:
        cfg = self.config
        jitter_sd = getattr(cfg, f'{stream}_jitter_s')
        limit = 0.25 / cfg.rate(stream)
        jitter = min(max(self._jitter_rng.normal(0.0, jitter_sd), -limit), limit) \
            if jitter_sd > 0 else 0.0
        return self.origin_ns + int(round((t_s + getattr(cfg, f'{stream}_offset_s') + jitter)
                                          * 1e9))

    def _fault_time(self, stamp_ns: int) -> float:
        return (stamp_ns - self.origin_ns) * 1e-9

    def _faulted(self, modality: Modality) -> list[StreamFault]:
        return [f for f in self._faults if f.spec.modality is modality]

    def _wrench_sample(self, t_s: float) -> WrenchSample | None:
        cfg = self.config
        values = self._wrench_values(t_s)
        stamp = self._stamp('wrench', t_s)
        for fault in self._faulted(Modality.WRENCH):
            values = fault.apply_values(self._fault_time(stamp), values)
            if values is None:
                return None
        return WrenchSample(stamp, cfg.wrench_frame_id, values)

    def _joint_sample(self, t_s: float) -> JointSample | None:
        cfg, pb = self.config, self._pb
        states = pb.getJointStates(self._robot, self._joints, physicsClientId=self._client)
        arr = np.array([[s[0], s[1], s[3]] for s in states], np.float64)  # (9, 3)
        arr += self._noise_rng.normal(0.0, 1.0, arr.shape) * (
            cfg.position_noise_rad, cfg.velocity_noise_rad_s, cfg.effort_noise_nm)
        stamp = self._stamp('joints', t_s)
        values = arr.T.reshape(-1)  # [positions..., velocities..., efforts...]
        for fault in self._faulted(Modality.JOINTS):
            values = fault.apply_values(self._fault_time(stamp), values)
            if values is None:
                return None
        n = len(JOINT_NAMES)
        return JointSample(stamp, cfg.joints_frame_id, JOINT_NAMES, values[:n].copy(),
                           values[n:2 * n].copy(), values[2 * n:].copy())

    def _render(self) -> np.ndarray:
        pb, cfg = self._pb, self.config
        _, _, rgba, _, _ = pb.getCameraImage(
            cfg.image_width, cfg.image_height, self._view, self._proj,
            renderer=pb.ER_TINY_RENDERER, flags=pb.ER_NO_SEGMENTATION_MASK, shadow=0,
            physicsClientId=self._client, **self._light)
        image = np.asarray(rgba, np.uint8).reshape(cfg.image_height, cfg.image_width, 4)[..., :3]
        if cfg.image_noise > 0:
            # a bank of pre-drawn noise frames, picked and rolled at random: a fresh draw per
            # frame would cost as much as the rendering
            if self._noise_bank is None:
                self._noise_bank = np.rint(self._noise_rng.normal(
                    0.0, cfg.image_noise, (8, *image.shape))).astype(np.int16)
            k, dy, dx = self._noise_rng.integers(0, (8, cfg.image_height, cfg.image_width))
            noise = np.roll(self._noise_bank[k], (int(dy), int(dx)), axis=(0, 1))
            image = np.clip(image + noise, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(image)

    def _image_sample(self, t_s: float) -> ImageSample | None:
        image = self._render()
        stamp = self._stamp('camera', t_s)
        for fault in self._faulted(Modality.CAMERA):
            image = fault.apply_image(self._fault_time(stamp), image)
        return ImageSample(stamp, self.config.camera_frame_id, image)

    # ----------------------------------------------------------------------------- faults
    def set_faults(self, specs: Sequence[FaultSpec]) -> None:
        """Replace the injected faults (times in seconds since the stream started); callable
        while streaming."""
        self._require_open()
        children = self._fault_seq.spawn(len(specs))
        faults = []
        for spec, seq in zip(specs, children):
            scale = {Modality.WRENCH: _WRENCH_SCALE, Modality.JOINTS: _JOINT_SCALE}.get(
                spec.modality, 1.0)
            faults.append(StreamFault(spec, np.random.default_rng(seq), scale=scale))
        self._faults = faults
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
        pb, cid, cfg = self._pb, self._client, self.config
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
                    sample = (self._image_sample if stream == 'camera' else
                              self._wrench_sample if stream == 'wrench' else
                              self._joint_sample)(t_k)
                    if sample is not None:
                        out.append((t_k, order, sample))
            if now >= until_s:
                break
            try:
                if self._step % self._control_every == 0:
                    self._control(now)
                pb.stepSimulation(physicsClientId=cid)
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
        sample = self._image_sample(self.time_s)
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
