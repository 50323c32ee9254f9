"""Fault truth: intervals -> status fields -> intervals, and labels at stamps."""

from __future__ import annotations

import numpy as np
import pytest

from lipfault_ros.errors import FaultError
from lipfault_ros.truth import (
    END_OF_TIME_NS,
    FaultInterval,
    intervals_from_statuses,
    kinds_at,
    labels_at,
    truth_status_fields,
)
from lipfault_ros.tuples import Modality

S = 1_000_000_000


def _stream(intervals, t0, t1, step):
    for t in range(t0, t1, step):
        yield t, truth_status_fields(intervals, t)


def test_status_fields_per_modality():
    blur = FaultInterval(Modality.CAMERA, 'blur', 0.5, 2 * S, 4 * S)
    fields = truth_status_fields([blur], 3 * S)
    assert [f['name'] for f in fields] == ['camera', 'wrench', 'joints']
    assert fields[0] == {'name': 'camera', 'level': 2, 'message': 'blur',
                         'values': {'fault': 'blur', 'severity': '0.5', 'start_ns': str(2 * S),
                                    'end_ns': str(4 * S)}}
    assert fields[1]['level'] == 0 and fields[1]['message'] == 'ok'
    assert fields[1]['values']['fault'] == 'none'
    assert truth_status_fields([blur], 4 * S)[0]['level'] == 0  # end is exclusive


def test_round_trip_fields_intervals_labels():
    truth = [FaultInterval('camera', 'blur', 0.5, 2 * S, 4 * S),
             FaultInterval('wrench', 'drift', 0.8, 3 * S, 7 * S),
             FaultInterval('joints', 'stuck', 1.0, 8 * S, END_OF_TIME_NS)]
    # the truth topic at 10 Hz, as dict statuses and as (name, level, message, values) tuples
    rebuilt = intervals_from_statuses(_stream(truth, 0, 10 * S, S // 10))
    assert rebuilt == sorted(truth, key=lambda i: i.start_ns)
    as_tuples = ((t, [(f['name'], f['level'], f['message'], f['values']) for f in fields])
                 for t, fields in _stream(truth, 0, 10 * S, S // 10))
    assert intervals_from_statuses(as_tuples) == rebuilt

    stamps = np.array([S, 2 * S, 3 * S + 1, 5 * S, 9 * S])
    labels = labels_at(stamps, rebuilt)
    assert labels.tolist() == [[False, False, False], [True, False, False],
                               [True, True, False], [False, True, False],
                               [False, False, True]]
    kinds = kinds_at(stamps, rebuilt)
    assert kinds[2].tolist() == ['blur', 'drift', ''] and kinds[4, 2] == 'stuck'


def test_fault_switched_off_early_ends_where_the_truth_says_ok():
    declared = FaultInterval('wrench', 'bias', 0.5, 1 * S, 9 * S)
    messages = [(t, truth_status_fields([declared] if t < 4 * S else [], t))
                for t in range(0, 6 * S, S // 2)]
    (interval,) = intervals_from_statuses(messages)
    assert (interval.start_ns, interval.end_ns) == (1 * S, 4 * S)


def test_statuses_without_declared_times_use_observed_stamps():
    messages = [(t, [('lipfault_sim: camera', 2 if 2 * S <= t < 5 * S else 0,
                      'noise' if 2 * S <= t < 5 * S else 'ok', {})])
                for t in range(0, 7 * S, S)]
    (interval,) = intervals_from_statuses(messages)
    assert interval.modality is Modality.CAMERA and interval.kind == 'noise'
    assert (interval.start_ns, interval.end_ns) == (2 * S, 5 * S)


def test_interval_validation():
    with pytest.raises(FaultError, match=r'ends \(1\) before it starts \(2\)'):
        FaultInterval('camera', 'blur', 0.5, 2, 1)
    with pytest.raises(FaultError, match="unknown fault modality 'sonar'"):
        FaultInterval('sonar', 'blur', 0.5, 1, 2)
