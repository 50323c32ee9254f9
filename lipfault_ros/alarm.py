"""The fault lifecycle of one modality: from per-tuple verdicts to an alarm an operator can trust.

The model judges every tuple on its own. A single tuple over threshold is weak evidence: at a
1 % per-tuple false-alarm rate a 30 Hz camera would cry wolf every three seconds, and each cry
would swap a clean signal for the model's estimate. A real fault is persistent, so the alarm
asks for persistence:

- **raise** when ``raise_k`` of the last ``raise_n`` tuples were flagged (k-of-n; with
  independent 1 % flags, 3 of 5 is ~1e-5 per tuple while a lasting fault is still raised on
  its third flagged tuple);
- **clear** with hysteresis in time and in level: after ``clear_n`` consecutive tuples whose
  score is under the modality's *hold level*, the score that only 0.1 % of the clean
  calibration tuples exceed (stored with the thresholds, see :func:`lipfault_ros.calibration.
  hold_level`). A fault flickering under the threshold does not flap the output between raw and
  estimate, and a lasting fault whose score settles between anything clean and the threshold
  once its onset has passed (a joint offset: plain while the step is in the window, a steady
  misfit after) keeps its alarm. The hold only ever extends an alarm the threshold raised, so it
  adds no alarm events; with ``hold`` off (or an artifact without hold levels) an alarm holds
  at the threshold itself;
- optionally **latch**: a cleared alarm stays up until :meth:`FaultAlarms.reset` (the node's
  ``~/reset_faults`` service), for cells where a human must acknowledge every sensor fault.

While an alarm is up the modality's output is the model's estimate; the raw per-tuple score is
still reported beside the state. A missing modality does not advance its alarm (there is no
verdict on data that is not there); its output is replaced for as long as it is missing anyway.
The same code runs in the live node and in the offline evaluation, so the figures in a report
are the behaviour the operator sees.
"""

from __future__ import annotations

import collections
import enum
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from lipfault_ros.errors import ConfigError
from lipfault_ros.settings import check_declared, param
from lipfault_ros.tuples import MODALITIES, Modality

__all__ = ['AlarmConfig', 'AlarmState', 'AlarmStatus', 'FaultAlarms', 'ModalityAlarm',
           'alarm_series']


class AlarmState(str, enum.Enum):
    """``clear``: no alarm; ``raised``: the fault is present; ``latched``: the evidence has
    cleared but the alarm holds until reset (only with ``latch``)."""

    CLEAR = 'clear'
    RAISED = 'raised'
    LATCHED = 'latched'


@dataclass(frozen=True)
class AlarmConfig:
    """How per-tuple flags become an alarm (see the module docstring)."""

    raise_k: int = param(3, 'a fault alarm is raised when this many of the last raise_n '
                            'tuples are over threshold (1 of 1: every flag)', low=1, high=1000,
                         metavar='K')
    raise_n: int = param(5, 'length of the raise window, in tuples', low=1, high=1000,
                         metavar='N')
    #: hysteresis: one tuple under the level does not clear what several over it raised
    clear_n: int = param(10, 'consecutive tuples under the hold level that clear a raised '
                             'alarm', low=1, high=100000, metavar='N')
    latch: bool = param(False, 'keep a cleared alarm up until it is reset (the node\'s '
                               '~/reset_faults service; offline: the whole evaluation)')
    hold: bool = param(True, 'a raised alarm holds while the score stays over the stored hold '
                             'level, which only 0.1 % of clean calibration tuples exceed (off: '
                             'it clears under the threshold)')

    def __post_init__(self) -> None:
        check_declared(self)
        if self.raise_k > self.raise_n:
            raise ConfigError(f'raise_k must be in [1, raise_n={self.raise_n}], got '
                              f'{self.raise_k}')

    def as_dict(self) -> dict[str, int | bool | float]:
        return {'raise_k': self.raise_k, 'raise_n': self.raise_n, 'clear_n': self.clear_n,
                'latch': self.latch, 'hold': self.hold}

    def hold_margins(self, thresholds: Sequence[float], hold_levels: Sequence[float] | None
                     ) -> np.ndarray:
        """(3,) how far under its calibrated threshold each modality's hold level lies, in
        score units; 0 (hold at the threshold) with ``hold`` off and where a level is unknown
        or not below its threshold. Offsets that move a threshold (tuning, the scene) move its
        hold level alike, so the margin is taken from the calibration."""
        thr = np.asarray(thresholds, np.float64).reshape(-1)
        if not self.hold or hold_levels is None:
            return np.zeros_like(thr)
        with np.errstate(invalid='ignore'):
            gap = thr - np.asarray(hold_levels, np.float64).reshape(-1)
        return np.where(np.isfinite(gap) & (gap > 0), np.nan_to_num(gap), 0.0)


@dataclass(frozen=True)
class AlarmStatus:
    """Where one modality's alarm stands after a tuple.

    ``onset_ns`` is the stamp of the tuple that raised the current (or last) alarm, 0 when none
    was ever raised; ``duration_s`` runs from onset to the current tuple while the alarm is up
    and is the length of the last alarm once it cleared; ``count`` is the number of alarms
    raised since start or the last reset.
    """

    state: AlarmState = AlarmState.CLEAR
    onset_ns: int = 0
    duration_s: float = 0.0
    count: int = 0

    @property
    def active(self) -> bool:
        return self.state is not AlarmState.CLEAR


