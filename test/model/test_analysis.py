"""Sensitivity analysis on a trained tiny model: bounds, gains, Lemma 3.1, and the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from lipfault_ros.cli import main as cli_main
from lipfault_ros.model import LipfaultNet, ModelConfig
from lipfault_ros.model.analysis import analyze, conv_operator_norm, lemma31_check
from lipfault_ros.training.tiny import train_tiny_model
from lipfault_ros.artifact import load_artifact


@pytest.fixture(scope='module')
def report():
    torch.set_num_threads(1)
    artifact = load_artifact(train_tiny_model().artifact)
    return analyze(artifact.model, samples=6, trials=6)


def test_compute_block_bound_within_constant_and_gain_below_one(report):
    compute = report.module('compute')
    assert compute.constant == pytest.approx(0.9)
    assert compute.bound <= 0.9 * (1 + 1e-3)  # power-iteration tolerance
    assert compute.rho_max < 1.0
    print(f'compute: bound {compute.bound:.4f}, rho mean {compute.rho_mean:.3f} '
          f'max {compute.rho_max:.3f}')


def test_fusion_bound_matches_its_constant_and_detector_may_amplify(report):
    assert report.module('fusion').bound == pytest.approx(1.0, rel=1e-3)
    detector = report.module('detector')
    assert detector.constant == 2.0
    assert detector.bound == pytest.approx(8.0, rel=1e-3)  # trunk 2 x 2, logits 2
    print(f'detector: bound {detector.bound:.3f}, rho mean {detector.rho_mean:.3f} '
          f'max {detector.rho_max:.3f}')


def test_conv_encoder_keeps_a_local_fault_local(report):
    for key in ('camera', 'wrench', 'joints'):
        assert report.module(f'encoder.{key}').locality > 0.8


def test_lemma_31_agrees_within_sampling_error(report):
    lemma = report.lemma
    assert lemma.agrees, lemma
    assert lemma.rel_error < 4 * lemma.rel_stderr
    assert lemma.output_support == pytest.approx(1.0)
    again = lemma31_check(m=32, n=64, s=0.5, support=3, trials=3000, seed=4)
    assert again.agrees


def test_conv_operator_norm_matches_dense_matrix_norm():
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(2, 3, 3, padding=1)
    n = 8
    eye = torch.eye(2 * n).view(2 * n, 2, n)
    with torch.no_grad():
        mat = torch.nn.functional.conv1d(eye, conv.weight, None, 1, 1).reshape(2 * n, -1).t()
    exact = float(torch.linalg.matrix_norm(mat, 2))
    assert conv_operator_norm(conv, (2, n), iterations=200) == pytest.approx(exact, rel=1e-3)


def test_modulation_off_has_no_configured_constants():
    torch.manual_seed(0)
    net = LipfaultNet(ModelConfig.tiny(modulation=False))
    rep = analyze(net, samples=2, trials=2)
    assert rep.module('compute').constant is None


def test_analyze_command_prints_a_table_and_writes_json(tmp_path, capsys):
    path = train_tiny_model().artifact
    out = tmp_path / 'report.json'
    assert cli_main(['analyze', str(path), '--json', str(out), '--samples', '4']) == 0
    text = capsys.readouterr().out
    assert 'compute' in text and 'Lemma 3.1' in text
    doc = json.loads(out.read_text())
    assert {m['name'] for m in doc['modules']} >= {'compute', 'detector', 'encoder.camera'}


def test_analyze_command_on_a_missing_artifact_fails_cleanly(tmp_path, capsys):
    assert cli_main(['analyze', str(tmp_path / 'nope')]) == 2
    assert 'does not exist' in capsys.readouterr().err
