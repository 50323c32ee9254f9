"""The benchmarks run on tiny sizes and report every figure (values are never asserted: timings
vary with the machine and its load)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lipfault_ros.bench import cli as bench_cli
from lipfault_ros.bench.model_latency import StagedForward, bench_model, random_tuple, traced_paths
from lipfault_ros.bench.pipeline_latency import bench_pipeline
from lipfault_ros.bench.summary import format_results, headline, machine_info, targets
from lipfault_ros.bench.sync_throughput import bench_sync
from lipfault_ros.cli import main as lipfault_main
from lipfault_ros.model.config import ModelConfig
from lipfault_ros.model.network import LipfaultNet


def _positive(fig: dict) -> bool:
    return all(math.isfinite(fig[k]) and fig[k] > 0 for k in ('p50', 'p99', 'max', 'mean'))


def test_bench_model_times_every_path_and_the_compiled_one_matches_eager():
    torch.set_num_threads(1)
    (row,) = bench_model(sizes=(32,), iterations=3, warmup=1, device='cpu')
    assert row['image_size'] == 32 and row['params'] > 0 and row['bypass_path_taken'] is True
    for name in ('infer_clean', 'infer_faulty', 'forward_clean', 'forward_faulty',
                 'compiled_clean', 'compiled_faulty', 'exported'):
        assert _positive(row[f'{name}_ms']), name
        assert row[f'{name}_cpu_ms'] >= 0
    assert row['compiled'] == 'torchscript-freeze'
    assert row['compiled_max_diff'] == 0 and row['compiled_speedup'] > 0
    assert row['exported_max_diff'] == 0
    # ONNX Runtime beside torch, in the same rounds, scoring alike
    for name in ('infer_ort_clean', 'infer_ort_faulty', 'stages_torch', 'stages_ort'):
        assert _positive(row[f'{name}_ms']), name
    assert row['onnxruntime'] == 'available' and row['ort_max_score_diff'] < 1e-3
    if row['openvino'] == 'available':  # an optional package: timed and checked when present
        assert _positive(row['stages_openvino_ms']) and row['openvino_max_score_diff'] < 1e-2
    else:
        assert 'not installed' in row['openvino'] and 'stages_openvino_ms' not in row


@pytest.mark.parametrize('threshold', [math.inf, -math.inf])
def test_staged_forward_equals_the_network_forward_on_both_paths(threshold):
    cfg = ModelConfig.tiny()
    torch.manual_seed(0)
    model = LipfaultNet(cfg).eval()
    with torch.no_grad():
        model.thresholds.fill_(threshold)
    t = random_tuple(cfg, np.random.default_rng(0))
    cam = torch.from_numpy(t.image).permute(2, 0, 1)[None].float() / 255
    wr = torch.from_numpy(t.wrench.T.copy())[None]
    jo = torch.from_numpy(t.joints.reshape(t.joints.shape[0], -1).T.copy())[None]
    present = torch.ones(1, 3)
    with torch.inference_mode():
        ref = model(cam, wr, jo, present)
    scores, faults, outputs = StagedForward(model, (cam, wr, jo, present))(cam, wr, jo, present)
    np.testing.assert_allclose(scores, ref.scores[0].numpy(), rtol=1e-5, atol=1e-6)
    assert faults.tolist() == ref.faults[0].tolist() == [threshold < 0] * 3
    for got, want in zip(outputs, ref.corrected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_traced_paths_are_bit_identical_to_the_eager_forward():
    cfg = ModelConfig.tiny()
    model = LipfaultNet(cfg).eval()
    x = (torch.rand(1, 3, 32, 32), torch.randn(1, 6, 16), torch.randn(1, cfg.joints_channels, 16),
         torch.ones(1, 3))
    bypass, correct = traced_paths(model, x)
    with torch.inference_mode():
        ref, fixed = model(*x), model(*x, always_correct=True)
        got_b, got_c = bypass(*x), correct(*x)
    assert torch.equal(got_b[0], ref.scores) and torch.equal(got_c[0], fixed.scores)
    for a, b in zip(got_b[2:], ref.corrected):
        assert torch.equal(a, b)
    for a, b in zip(got_c[2:], fixed.corrected):
        assert torch.equal(a, b)


def test_bench_sync_gives_one_tuple_per_camera_frame_and_a_rate():
    result = bench_sync(duration_s=1.0, repeats=1)
    assert result['camera_frames'] == 30 and result['tuples'] == 30
    assert result['one_tuple_per_frame'] is True
    assert result['sync_msgs_per_s'] > 0 and result['floor_msgs_per_s'] > 0


def test_cli_runs_the_offline_benchmarks_and_writes_the_headline_figures(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    assert lipfault_main(['bench', '--quick', '--only', 'sync,bag,training', '--json',
                          str(out)]) == 0
    text = capsys.readouterr().out
    for title in ('sync', 'bag', 'training', 'targets', 'machine:'):
        assert title in text
    doc = json.loads(out.read_text())
    for key in ('sync_msgs_per_s', 'bag_tuples_per_s', 'bag_read_ratio',
                'train_stage1_tuples_per_s', 'train_stage2_tuples_per_s'):
        assert doc[key] > 0, key
    assert doc['machine']['cpu_model'] and doc['machine']['cores'] >= 1
    assert doc['machine']['torch'] == torch.__version__
    assert doc['errors'] == {}
    assert {t['figure'] for t in doc['targets']} >= {'sync_msgs_per_s', 'bag_read_ratio'}


def test_pipeline_section_pairs_end_to_end_latency_with_the_model_forward(tmp_path):
    artifact = bench_cli.untrained_artifact(tmp_path)
    result = bench_pipeline(artifact, True, 2.0, 'cpu', 1)
    for key in ('tuples_per_s', 'rss_mb', 'node_cpu_percent', 'overhead_ratio'):
        assert result[key] > 0, key
    assert result['dropped'] >= 0 and result['tuples_out'] > 0
    assert _positive(result['model_forward_ms']) and result['latency_p50_ms'] > 0
    assert result['bypass_fraction'] == 1.0  # untrained: thresholds are +inf
    head = headline({'pipeline': result})
    assert set(head) >= {'model_latency_ms', 'e2e_latency_ms', 'overhead_ratio',
                         'tuples_per_s', 'dropped_tuples', 'rss_mb'}
    assert 'e2e_latency_ms.p99' in format_results(
        {'machine': machine_info(), 'pipeline': result, 'targets': targets(head)})


def test_unknown_benchmark_is_refused(capsys):
    assert lipfault_main(['bench', '--only', 'model,warp']) == 2
    assert "unknown benchmark(s) ['warp']" in capsys.readouterr().err


def test_non_positive_duration_is_refused(capsys):
    assert lipfault_main(['bench', '--only', 'pipeline', '--duration', '0']) == 2
    assert '--duration must be positive' in capsys.readouterr().err


def test_missing_model_artifact_is_refused(tmp_path, capsys):
    assert lipfault_main(['bench', '--model', str(tmp_path / 'nope')]) == 2
    assert 'does not exist' in capsys.readouterr().err
