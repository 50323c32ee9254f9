"""Detection and correction metrics on hand-built cases whose answers are known."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from lipfault_ros.errors import InputError
from lipfault_ros.evaluation import metrics as M
from lipfault_ros.tuples import Modality

MS = 1_000_000


@dataclass(frozen=True)
class Iv:
    modality: Modality
    kind: str
    severity: float
    start_ns: int
    end_ns: int


def test_labels_cover_half_open_intervals():
    stamps = np.arange(10) * 100 * MS
    ivs = [Iv(Modality.WRENCH, 'bias', 0.5, 200 * MS, 500 * MS)]
    labels = M.labels_from_intervals(stamps, ivs)
    assert labels[:, 1].tolist() == [False, False, True, True, True] + [False] * 5
    assert not labels[:, 0].any() and not labels[:, 2].any()
    kinds = M.kinds_from_intervals(stamps, ivs)
    assert kinds[2, 1] == 'bias' and kinds[5, 1] == ''


def test_auroc_aupr_and_oracle_f1_on_a_perfect_and_a_reversed_ranking():
    y = np.array([0, 0, 0, 1, 1], bool)
    perfect = M.ranking_metrics(np.array([0.1, 0.2, 0.3, 0.8, 0.9]), y)
    assert perfect['auroc'] == 1.0 and perfect['aupr'] == 1.0
    assert perfect['f1_max_oracle'] == 1.0
    reversed_ = M.ranking_metrics(np.array([0.9, 0.8, 0.7, 0.1, 0.2]), y)
    assert reversed_['auroc'] == 0.0


def test_auroc_counts_ties_as_half():
    # one positive tied with one negative, the other positive above all: (1 + 0.5 + 1 + 1) / 4
    y = np.array([0, 0, 1, 1], bool)
    r = M.ranking_metrics(np.array([0.1, 0.5, 0.5, 0.9]), y)
    assert r['auroc'] == pytest.approx(0.875)


def test_ranking_metrics_are_none_with_one_class_and_nan_ranks_highest():
    assert M.ranking_metrics(np.ones(4), np.zeros(4, bool))['auroc'] is None
    r = M.ranking_metrics(np.array([0.1, 0.2, np.inf, np.nan]), np.array([0, 0, 1, 1], bool))
    assert r['auroc'] == 1.0


def test_threshold_metrics_count_false_alarms_per_1000_clean_tuples():
    y = np.array([1, 1, 1, 1] + [0] * 16, bool)
    f = np.array([1, 1, 0, 0] + [1] + [0] * 15, bool)
    r = M.threshold_metrics(f, y)
    assert (r['tp'], r['fp'], r['fn'], r['tn']) == (2, 1, 2, 15)
    assert r['precision'] == pytest.approx(2 / 3)
    assert r['recall'] == pytest.approx(0.5)
    assert r['f1'] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert r['false_alarms_per_1000'] == pytest.approx(1000 / 16)


def test_shape_mismatch_is_refused():
    with pytest.raises(InputError, match='differ in shape'):
        M.threshold_metrics(np.zeros(3, bool), np.zeros(4, bool))


def test_detection_latency_is_from_onset_to_first_flag_inside_without_point_adjust():
    # tuples every 33 ms; fault from 100 ms to 400 ms covers tuples 4..12 (132 .. 396 ms)
    stamps = np.arange(30) * 33 * MS
    ivs = [Iv(Modality.CAMERA, 'blur', 0.7, 100 * MS, 400 * MS),
           Iv(Modality.CAMERA, 'noise', 0.7, 600 * MS, 700 * MS)]
    flags = np.zeros(30, bool)
    flags[6] = True  # 198 ms: third tuple inside the first event
    flags[25] = True  # after the second event: not a detection of it
    events = M.fault_events(stamps, ivs, Modality.CAMERA)
    assert (events[0].first, events[0].last) == (4, 12)
    out = M.detect_events(stamps, flags, events)
    assert out[0].detected and out[0].latency_ns == 98 * MS and out[0].latency_tuples == 2
    assert not out[1].detected and out[1].latency_ns is None
    s = M.latency_summary(out)
    assert s['detection_rate'] == 0.5
    assert s['detection_latency_ms_p50'] == pytest.approx(98.0)
    labels = M.labels_from_intervals(stamps, ivs)[:, 0]
    block = M.detection_block(flags.astype(float), flags, labels, stamps, events,
                              kinds=M.kinds_from_intervals(stamps, ivs)[:, 0])
    # tuple-level recall is 1 of 9 + 3 faulty tuples: no point adjustment
    assert block['recall'] == pytest.approx(1 / 12)
    assert block['per_fault']['blur']['detection_rate'] == 1.0
    assert block['per_fault']['noise']['detection_rate'] == 0.0


def test_an_event_shorter_than_the_tuple_period_is_unobservable():
    stamps = np.arange(5) * 100 * MS
    ev = M.fault_events(stamps, [Iv(Modality.JOINTS, 'spike', 1, 110 * MS, 150 * MS)])
    assert not ev[0].observable
    s = M.latency_summary(M.detect_events(stamps, np.ones(5, bool), ev))
    assert s['events'] == 1 and s['events_observable'] == 0 and s['detection_rate'] is None


def test_settling_tuples_after_a_window_fault_are_ignored():
    stamps = np.arange(10) * 100 * MS
    ivs = [Iv(Modality.WRENCH, 'bias', 1, 200 * MS, 400 * MS)]
    mask = M.settle_mask(stamps, ivs, {Modality.WRENCH: 150 * MS})
    assert np.flatnonzero(mask[:, 1]).tolist() == [4, 5]
    assert not mask[:, 0].any()


def test_signal_errors_are_standardised_per_channel():
    ref = np.zeros((4, 2))
    pred = np.array([[1.0, 10.0]] * 4)
    scale = np.array([1.0, 10.0])
    e = M.signal_errors(pred, ref, scale)
    assert e['mse'] == pytest.approx(1.0) and e['mae'] == pytest.approx(1.0)
    per = M.per_tuple_signal_mse(pred, ref, scale)
    assert per.tolist() == [1.0] * 4
    e = M.signal_errors(np.array([[np.nan, 0.0], [1.0, 0.0]]), np.zeros((2, 2)), np.ones(2))
    assert e['n_nonfinite'] == 1 and e['mse'] == pytest.approx(0.5)


def test_image_errors_psnr_and_ssim_match_closed_form():
    ref = np.full((1, 16, 16, 3), 100, np.uint8)
    pred = ref.copy()
    pred[0, :8] = 110  # half the pixels off by 10
    e = M.image_errors(pred, ref)
    mse255 = 0.5 * 100.0
    assert e['mse'] == pytest.approx(mse255 / 255 ** 2)
    assert e['psnr'] == pytest.approx(10 * np.log10(255 ** 2 / mse255))
    assert 0.0 < e['ssim'] < 1.0
    same = M.image_errors(ref, ref)
    assert same['psnr'] == 100.0 and same['ssim'] == pytest.approx(1.0)


def test_hold_last_value_and_median_filter_baselines():
    v = np.array([[1.0], [2.0], [50.0], [60.0], [5.0]])
    faulty = np.array([0, 0, 1, 1, 0], bool)
    assert M.hold_last_value(v, faulty)[:, 0].tolist() == [1, 2, 2, 2, 5]
    windows = np.array([[[1.0], [100.0], [3.0]]])
    assert M.median_filter_windows(windows)[0, 0] == 3.0
    img = np.zeros((1, 9, 9, 3), np.uint8)
    img[0, 4, 4] = 255  # one hot pixel is removed by a 5x5 median
    assert M.median_filter_images(img).max() == 0


def test_correction_block_compares_raw_corrected_and_clean_on_the_right_rows():
    clean = np.zeros((6, 2))
    raw = clean.copy()
    raw[2:4] = 4.0  # faulty rows
    out = raw.copy()
    out[2:4] = 1.0  # the model halves... quarters the error
    out[5] = 0.5    # one clean tuple altered by the model
    faulty = np.array([0, 0, 1, 1, 0, 0], bool)
    b = M.correction_block(Modality.WRENCH, raw=raw, corrected=out, clean=clean, faulty=faulty,
                           clean_rows=~faulty, scale=np.ones(2),
                           baselines={'hold': M.hold_last_value(raw, faulty)})
    assert b['error_faulty']['mse'] == pytest.approx(16.0)
    assert b['error_corrected']['mse'] == pytest.approx(1.0)
    assert b['error_clean']['mse'] == pytest.approx(0.25 / 4)
    assert b['error_baselines']['hold']['mse'] == 0.0
