"""What a threshold offset buys: the lifecycle rerun over recorded scores, from hand-made
reports whose flags come from the node's own alarm rule."""

from __future__ import annotations

import numpy as np
import pytest

from lipfault_ros.alarm import AlarmConfig, alarm_series
from lipfault_ros.bench.offsets import format_offsets, offset_curves, plot_offsets, quietest

NAMES = ('camera', 'wrench', 'joints')
THRESHOLDS = {'camera': 1.0, 'wrench': 1.0, 'joints': 1.0}
HOLDS = {'camera': 0.5, 'wrench': 0.5, 'joints': 0.5}


def _report(scores: np.ndarray, faulty: np.ndarray | None = None,
            missing: np.ndarray | None = None, ran_with: float = 0.0) -> dict:
    """A report of (N, 3) ``scores`` at 30 Hz whose flags are what the node's lifecycle (3 of
    5, clear after 10 under the hold level) raised on them, its thresholds moved by the offset
    ``ran_with``; NaN scores are a missing modality, as the evaluation writes them."""
    n = len(scores)
    alarm = AlarmConfig(raise_k=3, raise_n=5, clear_n=10, hold=True)
    thr = np.array([THRESHOLDS[m] for m in NAMES]) + ran_with
    hold = np.array([HOLDS[m] for m in NAMES]) + ran_with
    miss = np.zeros((n, 3), bool) if missing is None else missing
    stamps = (np.arange(n) * 33_333_333).astype(np.int64)
    flags = alarm_series(scores > thr, miss, stamps, alarm, scores > hold) | miss
    eff = np.zeros((n, 3), bool) if faulty is None else faulty

    def cols(a: np.ndarray, none: bool = False) -> dict:
        return {m: [None if none and not np.isfinite(v) else
                    (float(v) if a.dtype.kind == 'f' else bool(v)) for v in a[:, i]]
                for i, m in enumerate(NAMES)}

    return {'series': {'stamps_ns': stamps.tolist(), 'scores': cols(scores, none=True),
                       'flags': cols(flags), 'effective_labels': cols(eff),
                       'effective_excluded': cols(np.zeros((n, 3), bool)),
                       'missing': cols(miss)},
            'lifecycle': {**alarm.as_dict(),
                          'thresholds': {m: float(v) for m, v in zip(NAMES, thr)},
                          'hold_levels': {m: float(v) for m, v in zip(NAMES, hold)},
                          'threshold_offsets': dict.fromkeys(NAMES, ran_with)}}


def _clean_with_burst(n: int = 300) -> np.ndarray:
    s = np.full((n, 3), -2.0)
    s[100:106, 1] = 2.5  # one hard stretch of the wrench, 1.5 over its threshold
    return s


