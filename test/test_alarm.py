"""The fault lifecycle: k-of-n raise, hysteresis clear, latching and reset, as configured."""

from __future__ import annotations

import numpy as np
import pytest

from lipfault_ros.alarm import AlarmConfig, AlarmState, FaultAlarms, ModalityAlarm, alarm_series
from lipfault_ros.errors import ConfigError
from lipfault_ros.tuples import Modality


def run(alarm: ModalityAlarm, flags: str) -> str:
    """Feed '1'/'0' flags at 10 Hz stamps; one letter per tuple: c(lear) r(aised) l(atched)."""
    out = []
    for i, f in enumerate(flags):
        out.append(alarm.update(f == '1', (i + 1) * 100_000_000).state.value[0])
    return ''.join(out)


def test_raises_after_k_of_n_and_clears_after_clear_n_clean_tuples():
    a = ModalityAlarm(AlarmConfig(raise_k=3, raise_n=5, clear_n=4))
    #             flags: isolated flags never raise; the 3rd flag of 5 does
    assert run(a, '1000100010110111100001') == 'cccccccccccrrrrrrrrrcc'
    s = a.status
    assert s.state is AlarmState.CLEAR and s.count == 1
    assert s.onset_ns == 1_200_000_000  # the tuple that completed 3 of the last 5
    assert s.duration_s == pytest.approx(0.8)  # onset to the last raised tuple


def test_hysteresis_holds_through_short_gaps_in_the_evidence():
    a = ModalityAlarm(AlarmConfig(raise_k=2, raise_n=3, clear_n=5))
    assert run(a, '11' + '0001' * 5 + '00000') == 'cr' + 'rrrr' * 5 + 'rrrrc'
    assert a.status.count == 1


def test_one_of_one_follows_every_flag():
    a = ModalityAlarm(AlarmConfig(raise_k=1, raise_n=1, clear_n=1))
    assert run(a, '0110100') == 'crrcrcc'
    assert a.status.count == 2


def test_a_latched_alarm_stays_until_reset_and_a_persisting_fault_is_raised_again():
    a = ModalityAlarm(AlarmConfig(raise_k=2, raise_n=2, clear_n=2, latch=True))
    assert run(a, '110000') == 'crrlll'
    assert a.status.active and a.status.count == 1
    assert run(a, '11') == 'lr' and a.status.count == 1  # the same alarm, not a new one
    assert a.reset() is True
    assert a.status.state is AlarmState.CLEAR and a.status.count == 0
    assert run(a, '1') == 'c'  # the evidence was forgotten: k flags are needed again
    assert a.reset() is False
    assert run(a, '11') == 'cr'


def test_missing_modalities_keep_their_status_and_reset_names_what_was_up():
    alarms = FaultAlarms(AlarmConfig(raise_k=1, raise_n=1, clear_n=1))
    alarms.update([False, True, False], [False, False, False], 1)
    st = alarms.update([False, False, True], [False, True, False], 2)  # wrench missing
    assert st[Modality.WRENCH].state is AlarmState.RAISED
    assert st[Modality.JOINTS].state is AlarmState.RAISED
    assert alarms.reset() == [Modality.WRENCH, Modality.JOINTS]
    assert not any(s.active for s in alarms.status.values())


def test_reconfigure_keeps_raised_alarms_and_switching_latch_off_releases_them():
    alarms = FaultAlarms(AlarmConfig(raise_k=1, raise_n=1, clear_n=1, latch=True))
    alarms.update([True, False, False], [False] * 3, 1)
    alarms.update([False, False, False], [False] * 3, 2)
    assert alarms.status[Modality.CAMERA].state is AlarmState.LATCHED
    alarms.reconfigure(AlarmConfig(raise_k=1, raise_n=1, clear_n=1, latch=False))
    assert alarms.status[Modality.CAMERA].state is AlarmState.LATCHED
    alarms.update([False, False, False], [False] * 3, 3)
    assert alarms.status[Modality.CAMERA].state is AlarmState.CLEAR


def test_alarm_series_is_the_live_state_machine_over_a_recording():
    rng = np.random.default_rng(0)
    flags = rng.random((200, 3)) < 0.3
    missing = rng.random((200, 3)) < 0.05
    stamps = np.arange(200) * 33_000_000
    cfg = AlarmConfig(raise_k=2, raise_n=4, clear_n=3)
    live = FaultAlarms(cfg)
    expected = np.array([live.active(f, m, int(s)) for f, m, s in zip(flags, missing, stamps)])
    assert np.array_equal(alarm_series(flags, missing, stamps, cfg), expected)
    # with 1-of-1 and no gaps the series is the flags themselves
    one = AlarmConfig(raise_k=1, raise_n=1, clear_n=1)
    assert np.array_equal(alarm_series(flags, np.zeros_like(flags), stamps, one), flags)


def held_run(alarm: ModalityAlarm, flags: str) -> str:
    """As :func:`run`, with '2' for a tuple over threshold, '1' over the hold level only."""
    out = []
    for i, f in enumerate(flags):
        out.append(alarm.update(f == '2', (i + 1) * 100_000_000, f != '0').state.value[0])
    return ''.join(out)


def test_a_raised_alarm_holds_while_the_score_stays_over_the_hold_level():
    a = ModalityAlarm(AlarmConfig(raise_k=2, raise_n=3, clear_n=3))
    # over the hold level alone never raises; once raised it holds the alarm up, and the
    # clear count starts when the score falls under the hold level
    assert held_run(a, '1111' + '22' + '1111111' + '000') == 'cccc' + 'cr' + 'rrrrrrr' + 'rrc'
    assert a.status.count == 1
    # without the hold (flags only) the same scores clear three tuples after the last flag
    b = ModalityAlarm(AlarmConfig(raise_k=2, raise_n=3, clear_n=3))
    assert run(b, '0000' + '11' + '0000000' + '000') == 'cccc' + 'cr' + 'rrc' + 'cccc' + 'ccc'


def test_hold_margins_are_the_gap_to_the_hold_level_or_zero():
    thr, holds = np.array([2.0, 3.0, 1.0]), np.array([-2.0, np.nan, 4.0])
    # a level above its threshold (or unknown) holds at the threshold
    np.testing.assert_allclose(AlarmConfig().hold_margins(thr, holds), [4.0, 0.0, 0.0])
    np.testing.assert_allclose(AlarmConfig(hold=False).hold_margins(thr, holds), 0.0)
    np.testing.assert_allclose(AlarmConfig().hold_margins(thr, None), 0.0)


def test_alarm_series_takes_the_hold_flags_as_the_live_alarms_do():
    rng = np.random.default_rng(1)
    flags = rng.random((200, 3)) < 0.2
    held = flags | (rng.random((200, 3)) < 0.5)
    missing = rng.random((200, 3)) < 0.05
    stamps = np.arange(200) * 33_000_000
    cfg = AlarmConfig(raise_k=2, raise_n=4, clear_n=3)
    live = FaultAlarms(cfg)
    expected = np.array([live.active(f, m, int(s), h)
                         for f, m, s, h in zip(flags, missing, stamps, held)])
    series = alarm_series(flags, missing, stamps, cfg, held)
    assert np.array_equal(series, expected)
    assert series.sum() > alarm_series(flags, missing, stamps, cfg).sum()


@pytest.mark.parametrize('kwargs', [dict(raise_k=0), dict(raise_k=6, raise_n=5),
                                    dict(raise_n=0), dict(clear_n=0)])
def test_invalid_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        AlarmConfig(**kwargs)
