"""The ``lipfault`` dispatcher: every subcommand has a module that defines its arguments."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from lipfault_ros.cli import COMMANDS, main


@pytest.mark.parametrize('name', sorted(COMMANDS))
def test_every_subcommand_builds_its_parser_and_prints_its_help(name, capsys):
    # add_arguments runs for real: a duplicate option or a bad default fails here
    module = importlib.import_module(COMMANDS[name][0])
    assert callable(module.main)
    with pytest.raises(SystemExit) as info:
        main([name, '--help'])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f'usage: lipfault {name}') and 'options:' in out, out


def test_unknown_subcommand_is_a_usage_error():
    with pytest.raises(SystemExit) as info:
        main(['no-such-command'])
    assert info.value.code == 2


def test_help_lists_subcommands():
    out = subprocess.run([sys.executable, '-m', 'lipfault_ros.cli', '--help'],
                         capture_output=True, text=True, check=True).stdout
    for name in COMMANDS:
        assert name in out
