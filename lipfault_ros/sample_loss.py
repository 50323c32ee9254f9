"""Lost samples: evidence of a signal fault from how much time a history window spans.

A force/torque or joint-state window holds the last T messages received. When the sensor link
loses messages (a failing cable, a driver dropping readings, a bus overloaded), the window still
holds T samples, but they reach further back: at 79 % loss a 32-sample wrench window spans
about five times its usual 62 ms. The network sees samples that are no longer evenly spaced
and hardly tells them from a fast motion (on the simulated held-out episodes, the model raised
a wrench dropout in 7 % of its tuples); the header stamps tell it plainly: on the same episodes
every clean window spanned within 1.1 % of the stream's median span, and 27 of the 28 wrench
tuples of a dropout more than twice it.

So each signal stream keeps the median of its recent clean spans (the stream's nominal span,
learnt as it runs: no rate parameter to get wrong, whatever the robot's rates) and gives as
evidence ``log(span / (ratio * nominal))`` in logit units: above 0, more than ``ratio`` times
the nominal span, the modality is judged faulty on this tuple whatever the network says
(:meth:`~lipfault_ros.inference.Engine.infer` takes it as ``evidence``, as it takes the camera
background's).

- A span it flags is not learnt from, so a long loss does not become the norm.
- Warm-up: no evidence (NaN) until ``min_history`` spans are known (~3 s at 30 tuples/s).
- A short window (a stream just started, padded with its oldest sample) spans less, never
  more: it never reads as a loss.
- One lost message in a 32-sample window lengthens it by 3 %; a ``ratio`` of 2 asks for half
  of the window's messages lost.
- On by default (``SceneConfig.sample_loss_ratio`` 2, the node's ``sample_loss_ratio``; 0
  turns it off, and with it the hold below).
- **The pipeline's own losses are not the sensor's.** A pipeline that cannot keep up loses
  messages itself: live on a busy 2-core machine the node's 50-message input queues lost wrench
  messages in 104 tuples' windows of a 420 s clean demo, which raised 13 false wrench alarms
  (queues deep enough to lose nothing, 1 s, let the wrench lag the camera instead, and frames
  were paired without it). An overflowing queue hands over messages late by its whole span
  (98 ms for 50 at 500 Hz), a sensor's loss delays nothing, so a window whose samples arrived
  more than ``max_backlog`` later than usual (``SensorTuple.backlogs_ns``) and that has gaps
  (over ``gap_ratio`` times the nominal span) says nothing: NaN, counted in
  :attr:`SampleLoss.behind`, and flagged in :attr:`SampleLoss.unjudged` so that
  :class:`~lipfault_ros.decisions.FaultDecisions` holds that modality's alarm as it is, as
  for a missing one. The network's view of such a window is no truer: live, with one core
  taken by another job, windows with the pipeline's own gaps spanning 1.2 to 2 times the
  nominal raised 16 joints alarms in two minutes (scores up to 6.5 against a threshold of
  2.7). Offline (a bag) there is no backlog and every window is judged.

Pure NumPy and ROS-free; one instance per stream, not thread-safe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from lipfault_ros.errors import ConfigError
from lipfault_ros.sync import SyncConfig
from lipfault_ros.tuples import Modality

__all__ = ['SIGNALS', 'SampleLoss', 'SampleLossConfig', 'sample_loss_series', 'short_queues']

#: the modalities whose windows are judged, in evidence-column order after the camera
SIGNALS = (Modality.WRENCH, Modality.JOINTS)


@dataclass(frozen=True)
class SampleLossConfig:
    """How lost samples are judged (see the module docstring)."""

    #: a window spanning more than this many times the nominal span is evidence of a fault
    ratio: float = 2.0
    #: recent clean spans the nominal span is the median of
    history: int = 600
    #: spans known before any evidence is given
    min_history: int = 90
    #: a window whose samples arrived this much later than usual (s) and that spans more
    #: than ``gap_ratio`` times the nominal span is not judged: the pipeline was behind its
    #: input and lost messages itself (keep it under the input queue's span, depth / rate)
    max_backlog: float = 0.05
    #: clean windows span within 1.1 % of the nominal span, one lost message adds 3 % to a
    #: 32-sample window: over 10 %, a few messages are missing
    gap_ratio: float = 1.1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.ratio) and self.ratio > 1.0):
            raise ConfigError(f'SampleLossConfig.ratio must be a finite number > 1, got '
                              f'{self.ratio}')
        if int(self.history) < 1 or not 1 <= int(self.min_history) <= int(self.history):
            raise ConfigError(f'SampleLossConfig needs 1 <= min_history <= history, got '
                              f'{self.min_history} and {self.history}')
        if not (math.isfinite(self.max_backlog) and self.max_backlog > 0):
            raise ConfigError(f'SampleLossConfig.max_backlog must be a finite number of s > 0, '
                              f'got {self.max_backlog}')
        if not (math.isfinite(self.gap_ratio) and self.gap_ratio > 1.0):
            raise ConfigError(f'SampleLossConfig.gap_ratio must be a finite number > 1, got '
                              f'{self.gap_ratio}')


class SampleLoss:
    """The nominal spans of the wrench and joints streams and the evidence of one tuple's
    windows against them (:meth:`evidence`, then :meth:`commit` once the tuple is judged)."""

    def __init__(self, config: SampleLossConfig | None = None) -> None:
        self.config = config or SampleLossConfig()
        #: per stream, the windows not judged because the pipeline was behind its input
        self.behind = [0] * len(SIGNALS)
        self.reset()

    def reset(self) -> None:
        """Forget the nominal spans (a stream restarted at another rate)."""
        n = int(self.config.history)
        self._spans = np.zeros((len(SIGNALS), n), np.float64)
        self._count = [0] * len(SIGNALS)
        self._next = [0] * len(SIGNALS)
        self._pending: list[float | None] = [None] * len(SIGNALS)
        #: per stream, whether the last window given to :meth:`evidence` was behind its input
        self.unjudged = [False] * len(SIGNALS)

    def nominal_ns(self, modality: Modality) -> float:
        """The median of the stream's recent clean spans (NaN while warming up)."""
        i = SIGNALS.index(Modality(modality))
        if self._count[i] < self.config.min_history:
            return math.nan
        return float(np.median(self._spans[i, :self._count[i]]))

    def evidence(self, spans_ns: Mapping[Modality, int],
                 backlogs_ns: Mapping[Modality, int] | None = None) -> tuple[float, float]:
        """(wrench, joints) evidence of one tuple's window spans (NaN: none; a modality absent
        from ``spans_ns`` is missing) and, live, their backlogs. The spans are kept for
        :meth:`commit`."""
        out = []
        limit = self.config.max_backlog * 1e9
        for i, m in enumerate(SIGNALS):
            span = spans_ns.get(m)
            self._pending[i] = None
            self.unjudged[i] = False
            if span is None or span <= 0:
                out.append(math.nan)
                continue
            nominal = self.nominal_ns(m)
            ev = math.log(span / (self.config.ratio * nominal)) if nominal > 0 else math.nan
            if (backlogs_ns and backlogs_ns.get(m, 0) > limit
                    and span > self.config.gap_ratio * nominal):
                self.behind[i] += 1  # the pipeline's own loss, not the sensor's
                self.unjudged[i] = True
                out.append(math.nan)
                continue
            out.append(ev)
            if not ev > 0:  # NaN (warming up) or under the limit: learnt from
                self._pending[i] = float(span)
        return out[0], out[1]

    def commit(self) -> None:
        """Learn the spans of the tuple just judged that were not evidence of a loss."""
        for i, span in enumerate(self._pending):
            if span is None:
                continue
            self._spans[i, self._next[i]] = span
            self._next[i] = (self._next[i] + 1) % self._spans.shape[1]
            self._count[i] = min(self._count[i] + 1, self._spans.shape[1])
            self._pending[i] = None

    def step(self, spans_ns: Mapping[Modality, int],
             backlogs_ns: Mapping[Modality, int] | None = None) -> tuple[float, float]:
        """:meth:`evidence`, then :meth:`commit`."""
        value = self.evidence(spans_ns, backlogs_ns)
        self.commit()
        return value


