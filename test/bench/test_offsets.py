"""What a threshold offset buys: the lifecycle rerun over recorded scores, from hand-made
reports whose flags come from the node's own alarm rule."""

from __future__ import annotations

import numpy as np
import pytest

from lipfault_ros.alarm import AlarmConfig, alarm_series
from lipfault_ros.bench.offsets import format_offsets, offset_curves, plot_offsets

NAMES = ('camera', 'wrench', 'joints')
THRESHOLDS = {'camera': 1.0, 'wrench': 1.0, 'joints': 1.0}
HOLDS = {'camera': 0.5, 'wrench': 0.5, 'joints': 0.5}


def _report(scores: np.ndarray, faulty: np.ndarray | None = None,
            missing: np.ndarray | None = None) -> dict:
    """A report of (N, 3) ``scores`` at 30 Hz whose flags are what the node's lifecycle (3 of
    5, clear after 10 under the hold level) raised on them; NaN scores are a missing modality,
    as the evaluation writes them."""
    n = len(scores)
    alarm = AlarmConfig(raise_k=3, raise_n=5, clear_n=10, hold=True)
    thr = np.array([THRESHOLDS[m] for m in NAMES])
    hold = np.array([HOLDS[m] for m in NAMES])
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
            'lifecycle': {**alarm.as_dict(), 'thresholds': THRESHOLDS, 'hold_levels': HOLDS}}


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


def test_a_missing_modality_is_neither_an_alarm_nor_a_detection():
    s, faulty = _faulty()
    missing = np.zeros_like(faulty)
    missing[50:100, 2] = True
    s[50:100, 2] = np.nan
    curves = offset_curves([_report(s, faulty, missing)], [], offsets=(0.0,))
    assert curves['matches_reports']
    # the 50 tuples left score from the start of their stretch: raised on the third
    assert curves['rows']['joints'][0]['recall'] == pytest.approx(48 / 50)


def test_the_table_and_plot_show_every_offset(tmp_path):
    s, faulty = _faulty()
    curves = offset_curves([_report(s, faulty)], [_report(_clean_with_burst())])
    text = '\n'.join(format_offsets(curves))
    for offset in curves['offsets']:
        assert f'| {offset:+g} |' in text
    assert 'reproduces the runs\' own alarms: yes' in text
    plot_offsets(curves, tmp_path / 'offsets.png')
    assert (tmp_path / 'offsets.png').stat().st_size > 1000
