"""The pipeline's diagnostic statuses: per tuple on ``~/fault_status``, ~1 Hz on ``/diagnostics``.

Pure functions from the engine's verdict, the fault lifecycle and the node's counters to
DiagnosticStatus messages (no node, no DDS), so what an operator reads is built and tested in
one place. Keys of a modality's status:

- ``score``, ``threshold``, ``fault``: the raw per-tuple verdict (``fault``: score over the
  threshold on this tuple alone); ``scene_offset``: how far the threshold was raised to follow
  the scene (:mod:`lipfault_ros.scene_thresholds`; the calibrated threshold is ``threshold -
  scene_offset``); ``evidence``: the camera background's verdict in logit units over the threshold
  (:mod:`lipfault_ros.background`; > 0 made the camera faulty; ``nan`` while it warms up and
  when it is off), and for the signals their lost samples' (:mod:`lipfault_ros.sample_loss`);
  ``backlog_ms``: how much later than usual the pipeline received the window's messages
  (``nan`` for the camera and offline);
- ``alarm`` (``clear``/``raised``/``latched``), ``active``: the lifecycle output, which decides
  the level and whether the output is the model's estimate;
- ``alarm_onset_ns``, ``alarm_duration_s``, ``alarm_count``: onset stamp of the current (or
  last) alarm, its duration, alarms raised since start or the last ``~/reset_faults``;
- ``missing``, ``corrected``, ``bypassed``, ``latency_ms`` as before.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from diagnostic_msgs.msg import DiagnosticStatus

from lipfault_ros.alarm import AlarmStatus
from lipfault_ros.ros import convert
from lipfault_ros.tuples import MODALITIES, Modality

__all__ = ['alarm_values', 'model_diagnostic', 'modality_diagnostic', 'sync_diagnostic',
           'tuple_statuses']


def alarm_values(alarm: AlarmStatus) -> dict[str, Any]:
    """The lifecycle's keys of a status (see the module docstring)."""
    return {'alarm': alarm.state.value, 'active': alarm.active,
            'alarm_onset_ns': alarm.onset_ns, 'alarm_duration_s': round(alarm.duration_s, 3),
            'alarm_count': alarm.count}


def _message(missing: bool, alarm: AlarmStatus, corrected: bool) -> str:
    text = 'missing' if missing else (f'fault ({alarm.state.value})' if alarm.active else 'ok')
    return text + (', corrected' if corrected else '')


def tuple_statuses(result: Any, alarms: Mapping[Modality, AlarmStatus], hardware_id: str,
                   backlogs_ns: Mapping[Modality, int] | None = None) -> list[DiagnosticStatus]:
    """One status per modality for ``~/fault_status`` from an :class:`Inference` and the alarm
    status after this tuple (``backlogs_ns``: ``SensorTuple.backlogs_ns``)."""
    out = []
    backlogs_ns = backlogs_ns or {}
    for m in MODALITIES:
        res, alarm = result.results[m], alarms[m]
        backlog = backlogs_ns.get(m)
        out.append(convert.diagnostic_status(
            m.value, convert.level_of(alarm.active, res.missing),
            _message(res.missing, alarm, res.corrected), hardware_id=hardware_id,
            values={'score': res.score, 'threshold': res.threshold,
                    'scene_offset': res.scene_offset, 'evidence': res.evidence,
                    'fault': res.fault,
                    **alarm_values(alarm), 'missing': res.missing,
                    'corrected': res.corrected, 'bypassed': result.bypassed,
                    'latency_ms': result.latency_ms,
                    'backlog_ms': backlog / 1e6 if backlog is not None else float('nan')}))
    return out


