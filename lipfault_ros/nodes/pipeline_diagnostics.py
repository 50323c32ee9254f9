"""The pipeline's counters and its ~1 Hz ``/diagnostics`` statuses, built from the node's
state (the messages themselves are made by :mod:`lipfault_ros.ros.statuses`)."""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

from lipfault_ros.ros import statuses
from lipfault_ros.tuples import MODALITIES, Modality

__all__ = ['Counters', 'pipeline_stats', 'pipeline_statuses']


class Counters:
    """Figures the node keeps for diagnostics and benchmarks (guarded by the node's lock)."""

    def __init__(self) -> None:
        self.tuples_in = 0          # tuples handed to the worker
        self.tuples_out = 0         # tuples published
        self.dropped = 0            # replaced in the latest-only slot before inference
        self.infer_errors = 0
        self.model_problem = ''     # the last tuple the model refused, and why
        self.bad_input = {m: 0 for m in MODALITIES}
        self.problems: dict[Modality, str] = {}
        self.latency_ms: collections.deque[float] = collections.deque(maxlen=2000)
        self.model_ms_total = 0.0
        self.worker_ms_total = 0.0
        self.last_tuple_mono: int | None = None
        self.last_results: dict[Modality, Any] = {}
        self.flagged = {m: 0 for m in MODALITIES}  # tuples over threshold (before the alarm)


def pipeline_statuses(node: Any, now: int) -> list[Any]:
    """The model, sync and per-modality statuses of a :class:`PipelineNode` at ``now``
    (monotonic ns); advances the node's per-period snapshot."""
    name = node.get_name()
    hw = node.get_parameter('hardware_id').value
    with node.lock:
        c = node.counters
        tuples_out, dropped, tuples_in = c.tuples_out, c.dropped, c.tuples_in
        last = c.last_tuple_mono
        lat = list(c.latency_ms)[-200:]
        flagged = dict(c.flagged)
        bad = dict(c.bad_input)
        problems = dict(c.problems)
        results = dict(c.last_results)
        model_frac = c.model_ms_total / c.worker_ms_total if c.worker_ms_total else 0.0
        infer_errors, model_problem = c.infer_errors, c.model_problem
    with node.decide_lock:
        loss = node.decisions.sample_loss
        behind = list(loss.behind) if loss is not None else None
    held = sum(behind or ())
    prev = node.diag_snapshot or (now, tuples_out, dropped, flagged, held)
    dt = max((now - prev[0]) / 1e9, 1e-9)
    node.diag_snapshot = (now, tuples_out, dropped, flagged, held)
    sync_stats = node.assembler.stats if node.assembler is not None else None
    out = [statuses.model_diagnostic(
        f'{name}: model', state=node.lifecycle_state, error=node.last_error, model_problem=model_problem,
        artifact=node.p.model if node.p else '',
        device=str(node.engine.device) if node.engine is not None else '',
        latency_ms=lat, model_fraction=model_frac, refused=infer_errors, hardware_id=hw)]
    if node.lifecycle_state == 'active':
        out.append(statuses.sync_diagnostic(
            f'{name}: sync', rate=(tuples_out - prev[1]) / dt,
            idle_s=(now - (last or node.activated_mono)) / 1e9,
            no_tuple_timeout=node.p.no_tuple_timeout, published=tuples_out,
            synced=tuples_in, dropped=dropped, drop_rate=(dropped - prev[2]) / dt,
            sync_stats=sync_stats, hardware_id=hw, behind=behind,
            behind_in_period=held - prev[4]))
        with node.decide_lock:
            alarms = node.alarms.status
        for m in MODALITIES:
            silent = sync_stats is not None and m in sync_stats.silent
            res = results.get(m)
            out.append(statuses.modality_diagnostic(
                f'{name}: {m}', node.p.topic(m),
                missing=silent or (res is not None and res.missing),
                problem=problems.get(m) or (sync_stats.problems.get(m) if sync_stats else ''),
                silent_periods=node.p.silent_periods, alarm=alarms[m],
                flagged_in_period=flagged[m] - prev[3][m], result=res,
                bad_messages=bad[m],
                rejected=sync_stats.rejected[m] if sync_stats else 0, hardware_id=hw))
    return out


def pipeline_stats(node: Any) -> dict[str, Any]:
    """Figures for benchmarks and tests: tuples in/out, dropped, latency percentiles (ms,
    arrival of the last input to publication), share of worker time in the model."""
    with node.lock:
        c = node.counters
        lat = np.array(c.latency_ms) if c.latency_ms else np.array([np.nan])
        return {'tuples_in': c.tuples_in, 'tuples_out': c.tuples_out,
                'dropped': c.dropped, 'infer_errors': c.infer_errors,
                'latency_p50_ms': float(np.percentile(lat, 50)),
                'latency_p99_ms': float(np.percentile(lat, 99)),
                'latency_max_ms': float(np.max(lat)),
                'model_fraction': (c.model_ms_total / c.worker_ms_total
                                   if c.worker_ms_total else float('nan')),
                'bad_input': {m.value: n for m, n in c.bad_input.items()},
                'sync': node.assembler.stats if node.assembler is not None else None,
                # backwards jumps the message_filters backend recovered from (this activation)
                'mf_resets': mf.resets if (mf := node.mf_inputs) is not None else 0}
