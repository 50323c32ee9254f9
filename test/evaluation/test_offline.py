"""Offline evaluation end to end: clean bag -> inject -> tiny model -> `evaluate` -> report, and
every refusal (no truth, no clean reference, wrong joints, empty bag, existing output)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lipfault_ros.errors import ArtifactError, BagError
from lipfault_ros.evaluation.offline import evaluate

REQUIRED = ('auroc', 'aupr', 'f1', 'false_alarms_per_1000', 'detection_latency_ms_p50',
            'detection_latency_ms_p95')


@pytest.fixture(scope='module')
def offline_report(eval_dir, faulty_bag, clean_bag, train_bag, tiny_artifact):
    out = eval_dir / 'report_offline'
    evaluate(faulty_bag, tiny_artifact, out_dir=out, clean_bag=clean_bag,
             train_bags=[train_bag], baseline_artifact=tiny_artifact)
    return out


def test_report_has_every_required_number_and_plot(offline_report):
    doc = json.loads((offline_report / 'report.json').read_text())
    assert doc['complete'] is True and doc['mode'] == 'offline'
    for row in ('camera', 'wrench', 'joints', 'overall'):
        for key in REQUIRED:
            assert key in doc[row], (row, key)
        assert doc[row]['auroc'] is not None
    for m in ('camera', 'wrench', 'joints'):
        for key in ('error_faulty', 'error_corrected', 'error_clean', 'per_fault'):
            assert key in doc[m], (m, key)
        expected = {'hold_last_value', 'median_filter'}
        if m != 'camera':  # signals: also holding while the model's own alarm is up
            expected.add('hold_last_value_detected')
        assert set(doc[m]['error_baselines']) == expected
    assert {'psnr', 'ssim'} <= set(doc['camera']['error_corrected'])
    assert {'isolation_forest', 'pca', 'stage1_autoencoder', 'baseline_artifact'} <= \
        set(doc['baselines'])
    for name in ('isolation_forest', 'pca', 'stage1_autoencoder', 'baseline_artifact'):
        for row in ('camera', 'wrench', 'joints', 'overall'):
            for key in REQUIRED:
                assert key in doc['baselines'][name][row], (name, row, key)
    for name in ('stage1_autoencoder', 'baseline_artifact'):
        for m in ('camera', 'wrench', 'joints'):
            assert doc['baselines'][name][m]['error_corrected']['mse'] is not None
    # the same artifact as its own baseline decides exactly like the model (batch vs tuple),
    # both through the same fault lifecycle
    same = doc['baselines']['baseline_artifact']
    for m in ('camera', 'wrench', 'joints'):
        assert same[m]['f1'] == pytest.approx(doc[m]['f1'], abs=0.05)
        assert same['effective'][m]['f1'] == pytest.approx(doc['effective'][m]['f1'], abs=0.05)
    # interval and effective blocks, for the model and every baseline, and the lifecycle
    for rep in [doc] + [doc['baselines'][n] for n in ('isolation_forest', 'pca',
                                                      'stage1_autoencoder', 'baseline_artifact')]:
        for block in ('interval', 'effective'):
            for row in ('camera', 'wrench', 'joints', 'overall'):
                for key in REQUIRED + ('tpr_at_1pct_fpr', 'detection_rate', 'per_fault'):
                    assert key in rep[block][row], (block, row, key)
    assert doc['interval']['wrench']['auroc'] == doc['wrench']['auroc']
    assert doc['lifecycle']['raise_k'] == 3 and doc['lifecycle']['latch'] is False
    # the camera threshold follows the scene, for the model and every baseline alike
    scene = doc['lifecycle']['scene']
    assert scene['modalities'] == ['camera'] and set(scene['clean_levels']) == {
        'camera', 'wrench', 'joints'}
    for name in ('isolation_forest', 'pca', 'stage1_autoencoder', 'baseline_artifact'):
        assert doc['baselines'][name]['scene']['modalities'] == ['camera'], name
    eff = doc['tuples']['effective']
    assert set(eff['excluded']) >= {'no_effect', 'window_tail', 'no_clean_partner'}
    assert eff['faulty']['camera'] <= doc['tuples']['faulty']['camera']
    assert 0.0 <= doc['bypass_rate'] <= 1.0
    assert doc['inference_latency_ms']['p50'] > 0
    assert doc['tuples']['clean_aligned'] == doc['tuples']['n']
    for png in ('roc.png', 'timeline.png', 'snippets_camera.png', 'snippets_wrench.png',
                'snippets_joints.png', 'latency.png'):
        assert (offline_report / png).stat().st_size > 1000, png
    md = (offline_report / 'report.md').read_text()
    assert '| model | overall |' in md and 'isolation_forest' in md
    assert 'follows the scene (camera' in md
    assert not list(offline_report.parent.glob('.report_offline.partial*'))


def test_auroc_and_correction_error_recomputed_from_the_json(offline_report):
    from sklearn.metrics import roc_auc_score

    doc = json.loads((offline_report / 'report.json').read_text())
    series = doc['series']
    for m in ('camera', 'wrench', 'joints'):
        y = np.array(series['labels'][m], bool)
        keep = ~np.array(series['settling'][m], bool)
        s = np.array([np.inf if v is None else v for v in series['scores'][m]], float)
        s[~np.isfinite(s)] = np.nanmax(s[np.isfinite(s)]) + 1
        assert roc_auc_score(y[keep], s[keep]) == pytest.approx(doc[m]['auroc'], abs=1e-12)
        # mean of the per-tuple errors over the faulty tuples = the reported error
        per = np.array([np.nan if v is None else v for v in series['error_corrected_mse'][m]])
        assert np.nanmean(per) == pytest.approx(doc[m]['error_corrected']['mse'], rel=1e-9)
        assert np.isfinite(per).sum() == doc[m]['error_corrected']['n']
    # false alarms per 1000 from the flags
    y = np.array(series['labels']['wrench'], bool)
    keep = ~np.array(series['settling']['wrench'], bool)
    f = np.array(series['flags']['wrench'], bool)
    clean = keep & ~y
    assert 1000 * f[clean].sum() / clean.sum() == pytest.approx(
        doc['wrench']['false_alarms_per_1000'])


def test_without_clean_reference_correction_errors_are_declared_not_computed(
        eval_dir, faulty_bag, tiny_artifact):
    out = eval_dir / 'report_noclean'
    doc = evaluate(faulty_bag, tiny_artifact, out_dir=out, baselines=False, plots=False)
    assert doc['camera']['auroc'] is not None
    assert 'error_corrected' not in doc['wrench'] and 'error_clean' in doc['wrench']
    assert any('no clean reference' in n for n in doc['not_computed'])
    assert doc['effective'] is None and doc['interval']['camera']['auroc'] is not None
    assert any(n.startswith('effective labels') for n in doc['not_computed'])


def test_a_bag_without_truth_reports_flag_rates_and_says_what_is_missing(
        eval_dir, clean_bag, tiny_artifact):
    doc = evaluate(clean_bag, tiny_artifact, out_dir=eval_dir / 'report_notruth',
                   baselines=False, plots=False)
    assert doc['truth']['available'] is False
    assert 'auroc' not in doc['camera'] and 'flag_rate' in doc['overall']
    assert any('no fault truth' in n for n in doc['not_computed'])
    from lipfault_ros.evaluation.cli import summary_lines
    lines = summary_lines(doc)  # what `lipfault eval` prints: the alarm shares, not n/a rows
    assert len(lines) == 2 and 'share of tuples with an alarm up camera 0.' in lines[1]


def test_wrong_joints_empty_bag_and_existing_output_are_refused(eval_dir, tmp_path, faulty_bag,
                                                               tiny_artifact):
    from lipfault_ros.artifact import save_artifact
    from lipfault_ros.model.config import ModelConfig
    from lipfault_ros.model.network import LipfaultNet
    from lipfault_ros.normalise import NormStats
    from synthbag import write_empty_bag

    other = tmp_path / 'other_robot'
    cfg = ModelConfig.tiny(joint_names=('shoulder', 'elbow'))
    save_artifact(other, LipfaultNet(cfg), stats=NormStats.identity(2))
    with pytest.raises(ArtifactError, match='shoulder'):
        evaluate(faulty_bag, other, out_dir=tmp_path / 'r1')
    assert not (tmp_path / 'r1').exists()

    empty = tmp_path / 'empty'
    write_empty_bag(empty)
    with pytest.raises(BagError, match='no messages'):
        evaluate(empty, tiny_artifact, out_dir=tmp_path / 'r2')
    assert not (tmp_path / 'r2').exists()

    from synthbag import T0_NS, write_bag

    elsewhere = write_bag(tmp_path / 'elsewhere', duration_s=3.0, t0_ns=T0_NS + 50_000_000_000)
    with pytest.raises(BagError, match='lines up with only'):
        evaluate(faulty_bag, tiny_artifact, out_dir=tmp_path / 'r4', clean_bag=elsewhere,
                 baselines=False)
    assert not (tmp_path / 'r4').exists()

    (tmp_path / 'r3').mkdir()
    with pytest.raises(FileExistsError, match='overwrite'):
        evaluate(faulty_bag, tiny_artifact, out_dir=tmp_path / 'r3')


def test_lipfault_eval_command(eval_dir, faulty_bag, clean_bag, tiny_artifact, capsys):
    from lipfault_ros.cli import main

    out = eval_dir / 'report_cli'
    rc = main(['eval', str(faulty_bag), '--model', str(tiny_artifact), '--out', str(out),
               '--clean', str(clean_bag), '--no-baselines', '--no-plots'])
    assert rc == 0
    text = capsys.readouterr().out
    assert 'overall' in text and 'auroc' in text
    assert (out / 'report.json').is_file() and (out / 'report.md').is_file()
    assert 'effective labels; lifecycle 3 of 5 raise' in text
    out2 = eval_dir / 'report_cli_lifecycle'
    rc = main(['eval', str(faulty_bag), '--model', str(tiny_artifact), '--out', str(out2),
               '--no-baselines', '--no-plots', '--raise-k', '1', '--raise-n', '2',
               '--clear-n', '1', '--latch', '--threshold-offset', '0', '0.5', '-0.25'])
    assert rc == 0
    doc = json.loads((out2 / 'report.json').read_text())
    life = doc['lifecycle']
    assert (life['raise_k'], life['raise_n'], life['clear_n'], life['latch']) == (1, 2, 1, True)
    assert life['threshold_offsets'] == {'camera': 0.0, 'wrench': 0.5, 'joints': -0.25}
    assert 'interval labels' in capsys.readouterr().out  # no --clean: no effective figures
    rc = main(['eval', str(faulty_bag), '--model', str(tiny_artifact), '--out',
               str(eval_dir / 'report_cli3'), '--raise-k', '6', '--raise-n', '5'])
    assert rc == 2 and 'raise_k' in capsys.readouterr().err
    rc = main(['eval', str(faulty_bag), '--model', str(eval_dir / 'nope'), '--out',
               str(eval_dir / 'report_cli2')])
    assert rc == 2
    assert 'nope' in capsys.readouterr().err
