"""The Panda cell as pybullet holds it: the table, the wall, the cube, the clutter, the arm loaded
from its URDF and the fixed camera; commanding the arm and reading its state.

Why a class of its own: everything here is a pybullet body id, a joint index or a call on the
physics server, and none of it depends on how a sensor measures or when it samples. The sensor
models (:mod:`lipfault_ros.sim.sensors`) read the cell through these methods, and the robot
(:mod:`lipfault_ros.sim.robot`) steps it. World frame in metres, joint values in rad and rad/s,
efforts and forces in N / N m, all as pybullet reports them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lipfault_ros.errors import SimError
from lipfault_ros.model.config import PANDA_JOINTS
from lipfault_ros.sim.config import SimConfig
from lipfault_ros.sim.ft_sensor import cross3
from lipfault_ros.sim.scene import CLUTTER, SceneVariation
from lipfault_ros.sim.task import TABLE_TOP_Z, WORKSPACE

__all__ = ['ARM_JOINTS', 'ARM_VELOCITY_LIMITS', 'FINGER_JOINTS', 'JOINT_NAMES', 'PandaCell',
           'random_cube_position']

#: the arm's joints: the model's joints
ARM_JOINTS: tuple[str, ...] = PANDA_JOINTS
#: the arm's joint velocity limits (rad/s, the Franka Panda's datasheet), in ``ARM_JOINTS`` order
ARM_VELOCITY_LIMITS = np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61])
FINGER_JOINTS: tuple[str, ...] = ('panda_finger_joint1', 'panda_finger_joint2')
#: Names of the joint_states message, in order.
JOINT_NAMES: tuple[str, ...] = ARM_JOINTS + FINGER_JOINTS

_HOME = (0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.785, 0.04, 0.04)
_FT_JOINT = 'panda_hand_joint'   # fixed joint between the flange and the hand: the wrist sensor
_TIP_LINK = 'panda_grasptarget'  # the point between the fingertips the task moves
_CONTACT_STIFFNESS = 4000.0  # N/m
_CONTACT_DAMPING = 200.0     # N s/m
_POSITION_GAIN = 0.08
_VELOCITY_GAIN = 1.0


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


def random_cube_position(rng: np.random.Generator) -> list[float]:
    """A cube position on the table inside the task's workspace (5 cm clear of its edges)."""
    (x0, x1), (y0, y1) = WORKSPACE
    return [float(rng.uniform(x0 + 0.05, x1 - 0.05)), float(rng.uniform(y0 + 0.05, y1 - 0.05)),
            TABLE_TOP_Z + 0.025]