def modality_diagnostic(name: str, topic: str, *, missing: bool, problem: str,
                        silent_periods: float, alarm: AlarmStatus, flagged_in_period: int,
                        result: Any, bad_messages: int, rejected: int, hardware_id: str
                        ) -> DiagnosticStatus:
    """The 1 Hz ``/diagnostics`` status of one modality: ERROR when missing, WARN while its
    alarm is up (with onset and duration), else OK."""
    if missing:
        level = convert.ERROR
        message = f'missing: {problem}' if problem else (
            f'missing: no usable message for {silent_periods:g} periods')
    elif alarm.active:
        level = convert.WARN
        message = (f'fault {alarm.state.value} for {alarm.duration_s:.1f} s (onset stamp '
                   f'{alarm.onset_ns}); output is the model estimate')
    else:
        level, message = convert.OK, 'ok'
        if result is not None and result.scene_offset > 0:
            message += (f' (threshold raised {result.scene_offset:.2f} to follow the scene: its '
                        f'clean data reads above the calibration\'s)')
    return convert.diagnostic_status(name, level, message, hardware_id=hardware_id, values={
        'topic': topic, 'missing': missing, **alarm_values(alarm),
        'flagged_in_period': flagged_in_period,
        'score': result.score if result is not None else float('nan'),
        'threshold': result.threshold if result is not None else float('nan'),
        'scene_offset': result.scene_offset if result is not None else 0.0,
        'evidence': result.evidence if result is not None else float('nan'),
        'bad_messages': bad_messages, 'rejected': rejected, 'last_problem': problem or ''})


def model_diagnostic(name: str, *, state: str, error: str, model_problem: str, artifact: str,
                     device: str, latency_ms: Sequence[float], model_fraction: float,
                     refused: int, hardware_id: str) -> DiagnosticStatus:
    """The model and node lifecycle: ERROR with the reason when configure/activate failed,
    WARN while not active or when the model refused a tuple."""
    level, message = convert.OK, state
    if error:
        level, message = convert.ERROR, error
    elif state != 'active':
        level = convert.WARN
    elif model_problem:
        level, message = convert.WARN, model_problem
    lat = np.asarray(latency_ms, np.float64)
    return convert.diagnostic_status(name, level, message, hardware_id=hardware_id, values={
        'state': state, 'artifact': artifact, 'device': device,
        'latency_p50_ms': float(np.percentile(lat, 50)) if lat.size else 0.0,
        'latency_p99_ms': float(np.percentile(lat, 99)) if lat.size else 0.0,
        'model_time_fraction': model_fraction, 'refused_tuples': refused})


def sync_diagnostic(name: str, *, rate: float, idle_s: float, no_tuple_timeout: float,
                    published: int, synced: int, dropped: int, drop_rate: float,
                    sync_stats: Any, hardware_id: str,
                    behind: Sequence[int] | None = None,
                    behind_in_period: int = 0) -> DiagnosticStatus:
    """Throughput and the synchroniser's counters: ERROR after ``no_tuple_timeout`` s without
    a tuple, with the usual causes; WARN when, since the last status, the pipeline fell so
    far behind its inputs that it lost messages itself. ``behind``: the (wrench, joints)
    windows not judged for that (:mod:`lipfault_ros.sample_loss`; None: lost samples off)."""
    level, message = convert.OK, f'{rate:.1f} tuples/s'
    if idle_s > no_tuple_timeout:
        level = convert.ERROR
        message = f'no tuples for {idle_s:.1f} s (QoS mismatch, wrong topic or a dead sensor?)'
    elif behind_in_period > 0:
        level = convert.WARN
        message += (f'; behind its inputs: {behind_in_period} signal windows with messages the '
                    f'pipeline lost itself, their alarms held (CPU overloaded?)')
    values: dict[str, Any] = {'tuples_per_s': rate, 'tuples_published': published,
                              'tuples_synced': synced, 'dropped_latest_only': dropped,
                              'drop_rate_per_s': drop_rate}
    if sync_stats is not None:
        for m in MODALITIES:
            values[f'{m}_received'] = sync_stats.received[m]
            values[f'{m}_queue_dropped'] = sync_stats.dropped[m]
            values[f'{m}_late'] = sync_stats.late[m]
            values[f'{m}_headerless'] = sync_stats.headerless[m]
        for i, m in enumerate(MODALITIES[1:]):
            values[f'{m}_input_backlog_ms'] = sync_stats.backlog[m] / 1e6
            if behind is not None:
                values[f'{m}_windows_behind_input'] = behind[i]
        values['unmatched_frames'] = sync_stats.unmatched
        values['resets'] = sync_stats.resets
    return convert.diagnostic_status(name, level, message, hardware_id=hardware_id,
                                     values=values)
