"""Export of the inference path: ONNX (ONNX Runtime, TensorRT, Isaac ROS), TorchScript
(``torch.jit.load``, libtorch in C++) and ``torch.export`` programs (``.pt2``);
``lipfault export ARTIFACT --format onnx --out FILE``.

The exported module has no Python-side branches: it always computes both the bypass and the
correction path and selects per row, so its outputs equal ``LipfaultNet.forward`` exactly (the
bypass saves time only in the Python engine). Inputs are model-space tensors (see
:mod:`lipfault_ros.normalise`); normalisation statistics and thresholds are in the artifact's
``config.json``, thresholds also inside the module.
"""

from __future__ import annotations

import argparse
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize

from lipfault_ros.artifact import Artifact, load_artifact
from lipfault_ros.errors import ArtifactError
from lipfault_ros.model.network import LipfaultNet, fault_decision

__all__ = ['FORMATS', 'InferencePath', 'add_arguments', 'export_onnx', 'export_program',
           'export_torchscript', 'main', 'plain_network']

log = logging.getLogger(__name__)


class InferencePath(nn.Module):
    """``forward(camera, wrench, joints, present, camera_change) -> (scores (B,3), faults
    (B,3) bool, bypassed (B,) bool, camera_out, wrench_out, joints_out)`` where the outputs are
    the reconstruction for bypassed rows and the correction otherwise. ``camera_change`` (B,) is
    ``residuals.frame_change`` against the previous camera frame, -1 where there is none. A
    signal row holding NaN or Inf is read as zeros and its modality is faulty with score +inf,
    exactly as :class:`~lipfault_ros.inference.Engine` treats it."""

    def __init__(self, net: LipfaultNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, camera: torch.Tensor, wrench: torch.Tensor, joints: torch.Tensor,
                present: torch.Tensor, camera_change: torch.Tensor) -> tuple[torch.Tensor, ...]:
        net = self.net
        # a NaN/Inf reading is zeroed and its modality forced faulty, as the engine does
        bad_w = ~torch.isfinite(wrench).flatten(1).all(dim=1)
        bad_j = ~torch.isfinite(joints).flatten(1).all(dim=1)
        force = torch.stack([torch.zeros_like(bad_w), bad_w, bad_j], dim=1)
        wrench = torch.where(torch.isfinite(wrench), wrench, torch.zeros_like(wrench))
        joints = torch.where(torch.isfinite(joints), joints, torch.zeros_like(joints))
        inputs = (camera, wrench, joints)
        latents, z = net.encode(camera, wrench, joints, present)
        recon = net.decode(z)
        _, logits = net.detect(inputs, latents, z, recon, present, camera_change)
        scores, faults = fault_decision(logits, net.thresholds, present, force)
        bypassed = ~faults.any(dim=1)
        corrected = net.decode(net.correct(latents, present, faults))
        outs = []
        for r, c in zip(recon, corrected):
            sel = bypassed.view(-1, *([1] * (r.dim() - 1)))
            outs.append(torch.where(sel, r, c))
        return (scores, faults, bypassed, outs[0], outs[1], outs[2])


def plain_network(net: LipfaultNet) -> LipfaultNet:
    """An eval-mode copy of ``net`` with the Lipschitz parametrizations folded into plain
    weights (same values as eval-mode ``net`` uses), ready for tracing or export."""
    # a fresh unmodulated network with the same module names; deepcopy would share the
    # parametrized classes with ``net`` and removing them there would break ``net``
    plain = LipfaultNet(net.cfg.replace(modulation=False)).eval()
    net.eval()
    with torch.no_grad(), parametrize.cached():
        source = dict(net.named_modules())
        for name, module in plain.named_modules():
            src = source[name]
            for pname, param in module.named_parameters(recurse=False):
                param.copy_(getattr(src, pname))
            for bname, buf in module.named_buffers(recurse=False):
                buf.copy_(getattr(src, bname))
    return plain


def _prepare(source: Artifact | LipfaultNet | Path | str, path: Path | str, overwrite: bool
             ) -> tuple[Path, InferencePath, tuple[torch.Tensor, ...]]:
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f'{path} exists (pass overwrite=True to replace it)')
    if isinstance(source, (str, Path)):
        source = load_artifact(source)
    net = source.model if isinstance(source, Artifact) else source
    cfg = net.cfg
    gen = torch.Generator().manual_seed(0)
    example = (torch.rand((2, 3, cfg.image_size, cfg.image_size), generator=gen),
               torch.randn((2, 6, cfg.wrench_window), generator=gen),
               torch.randn((2, cfg.joints_channels, cfg.joints_window), generator=gen),
               torch.ones(2, 3), torch.tensor([-1.0, 1e-4]))
    return path, InferencePath(plain_network(net)).eval(), example


