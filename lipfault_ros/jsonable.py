"""What ``json.dumps`` can write as standard JSON: one conversion for every file and message.

Reports, the artifact's ``config.json`` and the training node's progress messages hold NumPy
scalars and arrays, paths and non-finite floats. Python's ``json`` writes NaN and Infinity,
which are not JSON (a browser, ``jq`` or a C++ parser refuse the file), and fails on NumPy
types; so every writer converts through :func:`jsonable` first, under one of two policies for
the non-finite numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

__all__ = ['jsonable']


def jsonable(value: Any, *, non_finite: Literal['null', 'text'] = 'null') -> Any:
    """A copy of ``value`` made of dicts (string keys), lists, str, int, float, bool and None.

    NaN and +-Inf become None with ``non_finite='null'`` (a figure that could not be measured:
    a report's AUROC without positives), or the text ``'nan'``, ``'inf'``, ``'-inf'`` with
    ``'text'`` (the artifact: an uncalibrated threshold is +inf and must read back as +inf
    through ``float()``). NumPy and torch scalars become Python numbers, arrays lists; paths,
    enums and anything else their text."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, non_finite=non_finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, non_finite=non_finite) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), non_finite=non_finite)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isfinite(v):
            return v
        return None if non_finite == 'null' else str(v)
    if value is None or isinstance(value, str):
        return value
    if hasattr(value, 'item') and getattr(value, 'ndim', None) == 0:  # a 0-d torch tensor
        return jsonable(value.item(), non_finite=non_finite)
    return str(value)
