"""Cross-modal residuals: a wrench that is a valid wrench, but not the one the camera and the
joints imply, is invisible to a self-reconstruction and plain to the cross-modal estimate."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from lipfault_ros.artifact import load_artifact
from lipfault_ros.model.residuals import N_ERROR_FEATURES
from lipfault_ros.synthetic import synthetic_arrays
from lipfault_ros.training.tiny import train_tiny_model

SELF, CROSS = slice(0, 3), slice(4, 6)  # residual features vs cross-modal features


def _wrench_features(net, stats, arrays, wrench, *, alone: bool) -> np.ndarray:
    """The wrench's error features (N, N_ERROR_FEATURES); ``alone``: only the wrench present,
    so its reconstruction comes from its own latent (a plain self-reconstruction)."""
    n = len(arrays)
    present = torch.ones(n, 3)
    if alone:
        present[:, [0, 2]] = 0.0
    cam = torch.from_numpy(arrays.images).permute(0, 3, 1, 2).float() / 255 * present[:, :1,
                                                                                    None, None]
    wr = torch.from_numpy(stats.normalise_wrench(wrench)).float()
    jo = torch.from_numpy(stats.normalise_joints(arrays.joints)).float() * present[:, 2:, None]
    with torch.no_grad():
        latents, z = net.encode(cam, wr, jo, present)
        errors = net.residuals((cam, net.squash(wr), net.squash(jo)), net.decode(z),
                                    present, net.cross_reconstruction(latents, present))
    return errors.view(n, 3, N_ERROR_FEATURES)[:, 1].numpy()


def _auroc(clean: np.ndarray, faulty: np.ndarray) -> float:
    y = np.r_[np.zeros(len(clean)), np.ones(len(faulty))]
    return float(roc_auc_score(y, np.r_[clean, faulty]))


def test_a_wrench_from_another_moment_is_caught_by_the_cross_modal_features_only():
    torch.manual_seed(0)
    art = load_artifact(train_tiny_model().artifact)
    net, cfg = art.model.eval(), art.model.cfg
    now = synthetic_arrays(300, image_size=cfg.image_size, window=cfg.wrench_window, seed=9)
    other = synthetic_arrays(300, image_size=cfg.image_size, window=cfg.wrench_window,
                             seed=10)  # same robot, another moment: a valid but wrong wrench
    self_clean = _wrench_features(net, art.stats, now, now.wrench, alone=True)
    self_wrong = _wrench_features(net, art.stats, now, other.wrench, alone=True)
    full_clean = _wrench_features(net, art.stats, now, now.wrench, alone=False)
    full_wrong = _wrench_features(net, art.stats, now, other.wrench, alone=False)
    for k in range(SELF.start, SELF.stop):  # the self-reconstruction sees nothing wrong
        assert _auroc(self_clean[:, k], self_wrong[:, k]) < 0.65
    for k in range(CROSS.start, CROSS.stop):  # what the other sensors imply disagrees
        assert _auroc(full_clean[:, k], full_wrong[:, k]) > 0.95
    # alone, there is nothing to compare with: the cross features are off, not noise
    assert np.all(self_clean[:, CROSS] == 0.0)
