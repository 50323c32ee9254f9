"""The pipeline's diagnostic statuses, built without a node: levels follow the fault lifecycle,
missing beats everything, the lifecycle keys are always there."""

from __future__ import annotations

from lipfault_ros.alarm import AlarmState, AlarmStatus
from lipfault_ros.inference import ModalityResult
from lipfault_ros.ros import convert, statuses

RES = ModalityResult(score=1.5, threshold=1.0, fault=True, missing=False, corrected=True)


def values(st) -> dict[str, str]:
    return {kv.key: kv.value for kv in st.values}


def diag(alarm: AlarmStatus, *, missing: bool = False):
    return statuses.modality_diagnostic(
        'lipfault_pipeline: wrench', 'wrench', missing=missing, problem='', silent_periods=10,
        alarm=alarm, flagged_in_period=4, result=RES, bad_messages=0, rejected=0,
        hardware_id='hw')


def test_a_raised_alarm_is_a_warning_with_onset_and_duration():
    up = AlarmStatus(AlarmState.RAISED, onset_ns=123, duration_s=2.5, count=1)
    st = diag(up)
    assert st.level == convert.WARN and 'raised for 2.5 s' in st.message and '123' in st.message
    v = values(st)
    assert (v['alarm'], v['active'], v['alarm_onset_ns'], v['alarm_count']) == \
        ('raised', 'true', '123', '1')
    assert v['flagged_in_period'] == '4'


def test_flags_without_an_alarm_are_ok_and_missing_is_an_error():
    assert diag(AlarmStatus()).level == convert.OK
    latched = AlarmStatus(AlarmState.LATCHED, onset_ns=5, duration_s=1.0, count=1)
    assert diag(latched).level == convert.WARN
    st = diag(latched, missing=True)
    assert st.level == convert.ERROR and st.message.startswith('missing')


def test_an_ok_status_says_when_its_threshold_follows_the_scene():
    import dataclasses

    raised = dataclasses.replace(RES, threshold=3.5, scene_offset=2.5, fault=False)
    st = statuses.modality_diagnostic(
        'lipfault_pipeline: camera', 'camera', missing=False, problem='', silent_periods=0,
        alarm=AlarmStatus(), flagged_in_period=0, result=raised, bad_messages=0, rejected=0,
        hardware_id='hw')
    assert st.level == convert.OK and 'raised 2.50 to follow the scene' in st.message
    assert values(st)['scene_offset'] == '2.5'
    assert float(values(diag(AlarmStatus()))['scene_offset']) == 0.0
    # the camera background's verdict travels with it (nan: none on this tuple)
    assert values(st)['evidence'] == 'nan'
    flagged = dataclasses.replace(RES, evidence=1.25)
    assert float(values(statuses.modality_diagnostic(
        'lipfault_pipeline: camera', 'camera', missing=False, problem='', silent_periods=0,
        alarm=AlarmStatus(), flagged_in_period=0, result=flagged, bad_messages=0, rejected=0,
        hardware_id='hw'))['evidence']) == 1.25
    assert diag(AlarmStatus()).message == 'ok'


def test_a_pipeline_behind_its_inputs_is_a_warning_with_its_backlog_and_counts():
    from lipfault_ros.sync import SyncStats
    from lipfault_ros.tuples import MODALITIES

    per = {m: 0 for m in MODALITIES}
    stats = SyncStats(received=per, dropped=per, late=per, headerless=per, rejected=per,
                      problems={}, missing=per, silent=frozenset(), unmatched=0, unpaired=per,
                      tuples=10, resets=0, backlog={**per, MODALITIES[1]: 98_000_000})

    def sync(**kw):
        return statuses.sync_diagnostic('lipfault_pipeline: sync', rate=30.0, idle_s=0.1,
                                        no_tuple_timeout=5.0, published=10, synced=10,
                                        dropped=0, drop_rate=0.0, sync_stats=stats,
                                        hardware_id='hw', **kw)

    calm = sync(behind=[3, 0], behind_in_period=0)
    assert calm.level == convert.OK
    v = values(calm)
    assert float(v['wrench_input_backlog_ms']) == 98.0 and v['wrench_windows_behind_input'] == '3'
    busy = sync(behind=[7, 1], behind_in_period=5)
    assert busy.level == convert.WARN and 'behind its inputs: 5' in busy.message
    assert 'windows_behind_input' not in ''.join(values(sync()))  # lost samples off
