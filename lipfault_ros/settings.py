"""Settings declared once, as the fields of a frozen dataclass, and offered both as ROS parameters
and as command-line options.

A field made with :func:`param` carries its description and, where it has one, an inclusive
range or a set of choices. :mod:`lipfault_ros.ros.params` turns such a record into declared
ROS parameters; :func:`add_options` turns the same record into ``argparse`` options, so a node
parameter and the matching ``lipfault`` option cannot drift apart in name, default, range or
help. This module imports nothing from ROS: the command-line tools and the core use it without
a ROS installation.

A node or command whose setting *is* a core config's (the synchroniser's slop, the lifecycle's
``raise_k``) does not declare it again: :func:`mirror` copies the core field's default,
description, range and choices, :func:`shared_values` carries the values back into the core
config, and the core config checks its own values against the same declaration
(:func:`check_declared`). The node's record only says which core settings it offers, and under
which name.

Option spelling, derived from the field: ``start_offset`` -> ``--start-offset``; a boolean that
defaults to False is a switch (``--overwrite``), one that defaults to True is turned off by
``--no-<name>`` (``--no-restamp``). Older spellings stay accepted where a field names them in
``aliases``.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import functools
import math
import typing
from typing import Any, Iterable, Sequence, TypeVar

from lipfault_ros.errors import ConfigError

__all__ = ['add_options', 'check', 'check_declared', 'checked', 'checked_fields', 'mirror',
           'option_values', 'param', 'parameter_names', 'shared_values']

T = TypeVar('T')

#: the value types a setting may have (those a ROS parameter and an option both carry)
SCALAR_TYPES = (bool, int, float, str)


def param(default: Any, description: str, *, low: float | None = None,
          high: float | None = None, choices: Sequence[str] = (), read_only: bool = False,
          aliases: Sequence[str] = (), metavar: str | None = None) -> Any:
    """A dataclass field that is a setting (``low``/``high`` inclusive). ``aliases``: further
    option strings accepted on the command line; ``metavar``: the option's value name."""
    return dataclasses.field(default=default, metadata={
        'description': description, 'low': low, 'high': high, 'choices': tuple(choices),
        'read_only': read_only, 'aliases': tuple(aliases), 'metavar': metavar})


def mirror(config_cls: type, name: str, *, note: str = '') -> Any:
    """A field that offers the core config's setting ``name`` under another record (a node's
    parameters, a command's options): default, description, range and choices are the ones
    declared on ``config_cls`` with :func:`param`. An enum default becomes its value (a
    parameter carries a string). ``note`` is added to the description: what holds only for
    this record ("(live)")."""
    found = [f for f in dataclasses.fields(config_cls) if f.name == name]
    if not found or 'description' not in found[0].metadata:
        raise ConfigError(f'{config_cls.__name__}.{name} is not a setting declared with param()')
    f = found[0]
    default = f.default.value if isinstance(f.default, enum.Enum) else f.default
    meta = dict(f.metadata)
    if note:
        meta['description'] = f"{meta['description']} {note}"
    return dataclasses.field(default=default, metadata=meta)


def check_declared(record: Any) -> None:
    """Check every field of the dataclass instance ``record`` that is a :func:`param` setting of
    a scalar type against its type, range and choices (ConfigError naming it); an int given for
    a float becomes that float. A core config calls it in ``__post_init__``, so its values obey
    the declaration the nodes and commands offer, written once."""
    hints = _hints(type(record))
    for f in dataclasses.fields(record):
        kind = hints.get(f.name)
        if 'description' in f.metadata and kind in SCALAR_TYPES:
            object.__setattr__(record, f.name, checked(f, kind, getattr(record, f.name)))


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    """The resolved field types of a record class (resolved once: configs are built often)."""
    return typing.get_type_hints(cls)


def checked_fields(cls: type, skip: Iterable[str] = ()) -> list[tuple[dataclasses.Field, type]]:
    """(field, value type) of every field of ``cls`` but ``skip``; ConfigError for an
    unsupported type."""
    hints = _hints(cls)
    skip = set(skip)
    out = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = hints[f.name]
        if kind not in SCALAR_TYPES:
            raise ConfigError(f'parameter {f.name} has unsupported type {kind!r}')
        out.append((f, kind))
    return out


