"""ONNX: the engine on ONNX Runtime decides and corrects as the torch engine does, and the
exported single graph runs in ONNX Runtime with the eager outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lipfault_ros.errors import ConfigError
from lipfault_ros.export import ONNX_ATOL, export_onnx
from lipfault_ros.inference import Engine
from lipfault_ros.synthetic import synthetic_arrays
from lipfault_ros.training.tiny import train_tiny_model
from lipfault_ros.ort_stages import session
from lipfault_ros.tuples import MODALITIES, SensorTuple

#: scores (logits) and corrected signals (joint units, newtons) may differ by this much between
#: the runtimes (float32 kernels differ); flags and bypass decisions must be identical
ATOL = 1e-3


@pytest.fixture(scope='module')
def engines():
    artifact = train_tiny_model().artifact
    return (Engine.from_artifact(artifact, device='cpu'),
            Engine.from_artifact(artifact, device='cpu', runtime='onnxruntime'))


def _tuples(kind: str) -> list[SensorTuple]:
    a = synthetic_arrays(12, image_size=32, seed=21)
    out = []
    for i in range(len(a)):
        wrench = np.array(a.wrench[i])
        if kind == 'nan' and i % 2:
            wrench[-3:, 2] = np.nan
        out.append(SensorTuple(int(a.stamps_ns[i]), a.images[i], wrench, a.joints[i],
                               a.joint_names))
    return out


@pytest.mark.parametrize('kind', ['clean', 'faulty', 'nan'])
def test_onnxruntime_engine_matches_torch(engines, kind):
    ref, ort = engines
    offsets = (-1e3, -1e3, -1e3) if kind == 'faulty' else (0.0, 0.0, 0.0)  # all over threshold
    for engine in engines:
        engine.set_threshold_offsets(offsets)
        engine.forget_history()
    try:
        for t in _tuples(kind):
            a, b = ref.infer(t), ort.infer(t)
            assert a.bypassed == b.bypassed
            for m in MODALITIES:
                ra, rb = a.results[m], b.results[m]
                assert (ra.fault, ra.corrected) == (rb.fault, rb.corrected)
                if np.isinf(ra.score):
                    assert rb.score == ra.score  # a NaN input is a forced fault in both
                else:
                    assert abs(ra.score - rb.score) < ATOL
            assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 1
            np.testing.assert_allclose(a.wrench, b.wrench, atol=ATOL)
            np.testing.assert_allclose(a.joint_position, b.joint_position, atol=ATOL)
            if kind == 'faulty':
                assert not a.bypassed and all(a.results[m].corrected for m in MODALITIES)
    finally:
        for engine in engines:
            engine.set_threshold_offsets((0.0, 0.0, 0.0))


def test_the_exported_graph_runs_in_onnxruntime_with_the_eager_outputs(engines, tmp_path):
    ref, _ = engines
    path = export_onnx(ref.artifact, tmp_path / 'model.onnx')
    sess = session(path)
    gen = torch.Generator().manual_seed(3)
    x = (torch.rand(5, 3, 32, 32, generator=gen), torch.randn(5, 6, 16, generator=gen),
         torch.randn(5, 21, 16, generator=gen), torch.ones(5, 3),
         torch.tensor([-1.0, 0.0, 1e-5, 1e-3, 0.1]))
    got = sess.run(None, {i.name: t.numpy() for i, t in zip(sess.get_inputs(), x)})
    with torch.no_grad():
        eager = ref.model(*x[:4], camera_change=x[4])
    assert np.allclose(got[0], eager.scores.numpy(), atol=ONNX_ATOL)
    assert np.array_equal(got[1], eager.faults.numpy())
    with pytest.raises(FileExistsError):
        export_onnx(ref.artifact, path)

    # a NaN or Inf reading: zeroed and forced faulty (score +inf) in the graph as in the engine
    bad_w, bad_j = x[1].clone(), x[2].clone()
    bad_w[1, 2, 5] = float('nan')
    bad_j[3, 0, 0] = float('inf')
    got = sess.run(None, {i.name: t.numpy() for i, t in
                          zip(sess.get_inputs(), (x[0], bad_w, bad_j) + x[3:])})
    force = torch.zeros(5, 3, dtype=torch.bool)
    force[1, 1] = force[3, 2] = True
    with torch.no_grad():
        eager = ref.model(x[0], torch.nan_to_num(bad_w, nan=0.0, posinf=0.0),
                          torch.nan_to_num(bad_j, nan=0.0, posinf=0.0), x[3],
                          force_fault=force, camera_change=x[4])
    assert np.isfinite(got[4]).all() and np.isfinite(got[5]).all()
    assert got[0][1, 1] == np.inf and got[0][3, 2] == np.inf
    assert np.array_equal(got[1], eager.faults.numpy()) and got[1][1, 1] and got[1][3, 2]
    assert not got[2][1] and not got[2][3]  # those rows are corrected, not bypassed
    finite = np.isfinite(eager.scores.numpy())
    assert np.allclose(got[0][finite], eager.scores.numpy()[finite], atol=ONNX_ATOL)


def test_an_unknown_runtime_is_refused():
    with pytest.raises(ConfigError, match='runtime'):
        Engine.from_artifact(train_tiny_model().artifact, device='cpu', runtime='tvm')
