"""Scene-relative thresholds: judge a modality against how this scene's clean data reads.

A threshold calibrated on the training scenes assumes that a new scene's clean data scores like
theirs. For the camera it does not: a room with other lighting, objects and textures is
reconstructed less well by an autoencoder that never saw it, and every clean frame of such a
scene scores higher. On a simulated scene not trained on, the camera's clean scores sat 3.1
logit units above the calibration episode's (median 2.33 against -0.73, threshold 2.76) and
46 % of its clean tuples were over the threshold. What tells a fault apart is the change from
the scene's own clean level, not the level itself.

So the reference follows the scene. Per adapted modality it keeps the last ``window`` scores of
tuples it trusts, and the threshold rises by how far their median lies above the clean level the
calibration episodes gave (``Artifact.clean_levels``); it never falls below the calibrated
threshold, and it rises at most ``max_offset``:

- **warm-up**: the first ``warmup`` tuples after a start are all taken in (there is nothing yet
  to judge them by); after it only tuples under the raised threshold, with no alarm up, are;
- a fault therefore never moves the reference once it is detected, and one that is already there
  at start-up is learnt as the scene for at most ``max_offset``: the diagnostics report the
  offset, and an offset at the cap says the scene (or a fault since start-up) reads far from
  anything trained on;
- it adapts the camera by default. A signal's clean level is its sensor's, not the scene's, and a
  moving reference would follow its slow faults (drift) up.

The camera's appearance follows the scene too: :mod:`lipfault_ros.background` keeps the scene's
own background and gives evidence of lens faults against it (``background``, on by default; it
assumes a fixed camera).

The same class runs in the live node and in the offline evaluation (through
:class:`~lipfault_ros.decisions.FaultDecisions`); :func:`scene_series` runs it over a recorded
score series so that baseline detectors get the same treatment.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from lipfault_ros.background import BackgroundConfig
from lipfault_ros.sample_loss import SampleLossConfig
from lipfault_ros.errors import ConfigError
from lipfault_ros.settings import check_declared, param
from lipfault_ros.tuples import MODALITIES, Modality

__all__ = ['MODALITIES_TEXT_HELP', 'SceneConfig', 'SceneReference', 'ThresholdOffsets',
           'modalities_from_text', 'scene_series']


#: what the node's ``scene_modalities`` parameter and ``lipfault eval --scene-modalities`` hold
MODALITIES_TEXT_HELP = ('modalities whose threshold follows the scene\'s own clean level '
                        '(comma-separated; empty or \'none\': the calibrated thresholds only)')


def modalities_from_text(text: str) -> tuple[str, ...]:
    """The modalities of a comma-separated list, as a parameter or option carries them; empty
    or ``none`` is none (SceneConfig checks the names)."""
    text = text.strip()
    if text.lower() == 'none':
        return ()
    return tuple(m.strip() for m in text.split(',') if m.strip())


@dataclass(frozen=True)
class ThresholdOffsets:
    """Per-modality shifts of the stored thresholds, the way to tune detection without
    retraining: the node's ``threshold_offset_*`` parameters and ``lipfault eval
    --threshold-offset`` are these settings, so both refuse the same values. They are added in
    logit units before the scene reference raises a threshold further."""

    camera: float = param(0.0, 'added to the stored camera threshold (logit units; > 0: fewer '
                               'alarms)', low=-100.0, high=100.0)
    wrench: float = param(0.0, 'added to the stored wrench threshold (logit units)',
                          low=-100.0, high=100.0)
    joints: float = param(0.0, 'added to the stored joints threshold (logit units)',
                          low=-100.0, high=100.0)

    def __post_init__(self) -> None:
        check_declared(self)

    def as_tuple(self) -> tuple[float, float, float]:
        """The offsets in the order of :data:`~lipfault_ros.tuples.MODALITIES`."""
        return tuple(float(getattr(self, m.value)) for m in MODALITIES)  # type: ignore[return-value]


@dataclass(frozen=True)
class SceneConfig:
    """How the scene reference follows a stream (see the module docstring), and the evidence
    from outside the network that judges it beside the thresholds: the camera background
    (:mod:`lipfault_ros.background`) and the signals' lost samples
    (:mod:`lipfault_ros.sample_loss`)."""

    #: modalities whose threshold follows the scene (none: calibrated thresholds only)
    modalities: tuple[str, ...] = ('camera',)
    #: 10 s at 30 Hz
    window: int = param(300, 'trusted tuples whose median score is the scene\'s clean level',
                        low=1, high=100000)
    #: 1 s at 30 Hz
    warmup: int = param(30, 'tuples after a start all taken as the scene (at most the window)',
                        low=0, high=100000)
    max_offset: float = param(5.0, 'the most a threshold rises to follow the scene (logit '
                                   'units)', low=0.0, high=100.0)
    background: bool = param(True, 'judge camera frames against the scene\'s own background '
                                   'too (lens faults; a fixed camera only: off for a camera '
                                   'that moves with the arm)',
                             aliases=('--no-camera-background',))
    background_z: float = param(BackgroundConfig.z_threshold, 'the background statistic '
                                '(robust spreads of a quarter of the image blocks) at which '
                                'the camera is faulty', low=0.1, high=1000.0)
    #: see lipfault_ros.sample_loss
    sample_loss_ratio: float = param(2.0, 'a wrench or joints window spanning this many times '
                                          'its stream\'s usual span (messages lost on the '
                                          'way) makes that modality faulty, and one whose '
                                          'messages the pipeline lost itself holds its alarm; '
                                          '0: off, neither', low=0.0, high=1000.0,
                                     metavar='R')

    def __post_init__(self) -> None:
        names = {m.value for m in MODALITIES}
        mods = tuple(self.modalities)
        object.__setattr__(self, 'modalities', mods)
        if not set(mods) <= names:
            raise ConfigError(f'scene modalities must be among {sorted(names)}, got '
                              f'{list(mods)}')
        check_declared(self)
        if self.warmup > self.window:
            raise ConfigError(f'scene warmup must be in [0, window={self.window}], got '
                              f'{self.warmup}')
        self.background_config()  # a valid z
        self.sample_loss_config()  # a valid ratio (or 0)

    def background_config(self) -> BackgroundConfig | None:
        """The camera background's settings, None when it is off."""
        return BackgroundConfig(z_threshold=self.background_z) if self.background else None

    def sample_loss_config(self) -> SampleLossConfig | None:
        """The lost-samples evidence's settings, None when it is off."""
        if self.sample_loss_ratio == 0:
            return None
        return SampleLossConfig(ratio=self.sample_loss_ratio)

    def as_dict(self) -> dict[str, object]:
        return {'modalities': list(self.modalities), 'window': self.window,
                'warmup': self.warmup, 'max_offset': self.max_offset,
                'background': self.background, 'background_z': self.background_z,
                'sample_loss_ratio': self.sample_loss_ratio}


