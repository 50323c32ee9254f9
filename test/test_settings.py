"""Command-line options generated from a settings record: names, defaults, switches, aliases
and checks follow the fields, and the two commands whose settings are also node parameters
(``lipfault replay``, ``lipfault train``) offer exactly their record's fields."""

from __future__ import annotations

import argparse
import dataclasses
import enum

import pytest

from lipfault_ros import settings
from lipfault_ros.errors import ConfigError
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
    (['bag', '--rate', '3'], 'rate must be in [0.5, 2]'),
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


class Colour(str, enum.Enum):
    RED = 'red'
    BLUE = 'blue'


@dataclasses.dataclass(frozen=True)
class Core:
    """A core config that checks its own values against its declaration."""

    gain: float = settings.param(1.0, 'how strong', low=0.0, high=5.0)
    steps: int = settings.param(2, 'how many', low=1, high=9)
    colour: Colour = settings.param(Colour.RED, 'which', choices=('red', 'blue'))
    plain: tuple = (1, 2)  # not a setting: not checked, not mirrored

    def __post_init__(self) -> None:
        settings.check_declared(self)


@dataclasses.dataclass(frozen=True)
class Offered:
    """A node's record that offers two of Core's settings, one under a prefix."""

    gain: float = settings.mirror(Core, 'gain', note='(live)')
    core_steps: int = settings.mirror(Core, 'steps')
    colour: str = settings.mirror(Core, 'colour')


def test_a_mirrored_setting_is_the_core_declaration_and_its_values_go_back():
    fields = {f.name: f for f in dataclasses.fields(Offered)}
    assert Offered() == Offered(1.0, 2, 'red')  # the enum default as its value
    assert fields['gain'].metadata['description'] == 'how strong (live)'
    assert (fields['core_steps'].metadata['low'], fields['core_steps'].metadata['high']) == (1, 9)
    assert fields['colour'].metadata['choices'] == ('red', 'blue')
    offered = Offered(gain=2.5, core_steps=7)
    assert settings.shared_values(offered, Core) == {'gain': 2.5, 'colour': 'red'}
    assert settings.shared_values(offered, Core, 'core_') == {'steps': 7}
    # the range is checked where it is declared, whoever builds the core config
    with pytest.raises(ConfigError, match=r'parameter gain must be in \[0, 5\]'):
        settings.check(Offered, 'gain', 6.0)
    with pytest.raises(ConfigError, match=r'parameter steps must be in \[1, 9\]'):
        Core(steps=0)
    with pytest.raises(ConfigError, match='parameter gain must be a number, got NaN'):
        Core(gain=float('nan'))
    assert Core(gain=3).gain == 3.0 and isinstance(Core(gain=3).gain, float)
    with pytest.raises(ConfigError, match='plain is not a setting declared'):
        settings.mirror(Core, 'plain')
