"""Layer-specific Lipschitz modulation as a torch parametrization.

``LipschitzScale`` is a tiny module whose ``forward(weight)`` returns ``weight * target / sigma``,
where ``sigma`` is the largest singular value of the weight (as a matrix, out x in) estimated by
power iteration. The estimator's vectors live in buffers, so they are saved with the weights and an
artifact reproduces its outputs bit for bit. Power iteration runs only in training mode; in eval
mode the stored vectors give a fixed ``sigma``. Build the parametrized model first, then load
weights into it.

For dense layers this makes the layer's Lipschitz constant exactly ``target``. For convolutions the
matrix is the reshaped kernel (as in Miyato et al.), a cheap proxy of the true operator norm;
:mod:`lipfault_ros.model.analysis` measures the true conv operator norm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from lipfault_ros.errors import ConfigError

__all__ = ['LipschitzScale', 'apply_lipschitz', 'lipschitz_layers', 'refresh_lipschitz',
           'weight_matrix']

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)


def weight_matrix(weight: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """The weight as an (out, in) matrix; transposed convs keep out-channels on dim 1."""
    if transposed:
        weight = weight.transpose(0, 1)
    return weight.reshape(weight.shape[0], -1)


class LipschitzScale(nn.Module):
    """Parametrization: scale a weight so its spectral norm equals ``target``.

    Buffers ``u`` (out,) and ``v`` (in,) hold the power-iteration state.
    """

    def __init__(self, weight: torch.Tensor, target: float, *, transposed: bool = False,
                 n_power_iterations: int = 1, eps: float = 1e-12) -> None:
        super().__init__()
        if not target > 0:
            raise ConfigError(f'Lipschitz target must be positive, got {target}')
        self.target = float(target)
        self.transposed = transposed
        self.n_power_iterations = int(n_power_iterations)
        self.eps = eps
        mat = weight_matrix(weight.detach(), transposed)
        self.register_buffer('u', F.normalize(mat.new_empty(mat.shape[0]).normal_(), dim=0,
                                              eps=eps))
        self.register_buffer('v', F.normalize(mat.new_empty(mat.shape[1]).normal_(), dim=0,
                                              eps=eps))
        self.converge(mat)

    @torch.no_grad()
    def converge(self, mat: torch.Tensor) -> None:
        """Set u, v to the exact top singular vectors of ``mat`` (an SVD; the matrices are
        small), so sigma is exact rather than a power-iteration underestimate."""
        u_all, _, vh = torch.linalg.svd(mat.detach().double(), full_matrices=False)
        self.u.copy_(u_all[:, 0].to(self.u))
        self.v.copy_(vh[0].to(self.v))

    @torch.no_grad()
    def _power_iteration(self, mat: torch.Tensor, iterations: int) -> None:
        for _ in range(iterations):
            self.u.copy_(F.normalize(mat @ self.v, dim=0, eps=self.eps))
            self.v.copy_(F.normalize(mat.t() @ self.u, dim=0, eps=self.eps))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        mat = weight_matrix(weight, self.transposed)
        if self.training:
            self._power_iteration(mat.detach(), self.n_power_iterations)
        # clone so autograd does not see the in-place buffer updates of a later step
        u, v = self.u.clone(memory_format=torch.contiguous_format), self.v.clone(
            memory_format=torch.contiguous_format)
        sigma = torch.dot(u, mat @ v)
        return weight * (self.target / sigma.clamp_min(self.eps))

    def extra_repr(self) -> str:
        return f'target={self.target}'


def lipschitz_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The (name, layer) pairs of ``module`` that carry a weight we can modulate, in order."""
    return [(name, m) for name, m in module.named_modules() if isinstance(m, _LAYERS)]


def apply_lipschitz(module: nn.Module, target: float | None, *, per_layer: bool = True,
                    n_power_iterations: int = 1) -> nn.Module:
    """Register :class:`LipschitzScale` on every linear/conv layer of ``module``.

    ``target`` is the constant of the whole module when ``per_layer`` is False (each of its n
    layers then gets ``target ** (1/n)``, so the product bound equals ``target``) or of each
    layer when ``per_layer`` is True. ``None`` leaves the module unconstrained. Returns the module.
    """
    if target is None:
        return module
    layers = lipschitz_layers(module)
    if not layers:
        return module
    each = float(target) if per_layer else float(target) ** (1.0 / len(layers))
    for _, layer in layers:
        transposed = isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d))
        parametrize.register_parametrization(
            layer, 'weight', LipschitzScale(layer.weight, each, transposed=transposed,
                                            n_power_iterations=n_power_iterations))
    return module


@torch.no_grad()
def refresh_lipschitz(module: nn.Module) -> int:
    """Make the stored sigma of every :class:`LipschitzScale` of ``module`` exact (training runs
    only one power iteration per step). Call it after training, before calibrating thresholds:
    it changes the effective weights slightly. Returns the count."""
    count = 0
    for layer in module.modules():
        params = getattr(layer, 'parametrizations', None)
        if params is None or 'weight' not in params:
            continue
        for p in params['weight']:
            if isinstance(p, LipschitzScale):
                mat = weight_matrix(params['weight'].original, p.transposed)
                p.converge(mat)
                count += 1
    return count
