"""Declare ROS parameters once, from a typed dataclass, and read them back into it.

A node's parameters are the fields of one frozen dataclass; each field carries its description
and, where it has one, a range or a set of choices (see :func:`lipfault_ros.settings.param`;
the same record gives the command-line options of ``lipfault``). ``declare`` turns the
fields into parameters with descriptors (so ``ros2 param describe`` explains them), ``read``
builds the dataclass from the node's current values, validating ranges and choices with a
ConfigError that names the parameter. The YAML file and the launch file only override values;
:func:`file_parameters` reads a node's values out of such a YAML file the way ROS matches its
section keys (``/**/lipfault_pipeline``, ``/arm1/lipfault_pipeline``, a bare node name).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType)

from lipfault_ros.param_files import file_parameters  # re-exported: the nodes' file reader
# re-exported: the records' field helper and checks live in the ROS-free lipfault_ros.settings
from lipfault_ros.settings import (check, checked, checked_fields, param, parameter_names,
                                   shared_values)

__all__ = ['check', 'declare', 'file_parameters', 'param', 'parameter_names', 'read',
           'shared_values']

T = TypeVar('T')

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


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
    for f, kind in checked_fields(cls):
        default = f.default
        if kind is float:
            default = float(default)
        node.declare_parameter(f.name, default, _descriptor(f, kind))


def read(node: Any, cls: type[T]) -> T:
    """The dataclass ``cls`` filled from ``node``'s parameter values (validated)."""
    values = {f.name: checked(f, kind, node.get_parameter(f.name).value)
              for f, kind in checked_fields(cls)}
    return cls(**values)
