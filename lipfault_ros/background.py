"""The camera's own background: evidence of a fault from how a frame departs from this scene.

A fixed camera sees mostly the same room from frame to frame; what moves is the robot and what
it handles. Dirt, scratches, water drops or a smear on the lens lie *over* the whole view and
stay there, and the autoencoder hardly sees them on a scene it was not trained on: its
reconstruction error is already high there (see :mod:`lipfault_ros.scene_thresholds`), and a few
dark spots change a frame's error less than the scene does. Against the scene's own recent frames
they are plain: on simulated episodes not trained on, the frame-to-background deviation of a
quarter of the image blocks rose 10-70 robust spreads for dust, Perlin smudges, scratches, water
drops and blur, where clean frames stayed under 1.

So each stream keeps a background: the per-pixel median of trusted frames sampled every
``sample_every`` tuples (``frames`` of them, ~10 s at 30 Hz), and for each of ``blocks`` x
``blocks`` image blocks the median and spread (MAD) of its clean deviation from that background
over the last ``history`` trusted tuples. Blocks the robot crosses learn a wide spread; still
ones a narrow one. A frame's statistic is the ``quantile`` (default the upper quartile) of its
blocks' robust z-scores: a moving robot covers a minority of the blocks and leaves it low, a
lens fault covers the view and raises it. The evidence is ``log(statistic / z_threshold)`` in
logit units: above 0 the camera is judged faulty on this tuple, whatever the network says
(:meth:`~lipfault_ros.inference.Engine.infer` takes it as ``evidence``).

- It trusts what it does not flag itself: the network's verdict does not gate it, so the same
  evidence series serves the model and every baseline (:func:`background_series`), and a
  fault it cannot see is by definition one that barely changes the background.
- Warm-up: no evidence (NaN) until ``min_frames`` frames make a background and ``min_history``
  deviations a spread (~5 s at 30 Hz).
- **It assumes a fixed camera.** On a camera that moves with the arm (a wrist camera) every
  frame departs from any background: turn it off (the node's ``scene_background`` parameter,
  ``lipfault eval --no-camera-background``). A sudden change of the whole view (a light
  switched on, the camera knocked) is evidence too, until the background has followed it
  (about half of ``frames`` samples).

Pure NumPy/OpenCV and ROS-free; one instance per stream, not thread-safe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from lipfault_ros.errors import ConfigError, InputError

__all__ = ['BackgroundConfig', 'CameraBackground', 'background_series', 'with_evidence']


@dataclass(frozen=True)
class BackgroundConfig:
    """How the camera background is kept and judged (see the module docstring)."""

    #: frames are compared at this square size (px): enough for lens faults, cheap per tuple
    size: int = 64
    #: blocks per image side the deviation is pooled into
    blocks: int = 8
    #: trusted tuples between two frames taken into the background
    sample_every: int = 10
    #: sampled frames the background is the per-pixel median of
    frames: int = 30
    #: sampled frames before there is a background
    min_frames: int = 5
    #: trusted tuples whose block deviations give each block's median and spread
    history: int = 600
    #: deviations before any evidence is given
    min_history: int = 100
    #: which quantile of the blocks' z-scores is the frame's statistic
    quantile: float = 0.75
    #: the statistic at which the camera is judged faulty (robust spreads); clean simulated
    #: frames stayed under 0.8 on six episodes, lens faults read 9 and more
    z_threshold: float = 4.0
    #: grey levels added to each block's spread: a noise-free render has a spread of 0
    spread_floor: float = 0.5

    def __post_init__(self) -> None:
        for name, low in (('size', 2), ('blocks', 1), ('sample_every', 1), ('frames', 1),
                          ('min_frames', 1), ('history', 1), ('min_history', 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f'background {name} must be an integer >= {low}, got '
                                  f'{value!r}')
        if self.size % self.blocks:
            raise ConfigError(f'background size {self.size} must be a multiple of blocks '
                              f'{self.blocks}')
        if self.min_frames > self.frames or self.min_history > self.history:
            raise ConfigError('background min_frames/min_history must not exceed '
                              'frames/history')
        for name in ('quantile', 'z_threshold', 'spread_floor'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value):
                raise ConfigError(f'background {name} must be a finite number, got {value!r}')
        if not 0.0 < self.quantile <= 1.0 or self.z_threshold <= 0 or self.spread_floor <= 0:
            raise ConfigError('background quantile must be in (0, 1], z_threshold and '
                              'spread_floor > 0')


class _Ring:
    """The last ``capacity`` arrays of one shape in a preallocated block, kept with the
    capacity as the last axis: a median over them then runs along contiguous memory (about
    ten times faster than across stacked frames) and nothing is stacked per median. The
    order of the entries does not matter to a median."""

    def __init__(self, capacity: int, shape: tuple[int, ...]) -> None:
        self._data = np.empty((*shape, capacity), np.float32)
        self._count = 0

    def __len__(self) -> int:
        return min(self._count, self._data.shape[-1])

    def push(self, value: np.ndarray) -> None:
        self._data[..., self._count % self._data.shape[-1]] = value
        self._count += 1

    def median(self) -> np.ndarray:
        """The per-element median of the entries held (at least one)."""
        return np.median(self._data[..., :len(self)], axis=-1)

    def rows(self) -> np.ndarray:
        """The entries held, (*shape, n)."""
        return self._data[..., :len(self)]


class CameraBackground:
    """One stream's background and block spreads: :meth:`evidence` judges a frame,
    :meth:`commit` takes it in when it was not flagged (two steps, so that a tuple the engine
    then refuses leaves the background as it was)."""

    def __init__(self, config: BackgroundConfig | None = None) -> None:
        self.config = config or BackgroundConfig()
        import cv2
        self._cv2 = cv2
        self.reset()

    def reset(self) -> None:
        """Forget the scene: the next frames are a warm-up."""
        cfg = self.config
        self._frames = _Ring(cfg.frames, (cfg.size, cfg.size, 3))
        self._deviations = _Ring(cfg.history, (cfg.blocks, cfg.blocks))
        self._background: np.ndarray | None = None
        self._spread: tuple[np.ndarray, np.ndarray] | None = None
        self._trusted = 0
        self._taken = 0  # deviations taken in so far (the ring forgets, this counts)
        self._spread_at = -1
        self._pending: tuple[np.ndarray, np.ndarray | None] | None = None
        #: the evidence of the last frame judged (NaN: none)
        self.last = float('nan')

    @property
    def warming(self) -> bool:
        """True while no evidence is given yet."""
        return self._background is None or len(self._deviations) < self.config.min_history

    def _small(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f'background frames must be (H, W, 3) uint8, got '
                             f'{image.shape} {image.dtype}')
        s = self.config.size
        if image.shape[:2] != (s, s):
            image = self._cv2.resize(image, (s, s), interpolation=self._cv2.INTER_AREA)
        return image.astype(np.float32)

    def _deviation(self, small: np.ndarray) -> np.ndarray:
        """(blocks, blocks) mean absolute grey-level departure from the background."""
        b = self.config.blocks
        h = self.config.size // b
        diff = np.abs(small - self._background).mean(axis=2)
        return diff.reshape(b, h, b, h).mean(axis=(1, 3))

    def evidence(self, image: np.ndarray | None) -> float:
        """The evidence of ``image`` (logit units, > 0: faulty; NaN while warming up or when
        there is no frame); :meth:`commit` takes the frame in afterwards. None (the camera
        missing on this tuple) changes nothing. InputError for a frame that is not (H, W, 3)
        uint8."""
        self.last, self._pending = float('nan'), None
        if image is None:
            return self.last
        cfg = self.config
        small = self._small(image)
        deviation = None
        if self._background is not None:
            deviation = self._deviation(small)
            if len(self._deviations) >= cfg.min_history:
                if self._spread is None or self._taken - self._spread_at >= cfg.sample_every:
                    devs = self._deviations.rows()
                    med = np.median(devs, axis=-1)
                    self._spread = (med, np.median(np.abs(devs - med[..., None]), axis=-1))
                    self._spread_at = self._taken
                med, mad = self._spread
                z = (deviation - med) / (mad + cfg.spread_floor)
                stat = float(np.quantile(z, cfg.quantile))
                self.last = math.log(max(stat, 1e-3) / cfg.z_threshold)
        self._pending = (small, deviation)
        return self.last

    def commit(self) -> None:
        """Take in the frame :meth:`evidence` last judged, unless it flagged it (or there was
        none); a second call does nothing."""
        pending, self._pending = self._pending, None
        if pending is None or self.last > 0:
            return
        small, deviation = pending
        cfg = self.config
        self._trusted += 1
        if deviation is not None:
            self._deviations.push(deviation)
            self._taken += 1
        if (self._trusted - 1) % cfg.sample_every == 0:
            self._frames.push(small)
            if len(self._frames) >= cfg.min_frames:
                self._background = self._frames.median()

    def step(self, image: np.ndarray | None) -> float:
        """:meth:`evidence`, then :meth:`commit`."""
        value = self.evidence(image)
        self.commit()
        return value


def background_series(images: Iterable[np.ndarray | None],
                      config: BackgroundConfig | None = None) -> np.ndarray:
    """(N,) evidence of a recorded frame sequence (rows in time order; None where the camera
    was missing), exactly as :meth:`CameraBackground.step` gives it live."""
    ref = CameraBackground(config)
    return np.array([ref.step(im) for im in images], np.float64)


def with_evidence(scores: np.ndarray, thresholds: np.ndarray, evidence: np.ndarray, *,
                  log_domain: bool) -> tuple[np.ndarray, np.ndarray]:
    """How evidence judges a detector, written once for the engine and every baseline: (N, 3)
    ``scores`` and (N, 3) bool ``over`` where ``evidence`` (N, 3) is over 0; there the score is
    raised to at least threshold + evidence (threshold x e^evidence for error scores, which
    are > 0), elsewhere it is unchanged: evidence under 0 says nothing about how clean a tuple
    is, so it leaves a detector's ranking (and the scene reference's clean scores) alone."""
    s = np.array(scores, np.float64)
    ev = np.nan_to_num(np.asarray(evidence, np.float64), nan=0.0)
    over = ev > 0
    thr = np.broadcast_to(np.asarray(thresholds, np.float64).reshape(1, 3), s.shape)
    with np.errstate(over='ignore'):
        floor = thr * np.exp(ev) if log_domain else thr + ev
    s[over] = np.maximum(s[over], floor[over])
    return s, over
