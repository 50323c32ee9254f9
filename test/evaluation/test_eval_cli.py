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


def test_an_unknown_scene_modality_is_a_clear_error():
    with pytest.raises(InputError, match='--scene-modalities'):
        scene_from_args(_parse('--scene-modalities', 'lidar'))
