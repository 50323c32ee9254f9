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
