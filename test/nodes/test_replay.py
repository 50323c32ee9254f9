"""End to end on the simulated robot: record -> inject -> tiny model -> offline evaluation, then
live replay through the running pipeline node over DDS, and the two reports must agree.

Agreement tolerance. Live replay may drop tuples (the pipeline's latest-only inference slot) and
a tuple whose history window lost a sample in transport is scored on slightly different input;
the report counts the drops. So: at least 60% of the tuples must be answered; on the tuples both
runs scored, the deployed decisions must agree on at least 90% of (tuple, modality) pairs, and
AUROC and F1 computed on those common tuples must agree within 0.1 per modality and overall.
The bag is played at half speed so that the pipeline and the player, sharing one process, keep
up on a loaded 2-core machine.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lipfault_ros.errors import BagError
from lipfault_ros.nodes.replay import ReplayNode, ReplayParams, replay

SPECS = ('camera:black_frame:0.9:0.8:0.5', 'wrench:bias:0.9:1.6:0.5',
         'joints:bias:0.9:2.4:0.5', 'camera:occlusion:0.9:3.2:0.5')
ROWS = ('camera', 'wrench', 'joints', 'overall')


@pytest.fixture(scope='module')
def sim_case(tmp_path_factory):
    """Sim bags (train 12 s, clean 4.5 s, 64x64 frames), a tiny model, the injected bag and its
    offline report."""
    import torch

    from lipfault_ros.bags.dataset import DatasetConfig, build_dataset, split_dataset
    from lipfault_ros.evaluation.inject import inject
    from lipfault_ros.evaluation.offline import evaluate
    from lipfault_ros.evaluation.scenario import Scenario
    from lipfault_ros.model.config import ModelConfig
    from lipfault_ros.sim import JOINT_NAMES
    from lipfault_ros.sim.config import SimConfig
    from lipfault_ros.sim.record import record
    from lipfault_ros.training import TrainConfig, fit

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp('replay')
    # modest rates keep the replay light on a shared 2-core machine (~200 messages/s)
    rates = dict(image_width=64, image_height=64, camera_rate_hz=15.0, wrench_rate_hz=120.0,
                 joints_rate_hz=60.0)
    record(d / 'train', 12.0, SimConfig(seed=1, **rates), progress=False)
    record(d / 'clean', 4.5, SimConfig(seed=2, **rates), progress=False)
    mc = ModelConfig.tiny(joint_names=JOINT_NAMES)
    ds = build_dataset([d / 'train'], DatasetConfig.from_model(mc), progress=False)
    split = split_dataset(ds, block_s=2.0, gap_s=0.2)
    fit(split.train, split.val, TrainConfig.tiny(), mc, out=d / 'model', progress=False)
    inject(d / 'clean', Scenario.from_specs(SPECS, seed=5), d / 'faulty')
    evaluate(d / 'faulty', d / 'model', out_dir=d / 'offline', clean_bag=d / 'clean',
             train_bags=[d / 'train'])
    return d


def _series(doc):
    s = doc['series']
    out = {}
    for i, stamp in enumerate(s['stamps_ns']):
        out[stamp] = ([s['flags'][m][i] for m in ROWS[:3]],
                      [np.inf if s['scores'][m][i] is None else s['scores'][m][i]
                       for m in ROWS[:3]])
    return out


def test_offline_report_of_a_sim_bag_is_complete(sim_case):
    doc = json.loads((sim_case / 'offline' / 'report.json').read_text())
    for row in ROWS:
        for key in ('auroc', 'aupr', 'f1', 'false_alarms_per_1000', 'detection_latency_ms_p50',
                    'detection_latency_ms_p95'):
            assert key in doc[row]
    for m in ROWS[:3]:
        assert {'error_faulty', 'error_corrected', 'error_clean'} <= set(doc[m])
    assert {'isolation_forest', 'pca', 'stage1_autoencoder'} <= set(doc['baselines'])
    assert (sim_case / 'offline' / 'roc.png').is_file()


def test_live_replay_through_the_pipeline_agrees_with_offline(sim_case, ros_context):
    settings = ReplayParams(bag=str(sim_case / 'faulty'), model=str(sim_case / 'model'),
                            clean_bag=str(sim_case / 'clean'), out=str(sim_case / 'live'),
                            start_pipeline=True, drain=3.0, rate=0.5)
    live = replay(settings, context=ros_context)
    offline = json.loads((sim_case / 'offline' / 'report.json').read_text())
    info = live['live']
    assert info['tuples_expected'] == offline['tuples']['n']
    assert info['tuples_received'] >= 0.6 * info['tuples_expected']
    assert info['tuples_dropped'] == info['tuples_expected'] - info['tuples_received']
    assert info['end_to_end_ms_p50'] > 0
    assert (sim_case / 'live' / 'report.json').is_file()
    # the flags are the pipeline's lifecycle output, under the settings read from the node
    life = live['lifecycle']
    assert life['flags_source'].startswith('active') and 'note' not in life
    assert life['raise_k'] == offline['lifecycle']['raise_k']
    assert live['effective'] is not None and live['interval'] is not None
    a, b = _series(offline), _series(live)
    common = sorted(set(a) & set(b))
    assert len(common) == info['tuples_received']
    flags_a = np.array([a[k][0] for k in common])
    flags_b = np.array([b[k][0] for k in common])
    assert (flags_a == flags_b).mean() >= 0.90
    # the same metrics on the common tuples: offline scores/flags vs live scores/flags
    from lipfault_ros.evaluation.metrics import ranking_metrics, threshold_metrics

    series = offline['series']
    index = {st: i for i, st in enumerate(series['stamps_ns'])}
    rows = [index[k] for k in common]
    for j, row in enumerate(ROWS):
        if row == 'overall':
            labels = np.array([[series['labels'][m][i] for m in ROWS[:3]] for i in rows]).any(1)
            fa, fb = flags_a.any(1), flags_b.any(1)
            keep = np.ones(len(rows), bool)
            sa = sb = None
        else:
            labels = np.array([series['labels'][row][i] for i in rows], bool)
            keep = ~np.array([series['settling'][row][i] for i in rows], bool)
            fa, fb = flags_a[:, j], flags_b[:, j]
            sa = np.array([a[k][1][j] for k in common], float)
            sb = np.array([b[k][1][j] for k in common], float)
        ta = threshold_metrics(fa[keep], labels[keep])['f1']
        tb = threshold_metrics(fb[keep], labels[keep])['f1']
        if ta is not None and tb is not None:
            assert abs(ta - tb) <= 0.1, (row, ta, tb)
        if sa is not None:
            ra = ranking_metrics(np.nan_to_num(sa, nan=np.inf)[keep], labels[keep])['auroc']
            rb = ranking_metrics(np.nan_to_num(sb, nan=np.inf)[keep], labels[keep])['auroc']
            if ra is not None and rb is not None:
                assert abs(ra - rb) <= 0.1, (row, ra, rb)


def test_a_looped_replay_without_restamping_does_not_stall_the_synchroniser(sim_case,
                                                                            ros_context):
    settings = ReplayParams(bag=str(sim_case / 'clean'), model=str(sim_case / 'model'),
                            start_pipeline=True, loops=2, restamp=False, duration=1.5,
                            start_offset=0.5, drain=2.0, clock=True)
    live = replay(settings, context=ros_context, plots=False)
    info = live['live']
    per_loop = info['tuples_expected_per_loop']
    assert per_loop > 10
    # the second play repeats the stamps of the first: answered only if the sync reset
    assert info['answered_per_loop'][1] >= 0.5 * per_loop, info
    assert info['loops'] == 2 and info['restamp'] is False
    assert info['published']['/clock'] > 100  # /clock at 100 Hz for use_sim_time


def test_replay_refuses_missing_topics_and_an_absent_pipeline(sim_case, ros_context, tmp_path):
    from rclpy.parameter import Parameter

    with pytest.raises(BagError, match='/no/such/topic'):
        ReplayNode(parameter_overrides=[Parameter('bag', value=str(sim_case / 'clean')),
                                        Parameter('topics', value='/no/such/topic')],
                   context=ros_context)
    settings = ReplayParams(bag=str(sim_case / 'clean'), model=str(sim_case / 'model'),
                            pipeline='/nobody_here', wait_for_pipeline=0.5)
    with pytest.raises(BagError, match='no pipeline is listening'):
        replay(settings, context=ros_context)
    with pytest.raises(FileNotFoundError, match='nothing'):
        replay(ReplayParams(bag=str(tmp_path / 'nothing'), model=str(sim_case / 'model')),
               context=ros_context)


def test_ctrl_c_stops_lipfault_replay_without_a_traceback(sim_case, ctrl_c):
    """Ctrl-C while ``lipfault replay`` waits for its pipeline: a line saying so, exit code 130
    (an interrupted command, not a finished replay), no traceback."""
    code, text = ctrl_c(['replay', str(sim_case / 'clean'), '--model', str(sim_case / 'model'),
                         '--pipeline', '/nobody_here', '--wait', '120'],
                        'waiting up to 120 s for /nobody_here')
    assert code == 130, text
    assert 'interrupted: no report written' in text and 'Traceback' not in text, text


def test_ctrl_c_while_playing_ends_the_replay_and_its_pipeline_cleanly(sim_case, ctrl_c):
    """Ctrl-C twice (as under ``ros2 launch``) in the middle of a play into a pipeline of the
    same process (three threads at work: the play, the spin, the main thread's poll): 130 and
    the same line, no traceback, no error from a publisher or a node destroyed under a running
    callback, and the second signal does not cut the clean-up short."""
    code, text = ctrl_c(['replay', str(sim_case / 'clean'), '--model', str(sim_case / 'model'),
                         '--start-pipeline', '--rate', '0.05', '--no-plots'], 'playing ',
                        signals=2)
    assert code == 130, text
    assert 'interrupted: no report written' in text, text
    for bad in ('Traceback', 'Destroyable', 'Error', 'Segmentation'):
        assert bad not in text, text


def test_replay_node_declares_every_setting_as_a_parameter(sim_case, ros_context):
    from rclpy.parameter import Parameter

    from lipfault_ros.ros.params import parameter_names

    node = ReplayNode(parameter_overrides=[Parameter('bag', value=str(sim_case / 'clean'))],
                      context=ros_context)
    try:
        assert set(parameter_names(ReplayParams)) <= set(node.list_parameters([], 0).names)
    finally:
        node.destroy_node()
