"""One JSON conversion for reports, the artifact and progress messages: strict JSON out."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import numpy as np
import pytest
import torch

from lipfault_ros.jsonable import jsonable


class _Colour(Enum):
    RED = 1


def _strict(doc) -> str:
    return json.dumps(doc, allow_nan=False)  # raises on NaN/Infinity


def test_reports_get_null_for_what_could_not_be_measured():
    doc = jsonable({'a': float('nan'), 'b': np.array([1.0, np.inf]), 'c': np.int64(3),
                    'd': np.bool_(True), 4: (np.float32(0.5), None), 'p': Path('/x'),
                    'e': _Colour.RED, 't': torch.tensor(2.5), 'n': -np.inf})
    assert doc == {'a': None, 'b': [1.0, None], 'c': 3, 'd': True, '4': [0.5, None],
                   'p': '/x', 'e': '_Colour.RED', 't': 2.5, 'n': None}
    assert type(doc['c']) is int and type(doc['d']) is bool
    _strict(doc)


def test_the_artifact_policy_keeps_infinity_as_text_that_reads_back():
    doc = jsonable({'thresholds': {'camera': np.inf, 'wrench': 1.5, 'joints': -np.inf},
                    'x': [float('nan')]}, non_finite='text')
    text = _strict(doc)
    back = json.loads(text)
    assert [float(v) for v in back['thresholds'].values()] == [np.inf, 1.5, -np.inf]
    assert back['x'] == ['nan']


@pytest.mark.parametrize('value', [True, 0, 'text', None, 1.25])
def test_plain_values_pass_unchanged(value):
    assert jsonable(value) == value and type(jsonable(value)) is type(value)
