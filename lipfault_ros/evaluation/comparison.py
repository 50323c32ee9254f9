"""Baseline detectors scored on the model's tuples, under the model's decision rule.

The stage-1 autoencoder of the same artifact (its reconstruction error as the score), a second
artifact (e.g. trained without Lipschitz modulation), IsolationForest and PCA reconstruction on
simple features (:mod:`lipfault_ros.evaluation.baselines`). Every baseline's per-tuple flags
(score over its threshold) go through the same fault lifecycle as the model
(:func:`lipfault_ros.alarm.alarm_series`, the same :class:`AlarmConfig`) before the threshold
metrics and latencies, so all detectors are compared under one decision rule. Where the model's
thresholds follow the scene (:mod:`lipfault_ros.scene_thresholds`), every baseline's do too, by the
same rule against its own clean calibration level (:func:`scene_relative`), and where the camera
background gives evidence (:mod:`lipfault_ros.background`) it judges every baseline's camera
as it judges the model's (:func:`with_evidence`), and so do the signals' lost samples
(:mod:`lipfault_ros.sample_loss`); AUROC / AUPR are on the
scores that decision judges (scene-relative, or raw when nothing follows the scene). Each baseline block has the same ``interval`` / ``effective`` split as the
model's report, and its top-level rows are the interval figures.

Baselines that need clean training data take it from ``train_bags``; when none are given they
use the clean reference bag, and the note says that is optimistic.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lipfault_ros.alarm import AlarmConfig, alarm_series
from lipfault_ros.background import background_series, with_evidence
from lipfault_ros.calibration import CalibrationRule, calibrate, clean_level, hold_level
from lipfault_ros.errors import ArtifactError, InputError
from lipfault_ros.evaluation import metrics as M
from lipfault_ros.evaluation.corrections import add_baseline_corrections
from lipfault_ros.evaluation.labels import LabelSet
from lipfault_ros.evaluation.scoring import split_detection
from lipfault_ros.sample_loss import sample_loss_series
from lipfault_ros.scene_thresholds import SceneConfig, scene_series
from lipfault_ros.topics import TopicConfig
from lipfault_ros.tuples import MODALITIES, SensorTuple, TupleArrays

__all__ = ['baseline_block', 'held_flags', 'lifecycle_flags', 'scene_relative',
           'score_baselines', 'with_evidence']

#: Detection keys that need a threshold (null for a threshold-free baseline).
_THRESHOLD_KEYS = ('precision', 'recall', 'f1', 'false_alarms_per_1000', 'tp', 'fp', 'fn', 'tn',
                   'flag_rate', 'detection_rate', 'events_detected', 'detection_latency_ms_p50',
                   'detection_latency_ms_p95', 'detection_latency_tuples_p50',
                   'detection_latency_tuples_p95')


def lifecycle_flags(per_tuple: np.ndarray, missing: np.ndarray, stamps_ns: np.ndarray,
                    alarm: AlarmConfig, held: np.ndarray | None = None) -> np.ndarray:
    """(N, 3) deployed decisions from per-tuple flags (and ``held``: over the hold level):
    the lifecycle's alarm up, or missing (a missing modality does not advance its alarm, as in
    the live node)."""
    miss = np.asarray(missing, bool)
    up = alarm_series(np.asarray(per_tuple, bool) & ~miss, miss, stamps_ns, alarm,
                      None if held is None else np.asarray(held, bool) & ~miss)
    return up | miss


def held_flags(scores: np.ndarray, thresholds: np.ndarray, holds: np.ndarray | None,
               alarm: AlarmConfig, *, log_domain: bool) -> np.ndarray:
    """(N, 3) whether each score is over its hold level (``holds``, calibrated with
    ``thresholds``; :meth:`AlarmConfig.hold_margins`), the model's rule; ``log_domain``: error
    scores, whose margin is a factor, as the scene rule takes it."""
    s, thr = np.asarray(scores, np.float64), np.asarray(thresholds, np.float64)
    hv = None if holds is None else np.asarray(holds, np.float64)
    with np.errstate(divide='ignore', invalid='ignore'):
        if log_domain:
            s, thr = np.log(np.maximum(s, 1e-300)), np.log(np.maximum(thr, 1e-300))
            hv = None if hv is None else np.log(np.maximum(hv, 1e-300))
        return s > (thr - alarm.hold_margins(thr, hv))[None, :]


def scene_relative(scores: np.ndarray, missing: np.ndarray, thresholds: np.ndarray,
                   levels: np.ndarray | None, scene: SceneConfig | None, *, log_domain: bool
                   ) -> np.ndarray:
    """(N, 3) ``scores`` against the scene's own clean level, by the model's rule
    (:func:`~lipfault_ros.scene_thresholds.scene_series`); unchanged where nothing follows the
    scene. ``log_domain``: the scores are errors (> 0) whose scene shift is a factor, so the rule
    runs on their logarithm (as the model's scores, logits of log errors, already are)."""
    s = np.asarray(scores, np.float64)
    if scene is None or levels is None or thresholds is None:
        return s
    if not log_domain:
        return s - scene_series(s, missing, thresholds, levels, scene)
    with np.errstate(divide='ignore', invalid='ignore'):
        log_s, log_thr, log_lv = (np.log(np.maximum(np.asarray(v, np.float64), 1e-300))
                                  for v in (s, thresholds, levels))
    return s * np.exp(-scene_series(log_s, missing, log_thr, log_lv, scene))


def baseline_block(scores: np.ndarray, thresholds: np.ndarray | None, arrays: TupleArrays,
                   intervals: Sequence[Any], sets: dict[str, LabelSet | None], *,
                   alarm: AlarmConfig, flags: np.ndarray | None = None,
                   note: str = '', scene: SceneConfig | None = None,
                   levels: np.ndarray | None = None, log_domain: bool = False,
                   evidence: np.ndarray | None = None, holds: np.ndarray | None = None
                   ) -> dict[str, Any]:
    """One baseline's report block. ``flags`` are its per-tuple decisions (default: score over
    threshold); they go through ``alarm`` before any threshold metric. With ``scene`` and
    ``levels`` the scores are made scene-relative first (:func:`scene_relative`) and the
    flags are theirs over threshold; ``evidence`` (N, 3) from outside the network (the camera
    background) then judges them as the engine does (:func:`with_evidence`); a raised alarm
    holds over the ``holds`` levels (:func:`held_flags`)."""
    stamps = arrays.stamps_ns
    missing = np.asarray(arrays.missing, bool)
    follows = scene is not None and levels is not None and thresholds is not None
    s = scene_relative(scores, missing, thresholds, levels, scene, log_domain=log_domain)
    if follows:
        flags = None  # the scene-relative score over threshold (a forced fault scores +inf)
    if thresholds is None:
        thr = np.full(3, np.nan)
        fl = np.zeros_like(s, bool)
    else:
        thr = np.asarray(thresholds, np.float64)
        per_tuple = flags if flags is not None else s > thr[None, :]
        if evidence is not None:
            s, over = with_evidence(s, thr, evidence, log_domain=log_domain)
            per_tuple = np.asarray(per_tuple, bool) | (over & ~missing)
        # a flagged tuple counts as held too (ModalityAlarm.update)
        fl = lifecycle_flags(per_tuple, missing, stamps, alarm,
                             held_flags(s, thr, holds, alarm, log_domain=log_domain))
    block: dict[str, Any] = {'note': note, 'lifecycle': alarm.as_dict(),
                             'scene': scene.as_dict() if follows else None,
                             'thresholds': {m.value: float(thr[i])
                                            for i, m in enumerate(MODALITIES)}}
    if intervals:
        split = split_detection(stamps, s, np.nan_to_num(thr), fl, intervals, sets)
        for blocks in filter(None, split.values()):
            if thresholds is None:
                for b in blocks.values():
                    b.update(dict.fromkeys(_THRESHOLD_KEYS))
        block.update({row: dict(b) for row, b in split['interval'].items()})
        block.update(split)
    else:
        for i, m in enumerate(MODALITIES):
            block[m.value] = {'flag_rate': float(np.mean(fl[:, i]))}
        block['overall'] = {'flag_rate': float(np.mean(np.asarray(fl).any(axis=1)))}
        block.update(interval=None, effective=None)
    block['series'] = {'scores': {m.value: s[:, i] for i, m in enumerate(MODALITIES)},
                       'flags': {m.value: fl[:, i] for i, m in enumerate(MODALITIES)}}
    return block


@dataclasses.dataclass
class _Context:
    """What every baseline is scored with (one evaluation)."""

    engine: Any
    run: dict[str, Any]
    intervals: Sequence[Any]
    sets: dict[str, LabelSet | None]
    settle: np.ndarray
    alarm: AlarmConfig
    notes: list[str]
    scene: SceneConfig | None = None

    @property
    def arrays(self) -> TupleArrays:
        return self.run['arrays']

    @functools.cached_property
    def evidence(self) -> np.ndarray | None:
        """(N, 3) the evidence from outside the network on these tuples, as the model's
        :class:`~lipfault_ros.decisions.FaultDecisions` had it: the camera background's (NaN
        when it is off) and the signals' lost samples (:mod:`lipfault_ros.sample_loss`)."""
        arrays = self.arrays
        out = np.full((len(arrays), 3), np.nan)
        config = self.scene.background_config() if self.scene is not None else None
        if config is not None:
            missing = np.asarray(arrays.missing, bool)[:, 0]
            out[:, 0] = background_series(
                (None if m else im for im, m in zip(arrays.images, missing)), config)
        loss = self.scene.sample_loss_config() if self.scene is not None else None
        if loss is not None and self.run.get('spans') is not None:
            out[:, 1:] = sample_loss_series(self.run['spans'], loss)
        return None if np.isnan(out).all() else out

    def block(self, scores: np.ndarray, thresholds: np.ndarray | None, **kw: Any
              ) -> dict[str, Any]:
        return baseline_block(scores, thresholds, self.arrays, self.intervals, self.sets,
                              alarm=self.alarm, scene=self.scene, evidence=self.evidence, **kw)


def score_baselines(engine: Any, run: dict[str, Any], intervals: Sequence[Any],
                    sets: dict[str, LabelSet | None], settle: np.ndarray,
                    train_bags: Sequence[str | Path], clean_bag: Path | None,
                    baseline_artifact: str | Path | None, topics: TopicConfig, device: str,
                    report: dict[str, Any], alarm: AlarmConfig,
                    threshold_offsets: Sequence[float] = (0.0, 0.0, 0.0),
                    scene: SceneConfig | None = None) -> dict[str, Any]:
    """Every baseline detector, scored on the same tuples under the same lifecycle and, when
    the model's thresholds follow the scene (``scene``), the same scene rule."""
    from lipfault_ros.evaluation.baselines import BASELINE_DETECTORS, ClassicalDetector

    ctx = _Context(engine, run, intervals, sets, settle, alarm, report['not_computed'], scene)
    out: dict[str, Any] = {}
    train, source = _training_tuples(engine, train_bags, clean_bag, topics)
    if not intervals:
        ctx.notes.append('baseline detection metrics: no fault truth in the bag')
    _stage1(ctx, out, train, source)
    if baseline_artifact is not None:
        _second_artifact(ctx, out, baseline_artifact, device, threshold_offsets)
    else:
        ctx.notes.append('baselines.no_modulation: no second artifact given '
                         '(--baseline-artifact, e.g. trained with modulation off)')
    if train is None:
        ctx.notes.append('baselines.isolation_forest / pca: no clean training tuples')
        return out
    for kind in BASELINE_DETECTORS:
        res = ClassicalDetector(kind, rule=CalibrationRule(alarm=alarm)).fit(train).score(
            ctx.arrays)
        out[kind] = ctx.block(res.scores, res.thresholds, flags=res.faults, levels=res.levels,
                              holds=res.holds, log_domain=True,
                              note=f'{kind} per modality on window/frame features, fitted on '
                                   f'clean training tuples ({source}), thresholds by the '
                                   f'model\'s calibration rule on the last 20 % of them')
        out[kind]['corrections'] = 'none: a detector only'
    return out


def _stage1(ctx: _Context, out: dict[str, Any], train: TupleArrays | None, source: str) -> None:
    """The stage-1 autoencoder of the same artifact: reconstruction error as the score."""
    try:
        ae, ae_out = _stage1_scores(ctx.engine, ctx.arrays, with_outputs=True)
    except (AttributeError, InputError) as exc:
        ctx.notes.append(f'baselines.stage1_autoencoder: the artifact gives no stage-1 '
                         f'reconstruction ({exc})')
        return
    thr = levels = holds = None
    if train is not None:
        scores = _stage1_scores(ctx.engine, train)
        rule = CalibrationRule(alarm=ctx.alarm)
        thr = np.array([calibrate(scores[:, i], train.stamps_ns, rule) for i in range(3)])
        levels = np.array([clean_level(scores[:, i]) for i in range(3)])
        holds = np.array([hold_level(scores[:, i], thr[i], rule) for i in range(3)])
    out['stage1_autoencoder'] = ctx.block(
        ae, thr, levels=levels, holds=holds, log_domain=True,
        note='reconstruction error (normalised MSE) of the stage-1 autoencoder of the same '
             'artifact, no compute block, no detection head; thresholds by the model\'s '
             f'calibration rule on clean training tuples ({source})' if thr is not None else
             'no clean training tuples: threshold-free metrics only')
    add_baseline_corrections(out['stage1_autoencoder'], ctx.run, ctx.intervals, ctx.settle,
                             ae_out.recon_images, ae_out.recon_wrench[:, -1],
                             ae_out.recon_joints[:, -1])


def _second_artifact(ctx: _Context, out: dict[str, Any], path: str | Path, device: str,
                     offsets: Sequence[float]) -> None:
    """A second artifact, with its own calibrated thresholds plus the model's offsets."""
    from lipfault_ros.inference import Engine

    engine, arrays = ctx.engine, ctx.arrays
    other = Engine.from_artifact(path, device=device)
    if tuple(other.joint_names) != tuple(engine.joint_names):
        raise ArtifactError(f'baseline artifact {path} has joints {list(other.joint_names)}, '
                            f'the model {list(engine.joint_names)}')
    other.set_threshold_offsets(offsets)
    same = other.image_size == engine.image_size
    res = other.infer_arrays(arrays.subset(slice(None)) if same
                             else _resized(arrays, other.image_size))
    name = 'no_modulation' if not getattr(other.artifact.config, 'modulation', True) \
        else 'baseline_artifact'
    out[name] = ctx.block(res.scores, np.asarray(res.thresholds), flags=res.faults,
                          levels=other.artifact.clean_levels,
                          holds=other.artifact.hold_levels + np.asarray(offsets, np.float64),
                          note=f'artifact {path} (its own calibrated thresholds, plus the '
                               f'threshold offsets of the model)')
    images = res.images if same else \
        _resized(dataclasses.replace(arrays, images=res.images), engine.image_size).images
    add_baseline_corrections(out[name], ctx.run, ctx.intervals, ctx.settle, images,
                             res.wrench[:, -1], res.joints[:, -1])


def _resized(arrays: TupleArrays, size: int) -> TupleArrays:
    import cv2

    images = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA)
                       for im in arrays.images])
    return dataclasses.replace(arrays, images=images)


