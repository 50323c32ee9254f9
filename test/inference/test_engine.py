"""Engine: bypass for clean tuples, correction for faulty ones, missing, NaN and bad inputs."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from lipfault_ros.errors import InputError
from lipfault_ros.export import export_torchscript
from lipfault_ros.inference import Engine
from lipfault_ros.synthetic import synthetic_arrays
from lipfault_ros.training.tiny import train_tiny_model
from lipfault_ros.tuples import Modality, SensorTuple


@pytest.fixture(scope='module')
def engine():
    torch.set_num_threads(1)
    return Engine.from_artifact(train_tiny_model().artifact, device='cpu')


@pytest.fixture(scope='module')
def held_out():
    return synthetic_arrays(60, image_size=32, window=16, seed=7)


def _tuple(arrays, i, *, image=None, wrench=None, joints=None, missing=()):
    return SensorTuple(int(arrays.stamps_ns[i]),
                       arrays.images[i] if image is None else image,
                       arrays.wrench[i] if wrench is None else wrench,
                       arrays.joints[i] if joints is None else joints,
                       arrays.joint_names, missing=frozenset(missing))


def test_clean_tuples_bypass_the_compute_block(engine, held_out):
    results = [engine.infer(_tuple(held_out, i)) for i in range(20)]
    bypassed = [r.bypassed for r in results]
    assert np.mean(bypassed) >= 0.9
    r = next(r for r in results if r.bypassed)
    assert not any(m.fault or m.corrected for m in r.results.values())
    assert np.array_equal(r.image, held_out.images[results.index(r)])  # pass-through
    assert r.wrench.shape == (6,) and r.wrench.dtype == np.float64
    assert r.joint_position.shape == (7,) and r.latency_ms > 0


def test_faulty_modality_takes_the_correction_path(engine, held_out):
    i = 3
    black = np.zeros_like(held_out.images[i])
    r = engine.infer(_tuple(held_out, i, image=black))
    cam = r.results[Modality.CAMERA]
    assert cam.fault and cam.corrected and not r.bypassed
    assert cam.score > cam.threshold
    clean = held_out.images[i].astype(float)
    assert np.abs(r.image.astype(float) - clean).mean() < np.abs(black - clean).mean() / 2

    wrench = held_out.wrench[i].copy()
    wrench[-8:] += 40.0  # a large bias step
    r = engine.infer(_tuple(held_out, i, wrench=wrench))
    w = r.results[Modality.WRENCH]
    assert w.fault and w.corrected and not r.bypassed
    assert (np.abs(r.wrench - held_out.wrench[i][-1]).mean()
            < np.abs(wrench[-1] - held_out.wrench[i][-1]).mean())


def test_nan_input_is_a_fault_not_a_crash(engine, held_out):
    joints = held_out.joints[5].copy()
    joints[-1, 2, 0] = np.nan
    r = engine.infer(_tuple(held_out, 5, joints=joints))
    res = r.results[Modality.JOINTS]
    assert res.fault and res.corrected and res.score == float('inf')
    assert np.all(np.isfinite(r.joint_position))


def test_missing_modality_is_reconstructed_and_reported(engine, held_out):
    t = SensorTuple(1, held_out.images[8], None, held_out.joints[8], held_out.joint_names,
                    missing=frozenset({Modality.WRENCH}))
    r = engine.infer(t)
    w = r.results[Modality.WRENCH]
    assert w.missing and w.corrected and not w.fault and np.isnan(w.score)
    assert np.all(np.isfinite(r.wrench))
    # from the others, the estimate beats a zero guess
    truth = held_out.wrench[8][-1]
    assert np.abs(r.wrench - truth).mean() < np.abs(truth).mean()


def test_image_of_any_size_comes_back_at_its_input_size(engine, held_out):
    import cv2
    big = cv2.resize(held_out.images[2], (80, 48))
    r = engine.infer(_tuple(held_out, 2, image=np.zeros_like(big)))
    assert r.image.shape == (48, 80, 3) and r.image.dtype == np.uint8


@pytest.mark.parametrize('field, value, match', [
    ('image', np.zeros((32, 32), np.uint8), r'image must be \(H, W, 3\)'),
    ('image', np.zeros((32, 32, 3), np.float32), 'image must be uint8'),
    ('wrench', np.zeros((8, 6), np.float32), r'wrench window must be \(16, 6\)'),
    ('wrench', np.zeros((16, 6), np.int32), 'wrench must be floating point'),
    ('joints', np.zeros((16, 6, 3), np.float32), r'joints window must be \(16, 7, 3\)'),
])
def test_wrong_shapes_and_dtypes_raise_input_error(engine, held_out, field, value, match):
    with pytest.raises(InputError, match=match):
        engine.infer(_tuple(held_out, 0, **{field: value}))


def test_joint_names_must_match_by_name(engine, held_out):
    names = tuple(reversed(held_out.joint_names))
    t = SensorTuple(0, held_out.images[0], held_out.wrench[0], held_out.joints[0], names)
    with pytest.raises(InputError, match='do not match the model'):
        engine.infer(t)


def test_infer_arrays_agrees_with_infer(engine, held_out):
    sub = held_out.subset(slice(0, 10))
    batch = engine.infer_arrays(sub, batch_size=4)
    assert batch.scores.shape == (10, 3) and batch.images.shape == (10, 32, 32, 3)
    for i in (0, 7):
        r = engine.infer(_tuple(held_out, i))
        got = [r.results[m].score for m in (Modality.CAMERA, Modality.WRENCH, Modality.JOINTS)]
        assert np.allclose(batch.scores[i], got, atol=1e-4)
        assert batch.bypassed[i] == r.bypassed


def test_batch1_latency_is_small(engine, held_out):
    t = _tuple(held_out, 0)
    engine.infer(t)
    times = []
    for _ in range(30):
        start = time.perf_counter()
        engine.infer(t)
        times.append(time.perf_counter() - start)
    p50 = float(np.median(times)) * 1e3
    print(f'tiny model end-to-end infer p50 {p50:.2f} ms')
    assert p50 < 50  # generous: a shared CI core


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_export_matches_eager(engine, tmp_path):
    path = export_torchscript(engine.artifact, tmp_path / 'model.pt')
    scripted = torch.jit.load(str(path))
    cfg = engine.artifact.config
    x = (torch.rand(3, 3, 32, 32), torch.randn(3, 6, 16), torch.randn(3, 21, 16),
         torch.ones(3, 3), torch.tensor([-1.0, 0.0, 1e-3]))
    with torch.no_grad():
        out = scripted(*x)
        eager = engine.model(*x[:3], x[3], camera_change=x[4])
    assert torch.equal(out[0], eager.scores)
    assert out[3].shape == (3, 3, cfg.image_size, cfg.image_size)
    with pytest.raises(FileExistsError):
        export_torchscript(engine.artifact, path)


def test_torch_export_program_matches_eager(engine, tmp_path):
    from lipfault_ros.export import export_program
    path = export_program(engine.artifact, tmp_path / 'model.pt2')
    program = torch.export.load(str(path)).module()
    x = (torch.rand(5, 3, 32, 32), torch.randn(5, 6, 16), torch.randn(5, 21, 16),
         torch.ones(5, 3), torch.tensor([-1.0, 0.0, 1e-5, 1e-3, 0.1]))
    with torch.no_grad():
        out = program(*x)
        eager = engine.model(*x[:3], x[3], camera_change=x[4])
    assert torch.allclose(out[0], eager.scores, atol=1e-5)


def test_the_benchmark_surface_times_the_forward_infer_makes(engine, held_out):
    # model_inputs + forward_one: the scores and flags infer reports for a first frame (no
    # history), and model_inputs leaves the frame history alone
    engine.forget_history()
    t = _tuple(held_out, 3)
    tensors = engine.model_inputs(t)
    assert [tuple(x.shape) for x in tensors[:3]] == [(1, 3, 32, 32), (1, 6, 16), (1, 21, 16)]
    scores, faults = engine.forward_one(tensors)[:2]
    full = engine.forward(tensors)
    assert torch.equal(full.scores, scores) and torch.equal(full.faults, faults)
    r = engine.infer(t)  # the first frame since forget_history: no frame change either
    for i, m in enumerate(Modality):
        assert r.results[m].score == pytest.approx(float(scores[0, i]), abs=1e-5)
        assert r.results[m].fault == bool(faults[0, i])
    with pytest.raises(InputError):
        engine.model_inputs(_tuple(held_out, 3, wrench=np.zeros((5, 6), np.float32)))