class PandaCell:
    """The cell built on a connected pybullet client (see the module docstring).

    ``data_path`` is ``pybullet_data``'s folder; ``rng`` draws the cube's start position;
    ``urdf_dir`` is where the light-mesh URDF is written when ``config.visual_meshes`` is
    ``'collision'`` (the caller owns that folder). The arm starts at its home pose with the wrist
    sensor enabled; :meth:`settle` lets it come to rest there.
    """

    def __init__(self, pb: Any, client: int, data_path: Path, config: SimConfig,
                 scene: SceneVariation, rng: np.random.Generator, *,
                 urdf_dir: Path | None = None) -> None:
        self._pb, self._client, self.config = pb, client, config
        cid, cfg = client, config
        pb.setGravity(0, 0, -9.81, physicsClientId=cid)
        #: physics step (s)
        self.dt = 1.0 / cfg.physics_rate_hz
        pb.setTimeStep(self.dt, physicsClientId=cid)

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
        self._cube = box([0.025, 0.025, 0.025], random_cube_position(rng), [0.85, 0.15, 0.1, 1],
                         mass=0.4)
        pb.changeDynamics(self._cube, -1, lateralFriction=0.8,
                          contactStiffness=_CONTACT_STIFFNESS, contactDamping=_CONTACT_DAMPING,
                          physicsClientId=cid)
        # static clutter the camera sees and the arm avoids
        for (x, y, height), (_, rgba) in zip(scene.clutter, CLUTTER):
            box([0.04, 0.04, height / 2], [x, y, TABLE_TOP_Z + height / 2], rgba)

        if urdf_dir is not None:
            urdf = str(_light_urdf(data_path, urdf_dir))
        else:
            urdf = str(data_path / 'franka_panda' / 'panda.urdf')
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
        self._hand = links['panda_hand']
        self._tool_links = frozenset(links[n] for n in ('panda_hand', 'panda_leftfinger',
                                                        'panda_rightfinger'))
        info = [pb.getJointInfo(self._robot, j, physicsClientId=cid) for j in self._joints]
        self._lower = [i[8] for i in info]
        self._upper = [i[9] for i in info]
        self._ranges = [u - lo for lo, u in zip(self._lower, self._upper)]
        self._max_force = [i[10] for i in info]
        for j, q in zip(self._joints, _HOME):
            pb.resetJointState(self._robot, j, q, physicsClientId=cid)
        pb.enableJointForceTorqueSensor(self._robot, self._ft, True, physicsClientId=cid)

        # camera: fixed, in front of the robot, looking at the workspace (pose varies by seed)
        self._view = pb.computeViewMatrix(scene.camera_eye, scene.camera_target, scene.camera_up,
                                          physicsClientId=cid)
        self._light = scene.light_kwargs()
        self._proj = pb.computeProjectionMatrixFOV(
            55.0, cfg.image_width / cfg.image_height, 0.05, 6.0, physicsClientId=cid)

    # ----------------------------------------------------------------------------- world
    def step(self) -> None:
        """One physics step of :attr:`dt` seconds (pybullet's error propagates)."""
        self._pb.stepSimulation(physicsClientId=self._client)

    def settle(self, seconds: float) -> None:
        """Hold the home pose for ``seconds`` of physics, so the arm rests before time zero."""
        self.command(np.array(_HOME))
        for _ in range(int(seconds / self.dt)):
            self.step()

    def cube_position(self, rng: np.random.Generator) -> tuple[float, float, float]:
        """Where the cube is; one pushed off the workspace or the table is put back at a
        position drawn from ``rng``, so the task always has a cube to reach."""
        pb = self._pb
        pos, _ = pb.getBasePositionAndOrientation(self._cube, physicsClientId=self._client)
        (x0, x1), (y0, y1) = WORKSPACE
        if not (x0 <= pos[0] <= x1 and y0 <= pos[1] <= y1) or pos[2] < TABLE_TOP_Z:
            new = random_cube_position(rng)
            pb.resetBasePositionAndOrientation(self._cube, new, [0, 0, 0, 1],
                                               physicsClientId=self._client)
            return tuple(new)
        return tuple(pos)

    def touching(self) -> bool:
        """Whether the arm touches the table or the cube now."""
        pb, cid = self._pb, self._client
        return bool(pb.getContactPoints(self._robot, self._table, physicsClientId=cid)
                    or pb.getContactPoints(self._robot, self._cube, physicsClientId=cid))

    # ----------------------------------------------------------------------------- arm
    def command(self, q: np.ndarray, qd: np.ndarray | None = None) -> None:
        """Position control of the nine joints towards ``q`` (rad) at ``qd`` (rad/s, default 0)."""
        pb = self._pb
        qd = np.zeros(9) if qd is None else qd
        for i, joint in enumerate(self._joints):
            arm = i < len(ARM_JOINTS)
            # the motor never turns an arm joint faster than its limit (the controller's command
            # keeps to it too, see SimRobot._control; this bounds the catching up after a lag)
            limit = {'maxVelocity': float(ARM_VELOCITY_LIMITS[i])} if arm else {}
            pb.setJointMotorControl2(self._robot, joint, pb.POSITION_CONTROL,
                                     targetPosition=float(q[i]), targetVelocity=float(qd[i]),
                                     force=self._max_force[i],
                                     positionGain=_POSITION_GAIN if arm else 0.2,
                                     velocityGain=_VELOCITY_GAIN if arm else 1.0,
                                     physicsClientId=self._client, **limit)

    def joint_targets(self, pos: Sequence[float], euler: Sequence[float]) -> np.ndarray:
        """Joint positions (9,) that put the fingertip point at ``pos`` with orientation
        ``euler`` (inverse kinematics within the joint limits, rest pose home)."""
        pb = self._pb
        orn = pb.getQuaternionFromEuler(euler)
        q = pb.calculateInverseKinematics(
            self._robot, self._tip, list(pos), orn, lowerLimits=self._lower,
            upperLimits=self._upper, jointRanges=self._ranges, restPoses=list(_HOME),
            maxNumIterations=20, physicsClientId=self._client)
        return np.array(q[:9])

    def tip_position(self) -> tuple[float, float, float]:
        """World position of the point between the fingertips."""
        state = self._pb.getLinkState(self._robot, self._tip, physicsClientId=self._client)
        return tuple(state[4])

    def joint_states(self) -> np.ndarray:
        """(9, 3) position, velocity and applied effort of each joint in ``JOINT_NAMES`` order."""
        states = self._pb.getJointStates(self._robot, self._joints, physicsClientId=self._client)
        return np.array([[s[0], s[1], s[3]] for s in states], np.float64)

    # ----------------------------------------------------------------------------- wrist, camera
    def joint_sensor_reading(self) -> np.ndarray:
        """pybullet's force/torque on the wrist joint (6,), untared."""
        state = self._pb.getJointState(self._robot, self._ft, physicsClientId=self._client)
        return np.asarray(state[2], np.float64)

    def hand_frame(self) -> tuple[np.ndarray, np.ndarray]:
        """Origin (3,) and rotation (3, 3) of the hand frame in the world."""
        pb = self._pb
        state = pb.getLinkState(self._robot, self._hand, physicsClientId=self._client)
        rot = np.asarray(pb.getMatrixFromQuaternion(state[5]), np.float64).reshape(3, 3)
        return np.asarray(state[4], np.float64), rot

    def contact_wrench(self, origin: np.ndarray, rot: np.ndarray) -> np.ndarray:
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

    def render(self) -> np.ndarray:
        """The camera's view (H, W, 3) uint8 RGB at the configured size, noise-free."""
        pb, cfg = self._pb, self.config
        _, _, rgba, _, _ = pb.getCameraImage(
            cfg.image_width, cfg.image_height, self._view, self._proj,
            renderer=pb.ER_TINY_RENDERER, flags=pb.ER_NO_SEGMENTATION_MASK, shadow=0,
            physicsClientId=self._client, **self._light)
        return np.asarray(rgba, np.uint8).reshape(cfg.image_height, cfg.image_width, 4)[..., :3]
