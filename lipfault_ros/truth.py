"""Fault ground truth: which fault was active on which modality, when.

The simulated robot publishes the truth on ``~/fault_truth`` (``/lipfault_sim/fault_truth``) as a
``diagnostic_msgs/DiagnosticArray`` at 10 Hz and on every change, and the recorder writes the same
messages into bags, so evaluation can score detections against it. This module is the ROS-free
half: it turns intervals into status fields (name, level, message, values) and back, and labels
sample stamps. A status per modality, in ``MODALITIES`` order: ``level`` 2 (ERROR) while a fault is
active, else 0; ``message`` the fault kind or ``'ok'``; values ``fault`` (kind or ``'none'``),
``severity``, ``start_ns``, ``end_ns`` (empty strings when no fault is active).

All times are integer nanoseconds on the stamps' clock; an interval covers
``start_ns <= t < end_ns``; an open-ended fault ends at :data:`END_OF_TIME_NS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from lipfault_ros import topics
from lipfault_ros.errors import FaultError
from lipfault_ros.tuples import MODALITIES, Modality

__all__ = [
    'END_OF_TIME_NS',
    'FaultInterval',
    'LEVEL_FAULT',
    'LEVEL_OK',
    'TRUTH_TOPIC',
    'intervals_from_statuses',
    'kinds_at',
    'labels_at',
    'truth_status_fields',
]

#: Topic the sim publishes the truth on and the recorder writes it to (re-exported).
TRUTH_TOPIC = topics.TRUTH_TOPIC
#: End stamp of a fault that never ends (int64 max).
END_OF_TIME_NS = 2 ** 63 - 1
#: diagnostic_msgs/DiagnosticStatus levels used by the truth.
LEVEL_OK = 0
LEVEL_FAULT = 2


@dataclass(frozen=True)
class FaultInterval:
    """One injected fault: ``kind`` on ``modality`` with ``severity`` in (0, 1], active for
    stamps ``start_ns <= t < end_ns`` (int nanoseconds)."""

    modality: Modality
    kind: str
    severity: float
    start_ns: int
    end_ns: int

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, 'modality', Modality(self.modality))
        except ValueError:
            raise FaultError(f'unknown fault modality {self.modality!r}') from None
        object.__setattr__(self, 'start_ns', int(self.start_ns))
        object.__setattr__(self, 'end_ns', int(self.end_ns))
        object.__setattr__(self, 'severity', float(self.severity))
        if self.end_ns <= self.start_ns:
            raise FaultError(f'fault interval {self.kind} on {self.modality.value} ends '
                             f'({self.end_ns}) before it starts ({self.start_ns})')

    def active(self, t_ns: int) -> bool:
        return self.start_ns <= t_ns < self.end_ns


def _active_at(intervals: Iterable[FaultInterval], modality: Modality,
               t_ns: int) -> FaultInterval | None:
    found = None
    for interval in intervals:
        if interval.modality is modality and interval.active(t_ns):
            found = interval  # the latest one listed wins on overlap
    return found


def truth_status_fields(intervals: Sequence[FaultInterval], t_ns: int) -> list[dict[str, Any]]:
    """The truth at stamp ``t_ns``: one dict per modality with keys ``name``, ``level``,
    ``message`` and ``values`` (a str -> str dict), ready to become DiagnosticStatus messages."""
    out = []
    for modality in MODALITIES:
        interval = _active_at(intervals, modality, int(t_ns))
        if interval is None:
            out.append({'name': modality.value, 'level': LEVEL_OK, 'message': 'ok',
                        'values': {'fault': 'none', 'severity': '0', 'start_ns': '',
                                   'end_ns': ''}})
        else:
            out.append({'name': modality.value, 'level': LEVEL_FAULT, 'message': interval.kind,
                        'values': {'fault': interval.kind, 'severity': f'{interval.severity:g}',
                                   'start_ns': str(interval.start_ns),
                                   'end_ns': str(interval.end_ns)}})
    return out


def _int_or_none(text: Any) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _as_tuple(status: Any) -> tuple[str, int, str, Mapping[str, str]]:
    if isinstance(status, Mapping):
        return status['name'], int(status['level']), status['message'], status['values']
    name, level, message, values = status
    return name, int(level), message, values


def intervals_from_statuses(
        messages: Iterable[tuple[int, Sequence[Any]]]) -> list[FaultInterval]:
    """Rebuild the fault intervals from a stream of truth messages.

    ``messages`` yields ``(stamp_ns, statuses)`` in time order, each status a ``(name, level,
    message, values)`` tuple or a dict as made by :func:`truth_status_fields`. The declared
    ``start_ns``/``end_ns`` values are used when present; a fault seen ending earlier than declared
    (switched off at run time) ends at the first stamp that reports it gone. Statuses whose name is
    not a modality are ignored.
    """
    open_: dict[Modality, dict[str, Any]] = {}
    done: list[dict[str, Any]] = []
    for stamp_ns, statuses in messages:
        stamp_ns = int(stamp_ns)
        seen: dict[Modality, tuple] = {}
        for status in statuses:
            name, level, message, values = _as_tuple(status)
            try:
                modality = Modality(name.rsplit(':', 1)[-1].strip())
            except ValueError:
                continue
            values = dict(values)
            kind = values.get('fault', message)
            if level >= LEVEL_FAULT and kind not in ('', 'none', 'ok'):
                seen[modality] = (kind, float(values.get('severity', 'nan') or 'nan'),
                                  _int_or_none(values.get('start_ns')),
                                  _int_or_none(values.get('end_ns')))
        for modality in MODALITIES:
            current = open_.get(modality)
            now = seen.get(modality)
            if current is not None and (now is None or (now[0], now[2]) != (current['kind'],
                                                                          current['declared'])):
                current['observed_end'] = stamp_ns
                done.append(open_.pop(modality))
            if now is not None and modality not in open_:
                kind, severity, start, end = now
                open_[modality] = {'modality': modality, 'kind': kind, 'severity': severity,
                                   'declared': start, 'start': start if start is not None
                                   else stamp_ns, 'end': end, 'observed_end': None,
                                   'last': stamp_ns}
            if now is not None:
                open_[modality]['last'] = stamp_ns
    done.extend(open_.values())
    out = []
    for d in done:
        end = d['end']
        if d['observed_end'] is not None:
            end = d['observed_end'] if end is None else min(end, d['observed_end'])
        if end is None:
            end = d['last'] + 1
        start = min(d['start'], end - 1)
        out.append(FaultInterval(d['modality'], d['kind'], d['severity'], start, end))
    out.sort(key=lambda i: (i.start_ns, MODALITIES.index(i.modality)))
    return out


def labels_at(stamps_ns: np.ndarray, intervals: Iterable[FaultInterval]) -> np.ndarray:
    """(N, 3) bool: whether a fault is active on each modality (``MODALITIES`` order) at each
    stamp."""
    stamps = np.asarray(stamps_ns, np.int64)
    labels = np.zeros((stamps.shape[0], len(MODALITIES)), bool)
    for interval in intervals:
        col = MODALITIES.index(interval.modality)
        labels[:, col] |= (stamps >= interval.start_ns) & (stamps < interval.end_ns)
    return labels


def kinds_at(stamps_ns: np.ndarray, intervals: Iterable[FaultInterval]) -> np.ndarray:
    """(N, 3) object array: the active fault kind per modality and stamp, or ``''``."""
    stamps = np.asarray(stamps_ns, np.int64)
    kinds = np.full((stamps.shape[0], len(MODALITIES)), '', dtype=object)
    for interval in intervals:
        col = MODALITIES.index(interval.modality)
        hit = (stamps >= interval.start_ns) & (stamps < interval.end_ns)
        kinds[hit, col] = interval.kind
    return kinds
