"""The compiled batch-1 path of ``Engine.infer`` gives exactly what the eager forward gives:
bypass and correction, missing modalities, NaN/Inf inputs, resized images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lipfault_ros.artifact import Artifact
from lipfault_ros.bench.model_latency import random_tuple
from lipfault_ros.inference import Engine
from lipfault_ros.model.config import ModelConfig
from lipfault_ros.model.network import LipfaultNet
from lipfault_ros.normalise import NormStats
from lipfault_ros.tuples import MODALITIES, Modality, SensorTuple


def _engine(cfg: ModelConfig, thresholds: list[float], **engine_options: int) -> Engine:
    torch.manual_seed(0)
    model = LipfaultNet(cfg).eval()
    with torch.no_grad():
        model.thresholds.copy_(torch.tensor(thresholds))
    j = len(cfg.joint_names)
    stats = NormStats(np.arange(6.0), np.full(6, 2.0), np.ones((j, 3)), np.full((j, 3), 3.0))
    return Engine(Artifact(Path('<test>'), cfg, model, stats, np.array(thresholds)),
                  device='cpu', **engine_options)


def _variants(cfg: ModelConfig, rng: np.random.Generator):
    t = random_tuple(cfg, rng)
    yield t
    yield random_tuple(cfg, rng, image_hw=(48, 80))
    yield SensorTuple(2, None, t.wrench, t.joints, t.joint_names,
                      missing=frozenset({Modality.CAMERA}))
    yield SensorTuple(3, t.image, None, t.joints, t.joint_names,
                      missing=frozenset({Modality.WRENCH}))
    yield SensorTuple(4, t.image, t.wrench, None, t.joint_names,
                      missing=frozenset({Modality.JOINTS}))
    w = t.wrench.copy()
    w[3, 2] = np.nan
    j = t.joints.copy()
    j[-1, 0, 1] = np.inf
    yield SensorTuple(5, t.image, w, t.joints, t.joint_names)
    yield SensorTuple(6, t.image, t.wrench, j, t.joint_names)


def _same(a, b) -> None:
    assert (a.stamp_ns, a.bypassed) == (b.stamp_ns, b.bypassed)
    for m in MODALITIES:
        x, y = a.results[m], b.results[m]
        assert x.score == y.score or (np.isnan(x.score) and np.isnan(y.score))
        assert (x.fault, x.missing, x.corrected, x.threshold) == \
            (y.fault, y.missing, y.corrected, y.threshold)
    for f in ('image', 'wrench', 'joint_position', 'joint_velocity', 'joint_effort'):
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), f


@pytest.mark.parametrize('thresholds', [[np.inf] * 3, [-np.inf] * 3, [0.0, -0.5, 0.5]])
def test_compiled_infer_equals_the_eager_forward(thresholds):
    cfg = ModelConfig.tiny()
    eager, compiled = _engine(cfg, thresholds, compile_after=0), _engine(cfg, thresholds)
    rng = np.random.default_rng(1)
    for t in _variants(cfg, rng):  # the first calls run eager and switch over
        _same(eager.infer(t), compiled.infer(t))
    assert compiled.compiled_stages is not None and eager.compiled_stages is None
    for t in _variants(cfg, rng):
        _same(eager.infer(t), compiled.infer(t))