def parameter_names(cls: type) -> list[str]:
    """The setting names ``cls`` declares, in declaration order."""
    return [f.name for f, _ in checked_fields(cls)]


def check(cls: type, name: str, value: Any) -> Any:
    """``value`` for the field ``name`` of ``cls``, validated (ints widen to floats); ConfigError
    naming the setting otherwise (also for an unknown name)."""
    for f, kind in checked_fields(cls):
        if f.name == name:
            return checked(f, kind, value)
    raise ConfigError(f'{cls.__name__} has no parameter {name}')


def checked(f: dataclasses.Field, kind: type, value: Any) -> Any:
    """``value`` of the field ``f`` (of type ``kind``) validated against its type, choices and
    range."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f'parameter {f.name} must be {kind.__name__}, got {value!r}')
    if kind is float and math.isnan(value):
        raise ConfigError(f'parameter {f.name} must be a number, got NaN')
    meta = f.metadata
    if meta.get('choices') and value not in meta['choices']:
        raise ConfigError(f'parameter {f.name} must be one of {list(meta["choices"])}, '
                          f'got {value!r}')
    low, high = meta.get('low'), meta.get('high')
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = ', '.join('' if b is None else f'{b:g}' for b in (low, high))
        raise ConfigError(f'parameter {f.name} must be in [{bounds}], got {value!r}')
    return value


def shared_values(params: Any, config_cls: type, prefix: str = '') -> dict[str, Any]:
    """The values of the parameter dataclass ``params`` for every field that the core config
    dataclass ``config_cls`` has too, by name (``prefix`` + the core name: ``alarm_raise_k``
    for ``AlarmConfig.raise_k``): a node's parameters that mirror a core setting build that
    config without a hand-kept list of names."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    return {f.name[len(prefix):]: getattr(params, f.name) for f in dataclasses.fields(params)
            if f.name.startswith(prefix) and f.name[len(prefix):] in names}


def _option_type(f: dataclasses.Field, kind: type) -> Any:
    """An argparse ``type`` that parses and validates like :func:`checked` (argparse turns the
    ValueError into a usage error naming the option)."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'parameter {f.name} must be {kind.__name__}, got {text!r}') from None
        try:
            return checked(f, kind, value)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def add_options(parser: argparse.ArgumentParser, cls: type, *,
                positional: Iterable[str] = (), required: Iterable[str] = (),
                skip: Iterable[str] = (), only: Iterable[str] | None = None) -> None:
    """One option per field of ``cls`` (see the module docstring for the spelling);
    ``positional`` fields become positional arguments, ``required`` options must be given,
    ``skip`` fields are not offered (they keep their defaults); ``only``, when given, offers
    just those fields (a command that sets a few settings of a node)."""
    positional, required, skip = set(positional), set(required), set(skip)
    known = {f.name for f in dataclasses.fields(cls)}
    if only is not None:
        only = set(only)
        if only - known:
            raise ValueError(f'{cls.__name__} has no field {sorted(only - known)}')
        skip |= known - only
    for f, kind in checked_fields(cls, skip):
        meta = f.metadata
        text = meta.get('description', '').replace('%', '%%')
        if f.name in positional:
            parser.add_argument(f.name, type=_option_type(f, kind), help=text,
                                metavar=meta.get('metavar') or f.name.upper())
            continue
        flag = '--' + f.name.replace('_', '-')
        names = [flag, *meta.get('aliases', ())]
        if kind is bool:
            if f.default:
                names = ['--no-' + f.name.replace('_', '-'), *meta.get('aliases', ())]
                parser.add_argument(*names, dest=f.name, action='store_false',
                                    help=f'do not: {text}')
            else:
                parser.add_argument(*names, dest=f.name, action='store_true', help=text)
            continue
        if f.default not in ('', None) and f.name not in required:
            text += ' (default: %(default)s)'
        parser.add_argument(*names, dest=f.name, type=_option_type(f, kind),
                            default=f.default, required=f.name in required,
                            choices=meta.get('choices') or None,
                            metavar=meta.get('metavar'), help=text)


def option_values(args: argparse.Namespace, cls: type[T], **changes: Any) -> T:
    """``cls`` built from the parsed options (fields not offered keep their defaults), with
    ``changes`` on top."""
    values = {f.name: getattr(args, f.name) for f, _ in checked_fields(cls)
              if hasattr(args, f.name)}
    values.update(changes)
    return cls(**values)