def _check(want: tuple[torch.Tensor, ...], got: tuple[torch.Tensor, ...], what: str,
           path: Path) -> None:
    for a, b in zip(want, got):
        if a.shape != b.shape or not torch.equal(a, b):
            raise ArtifactError(f'{what} of the inference path differs from eager mode; not '
                                f'writing {path}')


def export_torchscript(source: Artifact | LipfaultNet | Path | str, path: Path | str, *,
                       overwrite: bool = False) -> Path:
    """Trace the inference path of an artifact (or a loaded network) to a TorchScript file.

    The traced module is checked against the eager one on example inputs before it is written
    (atomically: temp file + rename).
    """
    path, module, example = _prepare(source, path, overwrite)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)  # jit.trace is deprecated upstream
        traced = torch.jit.trace(module, example, check_trace=False)
        _check(module(*example), traced(*example), 'TorchScript trace', path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
    traced.save(str(tmp))
    os.replace(tmp, path)
    log.info('exported TorchScript inference path to %s', path)
    return path


def export_program(source: Artifact | LipfaultNet | Path | str, path: Path | str, *,
                   overwrite: bool = False) -> Path:
    """Export the inference path with ``torch.export`` to a ``.pt2`` file (load it with
    ``torch.export.load(path).module()``), checked against eager mode first."""
    path, module, example = _prepare(source, path, overwrite)
    batch = torch.export.Dim('batch', min=1, max=4096)
    shapes = tuple({0: batch} for _ in example)
    with torch.no_grad():
        program = torch.export.export(module, example, dynamic_shapes=shapes)
        _check(module(*example), program.module()(*example), 'torch.export program', path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
    torch.export.save(program, str(tmp))
    os.replace(tmp, path)
    log.info('exported the inference path to %s', path)
    return path


#: the exported graph's input and output names (ONNX)
ONNX_INPUTS = ('camera', 'wrench', 'joints', 'present', 'camera_change')
ONNX_OUTPUTS = ('scores', 'faults', 'bypassed', 'camera_out', 'wrench_out', 'joints_out')
#: tolerance of the exported graph against eager torch (float outputs; flags must be equal)
ONNX_ATOL = 1e-4


def export_onnx(source: Artifact | LipfaultNet | Path | str, path: Path | str, *,
                overwrite: bool = False) -> Path:
    """The inference path as one ONNX graph with a dynamic batch (inputs and outputs named
    ``ONNX_INPUTS`` / ``ONNX_OUTPUTS``), checked with ONNX Runtime against eager torch on
    example inputs (flags equal, floats within ``ONNX_ATOL``) before it is written."""
    import numpy as np

    from lipfault_ros.ort_stages import export_graph, session

    path, module, example = _prepare(source, path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
    try:
        export_graph(module, example, tmp, ONNX_INPUTS, ONNX_OUTPUTS, batch_dynamic=True)
        sess = session(tmp, threads=1)
        got = sess.run(None, {i.name: t.numpy() for i, t in zip(sess.get_inputs(), example)})
        with torch.no_grad():
            want = [t.numpy() for t in module(*example)]
        for name, a, b in zip(ONNX_OUTPUTS, want, got):
            same = (np.array_equal(a, b) if a.dtype == bool else
                    a.shape == b.shape and np.allclose(a, b, atol=ONNX_ATOL, rtol=0))
            if not same:
                raise ArtifactError(f'ONNX output {name} differs from eager mode; not writing '
                                    f'{path}')
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info('exported the inference path to %s (ONNX)', path)
    return path


#: ``lipfault export --format``: what each writes
FORMATS = {'onnx': export_onnx, 'torchscript': export_torchscript, 'program': export_program}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('artifact', type=Path, help='model artifact directory (lipfault train)')
    parser.add_argument('--format', choices=tuple(FORMATS), default='onnx',
                        help='onnx (ONNX Runtime, TensorRT), torchscript (libtorch) or program '
                             '(torch.export .pt2); default onnx')
    parser.add_argument('--out', type=Path, required=True, help='file to write')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing file')


def main(args: argparse.Namespace) -> int:
    path = FORMATS[args.format](args.artifact, args.out, overwrite=args.overwrite)
    print(f'wrote {path} ({args.format}); inputs are model-space tensors, see '
          'lipfault_ros.export.InferencePath')
    return 0