class SceneReference:
    """Per-modality threshold offsets that follow the scene (not thread-safe; one per stream).

    ``levels`` (3,) are the calibration episodes' median clean scores in ``MODALITIES`` order;
    a modality without one (None or NaN), or not in ``config.modalities``, keeps offset 0."""

    def __init__(self, config: SceneConfig | None, levels: Sequence[float] | None) -> None:
        self.config = config or SceneConfig()
        lv = np.full(3, np.nan) if levels is None else np.asarray(levels, np.float64)
        if lv.shape != (3,):
            raise ConfigError(f'clean levels must be 3 numbers, got {levels!r}')
        wanted = np.array([m.value in self.config.modalities for m in MODALITIES])
        self.levels = lv
        self.enabled = wanted & np.isfinite(lv)
        self._history = [collections.deque(maxlen=self.config.window) for _ in MODALITIES]
        self._seen = np.zeros(3, np.int64)
        self._offsets = np.zeros(3)

    def reset(self) -> None:
        """Forget the scene (a new episode, another place): the next tuples are a warm-up."""
        for h in self._history:
            h.clear()
        self._seen[:] = 0
        self._offsets[:] = 0.0

    def relearn(self) -> str:
        """:meth:`reset`, and what was forgotten, in words (the node's ``~/relearn_scene``)."""
        was = [f'{m.value} offset {o:.2f}' for m, o, on in zip(MODALITIES, self._offsets,
                                                               self.enabled) if on]
        self.reset()
        if not was:
            return 'no threshold follows the scene'
        return f'forgot {", ".join(was)}; the next {self.config.warmup} tuples are a warm-up'

    def offsets(self) -> np.ndarray:
        """(3,) what to add to the calibrated thresholds for the next tuple, >= 0."""
        return self._offsets.copy()

    def warming(self, modality: Modality) -> bool:
        """True while ``modality`` is adapted and still in its warm-up."""
        i = MODALITIES.index(modality)
        return bool(self.enabled[i]) and self._seen[i] < self.config.warmup

    def update(self, scores: np.ndarray, over: np.ndarray, missing: np.ndarray) -> None:
        """Take in one tuple: raw ``scores`` (3,), ``over`` (3,) bool (over the raised threshold
        or under an alarm: not trusted after the warm-up), ``missing`` (3,) bool."""
        cfg = self.config
        for i in np.flatnonzero(self.enabled):
            s = float(scores[i])
            if missing[i] or not np.isfinite(s):
                continue
            warm = self._seen[i] < cfg.warmup
            self._seen[i] += 1
            if warm or not over[i]:
                self._history[i].append(s)
                level = float(np.median(self._history[i])) - self.levels[i]
                self._offsets[i] = min(cfg.max_offset, max(0.0, level))


def scene_series(scores: np.ndarray, missing: np.ndarray, thresholds: np.ndarray,
                 levels: Sequence[float] | None, config: SceneConfig | None
                 ) -> np.ndarray:
    """(N, 3) scene offsets for a recorded score series (rows in time order), by the rule the
    node runs: row i's offset is what the reference held before row i, and a row is trusted
    when its score is under its raised threshold (the lifecycle is left out: a baseline's
    alarms come after this). Non-finite scores (missing, forced faults) are never taken in."""
    s = np.asarray(scores, np.float64)
    miss = np.asarray(missing, bool)
    thr = np.asarray(thresholds, np.float64).reshape(1, 3)
    ref = SceneReference(config, levels)
    out = np.zeros_like(s)
    if not ref.enabled.any():
        return out
    for i in range(len(s)):
        out[i] = ref.offsets()
        ref.update(s[i], s[i] > thr[0] + out[i], miss[i])
    return out
