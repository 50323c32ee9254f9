"""config/pipeline.yaml's lipfault_pipeline section equals the node's declared parameters."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from rclpy.parameter import Parameter

from lipfault_ros.errors import ConfigError
from lipfault_ros.nodes.pipeline import PipelineNode, PipelineParams
from lipfault_ros.ros import params

YAML = Path(__file__).resolve().parents[2] / 'config' / 'pipeline.yaml'


def section() -> dict:
    return params.file_parameters(yaml.safe_load(YAML.read_text()), 'lipfault_pipeline')


def test_yaml_keys_equal_declared_parameters_and_defaults(ros_context):
    node = PipelineNode(context=ros_context,
                        parameter_overrides=[Parameter('autostart', value=False)])
    try:
        # rclpy adds use_sim_time (and start_type_description_service on Jazzy and later)
        builtin = {'use_sim_time', 'start_type_description_service'}
        declared = {name for name in node.list_parameters([], 0).names if name not in builtin}
    finally:
        node.destroy_node()
    assert set(section()) == declared == set(params.parameter_names(PipelineParams))
    defaults = {f.name: f.default for f in dataclasses.fields(PipelineParams)}
    assert section() == defaults  # the file holds the defaults, each once


def test_every_yaml_parameter_has_a_comment():
    lines = YAML.read_text().splitlines()
    start = lines.index('/**/lipfault_pipeline:')
    for i, line in enumerate(lines[start + 2:], start + 2):
        if not line.startswith('    '):
            break
        if not line.lstrip().startswith('#'):
            assert lines[i - 1].lstrip().startswith('#'), f'{line.strip()} has no comment'


def test_descriptors_carry_description_and_range(ros_context):
    node = PipelineNode(context=ros_context,
                        parameter_overrides=[Parameter('autostart', value=False)])
    try:
        (slop,) = node.describe_parameters(['slop'])
        assert 'stamp difference' in slop.description
        assert slop.floating_point_range[0].to_value == 1.0
        (device,) = node.describe_parameters(['device'])
        assert 'auto, cpu, cuda' in device.description
        assert params.read(node, PipelineParams) == PipelineParams(autostart=False)
    finally:
        node.destroy_node()


def test_read_refuses_a_value_outside_the_choices(ros_context):
    node = PipelineNode(context=ros_context, parameter_overrides=[
        Parameter('autostart', value=False), Parameter('device', value='tpu')])
    try:
        with pytest.raises(ConfigError, match=r"parameter device must be one of \['auto'"):
            params.read(node, PipelineParams)
    finally:
        node.destroy_node()


def test_scene_settings_are_checked_when_set_and_empty_turns_the_reference_off():
    from lipfault_ros.nodes.pipeline_params import apply_changes

    base = PipelineParams()
    assert base.scene_config().modalities == ('camera',)
    with pytest.raises(ConfigError, match='lidar'):
        apply_changes(base, {'scene_modalities': 'camera,lidar'}, active=False)
    with pytest.raises(ConfigError, match='warmup'):
        apply_changes(base, {'scene_warmup': 500}, active=False)  # longer than the window
    both = apply_changes(base, {'scene_modalities': ' camera, joints '}, active=False)
    assert both.scene_config().modalities == ('camera', 'joints')
    off = apply_changes(base, {'scene_modalities': ''}, active=False)
    assert off.scene_config().modalities == ()
    # the same list rule as lipfault eval --scene-modalities: 'none' is none there and here
    none = apply_changes(base, {'scene_modalities': 'none'}, active=False)
    assert none.scene_config().modalities == ()


def test_the_hold_switches_live():
    from lipfault_ros.nodes.pipeline_params import apply_changes

    base = PipelineParams()
    assert base.alarm_config().hold is True
    assert apply_changes(base, {'alarm_hold': False}, active=True).alarm_config().hold is False
