"""Lipschitz modulation as a parametrization, and the contraction of the compute block."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from lipfault_ros.errors import ConfigError
from lipfault_ros.model import LipfaultNet, LipschitzScale, ModelConfig, apply_lipschitz
from lipfault_ros.model.lipschitz import refresh_lipschitz


def test_parametrized_linear_has_the_target_spectral_norm():
    torch.manual_seed(0)
    layer = apply_lipschitz(nn.Linear(40, 30), 0.7)
    assert isinstance(layer.parametrizations.weight[0], LipschitzScale)
    refresh_lipschitz(layer)
    layer.eval()
    sigma = torch.linalg.matrix_norm(layer.weight.detach(), 2)
    assert sigma == pytest.approx(0.7, rel=1e-4)
    # the estimator state is in buffers, so it is saved with the weights
    keys = set(layer.state_dict())
    assert {'parametrizations.weight.0.u', 'parametrizations.weight.0.v'} <= keys


def test_power_iteration_runs_only_in_training_mode():
    torch.manual_seed(0)
    layer = apply_lipschitz(nn.Linear(8, 8), 1.0)
    p = layer.parametrizations.weight[0]
    layer.eval()
    u = p.u.clone()
    _ = layer.weight
    assert torch.equal(u, p.u)
    layer.train()
    with torch.no_grad():
        layer.parametrizations.weight.original.mul_(3.0).add_(torch.randn(8, 8))
    _ = layer.weight
    assert not torch.equal(u, p.u)


def test_module_target_is_split_over_layers():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 10))
    apply_lipschitz(mlp, 0.25, per_layer=False)
    refresh_lipschitz(mlp)
    mlp.eval()
    with parametrize.cached():
        norms = [float(torch.linalg.matrix_norm(m.weight.detach(), 2)) for m in mlp if
                 isinstance(m, nn.Linear)]
    assert norms == pytest.approx([0.5, 0.5], rel=1e-4)


def test_invalid_target_is_refused():
    with pytest.raises(ConfigError, match='Lipschitz target must be positive'):
        apply_lipschitz(nn.Linear(3, 3), 0.0)


def test_untrained_compute_block_is_a_contraction():
    torch.manual_seed(1)
    net = LipfaultNet(ModelConfig.tiny())
    refresh_lipschitz(net)
    net.eval()
    z = torch.randn(64, net.cfg.latent)
    d = torch.randn(64, net.cfg.latent)
    with torch.no_grad():
        gain = (net.compute(z + d) - net.compute(z)).norm(dim=1) / d.norm(dim=1)
    assert float(gain.max()) < 0.9 + 1e-4
