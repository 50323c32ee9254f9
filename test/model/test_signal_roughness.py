"""The signals' roughness feature: additive noise roughens every sample of a window, which
clean windows (smooth motion, or a single contact impact) do not."""

from __future__ import annotations

import numpy as np
import torch

from lipfault_ros.model.config import ModelConfig
from lipfault_ros.model.network import LipfaultNet
from lipfault_ros.model.residuals import N_ERROR_FEATURES, roughness
from lipfault_ros.training.calibrate import rough_ceiling

ROUGH = 6  # the feature's slot for the signal modalities (the camera's staleness slot)


def _clean_wrench(b: int, t: int, seed: int = 0) -> torch.Tensor:
    """Smooth windows (a slow sine per channel with random phase, small sensor noise)."""
    rng = np.random.default_rng(seed)
    time = np.arange(t) / t
    phase = rng.uniform(0, 2 * np.pi, (b, 6, 1))
    x = np.sin(2 * np.pi * 0.1 * time + phase) + rng.normal(0, 0.01, (b, 6, t))
    return torch.from_numpy(x).float()


def _wrench_features(net: LipfaultNet, wr: torch.Tensor) -> np.ndarray:
    b = wr.shape[0]
    cam = torch.zeros(b, 3, net.cfg.image_size, net.cfg.image_size)
    jo = torch.zeros(b, net.cfg.joints_channels, net.cfg.joints_window)
    inputs = (cam, net.squash(wr), jo)
    with torch.no_grad():
        lat, z = net.encode(cam, wr, jo, torch.ones(b, 3))
        feats = net.residuals(inputs, net.decode(z), torch.ones(b, 3))
    return feats[:, N_ERROR_FEATURES:2 * N_ERROR_FEATURES].numpy()


def test_roughness_is_the_median_squared_step_and_ignores_a_single_impact():
    x = torch.zeros(1, 1, 9)
    x[0, 0, 4] = 10.0  # one impact: two large steps among eight
    assert float(roughness(x)) == 0.0
    steps = torch.arange(9.0).view(1, 1, 9) * 2  # a ramp: every step is 2
    assert float(roughness(steps)) == 4.0


def test_noise_rises_above_the_clean_roughness_ceiling_and_clean_windows_do_not():
    net = LipfaultNet(ModelConfig.tiny()).eval()
    t = net.cfg.wrench_window
    clean = _clean_wrench(64, t)
    impact = _clean_wrench(8, t, seed=1)
    impact[:, 2, t // 2] += 5.0  # a contact impact on one channel
    net.residuals.set_scales(torch.ones(6), torch.ones(net.cfg.joints_channels),
                             rough_ceiling_wrench=rough_ceiling(roughness(net.squash(clean)),
                                                                q=1.0))
    assert (_wrench_features(net, clean)[:, ROUGH] == 0).all()
    assert (_wrench_features(net, _clean_wrench(16, t, seed=2))[:, ROUGH] < 0.5).all()
    assert (_wrench_features(net, impact)[:, ROUGH] < 0.5).all()
    noisy = _clean_wrench(16, t, seed=3) + torch.randn(16, 6, t) * 0.3
    assert _wrench_features(net, noisy)[:, ROUGH].min() > 2.0
    one = _clean_wrench(16, t, seed=4)
    one[:, 5] += torch.randn(16, t) * 0.3  # noise on one channel is enough
    assert _wrench_features(net, one)[:, ROUGH].min() > 2.0
    net.residuals.set_scales(torch.ones(6), torch.ones(net.cfg.joints_channels),
                             rough_ceiling_wrench=torch.zeros(6))
    assert (_wrench_features(net, noisy)[:, ROUGH] == 0).all()  # off


def test_a_channel_that_never_moves_gets_no_ceiling():
    rows = torch.rand(100, 3) + 0.5
    rows[:, 1] = 0.0
    ceiling = rough_ceiling(rows)
    assert ceiling[1] == 0.0 and (ceiling[[0, 2]] > 1.0).all()