def _training_tuples(engine: Any, train_bags: Sequence[str | Path], clean_bag: Path | None,
                     topics: TopicConfig) -> tuple[TupleArrays | None, str]:
    """Clean tuples to fit classical baselines on, at the model's image size."""
    from lipfault_ros.bags.reader import read_truth
    from lipfault_ros.evaluation.bag_tuples import assemble_bag, bag_sync_config

    bags = [Path(p) for p in train_bags]
    source = 'training bags ' + ', '.join(str(p) for p in bags)
    if not bags:
        if clean_bag is None:
            return None, ''
        bags = [clean_bag]
        source = (f'clean reference bag {clean_bag}, the clean version of the evaluated bag: '
                  f'optimistic, pass --train-bag for a fair comparison')
    tuples: list[SensorTuple] = []
    for bag in bags:
        tuples.extend(assemble_bag(bag, engine, topics, bag_sync_config(engine, bag, topics)))
    if not tuples:
        return None, ''
    arrays = TupleArrays.from_tuples(tuples, image_size=(engine.image_size, engine.image_size))
    intervals = [iv for b in bags for iv in read_truth(b, topics=topics)]
    labels = M.labels_from_intervals(arrays.stamps_ns, intervals).any(axis=1)
    keep = np.flatnonzero(~labels & ~np.asarray(arrays.missing).any(axis=1))
    return arrays.subset(keep), source


