"""Node parameters that mirror a core setting: the default is the core config's, and the config
the node builds carries every mirrored value, so a setting is written (and changed) once."""

from __future__ import annotations

import dataclasses
import enum

import pytest

from lipfault_ros.nodes.pipeline_params import PipelineParams
from lipfault_ros.nodes.sim import SimNodeParams
from lipfault_ros.ros.params import shared_values
from lipfault_ros.sim.config import SimConfig
from lipfault_ros.sync import SyncConfig

PAIRS = [(PipelineParams, SyncConfig, lambda p: p.sync_config(32, 32)),
         (SimNodeParams, SimConfig, lambda p: p.sim_config())]


def _plain(value):
    return value.value if isinstance(value, enum.Enum) else value


def _changed(value):
    """Another valid value of the same type, for the settings the pairs share."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 1.5 if value else 0.001  # within every range the configs check
    return value


@pytest.mark.parametrize('params_cls, config_cls, build', PAIRS,
                         ids=['pipeline-sync', 'sim-simulation'])
def test_mirrored_parameters_take_the_core_default_and_reach_the_core_config(
        params_cls, config_cls, build):
    params = params_cls()
    shared = shared_values(params, config_cls)
    assert len(shared) >= 10  # the mirror is not empty by a renaming slip
    defaults = config_cls()
    for name, value in shared.items():
        assert value == _plain(getattr(defaults, name)), name
    # every mirrored value, changed, arrives in the built config
    changes = {n: _changed(v) for n, v in shared.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and n != 'seed'}
    built = build(dataclasses.replace(params, **changes))
    for name, value in changes.items():
        assert _plain(getattr(built, name)) == value, name


def test_shared_values_are_the_fields_both_have():
    @dataclasses.dataclass
    class Core:
        a: int = 1
        b: str = 'x'

    @dataclasses.dataclass
    class Node:
        a: int = 5
        c: float = 2.0

    assert shared_values(Node(), Core) == {'a': 5}
