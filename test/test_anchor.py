"""Anchored corrections: start at the last trusted value, follow the estimate's changes, decay
to the estimate; clean outputs untouched."""

from __future__ import annotations

import numpy as np
import pytest

from lipfault_ros.anchor import OutputAnchor
from lipfault_ros.inference import Inference, ModalityResult
from lipfault_ros.tuples import MODALITIES, Modality

J = 2


def inf(stamp_s: float, wrench: float, joint: float, *, corrected: bool = False,
        missing: bool = False) -> Inference:
    res = {m: ModalityResult(0.0, 1.0, corrected, missing and m is Modality.WRENCH,
                             corrected if m is not Modality.CAMERA else False)
           for m in MODALITIES}
    return Inference(int(stamp_s * 1e9), res, not corrected, np.zeros((4, 4, 3), np.uint8),
                     np.full(6, wrench), np.full(J, joint), np.full(J, joint),
                     np.full(J, joint), 1.0)


TRUST = [True, True, True]
DOUBT = [True, False, False]


def test_corrections_start_at_the_held_value_follow_changes_and_decay():
    a = OutputAnchor(tau_s=1.0)
    clean = a.apply(inf(0.0, 2.0, 0.5), TRUST)
    assert clean.wrench[0] == 2.0  # untouched
    # the estimate is 1.0 off the held value at onset, then moves by +0.3
    first = a.apply(inf(0.1, 3.0, 0.0, corrected=True), DOUBT)
    assert first.wrench == pytest.approx(np.full(6, 2.0))
    assert first.joint_position == pytest.approx(np.full(J, 0.5))
    later = a.apply(inf(0.1 + 1.0, 3.3, 0.0, corrected=True), DOUBT)
    assert later.wrench[0] == pytest.approx(3.3 - 1.0 * np.exp(-1.0))
    long = a.apply(inf(0.1 + 20.0, 3.3, 0.0, corrected=True), DOUBT)
    assert long.wrench[0] == pytest.approx(3.3, abs=1e-6)  # ends on the estimate


def test_untrusted_clean_tuples_never_become_the_anchor():
    a = OutputAnchor(tau_s=1.0)
    a.apply(inf(0.0, 2.0, 0.5), TRUST)
    a.apply(inf(0.1, 9.0, 9.0), DOUBT)  # over threshold but not yet an alarm: not trusted
    out = a.apply(inf(0.2, 5.0, 5.0, corrected=True), DOUBT)
    assert out.wrench[0] == pytest.approx(2.0)
    # a new trusted value re-arms the anchor for the next fault
    a.apply(inf(0.3, 4.0, 4.0), TRUST)
    assert a.apply(inf(0.4, 7.0, 7.0, corrected=True), DOUBT).wrench[0] == pytest.approx(4.0)


def test_no_anchor_without_history_or_when_switched_off_or_missing():
    assert OutputAnchor().apply(inf(0.0, 3.0, 0.0, corrected=True), DOUBT).wrench[0] == 3.0
    off = OutputAnchor(tau_s=0.0)
    off.apply(inf(0.0, 2.0, 0.5), TRUST)
    assert off.apply(inf(0.1, 3.0, 0.0, corrected=True), DOUBT).wrench[0] == 3.0
    a = OutputAnchor()
    a.apply(inf(0.0, 2.0, 0.5), TRUST)
    out = a.apply(inf(0.1, 3.0, 0.0, corrected=True, missing=True), DOUBT)
    assert out.wrench[0] == 3.0  # a missing sensor: the estimate, not an old value
