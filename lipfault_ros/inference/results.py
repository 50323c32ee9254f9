"""What the engine returns: the verdict on each modality of a tuple, and the corrected signals.

Records are frozen; timestamps are integer nanoseconds; columns follow ``MODALITIES`` order
(camera, wrench, joints). :class:`Inference` is one tuple (the live node), :class:`BatchInference`
N stacked tuples (offline evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from lipfault_ros.tuples import Modality

__all__ = ['BatchInference', 'Inference', 'ModalityResult']


@dataclass(frozen=True)
class ModalityResult:
    """Verdict on one modality of one tuple. ``score`` is the fault logit (NaN when missing,
    +inf when the input held NaN/Inf); ``corrected`` means the output is the model's estimate.
    ``threshold`` is the one this tuple was judged by: the calibrated one (plus any tuning
    offset) raised by ``scene_offset`` (:mod:`lipfault_ros.scene_thresholds`; 0 when it does not
    follow the scene). ``evidence`` is what a detector outside the network said, in logit units over
    the threshold (the camera background, :mod:`lipfault_ros.background`): over 0 it made the
    tuple faulty and raised ``score`` to at least ``threshold + evidence``; under 0 it changed
    nothing; NaN: none."""

    score: float
    threshold: float
    fault: bool
    missing: bool
    corrected: bool
    scene_offset: float = 0.0
    evidence: float = float('nan')

    @property
    def relative_score(self) -> float:
        """The score against the scene's own clean level: ``score - scene_offset``, what the
        calibrated threshold judges."""
        return self.score - self.scene_offset


@dataclass(frozen=True)
class Inference:
    """Result for one tuple. Signals are at the tuple stamp (the last sample of each window):
    ``wrench`` (6,) float64, ``joint_*`` (J,) float64 in ``Engine.joint_names`` order;
    ``image`` (H, W, 3) uint8 at the input image's size (the model size when the camera is
    missing and no frame was seen yet). ``latency_ms`` is the time spent in normalisation, model
    and denormalisation."""

    stamp_ns: int
    results: Mapping[Modality, ModalityResult]
    bypassed: bool
    image: np.ndarray
    wrench: np.ndarray
    joint_position: np.ndarray
    joint_velocity: np.ndarray
    joint_effort: np.ndarray
    latency_ms: float


@dataclass(frozen=True)
class BatchInference:
    """Results for N tuples (offline evaluation), columns in ``MODALITIES`` order.

    ``scores``/``faults``/``missing`` (N, 3); ``bypassed`` (N,); outputs with the same policy as
    :class:`Inference` but whole windows: ``images`` (N, S, S, 3) uint8 at the model size,
    ``wrench`` (N, T_w, 6) and ``joints`` (N, T_j, J, 3) float64 in input units;
    ``recon_*`` are the stage-1 reconstructions (no correction, no pass-through)."""

    stamps_ns: np.ndarray
    scores: np.ndarray
    faults: np.ndarray
    missing: np.ndarray
    bypassed: np.ndarray
    thresholds: np.ndarray
    images: np.ndarray
    wrench: np.ndarray
    joints: np.ndarray
    recon_images: np.ndarray
    recon_wrench: np.ndarray
    recon_joints: np.ndarray
