"""config/pipeline.yaml mirrors every node's parameter declarations: same names, same order,
same defaults. A parameter added to a node without a commented line here fails this test."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from lipfault_ros.nodes.pipeline import PipelineParams
from lipfault_ros.nodes.replay import ReplayParams
from lipfault_ros.nodes.sim import SimNodeParams
from lipfault_ros.nodes.training import BAGS_PARAMETER, TrainingParams
from lipfault_ros.ros.params import file_parameters, parameter_names

CONFIG = Path(__file__).resolve().parents[1] / 'config' / 'pipeline.yaml'
SECTIONS = {'lipfault_pipeline': PipelineParams, 'lipfault_sim': SimNodeParams,
            'lipfault_training': TrainingParams, 'lipfault_replay': ReplayParams}


def test_the_file_has_a_section_per_node_and_nothing_else():
    # keyed /**/<node>: a section applies in every namespace, not only the root one
    assert set(yaml.safe_load(CONFIG.read_text())) == {f'/**/{node}' for node in SECTIONS}


@pytest.mark.parametrize('node', sorted(SECTIONS))
def test_section_keys_and_defaults_equal_the_declarations(node):
    section = file_parameters(yaml.safe_load(CONFIG.read_text()), node)
    params = SECTIONS[node]
    defaults = {f.name: f.default for f in dataclasses.fields(params)}
    names = parameter_names(params)
    if params is TrainingParams:  # the string-array parameter is declared beside the dataclass
        names = [BAGS_PARAMETER] + names
        defaults[BAGS_PARAMETER] = ['']
    assert list(section) == names
    for name, value in section.items():
        expected = defaults[name]
        if isinstance(expected, tuple):
            expected = list(expected)
        assert value == expected, f'{node}.{name}: yaml {value!r} != declared {expected!r}'


@pytest.mark.parametrize('node', sorted(SECTIONS))
def test_every_parameter_line_has_a_comment_above_it(node):
    lines = CONFIG.read_text().splitlines()
    start = lines.index(f'/**/{node}:')
    for i in range(start + 2, len(lines)):
        line = lines[i]
        if line and not line.startswith(' '):
            break
        if line.startswith('    ') and not line.strip().startswith('#') and ':' in line:
            assert lines[i - 1].strip().startswith('#'), f'{node}: no comment above {line!r}'
