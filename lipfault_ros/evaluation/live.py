"""Scoring a live replay: the pipeline's recorded answers, joined with the tuples the played range
should have given, scored with exactly the code of offline evaluation.

:func:`score_live` takes the :class:`lipfault_ros.nodes.replay.ReplayNode` after a play (its
recorded ``fault_status`` and corrected outputs, and its playing bookkeeping); the bag is
assembled offline with the same synchroniser, each answer is joined to its tuple by stamp (loop
attribution with and without restamping) and the result goes through
:func:`lipfault_ros.evaluation.collect.collect` and
:func:`lipfault_ros.evaluation.scoring.score_outputs`. The flags are the pipeline's lifecycle
output (``active`` in its fault status), the same decision offline evaluation takes through
:class:`lipfault_ros.alarm.FaultAlarms`. No rclpy import here: messages are read by attribute.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from lipfault_ros.bags.playback import Played
from lipfault_ros.errors import BagError
from lipfault_ros.tuples import MODALITIES, Modality, SensorTuple, stamp_to_ns

__all__ = ['score_live', 'status_verdict']

ReplayNode = Any  # lipfault_ros.nodes.replay.ReplayNode (not imported: it needs rclpy)


def _values(status: Any) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def _float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float('nan')


def _played_tuples(node: ReplayNode, artifact: Any, clean_bag: str | Path | None
                   ) -> tuple[Any, list[SensorTuple], list[SensorTuple] | None, list[Any]]:
    """The synchroniser, the tuples the played range should give (and their clean partners)
    and the truth intervals of the played range."""
    from lipfault_ros.bags.reader import read_truth
    from lipfault_ros.evaluation.bag_tuples import assemble_bag, bag_sync_config

    topics = node.sensor_topics
    sync = bag_sync_config(artifact, node.bag, topics)
    lo, hi = node.played.first_stamp, node.played.last_stamp
    expected = [t for t in assemble_bag(node.bag, artifact, topics, sync)
                if lo <= t.stamp_ns <= hi]
    clean_tuples = None
    if clean_bag:
        clean_tuples = [t for t in assemble_bag(Path(clean_bag), artifact, topics, sync)
                        if lo <= t.stamp_ns <= hi]
    intervals = [iv for iv in read_truth(node.bag, topics=topics)
                 if iv.end_ns > lo and iv.start_ns <= hi]
    return sync, expected, clean_tuples, intervals


def _answers(status: list[tuple[int, Any]], camera_wall: dict[int, list[tuple[int, int]]],
             played: Played, loops: int, restamp: bool
             ) -> tuple[dict[int, tuple[Any, int, int]], int]:
    """Analysis stamp (bag stamp + loop * shift) -> (status msg, end-to-end ns, receive ns),
    and the number of duplicate answers."""
    lo, shift = played.first_stamp, played.shift_ns

    def loop_of(stamp: int, received: int) -> tuple[int, int]:
        """(loop, stamp as in the bag) of an answer with wire stamp ``stamp``."""
        if restamp:
            k = int(max(0, min(loops - 1, (stamp - lo) // shift))) if shift else 0
            return k, stamp - k * shift
        walls = [w for w in camera_wall.get(stamp, []) if w[1] <= received]
        return (walls[-1][0] if walls else 0), stamp

    answers: dict[int, tuple[Any, int, int]] = {}
    duplicates = 0
    for received, msg in status:
        s = stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec)
        k, orig = loop_of(s, received)
        key = orig + k * shift
        sent = [w for (kk, w) in camera_wall.get(s, []) if kk == k]
        e2e = received - sent[-1] if sent else -1
        if key in answers:
            duplicates += 1
        answers[key] = (msg, e2e, received)
    return answers, duplicates


def status_verdict(msg: Any) -> tuple[np.ndarray, np.ndarray, bool, float]:
    """Scores, flags, bypassed and latency of one ``fault_status``. The flag is the lifecycle
    output (``active``) where the pipeline publishes it, else the raw per-tuple ``fault``;
    a missing modality is flagged. The score is scene-relative (``score - scene_offset``) where
    the pipeline publishes the offset, as offline evaluation scores it."""
    by_name = {st.name.rsplit(':', 1)[-1].strip(): _values(st) for st in msg.status}
    scores, flags = np.full(3, np.nan), np.zeros(3, bool)
    bypassed, latency = False, float('nan')
    for i, m in enumerate(MODALITIES):
        v = by_name.get(m.value, {})
        missing = v.get('missing') == 'true'
        offset = _float(v.get('scene_offset', '0'))
        scores[i] = np.nan if missing else _float(v.get('score')) - (
            offset if np.isfinite(offset) else 0.0)
        flag = v.get('active') if 'active' in v else v.get('fault')
        flags[i] = flag == 'true' or missing
        bypassed = v.get('bypassed') == 'true'
        latency = _float(v.get('latency_ms'))
    return scores, flags, bypassed, latency


def _live_judge(answers: dict[int, tuple[Any, int, int]], corrected: dict[str, list[Any]],
                names: tuple[str, ...], played: Played, loops: int, restamp: bool) -> Any:
    """A judge (see :func:`lipfault_ros.evaluation.collect.collect`) reading the pipeline's
    answers and corrected outputs."""
    from lipfault_ros import codec
    from lipfault_ros.evaluation.collect import Judgement

    lo, shift = played.first_stamp, played.shift_ns
    # corrected outputs by wire stamp; joined to an answer by the nearest receive time
    outs: dict[str, dict[int, list[tuple[int, Any]]]] = {'image': {}, 'wrench': {},
                                                         'joints': {}}
    for name, items in corrected.items():
        for received, msg in items:
            s = stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec)
            outs[name].setdefault(s, []).append((received, msg))

    def output(name: str, wire: int, when: int) -> Any:
        found = outs[name].get(wire)
        return min(found, key=lambda item: abs(item[0] - when))[1] if found else None

    def judge(t: SensorTuple) -> Any:
        found = answers.get(t.stamp_ns)
        if found is None:
            return None
        msg, _, when = found
        k = int(max(0, min(loops - 1, (t.stamp_ns - lo) // shift))) if shift else 0
        back = 0 if restamp else k * shift  # wire stamps repeat without restamping
        scores, flags, bypassed, latency = status_verdict(msg)
        img = output('image', t.stamps_ns.get(Modality.CAMERA, t.stamp_ns) - back, when)
        image = codec.image_sample(img).image if img is not None else None
        w = output('wrench', t.stamps_ns.get(Modality.WRENCH, -1) - back, when)
        wrench = codec.wrench_sample(w).values if w is not None else np.full(6, np.nan)
        jm = output('joints', t.stamps_ns.get(Modality.JOINTS, -1) - back, when)
        joints = np.full((len(names), 3), np.nan)
        if jm is not None:
            js = codec.joint_sample(jm)
            if set(names) <= set(js.names):  # matched by name, never by index
                order = [js.names.index(n) for n in names]
                joints = np.stack([js.position[order], js.velocity[order], js.effort[order]],
                                  -1)
        return Judgement(scores, flags, bypassed, latency, image, wrench, joints)
    return judge


def _live_block(node: ReplayNode, run: dict[str, Any], answers: dict[int, Any], status: list,
                corrected: dict[str, list[Any]], n_per_loop: int, loops: int,
                duplicates: int) -> dict[str, Any]:
    """``report['live']``: what was expected, answered, dropped and how fast."""
    played = node.played
    lo, shift = played.first_stamp, played.shift_ns
    e2e = np.array([v[1] / 1e6 for v in answers.values() if v[1] >= 0], np.float64)
    n_expected = n_per_loop * loops
    n_answered = len(run['stamps'])
    return {
        'tuples_expected': n_expected, 'tuples_received': n_answered,
        'tuples_dropped': n_expected - n_answered,
        'drop_rate': (n_expected - n_answered) / n_expected if n_expected else None,
        'status_messages': len(status), 'duplicate_answers': duplicates,
        'answers_without_expected_tuple': len(answers) - n_answered,
        'loops': loops, 'restamp': node.p.restamp, 'rate': node.p.rate,
        'tuples_expected_per_loop': n_per_loop,
        'answered_per_loop': [int(v) for v in np.bincount(
            np.clip((np.asarray(run['stamps']) - lo) // max(shift, 1), 0, loops - 1)
            .astype(int), minlength=loops)],
        'loop_shift_ns': shift,
        'published': dict(played.published),
        'corrected_messages': {k: len(v) for k, v in corrected.items()},
        'pipeline_sync_last': dict(node.pipeline_sync),
        'end_to_end_ms_p50': float(np.percentile(e2e, 50)) if e2e.size else None,
        'end_to_end_ms_p95': float(np.percentile(e2e, 95)) if e2e.size else None,
        'end_to_end_ms': e2e.tolist(),
        'definition': 'end to end = receipt of the fault status - publication of the tuple\'s '
                      'camera frame (wall clock, this process); dropped = tuples the offline '
                      'synchroniser builds from the played range that the pipeline never '
                      'answered',
    }


def score_live(node: ReplayNode, *, model: str | Path, clean_bag: str | Path | None = None,
               out_dir: str | Path | None = None, overwrite: bool = False,
               plots: bool = True, alarm: Any = None,
               threshold_offsets: Sequence[float] | None = None,
               scene: Any = None) -> dict[str, Any]:
    """Score what the pipeline published during a replay (see the module docstring).

    Flags are the pipeline's lifecycle output (``active`` of its fault status; the raw
    ``fault`` from a pipeline that does not publish it). ``alarm`` (an AlarmConfig) and
    ``threshold_offsets`` and ``scene`` (a SceneConfig) are the pipeline's settings when known
    (``replay`` reads them from the pipeline it started); None: the node's defaults, and
    ``report['lifecycle']`` says so.
    """
    from lipfault_ros.alarm import AlarmConfig
    from lipfault_ros.artifact import load_artifact
    from lipfault_ros.evaluation import offline
    from lipfault_ros.evaluation.report import write_report

    artifact = load_artifact(model)
    played = node.played
    if played.first_stamp is None:
        raise BagError(f'nothing was played from {node.bag}')
    loops, shift, restamp = max(played.loops_done, 1), played.shift_ns, node.p.restamp
    sync, expected, clean_tuples, intervals = _played_tuples(node, artifact, clean_bag)
    status, corrected, camera_wall = node.recorded()
    answers, duplicates = _answers(status, camera_wall, played, loops, restamp)
    names = tuple(artifact.joint_names)
    known = alarm is not None
    alarm = alarm if known else AlarmConfig()
    offsets = tuple(threshold_offsets) if threshold_offsets is not None else (0.0, 0.0, 0.0)
    thresholds = np.asarray(artifact.thresholds, np.float64) + np.asarray(offsets, np.float64)
    truth = _looped_intervals(intervals, loops, shift)
    run = offline.collect(_live_judge(answers, corrected, names, played, loops, restamp),
                          _looped(expected, loops, shift),
                          _looped(clean_tuples, loops, shift) if clean_tuples is not None
                          else None,
                          truth, joint_names=names,
                          image_size=artifact.image_size, wrench_window=artifact.wrench_window,
                          joints_window=artifact.joints_window, thresholds=thresholds)
    if len(run['stamps']) == 0:
        raise BagError(f'the pipeline answered none of the {len(expected) * loops} tuples of '
                       f'{node.bag}: is it running with the artifact {model} and these topics?')
    report, plot_data = offline.score_outputs(
        run['outputs'], run['records'], truth, sync=sync,
        clean=run['clean_records'], images=run['images'], mode='live', changes=run['changes'],
        release=alarm.clear_n)
    report['live'] = _live_block(node, run, answers, status, corrected, len(expected), loops,
                                 duplicates)
    report['lifecycle'] = _lifecycle(alarm, thresholds, offsets, scene, artifact, known, status)
    report['inputs'] = {'bag': str(node.bag), 'clean_bag': str(clean_bag) if clean_bag else None,
                        'artifact': str(model), 'pipeline': node.p.pipeline,
                        'start_offset_s': node.p.start_offset, 'duration_s': node.p.duration}
    report['baselines'] = {}
    if out_dir:
        write_report(report, Path(out_dir), overwrite=overwrite, plots=plots,
                     snippets={**run['snippets'], **plot_data})
    return report


def _looped(tuples: Sequence[SensorTuple], loops: int, shift: int) -> Iterator[SensorTuple]:
    """``tuples`` once per played loop, the k-th loop's stamps moved by k * ``shift`` ns (the
    replay restamps each loop so time runs on)."""
    for k in range(loops):
        for t in tuples:
            yield dataclasses.replace(
                t, stamp_ns=t.stamp_ns + k * shift,
                stamps_ns={m: v + k * shift for m, v in t.stamps_ns.items()})


def _looped_intervals(intervals: Sequence[Any], loops: int, shift: int) -> list[Any]:
    """The fault truth of every played loop (see :func:`_looped`)."""
    from lipfault_ros.truth import FaultInterval

    return [FaultInterval(iv.modality, iv.kind, iv.severity, iv.start_ns + k * shift,
                          iv.end_ns + k * shift)
            for k in range(loops) for iv in intervals]


def _lifecycle(alarm: Any, thresholds: np.ndarray, offsets: Sequence[float], scene: Any,
               artifact: Any, known: bool, status: list) -> dict[str, Any]:
    """``report['lifecycle']``: the pipeline's settings (its defaults when not ``known``) and
    which of its keys the flags were read from."""
    from lipfault_ros.evaluation import offline
    from lipfault_ros.scene_thresholds import SceneConfig

    block = offline.lifecycle_block(
        alarm, thresholds, offsets, scene=scene or SceneConfig(),
        clean_levels=artifact.clean_levels, hold_levels=artifact.hold_levels,
        note='' if known else 'the pipeline node runs elsewhere and its parameters were not '
                              'read: these are the node\'s default alarm_* and scene_* '
                              'settings and zero threshold offsets; the flags are whatever '
                              'the node published (its "active" key)')
    published = any('active' in _values(st) for _, msg in status[:1] for st in msg.status)
    block['flags_source'] = (
        'active: the lifecycle output the pipeline published' if published else
        'fault: the raw per-tuple flag (the pipeline published no lifecycle state)')
    return block
