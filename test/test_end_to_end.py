"""End to end, as a user runs it: record simulated bags, train a model on them with the CLI, run
the simulated robot and the pipeline over DDS, inject a fault at run time and see it detected.

1. ``lipfault record`` writes two short recordings of the simulated Panda, one mcap, one sqlite3.
2. ``lipfault train BAG BAG --out ARTIFACT --quick --config FILE`` trains a small model on both.
3. ``sim_node`` and ``pipeline_node`` (with ``model`` = that artifact) run in this process over
   real DDS; clean tuples flow, then the sim node's ``fault_*`` parameters switch a black camera
   on at run time. The pipeline must publish corrected triples with the input stamps and frame
   ids, leave the camera unflagged before the onset, and flag (and correct) it within a few
   tuples after it.

Small on purpose (32x32 images, a 15/150/150 Hz robot, 2 x 10 s of data, a tiny network): the
whole module takes well under a minute on two cores. Live, the robot repeats the task sequence of
the first recording (seed 0): ten seconds of data show only a few arm poses, and a camera model
this small judges poses it never saw as unusual. Every tuple's scores against the thresholds are
printed, so a failure shows what the model saw.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from lipfault_ros.cli import main as cli_main

from polling import wait_until
from tiny_config import tiny_config

# The robot both in the recordings and live: low rates and small frames keep the test fast; the
# model's windows are in samples, so the live rates must equal the recorded ones.
IMAGE_SIZE = 32
RATES = {'camera': 15.0, 'wrench': 150.0, 'joints': 150.0}
RECORD_S = 10.0
NS = '/lipfault_pipeline'
FAULT = ('camera', 'black_frame', 1.0)

# --quick refined by this file: a tiny network at the recorded image size. 40 epochs of ~240
# tuples take seconds; with the quick preset's 3 (or even 8) the detection head is still so unsure
# that half of the clean training frames score above the threshold calibrated on validation.
CONFIG = tiny_config(image_size=IMAGE_SIZE, stage1_epochs=40, stage2_epochs=40,
                     checkpoint_every=200, block_s=2.5)


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def _values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


@pytest.fixture(scope='module')
def artifact(tmp_path_factory) -> Path:
    """Two recordings (mcap, sqlite3) with ``lipfault record``, one model with ``lipfault
    train`` on both."""
    root = tmp_path_factory.mktemp('e2e')
    rates = ['--camera-rate', str(RATES['camera']), '--wrench-rate', str(RATES['wrench']),
             '--joints-rate', str(RATES['joints'])]
    bags = []
    for seed, storage in enumerate(('mcap', 'sqlite3')):
        bag = root / f'sim_{storage}'
        assert cli_main(['record', '--out', str(bag), '--duration', str(RECORD_S),
                         '--storage', storage, '--seed', str(seed), '--image-size',
                         str(IMAGE_SIZE), '--no-progress', *rates]) == 0
        bags.append(bag)
    assert (bags[0] / 'metadata.yaml').is_file() and list(bags[0].glob('*.mcap'))
    assert list(bags[1].glob('*.db3'))
    config = root / 'e2e.yaml'
    config.write_text(CONFIG)
    out = root / 'model'
    assert cli_main(['train', *map(str, bags), '--out', str(out), '--quick', '--config',
                     str(config), '--cache', str(root / 'cache'), '--no-progress']) == 0
    assert (out / 'model.safetensors').is_file()
    return out


class Robot:
    """sim_node, pipeline_node and a listener in one rclpy context: the sim on its own
    executor (as its ``main`` runs it), the pipeline and the listener on another."""

    def __init__(self, context, model: Path, seed: int) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import WrenchStamped
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.node import Node
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import Image, JointState

        from lipfault_ros.nodes.pipeline import PipelineNode, pipeline_executor
        from lipfault_ros.nodes.sim import SimNode
        from lipfault_ros.ros.qos import qos_profile

        def overrides(values: dict) -> list:
            return [Parameter(k, value=v) for k, v in values.items()]

        # the pipeline first: loading and warming the model up takes a moment, and the sim
        # clock starts when its node is made
        self.pipeline = PipelineNode(context=context, parameter_overrides=overrides(dict(
            model=str(model), device='cpu', num_threads=1, camera_rate=RATES['camera'],
            wrench_rate=RATES['wrench'], joints_rate=RATES['joints'],
            # the watchdog is not under test: with the sim, the pipeline and the listener
            # sharing one interpreter on a busy machine, a 0.1 s gap is no dead sensor
            silent_min=1.0)))
        assert self.pipeline.lifecycle_state == 'active', self.pipeline.last_error
        self.sim = SimNode(context=context, parameter_overrides=overrides(dict(
            seed=seed, image_width=IMAGE_SIZE, image_height=IMAGE_SIZE,
            camera_rate_hz=RATES['camera'], wrench_rate_hz=RATES['wrench'],
            joints_rate_hz=RATES['joints'])))
        self.listener = Node('e2e_listener', context=context)
        self.got: dict[str, list] = {k: [] for k in (
            'raw_camera', 'raw_wrench', 'raw_joints', 'image', 'wrench', 'joints', 'status',
            'truth')}
        sensor = qos_profile('sensor_data', depth=200)
        reliable = qos_profile('reliable', depth=200)
        for key, kind, topic, qos in (
                ('raw_camera', Image, 'camera/image_raw', sensor),
                ('raw_wrench', WrenchStamped, 'wrench', sensor),
                ('raw_joints', JointState, 'joint_states', sensor),
                ('image', Image, f'{NS}/camera/image_corrected', reliable),
                ('wrench', WrenchStamped, f'{NS}/wrench_corrected', reliable),
                ('joints', JointState, f'{NS}/joint_states_corrected', reliable),
                ('status', DiagnosticArray, f'{NS}/fault_status', reliable),
                ('truth', DiagnosticArray, '/lipfault_sim/fault_truth', reliable)):
            self.listener.create_subscription(
                kind, topic, lambda msg, key=key: self.got[key].append(msg), qos)
        self.executors = [MultiThreadedExecutor(num_threads=3, context=context),
                          pipeline_executor(context)]
        self.executors[0].add_node(self.sim)
        self.executors[1].add_node(self.pipeline)
        self.executors[1].add_node(self.listener)
        self.threads = [threading.Thread(target=e.spin, daemon=True) for e in self.executors]
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        for executor in self.executors:
            executor.shutdown()
        for thread in self.threads:
            thread.join(timeout=5.0)
        for node in (self.pipeline, self.sim, self.listener):
            node.destroy_node()

    def statuses(self) -> list[tuple[int, dict]]:
        """(tuple stamp, {modality: status}) of every fault_status so far."""
        return [(_stamp(a), {s.name: s for s in a.status}) for a in list(self.got['status'])]

    def fault_onset_ns(self, modality: str) -> int | None:
        """Start of the injected fault, as the sim's fault truth announces it."""
        for array in list(self.got['truth']):
            for s in array.status:
                if s.name == modality and s.level == b'\x02':
                    return int(_values(s)['start_ns'])
        return None


