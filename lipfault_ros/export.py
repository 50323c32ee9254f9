"""TorchScript export of the inference path, for C++ or Python-free deployment.

The exported module has no Python-side branches: it always computes both the bypass and the
correction path and selects per row, so its outputs equal ``LipfaultNet.forward`` exactly (the
bypass saves time only in the Python engine). Inputs are model-space tensors (see
:mod:`lipfault_ros.normalise`); normalisation statistics and thresholds are in the artifact's
``config.json``, thresholds also inside the module.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize

from lipfault_ros.artifact import Artifact, load_artifact
from lipfault_ros.errors import ArtifactError
from lipfault_ros.model.network import LipfaultNet

__all__ = ['InferencePath', 'export_torchscript']

log = logging.getLogger(__name__)


class InferencePath(nn.Module):
    """``forward(camera, wrench, joints, present) -> (scores (B,3), faults (B,3) bool,
    bypassed (B,) bool, camera_out, wrench_out, joints_out)`` where the outputs are the
    reconstruction for bypassed rows and the correction otherwise."""

    def __init__(self, net: LipfaultNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, camera: torch.Tensor, wrench: torch.Tensor, joints: torch.Tensor,
                present: torch.Tensor) -> tuple[torch.Tensor, ...]:
        net = self.net
        inputs = (camera, wrench, joints)
        latents, z = net.encode(camera, wrench, joints, present)
        recon = net.decode(z)
        _, logits = net.detect(inputs, latents, z, recon, present)
        faults = (logits > net.thresholds) & (present > 0.5)
        bypassed = ~faults.any(dim=1)
        corrected = net.decode(net.correct(latents, present, faults))
        outs = []
        for r, c in zip(recon, corrected):
            sel = bypassed.view(-1, *([1] * (r.dim() - 1)))
            outs.append(torch.where(sel, r, c))
        return (logits, faults, bypassed, outs[0], outs[1], outs[2])


def export_torchscript(source: Artifact | LipfaultNet | Path | str, path: Path | str, *,
                       overwrite: bool = False) -> Path:
    """Trace the inference path of an artifact (or a loaded network) to a TorchScript file.

    The traced module is checked against the eager one on example inputs before it is written
    (atomically: temp file + rename).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f'{path} exists (pass overwrite=True to replace it)')
    if isinstance(source, (str, Path)):
        source = load_artifact(source)
    net = source.model if isinstance(source, Artifact) else source
    net = net.cpu().eval()
    cfg = net.cfg
    gen = torch.Generator().manual_seed(0)
    example = (torch.rand((2, 3, cfg.image_size, cfg.image_size), generator=gen),
               torch.randn((2, 6, cfg.wrench_window), generator=gen),
               torch.randn((2, cfg.joints_channels, cfg.joints_window), generator=gen),
               torch.ones(2, 3))
    module = InferencePath(net).eval()
    with torch.no_grad(), parametrize.cached():
        traced = torch.jit.trace(module, example, check_trace=False)
        want = module(*example)
        got = traced(*example)
    for a, b in zip(want, got):
        if a.shape != b.shape or not torch.equal(a, b):
            raise ArtifactError(f'TorchScript trace of the inference path differs from eager '
                                f'mode; not writing {path}')
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
    traced.save(str(tmp))
    os.replace(tmp, path)
    log.info('exported TorchScript inference path to %s', path)
    return path
