"""training_node: parameters from config/pipeline.yaml, progress on ~/progress and /diagnostics,
the same training function as `lipfault train` (real DDS, own Context, deadline-bounded waits)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import String

from lipfault_ros.nodes.training import BAGS_PARAMETER, NODE_NAME, TrainingNode, TrainingParams
from lipfault_ros.ros import params

from bags.synthetic import write_bag

YAML = Path(__file__).resolve().parents[2] / 'config' / 'pipeline.yaml'

TINY = """
model: {image_size: 16, camera_channels: [8, 8], signal_channels: [8, 8], wrench_window: 8,
        joints_window: 8, latent_camera: 8, latent_wrench: 8, latent_joints: 8, latent: 16,
        compute_hidden: 32, detector_hidden: 32, embed_dim: 8}
train: {stage1_epochs: 2, stage2_epochs: 2, batch_size: 16, device: cpu, num_threads: 1,
        warmup_steps: 2}
data: {block_s: 1.0, gap_s: 0.1}
"""


def section() -> dict:
    return params.file_parameters(yaml.safe_load(YAML.read_text()), 'lipfault_training')


def test_yaml_keys_equal_declared_parameters_and_defaults(ros_context):
    node = TrainingNode(context=ros_context,
                        parameter_overrides=[Parameter('autostart', value=False)])
    try:
        builtin = {'use_sim_time', 'start_type_description_service'}
        declared = {name for name in node.list_parameters([], 0).names if name not in builtin}
        assert node.state == 'idle'
    finally:
        node.destroy_node()
    assert set(section()) == declared
    assert declared == set(params.parameter_names(TrainingParams)) | {BAGS_PARAMETER}
    defaults = {f.name: f.default for f in dataclasses.fields(TrainingParams)}
    defaults[BAGS_PARAMETER] = ['']
    assert section() == defaults


def test_every_yaml_parameter_has_a_comment():
    lines = YAML.read_text().splitlines()
    start = lines.index('/**/lipfault_training:')
    for i, line in enumerate(lines[start + 2:], start + 2):
        if not line.startswith('    '):
            break
        if not line.lstrip().startswith('#'):
            assert lines[i - 1].lstrip().startswith('#'), f'{line.strip()} has no comment'


def _run_until_finished(ros_context, overrides, timeout=90.0):
    node = TrainingNode(context=ros_context, parameter_overrides=overrides)
    listener = Node('training_listener', context=ros_context)
    progress, diagnostics = [], []
    listener.create_subscription(String, f'/{NODE_NAME}/progress',
                                 lambda m: progress.append(json.loads(m.data)), 50)
    listener.create_subscription(
        DiagnosticArray, '/diagnostics',
        lambda m: diagnostics.extend(s for s in m.status if s.name.startswith(NODE_NAME)), 50)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(listener)
    deadline = time.monotonic() + timeout

    def settled() -> bool:
        if not (node.finished and progress and diagnostics):
            return False
        last = {kv.key: kv.value for kv in diagnostics[-1].values}
        return progress[-1]['state'] == last['state'] == node.state

    try:
        while time.monotonic() < deadline and not settled():
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.shutdown()
        listener.destroy_node()
        node.destroy_node()
    return node, progress, diagnostics


def test_node_trains_from_bags_and_reports_progress(ros_context, tmp_path):
    bag = write_bag(tmp_path / 'bag', duration_s=6.0)
    config = tmp_path / 'tiny.yaml'
    config.write_text(TINY)
    out = tmp_path / 'model'
    node, progress, diagnostics = _run_until_finished(ros_context, [
        Parameter(BAGS_PARAMETER, value=[str(bag)]), Parameter('out', value=str(out)),
        Parameter('config_file', value=str(config)), Parameter('progress_period', value=0.2)])
    states = [p['state'] for p in progress]
    assert states[-1] == 'done', progress[-1]
    assert 'reading' in states and ('stage1' in states or 'stage2' in states)
    assert progress[-1]['dataset']['tuples'] == 60
    assert set(progress[-1]['summary']['auroc']) == {'camera', 'wrench', 'joints'}
    assert (out / 'model.safetensors').is_file()
    assert node.result.artifact == out
    final = [d for d in diagnostics if d.message.startswith('artifact written')]
    assert final and final[-1].level == b'\x00'
    assert {kv.key for kv in final[-1].values} >= {'state', 'step', 'auroc_wrench'}


def test_node_reports_a_bag_without_a_needed_topic_as_failed(ros_context, tmp_path):
    bag = write_bag(tmp_path / 'nocam', duration_s=1.0, skip=['camera'])
    out = tmp_path / 'model'
    node, progress, diagnostics = _run_until_finished(ros_context, [
        Parameter(BAGS_PARAMETER, value=[str(bag)]), Parameter('out', value=str(out)),
        Parameter('progress_period', value=0.2)], timeout=30.0)
    assert progress[-1]['state'] == 'failed'
    assert 'nocam has no topic /camera/image_raw' in progress[-1]['error']
    assert any(d.level == b'\x02' and 'no topic /camera/image_raw' in d.message
               for d in diagnostics)
    assert not out.exists()


def test_missing_parameters_fail_with_their_names(ros_context, tmp_path):
    node, progress, _ = _run_until_finished(ros_context, [Parameter('out', value='x')],
                                            timeout=10.0)
    assert progress[-1]['state'] == 'failed'
    assert 'parameter bags names no bag' in progress[-1]['error']
