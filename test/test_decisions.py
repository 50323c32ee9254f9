"""The decision the node and the evaluation share: the scene reference raises the thresholds
the engine judges a tuple by, and what it reports says so."""

from __future__ import annotations

import numpy as np

from lipfault_ros.decisions import FaultDecisions
from lipfault_ros.inference import Engine
from lipfault_ros.synthetic import synthetic_arrays
from lipfault_ros.training.tiny import train_tiny_model
from lipfault_ros.scene_thresholds import SceneConfig
from lipfault_ros.tuples import MODALITIES, SensorTuple


def _tuples(engine: Engine, n: int) -> list[SensorTuple]:
    a = synthetic_arrays(n, image_size=engine.image_size, window=engine.wrench_window, seed=9)
    return [SensorTuple(int(a.stamps_ns[i]), a.images[i], a.wrench[i], a.joints[i],
                        a.joint_names) for i in range(n)]


def _stream(decisions: FaultDecisions, engine: Engine, tuples) -> list:
    engine.forget_history()
    return [decisions.infer(engine, t)[0] for t in tuples]


def test_a_scene_reading_higher_than_calibration_raises_the_camera_threshold():
    engine = Engine.from_artifact(train_tiny_model().artifact, device='cpu')
    tuples = _tuples(engine, 80)
    plain = _stream(FaultDecisions(scene=SceneConfig(modalities=())), engine, tuples)
    assert all(r.results[m].scene_offset == 0.0 for r in plain for m in MODALITIES)
    # the camera's clean level four units below this stream's: the scene reads four higher
    levels = engine.artifact.clean_levels.copy()
    camera = np.array([r.results[MODALITIES[0]].score for r in plain])
    levels[0] = float(np.median(camera)) - 4.0
    cfg = SceneConfig(window=40, warmup=10)
    adapted = _stream(FaultDecisions(scene=cfg, clean_levels=levels), engine, tuples)
    cam = [r.results[MODALITIES[0]] for r in adapted]
    np.testing.assert_allclose([c.score for c in cam], camera, rtol=1e-5, atol=1e-5)
    offsets = np.array([c.scene_offset for c in cam])
    assert offsets[0] == 0.0 and 3.0 < offsets[-1] < 5.0
    for c in cam:  # the reported threshold is the one the tuple was judged by
        assert c.threshold == engine.thresholds[0] + c.scene_offset
        assert c.fault == (c.score > c.threshold)
        assert c.relative_score == c.score - c.scene_offset
    other = [r.results[m].scene_offset for r in adapted for m in MODALITIES[1:]]
    assert not any(other)  # the default follows the camera only


def test_evidence_over_zero_makes_a_modality_faulty_and_under_zero_changes_nothing():
    engine = Engine.from_artifact(train_tiny_model().artifact, device='cpu')
    t = _tuples(engine, 1)[0]
    engine.forget_history()
    plain = engine.infer(t)
    engine.forget_history()
    quiet = engine.infer(t, evidence=np.array([-3.0, np.nan, np.nan]))
    engine.forget_history()
    loud = engine.infer(t, evidence=np.array([2.0, np.nan, np.nan]))
    cam = MODALITIES[0]
    assert quiet.results[cam].score == plain.results[cam].score
    assert quiet.results[cam].fault == plain.results[cam].fault
    assert quiet.results[cam].evidence == -3.0 and np.isnan(plain.results[cam].evidence)
    assert loud.results[cam].fault and loud.results[cam].corrected
    assert loud.results[cam].score >= loud.results[cam].threshold + 2.0 - 1e-6
    for m in MODALITIES[1:]:  # the signals are judged as before
        assert loud.results[m].score == plain.results[m].score


def test_the_camera_background_flags_a_smudged_lens_the_network_is_not_asked_about():
    from test_background import _frames

    from lipfault_ros.faults import corrupt_image

    engine = Engine.from_artifact(train_tiny_model().artifact, device='cpu')
    sig = _tuples(engine, 400)
    frames = _frames(400)
    dirty = np.random.default_rng(3)
    tuples = [SensorTuple(t.stamp_ns, corrupt_image(f, 'dust', 0.8, dirty) if i >= 360 else f,
                          t.wrench, t.joints, t.joint_names)
              for i, (t, f) in enumerate(zip(sig, frames))]
    cam = MODALITIES[0]
    on = [r.results[cam] for r in _stream(FaultDecisions(), engine, tuples)]
    off = [r.results[cam] for r in _stream(
        FaultDecisions(scene=SceneConfig(background=False)), engine, tuples)]
    assert all(np.isnan(r.evidence) for r in off)
    assert all(r.evidence > 0 and r.fault for r in on[360:])
    assert all(r.evidence < 0 for r in on[300:360])
    # where the background says nothing, the verdict is the network's alone
    assert [r.fault for r in on[:360]] == [r.fault for r in off[:360]]


