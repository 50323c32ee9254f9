"""Sensitivity analysis: does each module amplify or attenuate a localized fault?

For every module of :class:`~lipfault_ros.model.network.LipfaultNet` this measures

- per-layer Lipschitz upper bounds: the spectral norm of each dense layer, and the true operator
  norm of each convolution (power iteration on the conv map itself at the layer's input size, not
  on the reshaped kernel), and the product bound of the module (activations are 1-Lipschitz;
  the compute block's bound is ``skip + prod``);
- the empirical gain ``rho = ||f(x + d) - f(x)|| / ||d||`` for small perturbations ``d`` supported
  on a few inputs (an image patch, a few samples of one channel, a few latent coordinates);
- ``locality``: the share of the output perturbation energy that stays near the perturbed place
  (conv trunks keep it local; dense layers spread it, Lemma 3.1);

and checks Lemma 3.1 numerically: for W (M x N) with i.i.d. zero-mean entries of variance s^2 and
d supported on S, E||W d||^2 = M s^2 ||d_S||^2.

``lipfault analyze ARTIFACT [--json FILE]`` prints one table row per module.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from lipfault_ros.model.config import ModelConfig
from lipfault_ros.model.network import LipfaultNet

__all__ = ['AnalysisReport', 'LayerBound', 'LemmaCheck', 'ModuleReport', 'add_arguments',
           'analyze', 'conv_operator_norm', 'empirical_gain', 'lemma31_check', 'main']

log = logging.getLogger(__name__)

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)


@dataclass(frozen=True)
class LayerBound:
    name: str
    kind: str
    bound: float


@dataclass(frozen=True)
class ModuleReport:
    """One module: configured constant (None = unconstrained), product bound of its layers,
    empirical gain (mean and max over trials) and locality (None where it does not apply)."""

    name: str
    constant: float | None
    bound: float
    rho_mean: float
    rho_max: float
    locality: float | None
    layers: tuple[LayerBound, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class LemmaCheck:
    """Lemma 3.1 on random dense layers: measured vs expected E||W d||^2."""

    m: int
    n: int
    s: float
    support: int
    trials: int
    expected: float
    measured: float
    rel_error: float
    rel_stderr: float
    agrees: bool
    output_support: float  # mean share of the M outputs that a support-|S| perturbation reaches


@dataclass(frozen=True)
class AnalysisReport:
    modules: tuple[ModuleReport, ...]
    lemma: LemmaCheck

    def module(self, name: str) -> ModuleReport:
        for m in self.modules:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {'modules': [asdict(m) for m in self.modules], 'lemma_3_1': asdict(self.lemma)}

    def format(self) -> str:
        def f(x: float | None) -> str:
            return '-' if x is None else f'{x:.4g}'
        lines = [f'{"module":<16} {"constant":>9} {"bound":>10} {"rho mean":>9} {"rho max":>9} '
                 f'{"locality":>9}']
        for m in self.modules:
            lines.append(f'{m.name:<16} {f(m.constant):>9} {f(m.bound):>10} {f(m.rho_mean):>9} '
                         f'{f(m.rho_max):>9} {f(m.locality):>9}')
        lm = self.lemma
        lines.append(f'Lemma 3.1 (M={lm.m}, N={lm.n}, s={lm.s}, |S|={lm.support}, '
                     f'{lm.trials} draws): E||Wd||^2 measured {lm.measured:.5g}, expected '
                     f'M s^2 ||d_S||^2 = {lm.expected:.5g}, rel. error {lm.rel_error:.3%} '
                     f'(stderr {lm.rel_stderr:.3%}) -> {"agrees" if lm.agrees else "DISAGREES"};'
                     f' a fault on {lm.support}/{lm.n} inputs reaches '
                     f'{lm.output_support:.0%} of the outputs')
        for m in self.modules:
            for layer in m.layers:
                lines.append(f'  {m.name}.{layer.name} ({layer.kind}): {layer.bound:.4g}')
        return '\n'.join(lines)


# -- bounds --------------------------------------------------------------------------------------

def _linear_op(layer: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    weight = layer.weight  # parametrized (scaled) weight when modulated
    if isinstance(layer, nn.Conv1d):
        return lambda x: torch.nn.functional.conv1d(x, weight, None, layer.stride,
                                                    layer.padding, layer.dilation, layer.groups)
    if isinstance(layer, nn.Conv2d):
        return lambda x: torch.nn.functional.conv2d(x, weight, None, layer.stride,
                                                    layer.padding, layer.dilation, layer.groups)
    if isinstance(layer, nn.ConvTranspose1d):
        return lambda x: torch.nn.functional.conv_transpose1d(
            x, weight, None, layer.stride, layer.padding, layer.output_padding, layer.groups,
            layer.dilation)
    if isinstance(layer, nn.ConvTranspose2d):
        return lambda x: torch.nn.functional.conv_transpose2d(
            x, weight, None, layer.stride, layer.padding, layer.output_padding, layer.groups,
            layer.dilation)
    raise TypeError(type(layer).__name__)


def conv_operator_norm(layer: nn.Module, input_shape: tuple[int, ...], *, iterations: int = 60,
                       seed: int = 0) -> float:
    """Largest singular value of a (transposed) conv as a linear map on inputs of
    ``input_shape`` (C, ...), by power iteration on A^T A (A^T via autograd)."""
    op = _linear_op(layer)
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn((1, *input_shape), generator=gen)
    v = v / v.norm()
    sigma = 0.0
    for _ in range(iterations):
        x = v.detach().requires_grad_(True)
        y = op(x)
        (grad,) = torch.autograd.grad(y, x, grad_outputs=y.detach())
        norm = grad.norm()
        if norm == 0:
            return 0.0
        v = grad / norm
        with torch.no_grad():
            sigma = float(op(v).norm())
    return sigma


def _layer_bounds(module: nn.Module, example: Callable[[], Any]) -> list[LayerBound]:
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []

    def record(name: str) -> Callable:
        def hook(_module: nn.Module, inp: tuple, _out: Any) -> None:
            shapes.setdefault(name, tuple(inp[0].shape[1:]))
        return hook

    for name, layer in module.named_modules():
        if isinstance(layer, _WEIGHTED):
            hooks.append(layer.register_forward_hook(record(name)))
    try:
        with torch.no_grad():
            example()
    finally:
        for h in hooks:
            h.remove()
    out = []
    with torch.no_grad():
        for name, layer in module.named_modules():
            if not isinstance(layer, _WEIGHTED) or name not in shapes:
                continue
            if isinstance(layer, nn.Linear):
                bound = float(torch.linalg.matrix_norm(layer.weight.detach(), 2))
                kind = 'linear'
            else:
                kind = type(layer).__name__.lower()
                with torch.enable_grad():
                    bound = conv_operator_norm(layer, shapes[name])
            out.append(LayerBound(name, kind, bound))
    return out


# -- empirical gain ------------------------------------------------------------------------------

def empirical_gain(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                   masks: list[torch.Tensor], *, eps: float = 1e-2, seed: int = 0
                   ) -> tuple[float, float]:
    """Mean and max of ||f(x + d) - f(x)|| / ||d|| over perturbations d = eps * noise * mask
    (one per mask, applied to every row of x)."""
    gen = torch.Generator().manual_seed(seed)
    gains = []
    with torch.no_grad():
        base = f(x)
        for mask in masks:
            noise = torch.randn(x.shape, generator=gen) * mask
            noise = noise / noise.flatten(1).norm(dim=1).clamp_min(1e-12).view(
                -1, *([1] * (x.dim() - 1))) * eps
            diff = (f(x + noise) - base).flatten(1).norm(dim=1)
            gains.append((diff / noise.flatten(1).norm(dim=1)).numpy())
    g = np.concatenate(gains)
    return float(g.mean()), float(g.max())


def lemma31_check(*, m: int = 64, n: int = 128, s: float = 0.1, support: int = 8,
                  trials: int = 4000, seed: int = 0) -> LemmaCheck:
    """Monte-Carlo check of Lemma 3.1 (see module doc). Agreement: within 4 standard errors
    (relative stderr of the mean of K draws is sqrt(2 / (M K)) for Gaussian entries)."""
    gen = torch.Generator().manual_seed(seed)
    d = torch.zeros(n, dtype=torch.float64)
    idx = torch.randperm(n, generator=gen)[:support]
    d[idx] = torch.randn(support, generator=gen, dtype=torch.float64)
    w = torch.randn((trials, m, n), generator=gen, dtype=torch.float64) * s
    out = w @ d  # (K, M)
    energy = out.pow(2).sum(1)
    measured = float(energy.mean())
    expected = m * s ** 2 * float(d[idx].pow(2).sum())
    rel_err = abs(measured - expected) / expected
    rel_stderr = math.sqrt(2.0 / (m * trials))
    reach = float((out.abs() > 1e-12).double().mean())
    return LemmaCheck(m, n, s, support, trials, expected, measured, rel_err, rel_stderr,
                      rel_err <= 4 * rel_stderr, reach)


# -- the whole network ---------------------------------------------------------------------------

def _example_inputs(cfg: ModelConfig, samples: int, seed: int) -> tuple[torch.Tensor, ...]:
    from lipfault_ros.synthetic import synthetic_arrays
    from lipfault_ros.normalise import NormStats

    arrays = synthetic_arrays(max(samples, 8), image_size=cfg.image_size,
                              window=cfg.wrench_window, joint_names=cfg.joint_names, seed=seed)
    stats = NormStats.fit(arrays)
    cam = torch.from_numpy(arrays.images[:samples]).permute(0, 3, 1, 2).float() / 255.0
    wr = torch.from_numpy(stats.normalise_wrench(arrays.wrench[:samples]))
    if cfg.joints_window != cfg.wrench_window:
        arrays = synthetic_arrays(max(samples, 8), image_size=cfg.image_size,
                                  window=cfg.joints_window, joint_names=cfg.joint_names,
                                  seed=seed)
        stats = NormStats.fit(arrays)
    jo = torch.from_numpy(stats.normalise_joints(arrays.joints[:samples]))
    return cam, wr, jo


def _local_masks(shape: tuple[int, ...], count: int, width: int, gen: np.random.Generator
                 ) -> list[tuple[torch.Tensor, tuple[int, ...]]]:
    """Masks (1, *shape) that are 1 on a small block: spatial patch / time span / coordinates."""
    masks = []
    for _ in range(count):
        mask = torch.zeros((1, *shape))
        if len(shape) == 3:      # (C, H, W): one patch, all channels
            y, x = (int(gen.integers(0, shape[i] - width + 1)) for i in (1, 2))
            mask[0, :, y:y + width, x:x + width] = 1
            centre = (y + width // 2, x + width // 2)
        elif len(shape) == 2:    # (C, T): one channel, a few samples
            c = int(gen.integers(0, shape[0]))
            t = int(gen.integers(0, shape[1] - width + 1))
            mask[0, c, t:t + width] = 1
            centre = (t + width // 2,)
        else:                    # (L,): a few coordinates
            idx = gen.choice(shape[0], size=min(width, shape[0]), replace=False)
            mask[0, idx] = 1
            centre = tuple(int(i) for i in idx)
        masks.append((mask, centre))
    return masks


def _conv_locality(trunk: nn.Module, x: torch.Tensor, masks: list[tuple[torch.Tensor, tuple]],
                   in_size: tuple[int, ...], eps: float, seed: int) -> float:
    """Share of the conv trunk's output perturbation energy within one cell (in each spatial
    direction) of the cell above the perturbation's centre."""
    gen = torch.Generator().manual_seed(seed)
    shares = []
    with torch.no_grad():
        base = trunk(x)
        for mask, centre in masks:
            d = torch.randn(x.shape, generator=gen) * mask
            d = d / d.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1))) * eps
            diff = (trunk(x + d) - base).pow(2).sum(1)  # (B, *spatial)
            out_size = diff.shape[1:]
            sl = [slice(None)]
            for c, n_in, n_out in zip(centre, in_size, out_size):
                cell = int(c * n_out / n_in)
                sl.append(slice(max(0, cell - 1), cell + 2))
            near = diff[tuple(sl)].flatten(1).sum(1)
            total = diff.flatten(1).sum(1).clamp_min(1e-30)
            shares.append((near / total).numpy())
    return float(np.concatenate(shares).mean())


