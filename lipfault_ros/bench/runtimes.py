"""The CPU runtimes beside torch in the model benchmark: ONNX Runtime and, when it is installed,
OpenVINO, on the same two ONNX graphs (detect; correct only the faulty) the engine's
``runtime: onnxruntime`` runs.

ONNX Runtime is timed through ``Engine.infer`` (what the node pays) and as bare stages; OpenVINO
only as bare stages: it is measured to decide whether it earns a node runtime of its own, and on
the machines measured so far it does not (see the README's runtime section). Each variant joins
the same interleaved rounds as the torch variants, so the figures compare under one load.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from lipfault_ros.inference import Engine
from lipfault_ros.tuples import MODALITIES, SensorTuple

__all__ = ['OpenVinoStages', 'add_runtimes']

log = logging.getLogger(__name__)


class OpenVinoStages:
    """The engine's detect and correct graphs compiled by OpenVINO for the CPU (one inference
    thread, latency hint), with :class:`~lipfault_ros.ort_stages.OrtStages`' interface."""

    def __init__(self, stages: Any, example: Sequence[torch.Tensor], threads: int = 1) -> None:
        import openvino as ov

        from lipfault_ros.ort_stages import CorrectGraph, DetectGraph, OrtStages, export_graph

        with torch.no_grad():
            out = stages.detect(*example)
        correct_example = (out[2], out[3], out[4], example[3], out[1])
        core = ov.Core()
        config = {'INFERENCE_NUM_THREADS': threads, 'PERFORMANCE_HINT': 'LATENCY',
                  'INFERENCE_PRECISION_HINT': 'f32'}  # as torch and ONNX Runtime
        with tempfile.TemporaryDirectory(prefix='lipfault-openvino-') as tmp:
            det = export_graph(DetectGraph(stages), example, Path(tmp) / 'detect.onnx',
                               OrtStages.DETECT_IN, OrtStages.DETECT_OUT)
            cor = export_graph(CorrectGraph(stages), correct_example, Path(tmp) / 'correct.onnx',
                               OrtStages.CORRECT_IN, OrtStages.CORRECT_OUT)
            self._detect = core.compile_model(str(det), 'CPU', config)
            self._correct = core.compile_model(str(cor), 'CPU', config)
        self._requests = (self._detect.create_infer_request(),
                          self._correct.create_infer_request())
        self._names = ({i.get_any_name() for i in self._detect.inputs},
                       {i.get_any_name() for i in self._correct.inputs})
        self._keys = (OrtStages.DETECT_IN, OrtStages.CORRECT_IN)

    def _run(self, which: int, tensors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        feed = {k: t.detach().cpu().numpy() for k, t in zip(self._keys[which], tensors)
                if k in self._names[which]}
        out = self._requests[which].infer(feed)
        return tuple(torch.from_numpy(np.asarray(v)) for v in out.values())

    def detect(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self._run(0, tensors)

    def correct(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self._run(1, tensors)


def _stage_pass(stages: Any, example: Sequence[torch.Tensor]) -> Callable[[], Any]:
    """Detect, then correct every modality: the faulty path of one tuple."""
    present = example[3]
    every = torch.ones_like(present, dtype=torch.bool)

    def run() -> Any:
        out = stages.detect(*example)
        return stages.correct(out[2], out[3], out[4], present, every)
    return run


def add_runtimes(row: dict[str, Any], variants: dict[str, Callable[[], Any]], clean: Engine,
                 faulty: Engine, t: SensorTuple, tensors: tuple[torch.Tensor, ...]) -> None:
    """ONNX Runtime (``infer_ort_clean``/``infer_ort_faulty`` through ``Engine.infer``,
    ``stages_ort``) and OpenVINO (``stages_openvino``) beside ``stages_torch`` (the eager
    stages), with their largest score difference from torch; the reason where one is
    unavailable (``row['onnxruntime']``, ``row['openvino']``)."""
    example = tuple(tensors) + (faulty.model.thresholds,)
    variants['stages_torch'] = _stage_pass(faulty.eager_stages, example)
    reference = np.array([faulty.infer(t).results[m].score for m in MODALITIES])
    try:
        ort_clean = Engine(clean.artifact, device='cpu', runtime='onnxruntime')
        ort_faulty = Engine(faulty.artifact, device='cpu', runtime='onnxruntime')
        variants['infer_ort_clean'] = lambda: ort_clean.infer(t)
        variants['infer_ort_faulty'] = lambda: ort_faulty.infer(t)
        variants['stages_ort'] = _stage_pass(ort_faulty.compiled_stages, example)
        got = np.array([ort_faulty.infer(t).results[m].score for m in MODALITIES])
        row['ort_max_score_diff'] = float(np.max(np.abs(got - reference)))
        row['onnxruntime'] = 'available'
    except Exception as exc:  # noqa: BLE001 - an optional path; report why it is absent
        log.warning('ONNX Runtime unavailable: %s', exc)
        row['onnxruntime'] = f'unavailable: {exc}'[:200]
    try:
        ov_stages = OpenVinoStages(faulty.eager_stages, example, threads=torch.get_num_threads())
        variants['stages_openvino'] = _stage_pass(ov_stages, example)
        scores = ov_stages.detect(*example)[0][0].numpy().astype(np.float64)
        row['openvino_max_score_diff'] = float(np.max(np.abs(scores - reference)))
        row['openvino'] = 'available'
    except ImportError:
        row['openvino'] = 'unavailable: openvino is not installed (pip install openvino)'
    except Exception as exc:  # noqa: BLE001 - optional; report why it is absent
        log.warning('OpenVINO unavailable: %s', exc)
        row['openvino'] = f'unavailable: {exc}'[:200]
