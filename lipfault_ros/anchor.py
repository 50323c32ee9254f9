"""Corrected signals anchored to the last trusted measurement.

While a wrench or joint alarm is up, the output is the model's estimate from the other sensors.
That estimate is good at following motion and poor at absolute level: a few tenths of a newton
or a hundredth of a radian off, which on a still arm is worse than simply holding the last good
value. The best of both: at the first corrected tuple the output starts at the last trusted raw
value, then follows the *changes* of the model's estimate; the offset between the two decays
with time constant ``tau_s``, so a long fault ends on the model's own estimate (an old
measurement is not evidence of the present forever).

    out(t) = estimate(t) + (held - estimate(onset)) * exp(-(t - onset) / tau_s)

A tuple is trusted when its modality was present, its own score was under threshold and no
alarm was up. Clean outputs are untouched (bit-exact pass-through). The same object serves the
live node and the offline evaluation.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from lipfault_ros.tuples import MODALITIES, Modality

__all__ = ['DEFAULT_TAU_S', 'OutputAnchor', 'trusted']

#: decay time constant (s) of the anchor offset (the node's ``anchor_tau_s``)
DEFAULT_TAU_S = 1.0

_FIELDS = {Modality.WRENCH: ('wrench',),
           Modality.JOINTS: ('joint_position', 'joint_velocity', 'joint_effort')}


@dataclasses.dataclass
class _State:
    held: tuple[np.ndarray, ...] | None = None      # last trusted raw values
    offset: tuple[np.ndarray, ...] | None = None    # held - estimate at the first corrected tuple
    onset_ns: int = 0


class OutputAnchor:
    """Per-signal-modality anchoring state (not thread-safe; one per node or evaluation)."""

    def __init__(self, tau_s: float = DEFAULT_TAU_S) -> None:
        self.tau_s = float(tau_s)
        self._state = {m: _State() for m in _FIELDS}

    def apply(self, inference: Any, trusted: Sequence[bool]) -> Any:
        """``inference`` (an :class:`~lipfault_ros.inference.Inference`) with its corrected
        wrench / joint outputs anchored; ``trusted`` (3,) in ``MODALITIES`` order."""
        changes: dict[str, np.ndarray] = {}
        for m, fields in _FIELDS.items():
            st = self._state[m]
            res = inference.results[m]
            values = tuple(np.asarray(getattr(inference, f)) for f in fields)
            if not res.corrected:
                if trusted[MODALITIES.index(m)]:
                    st.held, st.offset = tuple(v.copy() for v in values), None
                continue
            if res.missing or st.held is None or self.tau_s <= 0 or \
                    any(h.shape != v.shape for h, v in zip(st.held, values)):
                continue
            if st.offset is None:
                st.offset = tuple(h - v for h, v in zip(st.held, values))
                st.onset_ns = inference.stamp_ns
            weight = math.exp(-max(0.0, (inference.stamp_ns - st.onset_ns) / 1e9) / self.tau_s)
            for f, v, off in zip(fields, values, st.offset):
                out = v + weight * off
                changes[f] = np.where(np.isfinite(out), out, v)
        return dataclasses.replace(inference, **changes) if changes else inference

    def reset(self) -> None:
        self._state = {m: _State() for m in _FIELDS}


def trusted(inference: Any, active: Sequence[bool]) -> list[bool]:
    """Per modality, whether this tuple's raw values may anchor later corrections: present,
    under threshold on this tuple alone, and no alarm up (``active``, ``MODALITIES`` order)."""
    return [not (inference.results[m].missing or inference.results[m].fault or active[i])
            for i, m in enumerate(MODALITIES)]