def test_a_raised_alarm_holds_over_the_hold_level_through_the_engine():
    import dataclasses

    from lipfault_ros.alarm import AlarmConfig
    from lipfault_ros.artifact import load_artifact

    artifact = load_artifact(train_tiny_model().artifact)
    # hold levels far below the thresholds
    engine = Engine(dataclasses.replace(artifact, hold_levels=artifact.thresholds - 1e6),
                    device='cpu')
    tuples = _tuples(engine, 30)
    states = {}
    for hold in (True, False):
        alarm = AlarmConfig(raise_k=1, raise_n=1, clear_n=2, hold=hold)
        d = FaultDecisions(alarm, scene=SceneConfig(modalities=(), background=False))
        engine.forget_history()
        engine.set_threshold_offsets([-1e3] * 3)  # every tuple over threshold: raised
        for t in tuples[:5]:
            d.infer(engine, t)
        engine.set_threshold_offsets([1e3] * 3)  # none over threshold, all over the hold
        out = [d.infer(engine, t) for t in tuples[5:]]
        states[hold] = [[s[m].active for m in MODALITIES] for _, s in out]
        assert all(not r.results[m].fault for r, _ in out for m in MODALITIES)
        corrected = [[r.results[m].corrected for m in MODALITIES] for r, _ in out]
        assert corrected == states[hold]  # what is up is what is corrected
    engine.set_threshold_offsets([0.0] * 3)
    assert all(all(row) for row in states[True])  # held up on every tuple
    assert not any(states[False][-1]) and all(states[False][0])  # cleared after clear_n


def test_a_wrench_stream_that_lost_its_messages_raises_the_wrench_alarm_and_nothing_else():
    """...and its output stays the reading received: the network, not asked about gaps, said
    nothing of it, and an estimate from a window with gaps is no better than the reading."""
    from dataclasses import replace

    engine = Engine.from_artifact(train_tiny_model().artifact, device='cpu')
    W, J = MODALITIES[1], MODALITIES[2]
    clean = {W: 62_000_000, J: 124_000_000}
    lossy = {W: 5 * 62_000_000, J: 124_000_000}  # 80 % of the wrench messages lost
    tuples = [replace(t, spans_ns=clean if i < 120 or i >= 130 else lossy)
              for i, t in enumerate(_tuples(engine, 150))]

    def run(decisions):
        engine.forget_history()
        return [decisions.infer(engine, t) for t in tuples]

    judged = run(FaultDecisions())  # on by default
    off = run(FaultDecisions(scene=SceneConfig(sample_loss_ratio=0.0)))
    for i, ((res, status), (plain, plain_status)) in enumerate(zip(judged, off)):
        w = res.results[W]
        if 120 <= i < 130:
            assert w.evidence > 0 and w.fault and w.score >= w.threshold + w.evidence - 1e-6
        elif i >= 90:
            assert w.evidence < 0
        else:
            assert np.isnan(w.evidence)  # warming up
        assert res.results[J].evidence < 0 or i < 90
        if not 120 <= i < 130:  # no loss: judged as without the evidence
            assert w.score == plain.results[W].score
        else:  # the alarm is up, but the genuine last reading passes through uncorrected
            assert not w.corrected
            np.testing.assert_array_equal(res.wrench, tuples[i].wrench[-1])
    raised = [status[W].active for _, status in judged]
    assert any(raised[122:130]) and not any(raised[:120])
    assert not any(status[W].active for _, status in off[120:130])  # the network alone: no
    for m in (MODALITIES[0], J):  # the loss speaks for the wrench only
        assert [s[m].active for _, s in judged] == [s[m].active for _, s in off]


def test_a_window_the_pipeline_lost_messages_of_holds_its_alarm_as_for_a_missing_one():
    """The pipeline fell behind and its input queue overflowed (its messages came late): the
    window has gaps of the pipeline's own making, so neither the lost samples nor the
    network's score of it move the alarm; the same gaps on time are the sensor's."""
    from dataclasses import replace

    engine = Engine.from_artifact(train_tiny_model().artifact, device='cpu')
    W = MODALITIES[1]
    clean = {W: 62_000_000, MODALITIES[2]: 124_000_000}
    lossy = {**clean, W: 5 * 62_000_000}
    base = _tuples(engine, 140)

    def run(backlog_ns: int) -> tuple[list, FaultDecisions]:
        tuples = []
        for i, t in enumerate(base):
            if 120 <= i < 130:  # gaps, and a window the network reads as a wrench fault
                t = replace(t, spans_ns=lossy, wrench=t.wrench * 40.0,
                            backlogs_ns={W: backlog_ns, MODALITIES[2]: 0})
            else:
                t = replace(t, spans_ns=clean, backlogs_ns={W: 1_000_000,
                                                            MODALITIES[2]: 1_000_000})
            tuples.append(t)
        decisions = FaultDecisions(scene=SceneConfig(sample_loss_ratio=2.0))
        engine.forget_history()
        return [decisions.infer(engine, t) for t in tuples], decisions

    sensor, d_sensor = run(1_000_000)  # the messages left came on time: the sensor lost them
    own, d_own = run(98_000_000)  # ~ a 50-message queue's span at 500 Hz: the pipeline's own
    assert all(res.results[W].fault for res, _ in own[120:130])  # the network flags them
    assert any(s[W].active for _, s in sensor[120:130])
    assert not any(s[W].active for _, s in own)
    assert all(np.isnan(res.results[W].evidence) for res, _ in own[120:130])
    assert d_own.sample_loss.behind == [10, 0] and d_sensor.sample_loss.behind == [0, 0]
    # after it, judged as before it: the same verdicts as the run that never fell behind
    assert [s[W].active for _, s in own[:120]] == [s[W].active for _, s in sensor[:120]]