def _stage1_scores(engine: Any, arrays: TupleArrays, *, with_outputs: bool = False) -> Any:
    """(N, 3) stage-1 reconstruction error per modality, in the model's normalised units
    (and the BatchInference when ``with_outputs``)."""
    res = engine.infer_arrays(arrays, batch_size=64)
    st = engine.stats
    cam = np.mean(((np.asarray(res.recon_images, np.float64) - _model_size(arrays, engine))
                   / 255.0) ** 2, axis=(1, 2, 3))
    w_in = st.normalise_wrench(np.asarray(arrays.wrench, np.float32))
    w_rec = st.normalise_wrench(np.asarray(res.recon_wrench, np.float32))
    j_in = st.normalise_joints(np.asarray(arrays.joints, np.float32))
    j_rec = st.normalise_joints(np.asarray(res.recon_joints, np.float32))
    with np.errstate(invalid='ignore'):
        w = np.mean((np.asarray(w_in, np.float64) - w_rec) ** 2,
                    axis=tuple(range(1, np.ndim(w_in))))
        jj = np.mean((np.asarray(j_in, np.float64) - j_rec) ** 2,
                     axis=tuple(range(1, np.ndim(j_in))))
    scores = np.stack([cam, w, jj], axis=1)
    scores[~np.isfinite(scores)] = np.inf
    scores[np.asarray(arrays.missing, bool)] = np.inf
    return (scores, res) if with_outputs else scores


def _model_size(arrays: TupleArrays, engine: Any) -> np.ndarray:
    s = engine.image_size
    if arrays.images.shape[1:3] == (s, s):
        return np.asarray(arrays.images, np.float64)
    return np.asarray(_resized(arrays, s).images, np.float64)

