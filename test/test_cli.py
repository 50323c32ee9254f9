"""The ``lipfault`` dispatcher: every subcommand has a module that defines its arguments."""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from lipfault_ros.cli import COMMANDS, main, parser_for


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


def _readme_command_lines() -> list[list[str]]:
    """Every ``lipfault ...`` (or ``... -m lipfault_ros.cli ...``, as under torchrun) command
    in the README's code, as arguments; usage lines (``[optional]`` parts, ``...``) are left out."""
    text = (Path(__file__).resolve().parents[1] / 'README.md').read_text()
    found = []
    for line in text.replace('\\\n', ' ').splitlines():
        match = re.match(r'\s*lipfault\s+([a-z].*)$', line) or \
            re.search(r'\s-m\s+lipfault_ros\.cli\s+([a-z].*)$', line)
        if match and '[' not in match.group(1) and '...' not in match.group(1):
            found.append(shlex.split(match.group(1), comments=True))
    return found


def test_every_command_line_in_the_readme_parses():
    """The README shows options that exist: a renamed or removed option fails here, not in a
    user's terminal."""
    lines = _readme_command_lines()
    assert {'train', 'replay', 'eval', 'record'} <= {a[0] for a in lines}, lines
    for argv in lines:
        try:
            args = parser_for(argv).parse_args(argv)
        except SystemExit as exc:
            raise AssertionError(f'README: lipfault {shlex.join(argv)} does not parse') from exc
        assert args.command == argv[0]
