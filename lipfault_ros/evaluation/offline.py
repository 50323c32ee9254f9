"""Offline evaluation: score a model artifact on a (fault-injected) bag, tuple by tuple.

The bag is read in header-stamp order, put together by the live node's synchroniser
(:func:`lipfault_ros.sync.assemble`) and every tuple goes through :meth:`Engine.infer` and the
fault lifecycle (:class:`lipfault_ros.alarm.FaultAlarms`), the calls the live node makes, so the
numbers here are what the robot would have seen (minus transport).

Ground truth comes from the bag's truth topic. The clean reference for correction errors and
for the effective labels (:mod:`lipfault_ros.evaluation.labels`: was the data actually changed?)
is a second bag, the clean recording the faulty one was injected from (``lipfault inject`` keeps
stamps, so tuples line up by stamp); without it, correction errors against the clean signal and
the effective block cannot be computed and the report says so. Without truth, detection metrics
cannot be computed and the report says that instead.

Baselines are scored on the same tuples under the same lifecycle
(:mod:`lipfault_ros.evaluation.comparison`). The per-tuple pass is
:mod:`lipfault_ros.evaluation.collect`, the numbers :mod:`lipfault_ros.evaluation.scoring`.

The output folder is written under a temporary name and renamed when complete; a failed run
leaves no folder that looks finished.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lipfault_ros.alarm import AlarmConfig
from lipfault_ros.anchor import DEFAULT_TAU_S
from lipfault_ros.decisions import FaultDecisions
from lipfault_ros.errors import ArtifactError, BagError
from lipfault_ros.evaluation import metrics as M
from lipfault_ros.evaluation.bag_tuples import assemble_bag, bag_sync_config
# re-exported: the live replay and older callers import these from here
from lipfault_ros.evaluation.collect import Judgement, Outputs, TupleRecord, collect
from lipfault_ros.evaluation.scoring import score_outputs, settle_spans
from lipfault_ros.scene_thresholds import SceneConfig, SceneReference
from lipfault_ros.topics import TopicConfig
from lipfault_ros.tuples import MODALITIES, Modality, SensorTuple

__all__ = ['Judgement', 'Outputs', 'TupleRecord', 'assemble_bag', 'check_compatible', 'collect',
           'engine_judge', 'evaluate', 'lifecycle_block', 'score_outputs']

_log = logging.getLogger(__name__)


def check_compatible(engine: Any, bag: Path, topics: TopicConfig) -> dict[str, Any]:
    """Refuse a bag the artifact was not made for: empty bag, joints the model does not know,
    an image size other than the one the artifact was trained from. Returns bag facts."""
    from lipfault_ros.bags.reader import BagReader, read_samples

    with BagReader(bag, topics=topics) as reader:
        info = reader.check()
        names = reader.joint_names()
    frames = read_samples(bag, topics=topics, modalities=(Modality.CAMERA,))
    try:
        first = next(frames, None)
    finally:
        frames.close()  # releases the bag
    if first is None:
        raise BagError(f'bag {bag} holds no decodable camera frame on {topics.camera}')
    image = first[1].image
    absent = [n for n in engine.joint_names if n not in names]
    if absent:
        raise ArtifactError(f'artifact {engine.artifact.path} was trained for joints '
                            f'{list(engine.joint_names)}, but bag {bag} has {list(names)} '
                            f'(absent: {absent}); evaluate with an artifact trained on this robot')
    summary = dict(getattr(engine.artifact, 'summary', {}) or {})
    trained_hw = summary.get('input_image_hw') or summary.get('source_image_hw')
    if trained_hw is not None and tuple(int(v) for v in trained_hw) != image.shape[:2]:
        raise ArtifactError(f'artifact {engine.artifact.path} was trained on {trained_hw[0]}x'
                            f'{trained_hw[1]} images, but bag {bag} has {image.shape[0]}x'
                            f'{image.shape[1]} on {topics.camera}; evaluate with an artifact '
                            f'trained on this camera')
    h, w = image.shape[:2]
    if max(h, w) / min(h, w) > 2.0:
        raise ArtifactError(f'bag {bag} has {h}x{w} images on {topics.camera}; the artifact '
                            f'works on square {engine.image_size}x{engine.image_size} images and '
                            f'would distort these beyond use')
    return {'image_hw': [h, w], 'joint_names': list(names), 'duration_s': info.duration_ns / 1e9,
            'counts': dict(info.counts)}


def _inputs(bag: Path, clean_path: Path | None, artifact: str | Path,
            train_bags: Sequence[str | Path], topics: TopicConfig, facts: dict[str, Any],
            engine: Any) -> dict[str, Any]:
    return {'bag': str(bag), 'clean_bag': str(clean_path) if clean_path else None,
            'artifact': str(artifact), 'train_bags': [str(p) for p in train_bags],
            'topics': dataclasses.asdict(topics), 'bag_facts': facts,
            'model': {'image_size': engine.image_size, 'wrench_window': engine.wrench_window,
                      'joints_window': engine.joints_window,
                      'joint_names': list(engine.joint_names),
                      'modulation': bool(getattr(engine.artifact.config, 'modulation', True))}}


def _clean_reference(engine: Any, clean_bag: str | Path | None, topics: TopicConfig
                     ) -> Path | None:
    """The clean reference bag, checked: compatible and free of recorded faults."""
    from lipfault_ros.bags.reader import read_truth

    if clean_bag is None:
        return None
    path = Path(clean_bag)
    check_compatible(engine, path, topics)
    if read_truth(path, topics=topics):
        raise BagError(f'clean reference bag {path} records faults in its truth; pass the clean '
                       f'recording the evaluated bag was injected from')
    return path


def evaluate(bag: str | Path, artifact: str | Path, *, out_dir: str | Path,
             clean_bag: str | Path | None = None, train_bags: Sequence[str | Path] = (),
             baselines: bool = True, baseline_artifact: str | Path | None = None,
             topics: TopicConfig | None = None, device: str = 'cpu', overwrite: bool = False,
             plots: bool = True, progress: bool = False, alarm: AlarmConfig | None = None,
             threshold_offsets: Sequence[float] = (0.0, 0.0, 0.0),
             scene: SceneConfig | None = None) -> dict[str, Any]:
    """Score ``artifact`` on ``bag`` and write ``out_dir`` (report.json, report.md, plots).

    ``alarm`` is the fault lifecycle the decisions (the model's and every baseline's) go
    through (the node's defaults when None), ``threshold_offsets`` are added to the stored
    thresholds, as the node's ``threshold_offset_*`` parameters do, and ``scene`` is how the
    thresholds follow the scene (:mod:`lipfault_ros.scene_thresholds`; the node's default when
    None); all are recorded in the report's ``lifecycle`` block.

    Returns the report as a dict (the content of ``report.json``). See the module docstring
    for what is compared with what, and :mod:`lipfault_ros.evaluation.metrics` for every
    definition.
    """
    from lipfault_ros.bags.reader import read_truth
    from lipfault_ros.evaluation.report import prepare_out_dir, write_report
    from lipfault_ros.inference import Engine

    bag, out_dir, topics = Path(bag), Path(out_dir), topics or TopicConfig()
    if not bag.exists():
        raise FileNotFoundError(f'bag {bag} does not exist')
    prepare_out_dir(out_dir, overwrite=overwrite, check_only=True)
    engine = Engine.from_artifact(artifact, device=device)
    engine.set_threshold_offsets(threshold_offsets)
    alarm = alarm or AlarmConfig()
    scene = scene or SceneConfig()
    facts = check_compatible(engine, bag, topics)
    sync = bag_sync_config(engine, bag, topics)
    intervals = list(read_truth(bag, topics=topics))
    clean_path = _clean_reference(engine, clean_bag, topics)
    started = time.time()
    run = _run_model(engine, bag, clean_path, topics, sync, intervals, alarm=alarm,
                     keep_arrays=baselines, progress=progress, scene=scene)
    n = len(run['stamps'])
    if n == 0:
        raise BagError(f'bag {bag} gives no synchronised tuple (camera, wrench and joints never '
                       f'line up within the synchroniser slop); nothing to evaluate')
    _log.info('model scored %d tuples in %.1f s', n, time.time() - started)
    if clean_path is not None and run['aligned'] < 0.5 * n:
        raise BagError(f'clean reference bag {clean_path} lines up with only {run["aligned"]} of '
                       f'the {n} tuples of {bag} (by stamp); pass the clean recording {bag} was '
                       f'injected from (lipfault inject keeps the stamps)')
    report, plot_data = score_outputs(run['outputs'], run['records'], intervals, sync=sync,
                                      clean=run['clean_records'], images=run['images'],
                                      mode='offline', changes=run['changes'],
                                      release=alarm.clear_n)
    report['inputs'] = _inputs(bag, clean_path, artifact, train_bags, topics, facts, engine)
    report['tuples']['clean_aligned'] = run['aligned']
    report['lifecycle'] = lifecycle_block(alarm, engine.thresholds, threshold_offsets,
                                          scene=scene, clean_levels=engine.artifact.clean_levels,
                                          hold_levels=engine.artifact.hold_levels)
    report['baselines'] = _baselines(engine, run, intervals, sync, report, alarm=alarm,
                                     enabled=baselines, train_bags=train_bags,
                                     clean_bag=clean_path, baseline_artifact=baseline_artifact,
                                     topics=topics, device=device,
                                     threshold_offsets=threshold_offsets, scene=scene)
    report['timing'] = {'evaluation_s': time.time() - started}
    write_report(report, out_dir, overwrite=overwrite, plots=plots,
                 snippets={**run['snippets'], **plot_data})
    return report


def _baselines(engine: Any, run: dict[str, Any], intervals: Sequence[Any], sync: Any,
               report: dict[str, Any], *, alarm: AlarmConfig, enabled: bool,
               **kw: Any) -> dict[str, Any]:
    """Every baseline, on the model's tuples and labels, under the model's lifecycle."""
    from lipfault_ros.evaluation.comparison import score_baselines
    from lipfault_ros.evaluation.scoring import label_sets

    if not enabled:
        report['not_computed'].append('baselines: disabled (--no-baselines)')
        return {}
    stamps = run['arrays'].stamps_ns
    settle = M.settle_mask(stamps, intervals, settle_spans(sync))
    sets = label_sets(stamps, intervals, settle, run['changes'], alarm.clear_n)
    return score_baselines(engine, run, intervals, sets, settle, kw['train_bags'],
                           kw['clean_bag'], kw['baseline_artifact'], kw['topics'], kw['device'],
                           report, alarm, kw['threshold_offsets'], kw['scene'])


def engine_judge(engine: Any, alarm: AlarmConfig | None = None,
                 anchor_tau_s: float = DEFAULT_TAU_S, scene: SceneConfig | None = None) -> Any:
    """A judge that runs each tuple through :class:`~lipfault_ros.decisions.FaultDecisions`,
    as the live node does: ``flags`` are the raised alarms (or missing), and the outputs are
    corrected and anchored exactly where the node would have. ``alarm=None`` uses the defaults
    the node ships with, and ``scene=None`` its scene reference
    (:mod:`lipfault_ros.scene_thresholds`); the scores are the scene-relative ones, what the
    calibrated threshold judges."""
    decisions = FaultDecisions(alarm, anchor_tau_s, scene, engine.artifact.clean_levels)

    def judge(t: SensorTuple) -> Judgement:
        inf, status = decisions.infer(engine, t)
        return Judgement(
            np.array([inf.results[m].relative_score for m in MODALITIES], np.float64),
            np.array([status[m].active or inf.results[m].missing for m in MODALITIES]),
            bool(inf.bypassed), float(inf.latency_ms), inf.image,
            np.asarray(inf.wrench, np.float64),
            np.stack([inf.joint_position, inf.joint_velocity, inf.joint_effort], axis=-1))
    return judge


def lifecycle_block(alarm: AlarmConfig, thresholds: Sequence[float],
                    offsets: Sequence[float], note: str = '', *,
                    scene: SceneConfig | None = None,
                    clean_levels: Sequence[float] | None = None,
                    hold_levels: Sequence[float] | None = None) -> dict[str, Any]:
    """The settings the flags of a report were taken under (``report['lifecycle']``):
    ``scene`` is None when neither the thresholds nor the camera background followed the
    scene (no settings, or an artifact without clean levels and the background off)."""
    levels = np.full(3, np.nan) if clean_levels is None else np.asarray(clean_levels, float)
    follows = scene is not None and (bool(SceneReference(scene, levels).enabled.any())
                                     or scene.background)
    thr = np.asarray(thresholds, np.float64)
    hold = thr - alarm.hold_margins(thr - np.asarray(offsets, np.float64), hold_levels)
    out = {**alarm.as_dict(),
           'thresholds': {m.value: float(thr[i]) for i, m in enumerate(MODALITIES)},
           'hold_levels': {m.value: float(hold[i]) for i, m in enumerate(MODALITIES)},
           'threshold_offsets': {m.value: float(offsets[i]) for i, m in enumerate(MODALITIES)},
           'flags': 'fault alarm raised by the lifecycle (raise_k of the last raise_n tuples '
                    'over threshold, cleared after clear_n tuples under the hold level: the '
                    'score 0.1 % of clean calibration tuples exceed, moved with the threshold; '
                    'the threshold itself with hold off) or modality '
                    'missing; scores are the per-tuple scores (scene-relative where the '
                    'threshold follows the scene; raised to threshold + evidence where the '
                    'camera background flags a frame); baselines go through the same '
                    'lifecycle and background',
           'scene': {**scene.as_dict(),
                     'clean_levels': {m.value: float(levels[i])
                                      for i, m in enumerate(MODALITIES)}} if follows else None}
    if note:
        out['note'] = note
    return out


def _run_model(engine: Any, bag: Path, clean_bag: Path | None, topics: TopicConfig, sync: Any,
               intervals: Sequence[Any], *, alarm: AlarmConfig, keep_arrays: bool,
               progress: bool, scene: SceneConfig | None = None) -> dict[str, Any]:
    """Every tuple of ``bag`` through ``engine.infer`` and the fault lifecycle, joined by stamp
    with the clean bag."""
    faulty = assemble_bag(bag, engine, topics, sync)
    clean_iter = assemble_bag(clean_bag, engine, topics, sync) if clean_bag else None
    return collect(engine_judge(engine, alarm, scene=scene), faulty, clean_iter, intervals,
                   joint_names=tuple(engine.joint_names), image_size=engine.image_size,
                   wrench_window=engine.wrench_window, joints_window=engine.joints_window,
                   thresholds=np.asarray(engine.thresholds, np.float64),
                   keep_arrays=keep_arrays, progress=progress)