def _dense_locality(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                    masks: list[tuple[torch.Tensor, tuple]], eps: float, seed: int) -> float:
    """For a map of a space onto itself: share of output perturbation energy on the perturbed
    coordinates (|S| / L when a dense layer spreads it evenly)."""
    gen = torch.Generator().manual_seed(seed)
    shares = []
    with torch.no_grad():
        base = f(x)
        for mask, _ in masks:
            d = torch.randn(x.shape, generator=gen) * mask
            d = d / d.norm(dim=1, keepdim=True) * eps
            diff = (f(x + d) - base).pow(2)
            shares.append(((diff * mask).sum(1) / diff.sum(1).clamp_min(1e-30)).numpy())
    return float(np.concatenate(shares).mean())


def analyze(model: LipfaultNet, *, inputs: tuple[torch.Tensor, ...] | None = None,
            samples: int = 8, trials: int = 8, eps: float = 1e-2, seed: int = 0
            ) -> AnalysisReport:
    """Bounds, empirical gains and locality per module, plus the Lemma 3.1 check.

    ``inputs`` are model-space (camera, wrench, joints) batches; by default synthetic tuples.
    The model is analysed in eval mode (fixed spectral-norm estimates) and left in eval mode.
    """
    cfg = model.cfg
    model = model.cpu().eval()
    if inputs is None:
        inputs = _example_inputs(cfg, samples, seed)
    cam, wr, jo = (t.float().cpu() for t in inputs)
    present = torch.ones(cam.shape[0], 3)
    gen = np.random.default_rng(seed)  # one stream for every mask, drawn in module order
    with torch.no_grad(), parametrize.cached():
        latents, z = model.encode(cam, wr, jo, present)
        recon = model.residual_reconstruction(latents, present, model.decode(z))
        errors = model.residuals((cam, model.squash(wr), model.squash(jo)), recon,
                                 present, model.cross_reconstruction(latents, present))
        feats = model.detector.features(latents, z, errors, present)
    rows = _Rows(eps, seed)
    with parametrize.cached():
        _encoder_rows(rows, model, (cam, wr, jo), trials, gen)
        _latent_rows(rows, model, latents, z, present, trials, gen)
        _detector_row(rows, model, feats, trials, gen)
    return AnalysisReport(tuple(rows.reports), lemma31_check(seed=seed))


