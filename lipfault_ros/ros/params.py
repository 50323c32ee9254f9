"""Declare ROS parameters once, from a typed dataclass, and read them back into it.

A node's parameters are the fields of one frozen dataclass; each field carries its description
and, where it has one, a range or a set of choices (see :func:`param`). ``declare`` turns the
fields into parameters with descriptors (so ``ros2 param describe`` explains them), ``read``
builds the dataclass from the node's current values, validating ranges and choices with a
ConfigError that names the parameter. The YAML file and the launch file only override values;
:func:`file_parameters` reads a node's values out of such a YAML file the way ROS matches its
section keys (``/**/lipfault_pipeline``, ``/arm1/lipfault_pipeline``, a bare node name).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Sequence, TypeVar

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType)

from lipfault_ros.errors import ConfigError
from lipfault_ros.param_files import file_parameters  # re-exported: the nodes' file reader

__all__ = ['check', 'declare', 'file_parameters', 'param', 'parameter_names', 'read',
           'shared_values']

T = TypeVar('T')

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


def param(default: Any, description: str, *, low: float | None = None,
          high: float | None = None, choices: Sequence[str] = (),
          read_only: bool = False) -> Any:
    """A dataclass field that is also a ROS parameter (``low``/``high`` inclusive)."""
    return dataclasses.field(default=default, metadata={
        'description': description, 'low': low, 'high': high, 'choices': tuple(choices),
        'read_only': read_only})


def _fields(cls: type) -> list[tuple[dataclasses.Field, type]]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if kind not in _TYPES:
            raise ConfigError(f'parameter {f.name} has unsupported type {kind!r}')
        out.append((f, kind))
    return out


def parameter_names(cls: type) -> list[str]:
    """The parameter names ``cls`` declares, in declaration order."""
    return [f.name for f, _ in _fields(cls)]


def _descriptor(f: dataclasses.Field, kind: type) -> ParameterDescriptor:
    meta = f.metadata
    text = meta.get('description', '')
    if meta.get('choices'):
        text += f" (one of: {', '.join(meta['choices'])})"
    d = ParameterDescriptor(name=f.name, type=_TYPES[kind], description=text,
                            read_only=bool(meta.get('read_only', False)))
    low, high = meta.get('low'), meta.get('high')
    if low is not None and high is not None:
        if kind is int:
            d.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
        elif kind is float:
            d.floating_point_range = [FloatingPointRange(from_value=float(low),
                                                         to_value=float(high), step=0.0)]
    return d


def declare(node: Any, cls: type) -> None:
    """Declare every field of ``cls`` on ``node`` with its default and descriptor."""
    for f, kind in _fields(cls):
        default = f.default
        if kind is float:
            default = float(default)
        node.declare_parameter(f.name, default, _descriptor(f, kind))


def check(cls: type, name: str, value: Any) -> Any:
    """``value`` for the field ``name`` of ``cls``, validated as :func:`read` does (ints widen
    to floats); ConfigError naming the parameter otherwise (also for an unknown name)."""
    for f, kind in _fields(cls):
        if f.name == name:
            return _checked(f, kind, value)
    raise ConfigError(f'{cls.__name__} has no parameter {name}')


def _checked(f: dataclasses.Field, kind: type, value: Any) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f'parameter {f.name} must be {kind.__name__}, got {value!r}')
    meta = f.metadata
    if meta.get('choices') and value not in meta['choices']:
        raise ConfigError(f'parameter {f.name} must be one of {list(meta["choices"])}, '
                          f'got {value!r}')
    low, high = meta.get('low'), meta.get('high')
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f'parameter {f.name} must be in [{low}, {high}], got {value!r}')
    return value


def read(node: Any, cls: type[T]) -> T:
    """The dataclass ``cls`` filled from ``node``'s parameter values (validated)."""
    values = {f.name: _checked(f, kind, node.get_parameter(f.name).value)
              for f, kind in _fields(cls)}
    return cls(**values)


def shared_values(params: Any, config_cls: type) -> dict[str, Any]:
    """The values of the parameter dataclass ``params`` for every field that the core config
    dataclass ``config_cls`` has too, by name: a node's parameters that mirror a core setting
    (and take its default from there) build that config without a hand-kept list of names."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)
            if f.name in names}
