"""How the simulated sensors measure the cell: the wrist wrench of the configured source, joint
states and camera frames with their noise, header stamps with per-stream clock offsets and
jitter, and the injected faults applied on the stamp clock.

Why apart from the cell: these are models of the instruments, not of the physics; the same cell
read through another sensor model gives other data. Each reading draws from the generators it is
given, in a fixed order, so the same seed gives the same data. ``t_s`` is seconds of simulated
time since the stream started; stamps are integer nanoseconds,
``origin_ns + (t_s + offset + jitter) * 1e9``.
"""

from __future__ import annotations

import numpy as np

from lipfault_ros.faults import StreamFault
from lipfault_ros.sim.cell import JOINT_NAMES, PandaCell
from lipfault_ros.sim.config import SimConfig
from lipfault_ros.sim.ft_sensor import FTSensorModel
from lipfault_ros.tuples import ImageSample, JointSample, Modality, WrenchSample

__all__ = ['Sensors', 'signal_scale']

# Nominal signal scale per channel, used to size signal faults (StreamFault ``scale``).
_WRENCH_SCALE = np.array([5.0, 5.0, 5.0, 0.5, 0.5, 0.5])
_JOINT_SCALE = np.concatenate([np.full(9, 0.3), np.full(9, 0.3),
                               np.r_[np.full(7, 5.0), np.full(2, 1.0)]])


def signal_scale(modality: Modality) -> np.ndarray | float:
    """The nominal scale of each channel of ``modality``, which sizes its signal faults
    (1.0 for the camera)."""
    return {Modality.WRENCH: _WRENCH_SCALE, Modality.JOINTS: _JOINT_SCALE}.get(modality, 1.0)


class Sensors:
    """The camera, wrist and joint-state sensors on a :class:`PandaCell`.

    ``noise_rng`` draws measurement noise, ``jitter_rng`` stamp jitter; ``ft_model`` is the
    wrist sensor of ``wrench_source='ft_sensor'`` and ``tool_weight`` (N) what the tared joint
    sensor removes. :attr:`faults` are applied to every sample in order; a sample a fault drops
    comes back as None.
    """

    def __init__(self, cell: PandaCell, config: SimConfig, *, origin_ns: int,
                 noise_rng: np.random.Generator, jitter_rng: np.random.Generator,
                 ft_model: FTSensorModel, tool_weight: float) -> None:
        self._cell, self.config, self.origin_ns = cell, config, origin_ns
        self._noise_rng, self._jitter_rng = noise_rng, jitter_rng
        self._ft_model, self._tool_weight = ft_model, tool_weight
        self.faults: list[StreamFault] = []
        self._noise_bank: np.ndarray | None = None
        self._wrench_sd = np.r_[np.full(3, config.force_noise_n),
                                np.full(3, config.torque_noise_nm)]

    def _wrench_values(self, t_s: float) -> np.ndarray:
        """The wrist reading [fx, fy, fz, tx, ty, tz] in the hand frame, as the configured
        ``wrench_source`` measures it, noise included."""
        origin, rot = self._cell.hand_frame()
        source = self.config.wrench_source
        if source == 'ft_sensor':
            return self._ft_model.read(rot, self._cell.contact_wrench(origin, rot), t_s,
                                       self._noise_rng)
        if source == 'joint_sensor':  # tared: tool weight removed
            raw = self._cell.joint_sensor_reading()
            raw[:3] -= rot.T @ np.array([0.0, 0.0, self._tool_weight])
        else:
            raw = self._cell.contact_wrench(origin, rot)
        return raw + self._noise_rng.normal(0.0, 1.0, 6) * self._wrench_sd

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
        return [f for f in self.faults if f.spec.modality is modality]

    def wrench_sample(self, t_s: float) -> WrenchSample | None:
        cfg = self.config
        values = self._wrench_values(t_s)
        stamp = self._stamp('wrench', t_s)
        for fault in self._faulted(Modality.WRENCH):
            values = fault.apply_values(self._fault_time(stamp), values)
            if values is None:
                return None
        return WrenchSample(stamp, cfg.wrench_frame_id, values)

    def joint_sample(self, t_s: float) -> JointSample | None:
        cfg = self.config
        arr = self._cell.joint_states()  # (9, 3)
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
        cfg = self.config
        image = self._cell.render()
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

    def image_sample(self, t_s: float) -> ImageSample:
        image = self._render()
        stamp = self._stamp('camera', t_s)
        for fault in self._faulted(Modality.CAMERA):
            image = fault.apply_image(self._fault_time(stamp), image)
        return ImageSample(stamp, self.config.camera_frame_id, image)
