"""What the engine returns: the verdict on each modality of a tuple, and the corrected signals.

Records are frozen; timestamps are integer nanoseconds; columns follow ``MODALITIES`` order
(camera, wrench, joints). :class:`Inference` is one tuple (the live node), :class:`BatchInference`
N stacked tuples (offline evaluation). :func:`apply_policy` fills their signals, for one tuple
and for a batch alike: a modality judged clean passes through as it came in (bit-exact: no
reconstruction blur); a replaced one (faulty, or missing) is the model's estimate in the input's
units. The estimate is decoded only for modalities replaced somewhere in the batch, so a clean
tuple on the live path pays for no image conversion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from lipfault_ros.normalise import NormStats
from lipfault_ros.tuples import Modality

__all__ = ['BatchInference', 'Inference', 'ModalityResult', 'apply_policy', 'to_image']


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


def to_image(x: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] (the image decoder's output) -> (N, H, W, 3) uint8."""
    return (np.clip(x.transpose(0, 2, 3, 1), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def apply_policy(stats: NormStats, replace: np.ndarray, estimate: list[np.ndarray],
                 images: np.ndarray, wrench: np.ndarray, joints: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The signals out: ``replace`` (N, 3) bool picks, per tuple and modality, the model's
    ``estimate`` (normalised: images (N, 3, s, s), wrench (N, 6, T), joints (N, 3J, T)) over
    the input (images (N, s, s, 3) uint8, wrench (N, T, 6), joints (N, T, J, 3) raw).

    Returns images uint8 and wrench, joints float64, shaped as the inputs."""
    replace = np.asarray(replace, bool)
    out_img = images
    if replace[:, 0].any():
        out_img = np.where(replace[:, 0, None, None, None], to_image(estimate[0]), images)
    out_w = wrench.astype(np.float64)
    if replace[:, 1].any():
        out_w = np.where(replace[:, 1, None, None], stats.denormalise_wrench(estimate[1]), out_w)
    out_j = joints.astype(np.float64)
    if replace[:, 2].any():
        out_j = np.where(replace[:, 2, None, None, None], stats.denormalise_joints(estimate[2]),
                         out_j)
    return out_img, out_w, out_j
