"""Redundant channels inside a modality: a joint's velocity is its position's derivative."""

from __future__ import annotations

import numpy as np
import torch

from lipfault_ros.model.config import ModelConfig
from lipfault_ros.model.network import LipfaultNet
from lipfault_ros.synthetic import synthetic_arrays
from lipfault_ros.normalise import NormStats
from lipfault_ros.training.calibrate import fit_motion


def _joints(seed: int, stats: NormStats | None = None) -> tuple[torch.Tensor, NormStats]:
    arrays = synthetic_arrays(200, seed=seed, noise=0.0005)
    stats = stats or NormStats.fit(arrays)
    return torch.from_numpy(stats.normalise_joints(np.asarray(arrays.joints))), stats


def test_a_gain_or_a_sign_flip_on_one_channel_breaks_the_position_velocity_fit():
    net = LipfaultNet(ModelConfig.tiny())
    train, stats = _joints(0)
    gain, offset, scale = fit_motion(*net.residuals.motion_pairs(train))
    assert (scale > 0).all()  # every synthetic joint moves: all are fitted
    net.residuals.set_motion_fit(gain, offset, scale)
    clean, _ = _joints(1, stats)  # another episode
    base = net.residuals.motion_residual(clean)
    faulty = clean.clone()
    faulty[:, 3 * 2] = faulty[:, 3 * 2] * 1.5      # joint 2's position reads 50 % high
    scaled = net.residuals.motion_residual(faulty)
    flipped = clean.clone()
    flipped[:, 3 * 4 + 1] = -flipped[:, 3 * 4 + 1]  # joint 4's velocity changes sign
    sign = net.residuals.motion_residual(flipped)
    assert float(np.percentile(base.numpy(), 99)) < 3.0
    # rows where the joint moves at all (a still joint's gain changes nothing)
    moving = (clean[:, 3 * 2].std(1) > 0.05).numpy()
    assert (scaled.numpy()[moving] > np.percentile(base.numpy(), 99)).mean() > 0.9
    assert (sign.numpy() > np.percentile(base.numpy(), 99)).mean() > 0.9


def test_a_joint_without_redundancy_is_left_out_and_no_fit_means_no_feature():
    net = LipfaultNet(ModelConfig.tiny())
    x, _ = _joints(0)
    assert (net.residuals.motion_residual(x) == 0).all()  # nothing fitted yet
    x[:, 1::3] = torch.randn_like(x[:, 1::3])     # velocities that are pure noise
    _, _, scale = fit_motion(*net.residuals.motion_pairs(x))
    assert (scale == 0).all()
