"""Isolated signal residuals: a fault on the joints must not raise the wrench's reconstruction
error (nor the other way round), or the detection head learns to distrust large errors and
explains a joint fault away as a wrench one. The leak is real with the all-modality
reconstruction and gone with ``ModelConfig.isolated_signal_residuals``."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from lipfault_ros.artifact import load_artifact
from lipfault_ros.model.config import ModelConfig
from lipfault_ros.model.network import LipfaultNet
from lipfault_ros.model.residuals import N_ERROR_FEATURES
from lipfault_ros.synthetic import synthetic_arrays
from lipfault_ros.training.tiny import train_tiny_model

RECON = slice(0, 3)  # the reconstruction-error slots of a signal's features


def _features(net: LipfaultNet, cam, wr, jo) -> torch.Tensor:
    """(B, 3, N_ERROR_FEATURES) residual features as ``LipfaultNet.detect`` computes them."""
    present = torch.ones(cam.shape[0], 3)
    with torch.no_grad():
        latents, z = net.encode(cam, wr, jo, present)
        recon = net.residual_reconstruction(latents, present, net.decode(z))
        errors = net.residuals((cam, net.squash(wr), net.squash(jo)), recon, present,
                               net.cross_reconstruction(latents, present))
    return errors.view(cam.shape[0], 3, N_ERROR_FEATURES)


def _inputs(cfg: ModelConfig, n: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, cfg.image_size, cfg.image_size, generator=g),
            torch.randn(n, 6, cfg.wrench_window, generator=g),
            torch.randn(n, cfg.joints_channels, cfg.joints_window, generator=g))


def test_a_joint_fault_leaves_the_wrench_reconstruction_error_as_it_was_only_when_isolated():
    cfg = ModelConfig.tiny()
    cam, wr, jo = _inputs(cfg)
    biased = jo.clone()
    biased[:, 0::3] += 3.0  # every joint position offset: a joints fault
    torch.manual_seed(0)
    isolated = LipfaultNet(cfg).eval()
    fused = LipfaultNet(cfg.replace(isolated_signal_residuals=False)).eval()
    fused.load_state_dict(isolated.state_dict())
    for net, leaks in ((isolated, False), (fused, True)):
        clean, faulty = _features(net, cam, wr, jo), _features(net, cam, wr, biased)
        wrench_moved = (faulty[:, 1, RECON] - clean[:, 1, RECON]).abs().max().item()
        joints_moved = (faulty[:, 2, RECON] - clean[:, 2, RECON]).abs().max().item()
        assert joints_moved > 1e-3  # the faulty signal's own error moves either way
        if leaks:
            assert wrench_moved > 1e-3
        else:
            assert wrench_moved == 0.0
    # and a wrench fault leaves the joints' error alone likewise
    spiked = wr.clone()
    spiked[:, :, ::4] += 5.0
    moved = _features(isolated, cam, spiked, jo) - _features(isolated, cam, wr, jo)
    assert moved[:, 2, RECON].abs().max().item() == 0.0
    assert moved[:, 1, RECON].abs().max().item() > 1e-3


def test_the_isolated_reconstruction_still_shows_a_joint_offset_in_the_joints_own_error():
    art = load_artifact(train_tiny_model().artifact)
    net, cfg = art.model.eval(), art.model.cfg
    assert cfg.isolated_signal_residuals
    arrays = synthetic_arrays(200, image_size=cfg.image_size, window=cfg.joints_window, seed=9)
    cam = torch.from_numpy(arrays.images).permute(0, 3, 1, 2).float() / 255
    wr = torch.from_numpy(art.stats.normalise_wrench(arrays.wrench)).float()
    jo = torch.from_numpy(art.stats.normalise_joints(arrays.joints)).float()
    biased = jo.clone()
    biased[:, 0::3] += 2.0  # two clean standard deviations on every joint position
    clean = _features(net, cam, wr, jo)[:, 2, 0].numpy()
    faulty = _features(net, cam, wr, biased)[:, 2, 0].numpy()
    y = np.r_[np.zeros(len(clean)), np.ones(len(faulty))]
    assert roc_auc_score(y, np.r_[clean, faulty]) > 0.9