def _line(stamp_ns: int, onset_ns: int, st: dict) -> str:
    parts = []
    for name in ('camera', 'wrench', 'joints'):
        v = _values(st[name])
        flag = 'M' if v['missing'] == 'true' else ('F' if v['fault'] == 'true' else ' ')
        parts.append(f'{name} {float(v["score"]):7.3f}/{float(v["threshold"]):7.3f}{flag}')
    return f'{(stamp_ns - onset_ns) / 1e6:+8.0f} ms  ' + '  '.join(parts)


def test_sim_bags_to_cli_model_to_live_pipeline_detects_a_run_time_fault(artifact, ros_context):
    from rclpy.parameter import Parameter

    modality, kind, severity = FAULT
    robot = Robot(ros_context, artifact, seed=0)  # the task sequence of the first recording
    settled, onset, stats = 0, None, {}
    try:
        # clean tuples flow; the first second is left out (DDS discovery, the sim catching up)
        assert wait_until(lambda: len(robot.got['status']) >= 15, 20.0), 'no pipeline output'
        settled = len(robot.got['status'])

        def complete(after_ns: int = 0) -> int:
            """Tuples (after ``after_ns``) with all three modalities present."""
            return sum(s > after_ns and all(_values(v)['missing'] == 'false' for v in st.values())
                       for s, st in robot.statuses()[settled:])

        assert wait_until(lambda: complete() >= 30, 20.0), 'too few complete clean tuples'

        # switch the fault on at run time (it starts now and lasts until changed)
        result = robot.sim.set_parameters_atomically([
            Parameter('fault_modality', value=modality), Parameter('fault_type', value=kind),
            Parameter('fault_severity', value=severity),
            Parameter('fault_duration_s', value=0.0)])
        assert result.successful, result.reason
        assert wait_until(lambda: robot.fault_onset_ns(modality) is not None, 5.0)
        onset = robot.fault_onset_ns(modality)
        assert wait_until(lambda: complete(onset) >= 15, 15.0), 'too few tuples after onset'
    finally:
        stats = robot.pipeline.stats()
        robot.close()
        # what the model saw, tuple by tuple (shown when the test fails, or with -s)
        statuses = robot.statuses()  # everything received, the executors stopped
        print(f'pipeline: {stats}')
        for stamp_ns, st in statuses[max(0, settled - 5):]:
            print(_line(stamp_ns, onset or 0, st))

    def present(st: dict) -> bool:
        return _values(st[modality])['missing'] == 'false'

    # (a) one corrected triple per tuple, each message with its input's stamp and frame id
    n = len(statuses)
    assert n > 45 and [len(robot.got[k]) for k in ('image', 'wrench', 'joints')] == [n] * 3
    assert [_stamp(msg) for msg in robot.got['image']] == [s for s, _ in statuses]
    assert np.all(np.diff([s for s, _ in statuses]) > 0)
    for key, m, frame in (('image', 'camera', 'sim_camera'), ('wrench', 'wrench', 'panda_hand'),
                          ('joints', 'joints', 'panda_link0')):
        outs = [msg for msg, (_, st) in zip(robot.got[key], statuses)
                if _values(st[m])['missing'] == 'false']
        # (a starved sim node on a busy machine can leave a modality missing for a while)
        assert len(outs) >= 20, (key, len(outs), n)
        assert {msg.header.frame_id for msg in outs} == {frame}, key
        # The stamp is one the sensor sent. The listener's own copy of the input is best effort
        # and loses bursts on a busy machine, so judge each output where that copy is complete:
        # an input stamp on either side, less than 1.5 periods apart.
        raw = np.array(sorted(_stamp(msg) for msg in robot.got[f'raw_{m}']))
        period = 1e9 / RATES[m]
        judged = exact = 0
        for msg in outs:
            stamp_ns = _stamp(msg)
            k = int(np.searchsorted(raw, stamp_ns))
            if 0 < k < len(raw) and raw[k] == stamp_ns:
                judged, exact = judged + 1, exact + 1
            elif 0 < k < len(raw) and raw[k] - raw[k - 1] < 1.5 * period:
                judged += 1  # between two neighbouring input stamps: not an input stamp
        assert judged >= 0.5 * len(outs) and exact == judged, (key, len(outs), judged, exact)
    image = robot.got['image'][-1]
    assert (image.width, image.height, image.encoding) == (IMAGE_SIZE, IMAGE_SIZE, 'rgb8')
    assert list(robot.got['joints'][-1].name[:7]) == [f'panda_joint{i}' for i in range(1, 8)]

    # (b) before the onset, the camera is judged clean (a false alarm now and then at most)
    before = [st for s, st in statuses[settled:] if s < onset and present(st)]
    flagged_before = [_values(st[modality])['fault'] == 'true' for st in before]
    assert len(before) >= 20
    assert np.mean(flagged_before) <= 0.1, flagged_before
    assert np.mean([_values(st[modality])['active'] == 'true' for st in before]) <= 0.1

    # (c) after it, the camera's raw verdict flips within a few tuples, the fault lifecycle
    # raises the alarm (3 of 5 flagged) and keeps it up, and while it is up the published
    # image is the model's estimate instead of the black frame
    after = [(s, st) for s, st in statuses if s > onset and present(st)]
    flags = [_values(st[modality])['fault'] == 'true' for _, st in after]
    up = [_values(st[modality])['active'] == 'true' for _, st in after]
    assert len(after) >= 10
    assert True in flags[:3], flags
    assert True in up[:5], up
    first = up.index(True)
    assert np.mean(up[first:]) >= 0.9, up
    for (_, st), alarm in zip(after[first:], up[first:]):
        if alarm:
            assert st[modality].level == b'\x01'  # WARN
            assert _values(st[modality])['corrected'] == 'true'
    images_by_stamp = {_stamp(msg): msg for msg in robot.got['image']}
    corrected = [np.frombuffer(bytes(images_by_stamp[s].data), np.uint8).mean()
                 for s, st in after[first:] if s in images_by_stamp
                 and _values(st[modality])['active'] == 'true']
    assert corrected and min(corrected) > 5.0, corrected  # not the black input