@dataclass
class _Rows:
    """The module rows of one analysis, all perturbed with the same size and seed."""

    eps: float
    seed: int
    reports: list[ModuleReport] = field(default_factory=list)

    def add(self, name: str, module: nn.Module, f: Callable, x: torch.Tensor,
            constant: float | None, masks: list, locality: float | None, example: Callable,
            bound_fn: Callable[[list[LayerBound]], float] | None = None) -> None:
        """One row: the layers' bounds (their product unless ``bound_fn`` says otherwise) and
        the empirical gain of ``f`` at ``x`` under perturbations on ``masks``."""
        layers = _layer_bounds(module, example)
        bound = bound_fn(layers) if bound_fn else float(np.prod([lb.bound for lb in layers]))
        with parametrize.cached():
            mean, mx = empirical_gain(f, x, [m for m, _ in masks], eps=self.eps, seed=self.seed)
        self.reports.append(ModuleReport(name, constant, bound, mean, mx, locality,
                                         tuple(layers)))


def _encoder_rows(rows: _Rows, model: LipfaultNet, inputs: tuple[torch.Tensor, ...],
                  trials: int, gen: np.random.Generator) -> None:
    """Each encoder under local input perturbations (an image patch, a few samples of one
    channel), with the locality of its conv trunk."""
    cfg = model.cfg
    patch = max(2, cfg.image_size // 16)
    span = max(2, cfg.wrench_window // 8)
    for key, x, width in zip(('camera', 'wrench', 'joints'), inputs, (patch, span, span)):
        enc = model.encoders[key]
        masks = _local_masks(tuple(x.shape[1:]), trials, width, gen)
        loc = _conv_locality(enc.convs, x, masks, tuple(x.shape[2:]), rows.eps, rows.seed)
        rows.add(f'encoder.{key}', enc, enc, x, cfg.constant('encoder'), masks, loc,
                 lambda enc=enc, x=x: enc(x))


def _latent_rows(rows: _Rows, model: LipfaultNet, latents: tuple[torch.Tensor, ...],
                 z: torch.Tensor, present: torch.Tensor, trials: int,
                 gen: np.random.Generator) -> None:
    """Fusion, the decoders and the compute block, under perturbations of a few latent
    coordinates (the compute block's bound is ``skip + prod``)."""
    cfg = model.cfg
    lat_masks = _local_masks((sum(lat.shape[1] for lat in latents),), trials, 4, gen)
    cat = torch.cat(latents, 1)
    splits = [lat.shape[1] for lat in latents]
    fuse = (lambda c: model.fusion(tuple(torch.split(c, splits, 1)), present))
    rows.add('fusion', model.fusion, fuse, cat, cfg.constant('fusion'), lat_masks, None,
             lambda: fuse(cat))
    z_masks = _local_masks((z.shape[1],), trials, 4, gen)
    for key in ('camera', 'wrench', 'joints'):
        dec = model.decoders[key]
        rows.add(f'decoder.{key}', dec, dec, z, cfg.constant('decoder'), z_masks, None,
                 lambda dec=dec: dec(z))
    skip = model.compute.skip
    rows.add('compute', model.compute, model.compute, z, cfg.constant('compute'), z_masks,
             _dense_locality(model.compute, z, z_masks, rows.eps, rows.seed),
             lambda: model.compute(z),
             bound_fn=lambda layers: skip + float(np.prod([lb.bound for lb in layers])))


def _detector_row(rows: _Rows, model: LipfaultNet, feats: torch.Tensor, trials: int,
                  gen: np.random.Generator) -> None:
    """The detection head's logits under perturbations of a few of its input features (its
    bound is the trunk's product times the logit layer's)."""
    det = model.detector
    f_masks = _local_masks((feats.shape[1],), trials, 4, gen)

    def det_logits(h: torch.Tensor) -> torch.Tensor:
        return det.logits(det.trunk(h))

    def det_bound(layers: list[LayerBound]) -> float:
        trunk = [lb.bound for lb in layers if lb.name.startswith('trunk')]
        head = [lb.bound for lb in layers if lb.name == 'logits']
        return float(np.prod(trunk) * (head[0] if head else 1.0))

    rows.add('detector', det, det_logits, feats, model.cfg.constant('detector'), f_masks, None,
             lambda: det(feats), bound_fn=det_bound)


# -- CLI -----------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('artifact', type=Path, help='model artifact directory')
    parser.add_argument('--json', type=Path, default=None, metavar='FILE',
                        help='also write the full report as JSON')
    parser.add_argument('--samples', type=int, default=8, help='example tuples (default 8)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default 0)')


def main(args: argparse.Namespace) -> int:
    from lipfault_ros.artifact import load_artifact

    artifact = load_artifact(args.artifact)
    report = analyze(artifact.model, samples=args.samples, seed=args.seed)
    print(f'sensitivity of {args.artifact} (modulation '
          f'{"on" if artifact.config.modulation else "off"})')
    print(report.format())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2) + '\n')
    return 0
