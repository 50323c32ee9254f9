"""The engine's two stages on ONNX Runtime (``runtime: onnxruntime``).

The same split as the torch path (:class:`~lipfault_ros.inference.stages.Stages`): ``detect``
(encode, fuse, decode, score) and ``correct`` (fuse without the faulty modalities, compute
block, decode), each exported to an ONNX graph when the engine starts, so a clean tuple still
bypasses the correction. Thresholds are an input of ``detect``, so tuning them live needs no
re-export. Inputs and outputs are the torch tensors the engine already uses (CPU, float32).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from lipfault_ros.errors import ConfigError

__all__ = ['CorrectGraph', 'DetectGraph', 'OrtStages', 'export_graph', 'session']

log = logging.getLogger(__name__)


class DetectGraph(nn.Module):
    """``stages.detect`` as a module's forward, with named arguments (what the exporter takes)."""

    def __init__(self, stages: nn.Module) -> None:
        super().__init__()
        self.stages = stages

    def forward(self, camera: torch.Tensor, wrench: torch.Tensor, joints: torch.Tensor,
                present: torch.Tensor, force: torch.Tensor, camera_change: torch.Tensor,
                thresholds: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.stages.detect(camera, wrench, joints, present, force, camera_change,
                                  thresholds)


class CorrectGraph(nn.Module):
    """``stages.correct`` as a module's forward."""

    def __init__(self, stages: nn.Module) -> None:
        super().__init__()
        self.stages = stages

    def forward(self, latent_camera: torch.Tensor, latent_wrench: torch.Tensor,
                latent_joints: torch.Tensor, present: torch.Tensor, faults: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
        return self.stages.correct(latent_camera, latent_wrench, latent_joints, present, faults)


def export_graph(module: nn.Module, example: Sequence[torch.Tensor], path: Path,
                 inputs: Sequence[str], outputs: Sequence[str], *,
                 batch_dynamic: bool = False) -> Path:
    """``module(*example)`` as an ONNX graph at ``path``, shapes fixed as in ``example``, or
    with the first dimension of every input the (dynamic) batch."""
    batch = torch.export.Dim('batch', min=1, max=4096)
    shapes = tuple({0: batch} for _ in example) if batch_dynamic else None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        program = torch.onnx.export(module, tuple(example), dynamo=True, verbose=False,
                                    input_names=list(inputs), output_names=list(outputs),
                                    dynamic_shapes=shapes)
        program.save(str(path))
    return path


def session(path: Path, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session on ``path`` with ``threads`` intra-op threads (0: its
    default)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - a requirement
        raise ConfigError('runtime onnxruntime needs the onnxruntime package') from exc
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=['CPUExecutionProvider'])


class OrtStages:
    """``detect`` and ``correct`` of :class:`~lipfault_ros.inference.stages.Stages` on ONNX Runtime,
    exported from ``stages`` on ``example`` (cam, wr, jo, present, force, change, thresholds),
    at its batch size (the engine's batch 1)."""

    DETECT_IN = ('camera', 'wrench', 'joints', 'present', 'force', 'camera_change', 'thresholds')
    DETECT_OUT = ('scores', 'faults', 'latent_camera', 'latent_wrench', 'latent_joints',
                  'recon_camera', 'recon_wrench', 'recon_joints')
    CORRECT_IN = ('latent_camera', 'latent_wrench', 'latent_joints', 'present', 'faults')
    CORRECT_OUT = ('camera', 'wrench', 'joints')

    def __init__(self, stages: nn.Module, example: Sequence[torch.Tensor], *,
                 threads: int = 1) -> None:
        with torch.no_grad():
            out = stages.detect(*example)
        correct_example = (out[2], out[3], out[4], example[3], out[1])
        with tempfile.TemporaryDirectory(prefix='lipfault-onnx-') as tmp:
            det = export_graph(DetectGraph(stages), example, Path(tmp) / 'detect.onnx',
                               self.DETECT_IN, self.DETECT_OUT)
            cor = export_graph(CorrectGraph(stages), correct_example,
                               Path(tmp) / 'correct.onnx', self.CORRECT_IN, self.CORRECT_OUT)
            self._detect = session(det, threads)
            self._correct = session(cor, threads)
        # the exporter may drop inputs a graph does not use (a constant buffer, say)
        self._detect_names = {i.name for i in self._detect.get_inputs()}
        self._correct_names = {i.name for i in self._correct.get_inputs()}

    @staticmethod
    def _feed(names: set[str], keys: Sequence[str], tensors: Sequence[torch.Tensor]
              ) -> dict[str, np.ndarray]:
        return {k: t.detach().cpu().numpy() for k, t in zip(keys, tensors) if k in names}

    def detect(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self._detect.run(None, self._feed(self._detect_names, self.DETECT_IN, tensors))
        return tuple(torch.from_numpy(o) for o in out)

    def correct(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self._correct.run(None, self._feed(self._correct_names, self.CORRECT_IN, tensors))
        return tuple(torch.from_numpy(o) for o in out)
