"""Faults in a live stream: a :class:`FaultSpec` says which fault and when, a :class:`StreamFault`
applies it sample by sample (the sim and the recorder inject with it)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lipfault_ros.errors import FaultError
from lipfault_ros.faults.images import corrupt_image
from lipfault_ros.faults.registry import (PERSISTENT_IMAGE_FAULTS, ImageFault, SignalFault,
                                          check_fault, check_severity)
from lipfault_ros.faults.signals import random_channels, random_gain, scale_vector
from lipfault_ros.truth import END_OF_TIME_NS, FaultInterval
from lipfault_ros.tuples import MODALITIES, Modality

__all__ = ['FaultSpec', 'StreamFault']


@dataclass(frozen=True)
class FaultSpec:
    """One fault to inject into a stream: ``kind`` on ``modality`` with ``severity`` in (0, 1],
    active from ``start_s`` for ``duration_s`` seconds (seconds since the stream started;
    ``duration_s`` may be ``inf``)."""

    modality: Modality
    kind: str
    severity: float
    start_s: float
    duration_s: float

    def __post_init__(self) -> None:
        try:
            modality = Modality(self.modality)
        except ValueError:
            raise FaultError(f'unknown fault modality {self.modality!r}; valid: '
                             f'{", ".join(m.value for m in MODALITIES)}') from None
        object.__setattr__(self, 'modality', modality)
        object.__setattr__(self, 'kind', check_fault(modality, self.kind))
        object.__setattr__(self, 'severity', check_severity(self.severity))
        for name in ('start_s', 'duration_s'):
            value = float(getattr(self, name))
            if math.isnan(value):
                raise FaultError(f'fault {name} is NaN')
            object.__setattr__(self, name, value)
        if self.start_s < 0 or math.isinf(self.start_s):
            raise FaultError(f'fault start_s must be a finite number >= 0, got {self.start_s}')
        if self.duration_s <= 0:
            raise FaultError(f'fault duration_s must be > 0, got {self.duration_s}')

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Parse ``modality:type:severity:start_s:duration_s``, e.g. ``camera:blur:0.5:10:5``."""
        parts = str(text).strip().split(':')
        if len(parts) != 5:
            raise FaultError(f'fault spec {text!r} must be modality:type:severity:start_s:'
                             f'duration_s (5 fields, got {len(parts)})')
        modality, kind, severity, start, duration = parts
        values = []
        for name, raw in (('severity', severity), ('start_s', start), ('duration_s', duration)):
            try:
                values.append(float(raw))
            except ValueError:
                raise FaultError(f'fault spec {text!r}: {name} {raw!r} is not a number') from None
        return cls(modality, kind, *values)

    def __str__(self) -> str:
        return (f'{self.modality.value}:{self.kind}:{self.severity:g}:{self.start_s:g}:'
                f'{self.duration_s:g}')

    def interval(self, origin_ns: int) -> FaultInterval:
        """The ground-truth interval in stamps, for a stream whose time zero is ``origin_ns``."""
        start = int(origin_ns) + int(round(self.start_s * 1e9))
        end = END_OF_TIME_NS if math.isinf(self.duration_s) else \
            int(origin_ns) + int(round(self.end_s * 1e9))
        return FaultInterval(self.modality, self.kind, self.severity, start, end)


class StreamFault:
    """Stateful injector of one :class:`FaultSpec` into a live stream of samples.

    Call :meth:`apply_image` / :meth:`apply_values` for every sample of the spec's modality, in
    time order, with ``t_s`` the seconds since the stream started. Lasting faults keep their
    geometry (channels, offsets, spots) for the whole interval; ``drift`` grows with the time
    since onset, ``stuck`` holds the last value before onset, ``frozen_frame`` repeats the last
    frame before onset, and ``dropout`` returns ``None`` ("drop the message") with a probability
    that reaches 1 at severity 1 (a silent topic).
    """

    def __init__(self, spec: FaultSpec, rng: np.random.Generator, *,
                 scale: np.ndarray | float = 1.0) -> None:
        self.spec = spec
        self._rng = rng
        self._scale = scale
        self._last: np.ndarray | None = None      # the latest sample seen (for stuck / frozen)
        self._state: dict | None = None           # per-activation parameters

    def active(self, t_s: float) -> bool:
        return self.spec.start_s <= t_s < self.spec.end_s

    def _activate(self, c: int) -> dict:
        rng, s = self._rng, self.spec.severity
        state: dict = {'seed': int(rng.integers(0, 2 ** 63 - 1))}
        if c:
            sc = scale_vector(self._scale, c)
            ch = random_channels(rng, c)
            state.update(sc=sc, ch=ch, sign=rng.choice([-1.0, 1.0], ch.size),
                         gain=random_gain(rng, s),
                         stuck_ch=np.sort(rng.choice(c, max(1, math.ceil(s * c)),
                                                     replace=False)))
        return state

    def apply_image(self, t_s: float, image: np.ndarray) -> np.ndarray:
        """The frame as the faulty camera delivers it at ``t_s``."""
        if not self.active(t_s):
            self._state = None
            self._last = image
            return image
        if self._state is None:
            self._state = self._activate(0)
            self._state['frozen'] = self._last if self._last is not None else image.copy()
        kind = ImageFault(self.spec.kind)
        if kind is ImageFault.FROZEN_FRAME:
            return self._state['frozen'].copy()
        rng = np.random.default_rng(self._state['seed']) if kind in PERSISTENT_IMAGE_FAULTS \
            else self._rng
        return corrupt_image(image, kind.value, self.spec.severity, rng)

    def apply_values(self, t_s: float, values: np.ndarray) -> np.ndarray | None:
        """The (C,) reading as the faulty sensor delivers it at ``t_s``, or ``None`` when the
        message is lost."""
        values = np.asarray(values, np.float64)
        if not self.active(t_s):
            self._state = None
            self._last = values
            return values
        c = values.shape[0]
        if self._state is None:
            self._state = self._activate(c)
            self._state['held'] = self._last if self._last is not None else values.copy()
            self._state['v0'] = self._state['held'].copy()
        st, s, rng = self._state, self.spec.severity, self._rng
        sc, ch = st['sc'], st['ch']
        out = values.copy()
        kind = SignalFault(self.spec.kind)
        if kind is SignalFault.NOISE:
            out += rng.normal(0.0, 1.0, c) * (1.5 * s) * sc
        elif kind is SignalFault.BIAS:
            out[ch] += st['sign'] * (0.5 + 2.5 * s) * sc[ch]
        elif kind is SignalFault.DRIFT:
            out[ch] += st['sign'] * s * sc[ch] * (t_s - self.spec.start_s)
        elif kind is SignalFault.SPIKE:
            if rng.random() < 0.02 + 0.2 * s:
                k = int(rng.integers(0, c))
                out[k] += rng.choice([-1.0, 1.0]) * (3.0 + 7.0 * s) * sc[k]
        elif kind is SignalFault.GAIN:
            out[ch] *= st['gain']
        elif kind is SignalFault.STUCK:
            out[st['stuck_ch']] = st['held'][st['stuck_ch']]
        elif kind is SignalFault.SATURATION:
            limit = (0.1 + 2.4 * (1 - s)) * sc
            out = np.clip(out, st['v0'] - limit, st['v0'] + limit)
        elif kind is SignalFault.DROPOUT:
            if rng.random() < 0.3 + 0.7 * s:
                return None
        elif kind is SignalFault.SIGN_FLIP:
            out[ch] *= -1.0
        else:  # CUTOUT
            out[:] = 0.0
        return out
