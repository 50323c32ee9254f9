"""``lipfault eval``'s scene options become the SceneConfig every detector is judged with."""

from __future__ import annotations

import argparse

import pytest

from lipfault_ros.errors import InputError
from lipfault_ros.evaluation.cli import add_arguments, scene_from_args


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(['bag', '--model', 'm', '--out', 'o', *argv])


def test_the_background_is_on_by_default_and_off_on_request():
    on = scene_from_args(_parse())
    assert on.background and on.modalities == ('camera',)
    assert on.background_config() is not None
    off = scene_from_args(_parse('--no-camera-background', '--scene-modalities', 'none'))
    assert not off.background and off.background_config() is None and off.modalities == ()
    assert off.as_dict()['background'] is False
    assert not scene_from_args(_parse('--no-background')).background  # the field's own name


def test_the_lifecycle_options_build_the_alarm_config_and_refuse_what_it_refuses():
    from lipfault_ros.alarm import AlarmConfig
    from lipfault_ros.evaluation.cli import alarm_from_args

    assert alarm_from_args(_parse()) == AlarmConfig()
    got = alarm_from_args(_parse('--raise-k', '2', '--raise-n', '4', '--clear-n', '7',
                                 '--latch', '--no-hold'))
    assert got == AlarmConfig(raise_k=2, raise_n=4, clear_n=7, latch=True, hold=False)
    with pytest.raises(InputError, match='raise_k must be in'):
        alarm_from_args(_parse('--raise-k', '6', '--raise-n', '5'))
    with pytest.raises(SystemExit):  # outside the declared range: a usage error
        _parse('--raise-n', '0')


def test_an_unknown_scene_modality_is_a_clear_error():
    with pytest.raises(InputError, match='--scene-modalities'):
        scene_from_args(_parse('--scene-modalities', 'lidar'))


def test_the_threshold_offsets_are_the_nodes_and_refuse_what_the_node_refuses():
    from lipfault_ros.errors import ConfigError
    from lipfault_ros.evaluation.cli import offsets_from_args
    from lipfault_ros.nodes.pipeline_params import PipelineParams
    from lipfault_ros.ros.params import check

    assert offsets_from_args(_parse()) == (0.0, 0.0, 0.0)
    assert offsets_from_args(_parse('--threshold-offset', '1', '-0.5', '2')) == (1.0, -0.5, 2.0)
    with pytest.raises(InputError, match=r'--threshold-offset: .*wrench.*\[-100, 100\]'):
        offsets_from_args(_parse('--threshold-offset', '0', '150', '0'))
    with pytest.raises(InputError, match='--threshold-offset'):
        offsets_from_args(_parse('--threshold-offset', 'nan', '0', '0'))
    # the node's parameter has the same bounds: 150 is refused there too, 100 is not
    with pytest.raises(ConfigError, match=r'threshold_offset_wrench must be in \[-100, 100\]'):
        check(PipelineParams, 'threshold_offset_wrench', 150.0)
    assert check(PipelineParams, 'threshold_offset_wrench', 100.0) == 100.0
    assert PipelineParams(threshold_offset_joints=-2.0).threshold_offsets == (0.0, 0.0, -2.0)
