"""One tuple from the engine's verdict to what is published: scene, fault lifecycle, anchoring.

The live node and the offline evaluation must decide exactly alike, or a report would describe
a node nobody runs. This is that decision, once: the scene reference
(:mod:`lipfault_ros.scene_thresholds`) raises the thresholds by how far this scene's clean data
reads above the calibration's, the camera background (:mod:`lipfault_ros.background`) says how
far the frame departs from this scene's own view, the signal windows' spans say whether their
streams lost messages (:mod:`lipfault_ros.sample_loss`), the engine scores the tuple against
them, the per-modality alarms (:mod:`lipfault_ros.alarm`) say which modalities to correct, and
corrected signals are anchored to the last trusted value (:mod:`lipfault_ros.anchor`).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from lipfault_ros.alarm import AlarmConfig, AlarmStatus, FaultAlarms
from lipfault_ros.anchor import DEFAULT_TAU_S, OutputAnchor, trusted
from lipfault_ros.background import CameraBackground
from lipfault_ros.sample_loss import SampleLoss
from lipfault_ros.scene_thresholds import SceneConfig, SceneReference
from lipfault_ros.tuples import MODALITIES, Modality, SensorTuple

__all__ = ['FaultDecisions']


class FaultDecisions:
    """The stateful part of judging a stream of tuples (not thread-safe; one per stream).
    ``clean_levels`` (3,) are the artifact's (``Artifact.clean_levels``); None (or NaN) keeps
    the calibrated thresholds for every modality whatever ``scene`` says."""

    def __init__(self, alarm: AlarmConfig | None = None,
                 anchor_tau_s: float = DEFAULT_TAU_S, scene: SceneConfig | None = None,
                 clean_levels: Sequence[float] | None = None) -> None:
        self.alarms = FaultAlarms(alarm or AlarmConfig())
        self.anchor = OutputAnchor(anchor_tau_s)
        self.scene = SceneReference(scene, clean_levels)
        background = self.scene.config.background_config()
        #: the camera's own background (None: off, see SceneConfig.background)
        self.background = CameraBackground(background) if background is not None else None
        loss = self.scene.config.sample_loss_config()
        #: the signal streams' nominal window spans (None: off, see SceneConfig)
        self.sample_loss = SampleLoss(loss) if loss is not None else None

    def _hold_margins(self, engine: Any) -> np.ndarray:
        """(3,) how far under the threshold each raised alarm holds (``AlarmConfig.
        hold_margins`` of the artifact's calibrated thresholds and hold levels)."""
        return self.alarms.config.hold_margins(engine.artifact.thresholds,
                                               engine.artifact.hold_levels)

    def relearn_scene(self) -> str:
        """Forget the scene: the thresholds' reference and the camera background (the node's
        ``~/relearn_scene``); what was forgotten, in words."""
        message = self.scene.relearn()
        if self.background is not None:
            self.background.reset()
            message += '; camera background forgotten'
        if self.sample_loss is not None:
            self.sample_loss.reset()
            message += '; signal streams\' nominal spans forgotten'
        return message

    def infer(self, engine: Any, t: SensorTuple) -> tuple[Any, Mapping[Modality, AlarmStatus]]:
        """``engine.infer`` on ``t`` through the lifecycle; the anchored
        :class:`~lipfault_ros.inference.Inference` and each modality's alarm after it.
        InputError from the engine propagates (the alarms are not advanced then)."""
        missing = [m in t.missing or t.data(m) is None for m in MODALITIES]
        status: dict[Modality, AlarmStatus] = {}
        loss = np.full(3, np.nan)  # the lost-samples evidence (wrench, joints columns)

        def decide(flags: np.ndarray, margins: np.ndarray) -> np.ndarray:
            margins = np.asarray(margins, np.float64)
            with np.errstate(invalid='ignore'):
                held = margins > -self._hold_margins(engine)
                # judged faulty by lost samples alone (the network's own score is not over
                # threshold + evidence): the window still ends at a genuine reading, and the
                # estimate from a window with gaps is worse than it (on the held-out
                # episodes, correcting a wrench dropout raised the wrench's correction error
                # from 2.10 to 2.26, past the median filter's 2.13), so it passes through
                # while the alarm tells the consumer the stream is degraded
                through = (loss > 0) & ~(margins > loss + 1e-3)
            status.update(self.alarms.update(flags, unjudged, t.stamp_ns, held))
            return np.array([status[m].active for m in MODALITIES]) & ~through

        offsets = self.scene.offsets()
        unjudged = list(missing)  # missing, or a window the pipeline itself lost messages of
        evidence = None
        if self.background is not None or self.sample_loss is not None:
            evidence = np.full(3, np.nan)
            if self.background is not None:
                evidence[0] = self.background.evidence(None if missing[0] else t.image)
            if self.sample_loss is not None:
                loss[1:] = evidence[1:] = self.sample_loss.evidence(
                    {m: s for m, s in t.spans_ns.items() if not missing[MODALITIES.index(m)]},
                    t.backlogs_ns)
                for i, behind in enumerate(self.sample_loss.unjudged, start=1):
                    unjudged[i] = unjudged[i] or behind
        # calls decide once per tuple
        result = engine.infer(t, decide=decide,
                              scene_offsets=offsets if offsets.any() else None,
                              evidence=evidence)
        for ref in (self.background, self.sample_loss):
            if ref is not None:
                ref.commit()
        active = [status[m].active for m in MODALITIES]
        res = [result.results[m] for m in MODALITIES]
        self.scene.update(np.array([r.score for r in res]),
                          np.array([r.fault or a for r, a in zip(res, active)]), unjudged)
        return self.anchor.apply(result, trusted(result, active)), status
