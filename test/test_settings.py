"""Command-line options generated from a settings record: names, defaults, switches, aliases
and checks follow the fields, and the two commands whose settings are also node parameters
(``lipfault replay``, ``lipfault train``) offer exactly their record's fields."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from lipfault_ros import settings
from lipfault_ros.nodes.replay import ReplayParams
from lipfault_ros.nodes.replay.cli import add_arguments as replay_arguments
from lipfault_ros.train_cli import TrainRun
from lipfault_ros.train_cli import add_arguments as train_arguments


@dataclasses.dataclass(frozen=True)
class Example:
    source: str = settings.param('', 'where from')
    rate: float = settings.param(1.0, 'speed', low=0.5, high=2.0)
    count: int = settings.param(3, 'how many', low=0, high=10, aliases=('-n',))
    mode: str = settings.param('fast', 'how', choices=('fast', 'slow'))
    verbose: bool = settings.param(False, 'say more')
    restamp: bool = settings.param(True, 'move stamps')


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='example', exit_on_error=False)
    settings.add_options(p, Example, positional=('source',))
    return p


def test_defaults_come_from_the_record_and_options_override_them():
    assert settings.option_values(parser().parse_args(['bag']), Example) == Example(source='bag')
    got = settings.option_values(parser().parse_args(
        ['bag', '--rate', '2', '-n', '7', '--mode', 'slow', '--verbose', '--no-restamp']),
        Example)
    assert got == Example('bag', 2.0, 7, 'slow', True, False)
    assert settings.option_values(parser().parse_args(['bag']), Example, count=0).count == 0


@pytest.mark.parametrize('argv, says', [
    (['bag', '--rate', '3'], 'rate must be in [0.5, 2.0]'),
    (['bag', '--count', 'x'], "count must be int, got 'x'"),
    (['bag', '--mode', 'medium'], "mode must be one of ['fast', 'slow'], got 'medium'"),
])
def test_a_value_outside_the_record_is_a_usage_error_naming_it(argv, says, capsys):
    p = parser()
    p.exit_on_error = True
    with pytest.raises(SystemExit) as exc:
        p.parse_args(argv)
    assert exc.value.code == 2
    assert says in capsys.readouterr().err


def test_help_shows_descriptions_and_defaults():
    text = parser().format_help()
    assert '--count COUNT, -n COUNT' in text and 'how many (default: 3)' in text
    assert '--no-restamp' in text and '--restamp' not in text.replace('--no-restamp', '')


@pytest.mark.parametrize('record, add, argv, required', [
    (ReplayParams, replay_arguments, ['some.bag', '--model', 'm'], {'bag': 'some.bag',
                                                                     'model': 'm'}),
    (TrainRun, train_arguments, ['a.bag', '--out', 'model'], {'out': 'model'}),
])
def test_each_field_of_a_node_record_is_an_option_of_its_command(record, add, argv, required):
    p = argparse.ArgumentParser()
    add(p)
    args = p.parse_args(argv)
    assert {f.name for f in dataclasses.fields(record)} <= set(vars(args))  # each one offered
    assert settings.option_values(args, record) == record(**required)


def test_the_old_spellings_still_work():
    p = argparse.ArgumentParser()
    replay_arguments(p)
    got = settings.option_values(p.parse_args(
        ['b', '--model', 'm', '--wait', '3', '--clean', 'c']), ReplayParams)
    assert (got.wait_for_pipeline, got.clean_bag) == (3.0, 'c')
    p = argparse.ArgumentParser()
    train_arguments(p)
    got = settings.option_values(p.parse_args(
        ['b', '--out', 'o', '--config', 'f.yaml', '--cache', 'd']), TrainRun)
    assert (got.config_file, got.cache_dir) == ('f.yaml', 'd')


def test_only_offers_the_named_fields_and_refuses_unknown_ones():
    p = argparse.ArgumentParser(prog='example', exit_on_error=False)
    settings.add_options(p, Example, only=('rate', 'mode'))
    assert vars(p.parse_args(['--rate', '2'])) == {'rate': 2.0, 'mode': 'fast'}
    with pytest.raises(SystemExit):  # an unrecognised option: argparse's usage error
        p.parse_args(['--count', '4'])
    with pytest.raises(ValueError, match="no field \\['speed'\\]"):
        settings.add_options(argparse.ArgumentParser(), Example, only=('speed',))


def test_the_demo_offers_the_pipeline_device_and_the_simulator_seed():
    from lipfault_ros.nodes.demo import add_arguments as demo_arguments
    from lipfault_ros.nodes.pipeline_params import PipelineParams
    from lipfault_ros.nodes.sim import SimNodeParams

    p = argparse.ArgumentParser(prog='demo', exit_on_error=False)
    demo_arguments(p)
    args = p.parse_args([])
    assert (args.device, args.seed) == (PipelineParams.device, SimNodeParams.seed)
    assert p.parse_args(['--device', 'cpu', '--seed', '5']).seed == 5
    with pytest.raises(argparse.ArgumentError):
        p.parse_args(['--device', 'tpu'])
