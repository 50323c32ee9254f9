"""The pipeline node over real DDS: synthetic sensors in, corrected streams and status out."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import WrenchStamped
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState
from visualization_msgs.msg import MarkerArray

from lipfault_ros.training.tiny import train_synthetic_model
from lipfault_ros.nodes.pipeline import PipelineNode, pipeline_executor
from lipfault_ros.ros.synthetic_sensors import SyntheticSensors
from lipfault_ros.tuples import MODALITIES, Modality

NS = '/lipfault_pipeline'


@pytest.fixture(scope='session')
def tiny_artifact(tmp_path_factory) -> Path:
    """A tiny model trained for a few seconds on the synthetic stream the tests publish
    (shared through the session's base temp directory with the demo test)."""
    torch.set_num_threads(1)
    return train_synthetic_model(tmp_path_factory.getbasetemp() / 'tiny_pipeline_model')


class Harness:
    """Pipeline + synthetic sensors + a listener in one context and executor."""

    def __init__(self, context, model: Path | str, **overrides) -> None:
        values = dict(model=str(model), device='cpu', num_threads=1, silent_min=0.3,
                      warmup=1)
        values.update(overrides)
        self.pipeline = PipelineNode(context=context, parameter_overrides=[
            Parameter(k, value=v) for k, v in values.items()])
        self.sensors = SyntheticSensors(context=context)
        self.listener = Node('listener', context=context)
        self.got: dict[str, list] = {k: [] for k in ('image', 'wrench', 'joints', 'status',
                                                      'diag', 'markers')}
        for key, kind, topic in (('image', Image, f'{NS}/camera/image_corrected'),
                                 ('wrench', WrenchStamped, f'{NS}/wrench_corrected'),
                                 ('joints', JointState, f'{NS}/joint_states_corrected'),
                                 ('status', DiagnosticArray, f'{NS}/fault_status'),
                                 ('diag', DiagnosticArray, '/diagnostics'),
                                 ('markers', MarkerArray, f'{NS}/fault_markers')):
            self.listener.create_subscription(kind, topic,
                                              lambda m, key=key: self.got[key].append(m), 100)
        self.executor = pipeline_executor(context)
        for node in (self.pipeline, self.sensors, self.listener):
            self.executor.add_node(node)

    def spin_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
            if condition():
                return True
        return condition()

    def close(self) -> None:
        self.sensors.stop()
        for node in (self.pipeline, self.sensors, self.listener):
            self.executor.remove_node(node)
        self.executor.shutdown()
        for node in (self.pipeline, self.sensors, self.listener):
            node.destroy_node()

    # helpers on what came out
    def statuses(self, k: int = -1) -> dict:
        return {s.name: s for s in self.got['status'][k].status}

    def diag(self, task: str):
        for arr in reversed(self.got['diag']):
            for s in arr.status:
                if s.name == f'lipfault_pipeline: {task}':
                    return s
        return None


@pytest.fixture
def harness(ros_context, tiny_artifact):
    h = Harness(ros_context, tiny_artifact)
    yield h
    h.close()


def values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def stamp(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def test_corrected_triples_carry_input_headers_and_a_fault_flips_its_status(harness):
    h = harness
    assert h.pipeline.lifecycle_state == 'active'
    h.sensors.start()
    assert h.spin_until(lambda: len(h.got['status']) >= 30, 15.0)
    published = dict(h.sensors.camera_stamps)
    by_stamp = {stamp(a): {s.name: values(s) for s in a.status} for a in h.got['status']}
    images = list(h.got['image'])
    # every corrected image of a tuple with a camera frame is stamped and framed like that
    # input frame (a busy machine may let the watchdog make a few tuples without one)
    with_camera = [m for m in images if by_stamp.get(stamp(m), {}).get('camera', {}).get(
        'missing') == 'false']
    assert len(with_camera) >= 0.8 * len(images) > 0
    assert all(published.get(stamp(m)) == m.header.frame_id == 'sim_camera'
               for m in with_camera)
    assert np.all(np.diff([stamp(m) for m in images]) > 0)
    assert images[0].encoding == 'rgb8' and images[0].width == 32
    assert {m.header.frame_id for m in h.got['wrench']} == {'panda_hand'}
    assert {m.header.frame_id for m in h.got['joints']} == {'panda_link0'}
    assert h.got['joints'][0].name == [f'panda_joint{i}' for i in range(1, 8)]
    # the status of each tuple carries the tuple stamp and one entry per modality
    assert all(set(v) == {'camera', 'wrench', 'joints'} for v in by_stamp.values())
    assert {kv.key for kv in h.statuses()['wrench'].values} == {
        'score', 'threshold', 'scene_offset', 'evidence', 'fault', 'missing', 'corrected',
        'bypassed', 'latency_ms', 'alarm', 'active', 'alarm_onset_ns', 'alarm_duration_s',
        'alarm_count', 'backlog_ms'}
    # live, each signal window says how late its messages came (a few ms on a calm machine;
    # a tuple made without its wrench has none)
    present = [float(v['wrench']['backlog_ms']) for v in by_stamp.values()
               if v['wrench']['missing'] == 'false']
    assert present and all(0.0 <= b < 1000.0 for b in present)
    assert all(v['camera']['backlog_ms'] == 'nan' for v in by_stamp.values())
    assert any(v['wrench']['missing'] == 'false' for v in by_stamp.values())
    # latest-only: every synchronised tuple is either published or counted as dropped
    stats = h.pipeline.stats()
    assert stats['tuples_out'] + stats['dropped'] >= stats['tuples_in'] - 1
    # a fault on the wrench: NaN in every wrench message from now on; every tuple whose
    # window holds one (stamped after the switch) is flagged and corrected
    switch_ns = time.time_ns()
    h.sensors.mode['wrench'] = 'nan'

    def after():
        return [{s.name: s for s in a.status} for a in h.got['status']
                if stamp(a) > switch_ns + 300_000_000]

    assert h.spin_until(lambda: len(after()) >= 5, 10.0)
    flagged = [st for st in after() if values(st['wrench'])['missing'] == 'false']
    assert flagged and all(values(st['wrench'])['fault'] == 'true'
                           and values(st['wrench'])['corrected'] == 'true'
                           and st['wrench'].level == b'\x01' for st in flagged)
    # by then the fault lifecycle has raised the wrench alarm, once, with its onset stamp
    last = values(flagged[-1]['wrench'])
    assert (last['alarm'], last['active'], last['alarm_count']) == ('raised', 'true', '1')
    assert int(last['alarm_onset_ns']) > 0
    assert np.isfinite([h.got['wrench'][-1].wrench.force.z]).all()  # corrected, not NaN
    # rviz's markers follow the alarm: the wrench text turned red
    assert h.spin_until(lambda: any(m.markers[1].text.startswith('wrench: fault')
                                    for m in h.got['markers']), 5.0)
    # the texts are in the wrench's frame, where rviz (fixed to it, no TF) draws the wrench
    assert {m.header.frame_id for a in h.got['markers'] for m in a.markers} == {'panda_hand'}
    # one tuple per camera frame: once the sensors stop, every frame has made its tuple (or
    # was counted: late after a watchdog tuple, or pushed out of a full queue)
    h.sensors.stop()
    sync = h.pipeline.assembler

    def accounted() -> bool:
        st = sync.stats
        cam = Modality.CAMERA
        return st.tuples - st.missing[cam] + st.late[cam] + st.dropped[cam] == st.received[cam]

    assert h.spin_until(accounted, 5.0)
    assert sync.stats.unmatched == 0


def test_a_stopped_publisher_becomes_a_missing_modality_error_while_tuples_continue(harness):
    h = harness
    h.sensors.start()
    assert h.spin_until(lambda: len(h.got['status']) >= 10, 15.0)
    h.sensors.mode['joints'] = 'stop'
    assert h.spin_until(lambda: values(h.statuses()['joints'])['missing'] == 'true', 5.0)
    n = len(h.got['image'])
    assert h.spin_until(lambda: len(h.got['image']) >= n + 10, 5.0)  # tuples continue
    # still reported missing once the last joint message in flight at the stop has been used
    assert h.spin_until(lambda: values(h.statuses()['joints'])['missing'] == 'true', 3.0)
    assert h.statuses()['joints'].level == b'\x02'
    assert h.spin_until(lambda: (d := h.diag('joints')) is not None and d.level == b'\x02', 3.0)
    assert 'missing' in h.diag('joints').message
    # it comes back and is used again
    h.sensors.mode.pop('joints')
    assert h.spin_until(lambda: values(h.statuses()['joints'])['missing'] == 'false', 5.0)


@pytest.mark.parametrize('modality,mode,check', [
    ('camera', 'bad_encoding', 'camera_missing'),
    ('camera', 'big', 'resized'),
    ('joints', 'reordered', 'joints_present'),
    ('joints', 'missing_name', 'joints_missing'),
    ('wrench', 'zero_stamp', 'wrench_missing'),
    ('wrench', 'backwards', 'wrench_missing'),
    ('wrench', 'inf', 'wrench_fault'),
])
def test_survives_bad_input_and_flags_it(ros_context, tiny_artifact, modality, mode, check):
    h = Harness(ros_context, tiny_artifact)
    try:
        h.sensors.mode[modality] = mode
        h.sensors.start()
        assert h.spin_until(lambda: len(h.got['status']) >= 8, 15.0), 'no output'

        def last(name: str, key: str) -> str:
            return values(h.statuses()[name])[key]

        # conditions are awaited (bounded): a busy machine may delay a status or two
        if check == 'camera_missing':
            assert h.spin_until(lambda: last('camera', 'missing') == 'true', 5.0)
            assert h.pipeline.stats()['bad_input']['camera'] > 0
        elif check == 'resized':
            assert h.spin_until(lambda: last('camera', 'missing') == 'false'
                                and h.got['image'][-1].width == 64, 5.0)  # input size kept
        elif check == 'joints_present':
            assert h.spin_until(lambda: last('joints', 'missing') == 'false', 5.0)
        elif check == 'joints_missing':
            assert h.spin_until(lambda: last('joints', 'missing') == 'true', 5.0)
            assert h.spin_until(lambda: (d := h.diag('joints')) is not None
                                and 'panda_joint3' in d.message, 3.0)
        elif check == 'wrench_missing':
            assert h.spin_until(lambda: last('wrench', 'missing') == 'true', 5.0)
            sync = h.pipeline.stats()['sync']
            if mode == 'zero_stamp':
                assert sync.headerless['wrench'] > 0
            else:  # a wrench clock 100 s behind: never within slop, not waited for
                assert sync.unpaired['wrench'] > 0
        elif check == 'wrench_fault':
            assert h.spin_until(lambda: last('wrench', 'fault') == 'true', 5.0)
        # and it recovers when the input is good again
        h.sensors.mode.clear()
        n = len(h.got['status'])
        assert h.spin_until(lambda: len(h.got['status']) > n + 5 and all(
            values(s)['missing'] == 'false' for s in h.got['status'][-1].status), 8.0)
    finally:
        h.close()


def test_backwards_stamps_reset_the_synchroniser_and_output_resumes(harness):
    h = harness
    h.sensors.start()
    assert h.spin_until(lambda: len(h.got['status']) >= 5, 15.0)
    for m in ('camera', 'wrench', 'joints'):  # the whole robot jumps back (bag loop)
        h.sensors.mode[m] = 'backwards'
    assert h.spin_until(lambda: h.pipeline.stats()['sync'].resets >= 1, 5.0)
    n = len(h.got['status'])
    before = stamp(h.got['status'][n - 1])
    # statuses of tuples still in flight at the jump may come first; then output resumes on
    # the new, earlier stamps
    assert h.spin_until(lambda: any(stamp(s) < before for s in h.got['status'][n:]), 5.0)


def test_a_bad_artifact_is_a_logged_failure_not_a_crash(ros_context, tmp_path):
    (tmp_path / 'broken').mkdir()
    (tmp_path / 'broken' / 'config.json').write_text('{not json')
    h = Harness(ros_context, tmp_path / 'broken')
    try:
        assert h.pipeline.lifecycle_state == 'unconfigured'
        assert h.spin_until(lambda: h.diag('model') is not None, 5.0)
        model = h.diag('model')
        assert model.level == b'\x02' and 'not valid JSON' in model.message
    finally:
        h.close()


def test_deactivate_unsubscribes_and_activate_resumes(harness):
    h = harness
    h.sensors.start()
    assert h.spin_until(lambda: len(h.got['status']) >= 3, 15.0)
    h.pipeline.trigger_deactivate()
    assert list(h.pipeline.subscriptions) == [] and h.pipeline.engine is None
    h.pipeline.trigger_activate()
    n = len(h.got['status'])
    assert h.spin_until(lambda: len(h.got['status']) >= n + 3, 10.0)


def _call(h: Harness, client, request, timeout: float = 5.0):
    assert client.wait_for_service(timeout_sec=timeout)
    future = client.call_async(request)
    assert h.spin_until(future.done, timeout)
    return future.result()


def test_a_latched_alarm_holds_until_reset_faults_over_dds(ros_context, tiny_artifact):
    from std_srvs.srv import Trigger

    # a large wrench offset: clean tuples never cross the threshold; NaN input always does
    h = Harness(ros_context, tiny_artifact, alarm_latch=True, alarm_clear_n=3,
                threshold_offset_wrench=50.0)
    try:
        client = h.listener.create_client(Trigger, f'{NS}/reset_faults')
        h.sensors.start()
        assert h.spin_until(lambda: len(h.got['status']) >= 5, 15.0)
        assert values(h.statuses()['wrench'])['alarm'] == 'clear'
        h.sensors.mode['wrench'] = 'nan'
        assert h.spin_until(lambda: values(h.statuses()['wrench'])['alarm'] == 'raised', 5.0)
        h.sensors.mode.pop('wrench')
        # the evidence is gone, the alarm stays up (latched) and the output stays corrected
        assert h.spin_until(lambda: values(h.statuses()['wrench'])['alarm'] == 'latched', 5.0)
        st = values(h.statuses()['wrench'])
        assert (st['fault'], st['active'], st['corrected']) == ('false', 'true', 'true')
        assert h.statuses()['wrench'].level == b'\x01'
        assert h.spin_until(lambda: (d := h.diag('wrench')) is not None
                            and 'latched' in d.message, 3.0)
        reply = _call(h, client, Trigger.Request())
        assert reply.success and 'wrench' in reply.message
        n = len(h.got['status'])
        assert h.spin_until(lambda: len(h.got['status']) > n + 2, 5.0)
        st = values(h.statuses()['wrench'])
        assert (st['alarm'], st['active'], st['corrected']) == ('clear', 'false', 'false')
        assert st['alarm_count'] == '0'
        assert _call(h, client, Trigger.Request()).message == 'no alarm was up'
    finally:
        h.close()


def test_relearn_scene_forgets_the_scene_and_warms_up_again_over_dds(ros_context,
                                                                     tiny_artifact):
    from std_srvs.srv import Trigger

    h = Harness(ros_context, tiny_artifact, scene_warmup=15, sample_loss_ratio=2.0)
    try:
        client = h.listener.create_client(Trigger, f'{NS}/relearn_scene')
        scene = h.pipeline.decisions.scene
        h.sensors.start()
        assert h.spin_until(lambda: len(h.got['status']) >= 25, 15.0)
        assert bool(scene.enabled[0]) and not scene.warming(Modality.CAMERA)
        reply = _call(h, client, Trigger.Request())
        assert reply.success and reply.message.startswith('forgot camera offset')
        assert 'the next 15 tuples are a warm-up' in reply.message
        assert 'camera background forgotten' in reply.message
        assert reply.message.endswith("signal streams' nominal spans forgotten")
        assert h.pipeline.decisions.background.warming
        loss = h.pipeline.decisions.sample_loss
        assert np.isnan(loss.nominal_ns(Modality.WRENCH))  # warms up again too
        n = len(h.got['status'])
        assert h.spin_until(lambda: len(h.got['status']) > n + 20, 5.0)
        assert not scene.warming(Modality.CAMERA)  # formed again from the new tuples
        for m in ('camera', 'wrench', 'joints'):  # each status says how far it was raised
            st = values(h.statuses()[m])
            assert float(st['threshold']) - float(st['scene_offset']) == pytest.approx(
                float(h.pipeline.engine.thresholds[('camera', 'wrench', 'joints').index(m)]),
                abs=1e-4)  # the values are printed with 6 significant digits
    finally:
        h.close()


def test_parameter_changes_are_validated_and_live_settings_apply_live(harness):
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rcl_interfaces.srv import SetParameters

    h = harness
    client = h.listener.create_client(SetParameters, f'{NS}/set_parameters')

    def put(name: str, value):
        req = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        assert isinstance(req.parameters[0], ParameterMsg)
        return _call(h, client, req).results[0]

    bad = put('input_qos', 'bogus')
    assert not bad.successful and 'one of' in bad.reason
    assert h.pipeline.get_parameter('input_qos').value == 'sensor_data'
    later = put('queue_span', 1.0)  # in range, but only read on configure
    assert not later.successful and 'configure' in later.reason
    assert put('slop', 0.05).successful  # the synchroniser's tolerance applies live
    assert h.pipeline.assembler.config.slop == 0.05
    assert not put('alarm_raise_k', 9).successful  # more than alarm_raise_n = 5
    assert not put('alarm_clear_n', 0).successful  # out of the declared range
    ok = put('alarm_raise_k', 1)
    assert ok.successful and h.pipeline.alarms.config.raise_k == 1
    assert put('threshold_offset_camera', 2.5).successful
    assert h.pipeline.get_parameter('threshold_offset_camera').value == 2.5


def test_with_inference_thread_a_worker_thread_judges_and_stops_with_deactivate(ros_context,
                                                                                 tiny_artifact):
    h = Harness(ros_context, tiny_artifact, inference_thread=True)
    try:
        def workers() -> list[str]:
            return [t.name for t in threading.enumerate() if t.name == 'lipfault-infer']

        assert h.pipeline.lifecycle_state == 'active' and workers() == ['lipfault-infer']
        h.sensors.start()
        assert h.spin_until(lambda: len(h.got['status']) >= 20, 15.0)
        assert set(h.statuses()) == {'camera', 'wrench', 'joints'}
        stats = h.pipeline.stats()
        assert stats['tuples_out'] >= 20
        # every tuple is judged or counted as dropped, but for the one in the worker and the
        # one waiting in its slot when the counters are read
        assert stats['tuples_out'] + stats['dropped'] >= stats['tuples_in'] - 2
        h.pipeline.trigger_deactivate()
        assert workers() == []
        h.pipeline.trigger_activate()
        assert workers() == ['lipfault-infer']
    finally:
        h.close()
    assert not [t for t in threading.enumerate() if t.name == 'lipfault-infer']


def test_message_filters_backend_partners_windows_and_recovery_from_a_jump(
        ros2py_import, ros_context, tiny_artifact):
    """message_filters' ApproximateTimeSynchronizer picks the partners, its Caches give the
    windows, and a backwards jump of every stamp (bag loop) rebuilds them: tuples resume."""
    import message_filters

    assert Path(message_filters.__file__).is_relative_to(ros2py_import)
    h = Harness(ros_context, tiny_artifact, sync_backend='message_filters')
    try:
        # what the node's own message_filters Subscribers received (on two busy cores a
        # keep-last reader may drop samples, differently for every reader, so another
        # subscriber's copy is no reference for the node's windows)
        received: dict[str, dict[int, np.ndarray]] = {'wrench': {}, 'joints': {}}
        inputs = h.pipeline.mf_inputs
        inputs.subscribers[MODALITIES.index(Modality.WRENCH)].registerCallback(
            lambda m: received['wrench'].__setitem__(stamp(m), np.array(
                [m.wrench.force.x, m.wrench.force.y, m.wrench.force.z, m.wrench.torque.x,
                 m.wrench.torque.y, m.wrench.torque.z], np.float32)))
        inputs.subscribers[MODALITIES.index(Modality.JOINTS)].registerCallback(
            lambda m: received['joints'].__setitem__(stamp(m), dict(zip(m.name, m.position))))
        tuples = []
        hand_over = h.pipeline.hand_over
        h.pipeline.hand_over = lambda ts, arrival: (tuples.extend(ts), hand_over(ts, arrival))
        assert h.pipeline.lifecycle_state == 'active'
        assert isinstance(inputs.sync, message_filters.ApproximateTimeSynchronizer)
        triples = []  # what the synchroniser itself signals
        inputs.sync.registerCallback(lambda *msgs: triples.append(tuple(stamp(m) for m in msgs)))
        h.sensors.start()
        assert h.spin_until(lambda: len(h.got['status']) >= 40, 20.0), 'no output'
        checked = list(tuples)
        slop_ns = int(h.pipeline.p.slop * 1e9)
        names = h.pipeline.engine.joint_names
        received['joints'] = {s: np.array([d[n] for n in names], np.float32)  # model order
                              for s, d in received['joints'].items()}
        assert len(checked) >= 20
        for t in checked[10:]:  # past the start of the streams (windows not padded)
            cam = t.stamps_ns[Modality.CAMERA]
            for key, mod in (('wrench', Modality.WRENCH), ('joints', Modality.JOINTS)):
                partner = t.stamps_ns[mod]
                assert abs(partner - cam) < slop_ns  # message_filters' choice, within slop
                window = t.wrench if mod is Modality.WRENCH else t.joints[:, :, 0]
                np.testing.assert_allclose(window[-1], received[key][partner], rtol=1e-6)
                # the window is the last samples received up to the partner, in order
                recent = sorted(s for s in received[key] if s <= partner)[-len(window):]
                np.testing.assert_allclose(
                    window, np.stack([received[key][s] for s in recent]), rtol=1e-6)
        # the partners are message_filters' triples (its first combination within slop, not
        # the builtin synchroniser's nearest), and the corrected outputs carry their stamps
        assert {tuple(t.stamps_ns[m] for m in (Modality.CAMERA, Modality.WRENCH,
                                               Modality.JOINTS)) for t in checked} <= set(triples)
        partners = {t.stamps_ns[Modality.WRENCH] for t in list(tuples)}
        assert {stamp(m) for m in h.got['wrench']} <= partners
        # every input jumps back 100 s at once: one reset, then tuples on the new stamps
        h.sensors.mode.update(camera='backwards', wrench='backwards', joints='backwards')
        assert h.spin_until(lambda: h.pipeline.stats()['mf_resets'] >= 1, 5.0)
        n = len(h.got['status'])
        before = stamp(h.got['status'][n - 1])
        assert h.spin_until(lambda: sum(stamp(s) < before - 50 * 10**9
                                        for s in h.got['status'][n:]) >= 10, 15.0)
        assert h.pipeline.stats()['mf_resets'] == 1
    finally:
        h.close()


def test_input_queues_too_short_to_show_their_own_losses_are_warned_about():
    from lipfault_ros.sample_loss import short_queues
    from lipfault_ros.scene_thresholds import SceneConfig
    from lipfault_ros.sync import SyncConfig

    sync = SyncConfig()  # 500 Hz wrench, 250 Hz joints
    on = SceneConfig().sample_loss_config()
    assert short_queues(50, sync, on) == ''  # 98 ms / 196 ms: over twice 50 ms
    text = short_queues(40, sync, on)
    assert 'wrench 80 ms' in text and 'joints' not in text and 'raise input_depth' in text
    off = SceneConfig(sample_loss_ratio=0.0).sample_loss_config()
    assert short_queues(20, sync, off) == ''  # off: no hold