def sample_loss_series(spans_ns: Iterable[Mapping[Modality, int]],
                       config: SampleLossConfig | None = None) -> np.ndarray:
    """(N, 2) (wrench, joints) evidence of a recorded tuple sequence in time order, exactly as
    :meth:`SampleLoss.step` gives it live (a recording has no backlogs)."""
    ref = SampleLoss(config)
    return np.array([ref.step(s) for s in spans_ns], np.float64).reshape(-1, len(SIGNALS))


def short_queues(depth: int, sync: SyncConfig, config: SampleLossConfig | None) -> str:
    """Why lost samples may misjudge the pipeline's own losses ('' when they will not, or
    ``config`` is None: off): an input queue of ``depth`` messages spanning less than twice
    ``max_backlog`` overflows before its messages read as late."""
    if config is None:
        return ''
    short = [f'{m} {depth * sync.period_ns(m) / 1e6:.0f} ms' for m in SIGNALS
             if depth * sync.period_ns(m) < 2e9 * config.max_backlog]
    if not short:
        return ''
    return (f'input_depth {depth} spans {", ".join(short)}, under twice the lost samples\' '
            f'max_backlog of {config.max_backlog * 1e3:.0f} ms: the pipeline\'s own lost '
            f'messages may read as the sensor\'s; raise input_depth')