def _faulty(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    s = np.full((n, 3), -2.0)
    faulty = np.zeros((n, 3), bool)
    faulty[50:150, 2] = True
    s[50:150, 2] = 3.5  # a joints fault scoring 2.5 over the threshold
    return s, faulty


def test_each_offset_moves_alarms_and_detections_as_the_lifecycle_would():
    clean = _report(_clean_with_burst())
    s, faulty = _faulty()
    curves = offset_curves([_report(s, faulty)], [clean], offsets=(-0.5, 0.0, 2.0, 3.0))
    assert curves['matches_reports']
    wrench = {r['offset']: r for r in curves['rows']['wrench']}
    assert wrench[0.0]['events'] == 1 and wrench[2.0]['events'] == 0
    hours = 299 * 33_333_333 / 3.6e12
    assert wrench[0.0]['events_per_hour'] == pytest.approx(1 / hours)
    assert wrench[2.0]['events_per_hour_upper95'] == pytest.approx(3.0 / hours, rel=0.01)
    joints = {r['offset']: r for r in curves['rows']['joints']}
    # raised on the third faulty tuple, held while the fault lasts: 98 of 100 under an alarm
    assert joints[0.0]['recall'] == pytest.approx(0.98)
    assert joints[2.0]['recall'] == pytest.approx(0.98)
    assert joints[3.0]['recall'] == 0.0  # 3.5 is under a threshold of 4
    # after the fault the alarm stays up over 9 clean tuples and clears on the 10th
    assert joints[0.0]['false_alarms_per_1000'] == pytest.approx(1000 * 9 / 200)
    # lowered, the threshold still lies above every clean score: no alarm at all
    assert curves['rows']['camera'][0]['events'] == 0


def test_a_report_whose_flags_another_rule_made_is_told_apart():
    clean = _report(_clean_with_burst())
    clean['series']['flags']['wrench'][100:106] = [False] * 6  # as if no alarm had come up
    assert not offset_curves([], [clean], offsets=(0.0,))['matches_reports']


def test_offsets_count_from_the_stored_thresholds_whatever_a_report_ran_with():
    s, faulty = _faulty()
    plain = offset_curves([_report(s, faulty)], [_report(_clean_with_burst())])
    moved = offset_curves([_report(s, faulty, ran_with=3.0)],
                          [_report(_clean_with_burst(), ran_with=3.0)])
    assert plain['matches_reports'] and moved['matches_reports']
    assert plain['rows'] == moved['rows']


def test_a_missing_modality_is_neither_an_alarm_nor_a_detection():
    s, faulty = _faulty()
    missing = np.zeros_like(faulty)
    missing[50:100, 2] = True
    s[50:100, 2] = np.nan
    curves = offset_curves([_report(s, faulty, missing)], [], offsets=(0.0,))
    assert curves['matches_reports']
    # the 50 tuples left score from the start of their stretch: raised on the third
    assert curves['rows']['joints'][0]['recall'] == pytest.approx(48 / 50)


def test_the_command_reads_eval_reports_and_refuses_what_it_cannot_score(tmp_path, capsys):
    import json

    from lipfault_ros.cli import main

    s, faulty = _faulty()
    (tmp_path / 'f').mkdir()
    (tmp_path / 'f' / 'report.json').write_text(json.dumps(_report(s, faulty)))
    (tmp_path / 'c.json').write_text(json.dumps(_report(_clean_with_burst())))
    args = ['offsets', '--faulty', str(tmp_path / 'f'), '--clean', str(tmp_path / 'c.json'),
            '--offsets', '0,2', '--plot', str(tmp_path / 'o.png'), '--json',
            str(tmp_path / 'o.json')]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert '| +0 |' in out and '| +2 |' in out and '| +1 |' not in out
    assert json.loads((tmp_path / 'o.json').read_text())['rows']['wrench'][0]['events'] == 1
    assert (tmp_path / 'o.png').stat().st_size > 1000
    no_labels = _report(s, faulty)
    no_labels['series']['effective_labels'] = {}
    (tmp_path / 'bad.json').write_text(json.dumps(no_labels))
    assert main(['offsets', '--faulty', str(tmp_path / 'bad.json')]) == 2
    assert 'lipfault inject' in capsys.readouterr().err
    (tmp_path / 'junk.json').write_text('{"series": [1]}')
    assert main(['offsets', '--clean', str(tmp_path / 'junk.json')]) == 2
    assert 'report of lipfault eval' in capsys.readouterr().err
    assert main(['offsets']) == 2


def test_the_table_and_plot_show_every_offset(tmp_path):
    s, faulty = _faulty()
    curves = offset_curves([_report(s, faulty)], [_report(_clean_with_burst())])
    text = '\n'.join(format_offsets(curves))
    for offset in curves['offsets']:
        assert f'| {offset:+g} |' in text
    assert 'own offsets reproduce its alarms: yes' in text
    # the wrench burst (2.5 over a threshold of 1) raises one alarm up to offset +1 and none
    # from +2; the other modalities never raise one on the clean run
    assert quietest(curves, 'wrench')['offset'] == 2.0
    assert quietest(curves, 'joints')['offset'] == -1.0
    assert 'wrench +2 (recall' in text
    assert quietest(offset_curves([_report(s, faulty)], []), 'wrench') is None
    plot_offsets(curves, tmp_path / 'offsets.png')
    assert (tmp_path / 'offsets.png').stat().st_size > 1000