@dataclass
class ModalityAlarm:
    """The lifecycle of one modality's alarm (a small state machine; not thread-safe)."""

    config: AlarmConfig = field(default_factory=AlarmConfig)

    def __post_init__(self) -> None:
        self._recent: collections.deque[bool] = collections.deque(maxlen=self.config.raise_n)
        self._flagged_in_window = 0
        self._clean_run = 0
        self.status = AlarmStatus()

    def update(self, flagged: bool, stamp_ns: int, held: bool | None = None) -> AlarmStatus:
        """Feed one tuple's verdict (``flagged``: over threshold; ``held``: over the hold
        level, by default the same as ``flagged``); returns the status after it."""
        flagged = bool(flagged)
        held = flagged if held is None else bool(held) or flagged
        if len(self._recent) == self._recent.maxlen and self._recent[0]:
            self._flagged_in_window -= 1
        self._recent.append(flagged)
        self._flagged_in_window += flagged
        self._clean_run = 0 if held else self._clean_run + 1
        s = self.status
        state, onset, count = s.state, s.onset_ns, s.count
        if state is AlarmState.CLEAR:
            if self._flagged_in_window >= self.config.raise_k:
                state, onset, count = AlarmState.RAISED, int(stamp_ns), count + 1
        elif state is AlarmState.RAISED and self._clean_run >= self.config.clear_n:
            state = AlarmState.LATCHED if self.config.latch else AlarmState.CLEAR
        elif state is AlarmState.LATCHED:
            if self._flagged_in_window >= self.config.raise_k:
                state = AlarmState.RAISED  # the same unacknowledged alarm: not a new one
            elif not self.config.latch:
                state = AlarmState.CLEAR  # latching was switched off since
        if state is AlarmState.RAISED or (state is AlarmState.LATCHED and
                                          s.state is AlarmState.RAISED):
            duration = max(0.0, (int(stamp_ns) - onset) / 1e9)
        else:
            duration = s.duration_s
        self.status = AlarmStatus(state, onset, duration, count)
        return self.status

    def reset(self) -> bool:
        """Forget the evidence and drop the alarm; True when an alarm was up. A fault that
        persists is raised again after ``raise_k`` flagged tuples."""
        was = self.status.active
        self._recent.clear()
        self._flagged_in_window = 0
        self._clean_run = 0
        self.status = AlarmStatus()
        return was


class FaultAlarms:
    """One :class:`ModalityAlarm` per modality, updated together once per tuple."""

    def __init__(self, config: AlarmConfig | None = None) -> None:
        self.config = config or AlarmConfig()
        self._alarms = {m: ModalityAlarm(self.config) for m in MODALITIES}

    def update(self, flags: Sequence[bool], missing: Sequence[bool], stamp_ns: int,
               held: Sequence[bool] | None = None) -> dict[Modality, AlarmStatus]:
        """Feed one tuple: ``flags``, ``missing`` and ``held`` (over the hold level; default
        ``flags``) in ``MODALITIES`` order. A missing modality keeps its status (see the
        module docstring)."""
        out = {}
        for i, m in enumerate(MODALITIES):
            alarm = self._alarms[m]
            out[m] = alarm.status if missing[i] else alarm.update(
                bool(flags[i]), stamp_ns, None if held is None else bool(held[i]))
        return out

    def active(self, flags: Sequence[bool], missing: Sequence[bool], stamp_ns: int,
               held: Sequence[bool] | None = None) -> np.ndarray:
        """:meth:`update`, returning only whether each alarm is up, (3,) bool."""
        status = self.update(flags, missing, stamp_ns, held)
        return np.array([status[m].active for m in MODALITIES])

    @property
    def status(self) -> Mapping[Modality, AlarmStatus]:
        return {m: a.status for m, a in self._alarms.items()}

    def reset(self, modalities: Iterable[Modality] = MODALITIES) -> list[Modality]:
        """Drop the alarms of ``modalities``; returns those that were up."""
        return [m for m in modalities if self._alarms[m].reset()]

    def reconfigure(self, config: AlarmConfig) -> None:
        """New settings; the history starts afresh but raised alarms stay raised (a settings
        change is not an acknowledgement)."""
        old = self.status
        self.config = config
        self._alarms = {m: ModalityAlarm(config) for m in MODALITIES}
        for m, s in old.items():
            self._alarms[m].status = s


def alarm_series(flags: np.ndarray, missing: np.ndarray, stamps_ns: np.ndarray,
                 config: AlarmConfig, held: np.ndarray | None = None) -> np.ndarray:
    """(N, 3) bool: whether each modality's alarm is up after each of N tuples in order
    (what the live node would have shown for these per-tuple flags and, when given, ``held``
    (N, 3): over the hold level)."""
    f = np.asarray(flags, bool)
    miss = np.asarray(missing, bool)
    h = f if held is None else np.asarray(held, bool)
    alarms = FaultAlarms(config)
    return np.array([alarms.active(f[i], miss[i], int(s), h[i])
                     for i, s in enumerate(stamps_ns)], bool).reshape(len(f), len(MODALITIES))
