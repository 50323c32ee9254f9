"""One tuple's checked inputs as the engine holds them between checking and the forward."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lipfault_ros.errors import InputError

__all__ = ['OneInputs', 'checked_evidence']


class OneInputs(NamedTuple):
    """One tuple's checked inputs (see :meth:`~lipfault_ros.inference.Engine.infer`)."""

    missing: np.ndarray          # (1, 3) bool
    image: np.ndarray | None     # the input frame (None when missing)
    in_hw: tuple[int, int]       # the size outputs are given at
    small: np.ndarray            # (S, S, 3) uint8 at the model's size
    wrench: np.ndarray           # (T_w, 6)
    joints: np.ndarray           # (T_j, J, 3)


def checked_evidence(evidence: np.ndarray | None) -> np.ndarray | None:
    """(3,) float evidence, or None when there is none (None, or all NaN)."""
    if evidence is None:
        return None
    ev = np.asarray(evidence, np.float64).reshape(-1)
    if ev.shape != (3,):
        raise InputError(f'evidence must be 3 numbers, got {evidence!r}')
    return None if np.isnan(ev).all() else ev
