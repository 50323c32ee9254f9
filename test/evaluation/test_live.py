"""The live replay's reading of the pipeline's fault_status (no ROS needed: messages are read by
attribute)."""

from __future__ import annotations

from types import SimpleNamespace as NS

from lipfault_ros.evaluation.live import status_verdict


def _status(**per):
    return NS(status=[NS(name=f'lipfault: {m}',
                         values=[NS(key=k, value=v) for k, v in values.items()])
                      for m, values in per.items()])


def test_the_flag_is_the_lifecycle_output_when_published_else_the_raw_fault():
    base = {'score': '1.5', 'missing': 'false', 'bypassed': 'false', 'latency_ms': '2.0'}
    msg = _status(camera={**base, 'fault': 'true', 'alarm': 'clear', 'active': 'false'},
                  wrench={**base, 'fault': 'false', 'alarm': 'raised', 'active': 'true'},
                  joints={**base, 'fault': 'true'})  # an older pipeline: no lifecycle keys
    scores, flags, bypassed, latency = status_verdict(msg)
    assert flags.tolist() == [False, True, True]
    assert scores.tolist() == [1.5, 1.5, 1.5] and latency == 2.0 and not bypassed
    missing = _status(camera={**base, 'missing': 'true', 'fault': 'false', 'active': 'false'},
                      wrench=base, joints=base)
    s, f, _, _ = status_verdict(missing)
    assert f.tolist() == [True, False, False] and s[0] != s[0]  # NaN score when missing
