"""Effective labels, the lifecycle of baselines and the report's interval/effective/lifecycle
blocks, on hand-built tuple streams whose answers are known (no model, no bag: fast)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lipfault_ros.alarm import AlarmConfig
from lipfault_ros.evaluation import labels as L
from lipfault_ros.evaluation import metrics as M
from lipfault_ros.evaluation.collect import Judgement, collect
from lipfault_ros.evaluation.comparison import baseline_block
from lipfault_ros.evaluation.report import markdown
from lipfault_ros.evaluation.scoring import score_outputs
from lipfault_ros.sync import SyncConfig
from lipfault_ros.truth import FaultInterval
from lipfault_ros.tuples import Modality, SensorTuple, TupleArrays

N = 90
PERIOD = 33_333_333
T0 = 1_000_000_000_000
JOINTS = ('a', 'b')
STAMPS = T0 + np.arange(N, dtype=np.int64) * PERIOD
STATIC = np.tile(np.arange(8, dtype=np.uint8)[None, :, None] * 30, (8, 1, 3))
# a wrench sign flip on a channel that is all zero (no effect), a frozen frame of a static
# scene (no effect), and a wrench bias that changes the data (and the next windows' tails)
INTERVALS = [FaultInterval(Modality.WRENCH, 'sign_flip', 1.0, STAMPS[10], STAMPS[20]),
             FaultInterval(Modality.CAMERA, 'frozen', 1.0, STAMPS[30], STAMPS[40]),
             FaultInterval(Modality.WRENCH, 'bias', 1.0, STAMPS[50], STAMPS[60])]
SYNC = SyncConfig(wrench_window=4, joints_window=4, camera_rate=30.0, wrench_rate=120.0,
                  joints_rate=120.0)
REQUIRED = ('auroc', 'aupr', 'tpr_at_1pct_fpr', 'f1', 'false_alarms_per_1000',
            'detection_rate', 'detection_latency_ms_p50', 'detection_latency_ms_p95',
            'per_fault', 'events_unobservable')


def _tuple(i: int, *, faulty: bool) -> SensorTuple:
    t = np.arange(4) + 4 * i
    wrench = np.zeros((4, 6), np.float32)
    wrench[:, 1:] = np.sin(0.1 * t)[:, None] * np.arange(1, 6)
    joints = np.stack([np.cos(0.05 * t)] * 6, -1).reshape(4, 2, 3).astype(np.float32)
    if faulty and 10 <= i < 20:
        wrench[:, 0] = -wrench[:, 0]  # sign flip of a zero force: -0.0 == 0.0
    if faulty and 50 <= i < 60:
        wrench[:, 1] += 3.0
    if faulty and i in (60, 61):  # the history window still holds biased samples
        wrench[:2, 1] += 3.0
    return SensorTuple(int(STAMPS[i]), STATIC.copy(), wrench, joints, JOINTS)


def _flags(i: int) -> np.ndarray:
    """The detector: catches the bias from its third tuple and one tuple after it."""
    return np.array([False, 52 <= i < 62, False])


def _judge(t: SensorTuple) -> Judgement:
    i = int((t.stamp_ns - T0) // PERIOD)
    f = _flags(i)
    return Judgement(np.where(f, 2.0, -2.0) + 0.01 * i, f, not f.any(), 1.0, t.image,
                     np.asarray(t.wrench[-1], np.float64),
                     np.asarray(t.joints[-1], np.float64))


def _report(with_clean: bool = True) -> dict:
    clean = iter([_tuple(i, faulty=False) for i in range(N)]) if with_clean else None
    run = collect(_judge, (_tuple(i, faulty=True) for i in range(N)), clean, INTERVALS,
                  joint_names=JOINTS, image_size=8, wrench_window=4, joints_window=4,
                  thresholds=np.zeros(3))
    report, _ = score_outputs(run['outputs'], run['records'], INTERVALS, sync=SYNC,
                              clean=run['clean_records'], images=run['images'],
                              mode='offline', changes=run['changes'])
    return report


def test_changes_ignore_a_sign_flip_of_zero_and_a_frozen_static_frame():
    tally = L.ChangeTally(len(JOINTS))
    for i in range(N):
        tally.add(_tuple(i, faulty=True), _tuple(i, faulty=False))
    ch = tally.result()
    assert not ch.changed[10:20].any()          # sign flip of zeros
    assert not ch.changed[30:40, 0].any()       # frozen frame of a still scene
    assert ch.changed[50:62, 1].all() and ch.changed[:, 1].sum() == 12
    assert not ch.changed[:, 2].any() and ch.aligned.all()
    # the tolerance is 5 % of the clean std, with the floor on the constant channel
    assert ch.tolerance['wrench'][0] == L.SIGNAL_ABS_FLOOR
    assert ch.tolerance['wrench'][1] > L.SIGNAL_ABS_FLOOR


def test_camera_change_needs_enough_pixels_over_the_grey_level_tolerance():
    a = np.zeros((100, 100, 3), np.uint8)
    b = a.copy()
    b[0, :10] = L.CAMERA_PIXEL_DELTA + 1   # 10 pixels of 10000 = 0.1 %: not more than that
    assert L.pixel_fraction(a, b) == pytest.approx(0.001)
    tally = L.ChangeTally(1)
    w = np.zeros((2, 6), np.float32)
    j = np.zeros((2, 1, 3), np.float32)
    for img in (b, np.where(np.arange(100)[:, None, None] < 2, 200, a).astype(np.uint8),
                np.full_like(a, L.CAMERA_PIXEL_DELTA)):
        tally.add(SensorTuple(0, img, w, j, ('j',)), SensorTuple(0, a, w, j, ('j',)))
    assert tally.result().changed[:, 0].tolist() == [False, True, False]


def test_a_fault_that_changes_nothing_is_excluded_not_missed_and_the_tail_is_excluded():
    doc = _report()
    iv, eff = doc['interval'], doc['effective']
    # interval labels: the no-effect faults count as missed events and missed tuples
    assert iv['camera']['events_detected'] == 0 and iv['camera']['detection_rate'] == 0.0
    assert iv['wrench']['detection_rate'] == 0.5 and iv['wrench']['fn'] == 12
    assert iv['wrench']['fp'] == 1  # the second tail tuple is past the settling time
    # effective labels: excluded and counted, the bias alone is the wrench fault
    ex = doc['tuples']['effective']['excluded']
    assert ex['no_effect'] == {'camera': 10, 'wrench': 10, 'joints': 0}
    assert ex['window_tail'] == {'camera': 0, 'wrench': 2, 'joints': 0}
    assert doc['tuples']['effective']['events_without_affected_tuple'] == \
        {'camera': 1, 'wrench': 1, 'joints': 0}
    w = eff['wrench']
    assert w['n_faulty'] == 10 and w['fn'] == 2 and w['tp'] == 8
    assert w['fp'] == 0 and w['false_alarms_per_1000'] == 0.0  # the flagged tail is excluded
    assert w['events_unobservable'] == 1 and w['detection_rate'] == 1.0
    assert w['detection_latency_tuples_p50'] == 2.0  # from the first affected tuple
    assert w['per_fault']['sign_flip']['events_observable'] == 0
    assert eff['camera']['n_faulty'] == 0 and eff['camera']['detection_rate'] is None
    # the top-level blocks are the interval figures
    assert doc['wrench']['f1'] == iv['wrench']['f1'] and 'error_clean' in doc['wrench']
    assert 'effective_labels' in doc['definitions']
    assert doc['series']['effective_excluded']['wrench'][60]


def test_report_blocks_have_every_row_and_key_and_the_markdown_table():
    doc = _report()
    for block in ('interval', 'effective'):
        for row in ('camera', 'wrench', 'joints', 'overall'):
            for key in REQUIRED:
                assert key in doc[block][row], (block, row, key)
    doc['lifecycle'] = {**AlarmConfig().as_dict(), 'threshold_offsets': {'camera': 0.0}}
    md = markdown(doc)
    assert 'Detectors side by side (effective labels' in md
    assert '| model | ' in md and '3 of the last 5' in md and 'no_effect' in md
    # without the clean reference: no effective labels, and the report says why
    noclean = _report(with_clean=False)
    assert noclean['effective'] is None and noclean['interval']['wrench']['auroc'] is not None
    assert any('effective' in n for n in noclean['not_computed'])
    assert 'interval labels: no clean reference' in markdown(noclean)


def test_baselines_go_through_the_lifecycle():
    n = 60
    stamps = STAMPS[:n]
    arrays = TupleArrays(stamps, np.zeros((n, 8, 8, 3), np.uint8), np.zeros((n, 4, 6), np.float32),
                         np.zeros((n, 4, 2, 3), np.float32), JOINTS, np.zeros((n, 3), bool))
    ivs = [FaultInterval(Modality.JOINTS, 'bias', 1.0, stamps[40], stamps[50])]
    labels = M.labels_from_intervals(stamps, ivs)
    sets = {'interval': L.interval_labels(labels, np.zeros_like(labels)), 'effective': None}
    scores = np.zeros((n, 3))
    scores[10, 1] = 5.0          # one isolated wrench tuple over threshold: no alarm
    scores[40:50, 2] = 5.0       # a lasting joints fault: raised on its third tuple
    thr = np.ones(3)
    block = baseline_block(scores, thr, arrays, ivs, sets, alarm=AlarmConfig())
    assert block['wrench']['fp'] == 0 and block['interval']['wrench']['fp'] == 0
    assert block['joints']['detection_latency_tuples_p50'] == 2.0
    assert block['effective'] is None and block['lifecycle']['raise_k'] == 3
    every = baseline_block(scores, thr, arrays, ivs, sets,
                           alarm=AlarmConfig(raise_k=1, raise_n=1, clear_n=1))
    assert every['wrench']['fp'] == 1 and every['joints']['detection_latency_tuples_p50'] == 0.0
    # AUROC stays on the raw scores, whatever the lifecycle
    assert block['joints']['auroc'] == every['joints']['auroc'] == 1.0


def test_baselines_follow_the_scene_by_the_models_rule():
    from lipfault_ros.scene_thresholds import SceneConfig

    n = 200
    stamps = np.arange(n, dtype=np.int64) * 33_000_000
    arrays = TupleArrays(stamps, np.zeros((n, 8, 8, 3), np.uint8), np.zeros((n, 4, 6), np.float32),
                         np.zeros((n, 4, 2, 3), np.float32), JOINTS, np.zeros((n, 3), bool))
    ivs = [FaultInterval(Modality.CAMERA, 'blur', 1.0, stamps[150], stamps[170])]
    labels = M.labels_from_intervals(stamps, ivs)
    sets = {'interval': L.interval_labels(labels, np.zeros_like(labels)), 'effective': None}
    rng = np.random.default_rng(1)
    # an error score (> 0): the calibration's clean level 1.0, threshold 2.0; this scene's clean
    # errors read 3 times higher, the fault 30 times
    errors = np.exp(rng.normal(0.0, 0.1, (n, 3))) * np.array([3.0, 1.0, 1.0])
    errors[150:170, 0] *= 10.0
    thr, levels = np.full(3, 2.0), np.ones(3)
    plain = baseline_block(errors, thr, arrays, ivs, sets, alarm=AlarmConfig())
    follows = baseline_block(errors, thr, arrays, ivs, sets, alarm=AlarmConfig(),
                             scene=SceneConfig(warmup=10), levels=levels, log_domain=True)
    home = errors.copy()
    home[:, 0] /= 3.0  # the same stream in a scene like the calibration's
    at_home = baseline_block(home, thr, arrays, ivs, sets, alarm=AlarmConfig())
    assert plain['camera']['fp'] > 100 and plain['scene'] is None
    # only the alarm's release after the fault, as at home
    assert follows['camera']['fp'] == at_home['camera']['fp'] < 12
    assert follows['camera']['detection_rate'] == 1.0
    assert follows['scene']['modalities'] == ['camera']
    relative = np.asarray(follows['series']['scores']['camera'])
    assert np.median(relative[20:150]) == pytest.approx(1.0, rel=0.1)
    # the signals do not follow the scene: their scores are left as they are
    np.testing.assert_array_equal(follows['series']['scores']['wrench'], errors[:, 1])


def test_tpr_at_1pct_fpr_interpolates_the_roc_curve():
    neg = np.arange(50, dtype=float)
    pos = np.array([49.7] * 5 + [49.0] * 5)   # five above every negative, five tied with one
    s = np.concatenate([neg, pos])
    y = np.r_[np.zeros(50, bool), np.ones(10, bool)]
    assert M.tpr_at_fpr(s, y, 0.01) == pytest.approx(0.75)   # halfway along (0, .5)-(.02, 1)
    assert M.ranking_metrics(s, y)['tpr_at_1pct_fpr'] == pytest.approx(0.75)
    assert M.tpr_at_fpr(s, np.zeros(60, bool), 0.01) is None


def test_an_event_onset_moves_to_its_first_affected_tuple():
    stamps = STAMPS[:10]
    ivs = [FaultInterval(Modality.WRENCH, 'bias', 1.0, stamps[2], stamps[8])]
    labels = M.labels_from_intervals(stamps, ivs)
    changed = np.zeros_like(labels)
    changed[4:8, 1] = True
    ch = L.Changes(changed, np.ones(10, bool), np.zeros(10), changed * 2.0, {})
    ev = L.effective_labels(labels, ch).events(stamps, ivs, Modality.WRENCH)[0]
    assert ev.first == 4 and ev.onset == stamps[4] and ev.start_ns == stamps[2]
    out = M.detect_events(stamps, np.arange(10) == 5, [ev])[0]
    assert out.latency_tuples == 1 and out.latency_ns == stamps[5] - stamps[4]
    assert dataclasses.replace(ev, onset_ns=-1).onset == stamps[2]


def test_the_alarm_release_after_a_fault_is_left_out_of_the_clean_set():
    from lipfault_ros.evaluation.labels import release_mask

    changed = np.zeros((12, 3), bool)
    changed[2:5, 1] = True
    got = release_mask(changed, 3)
    assert np.flatnonzero(got[:, 1]).tolist() == [5, 6, 7]
    assert not got[:, 0].any() and not release_mask(changed, 0).any()
