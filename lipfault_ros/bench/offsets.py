"""What tuning the thresholds buys: false-alarm events against detection, per threshold offset.

The stored thresholds are one point of a trade-off, and ``threshold_offset_*`` (the node's
parameters, ``lipfault eval --threshold-offset``) moves a deployment along it without
retraining. To show where that point sits and what a step either way costs, the quality
benchmark runs the fault lifecycle again over the per-tuple scores its reports recorded, with
each modality's threshold and hold level moved by every offset of :data:`OFFSETS` (the way an
offset moves them live, :meth:`~lipfault_ros.alarm.AlarmConfig.hold_margins`), and counts per
modality:

- ``events_per_hour``: false-alarm events on the clean runs (held-out episodes and unseen
  scenes), with their 95 % upper bound;
- ``recall``: the share of the held-out episodes' effectively faulty tuples under an alarm;
- ``false_alarms_per_1000``: alarms on their effectively clean tuples.

At the offsets a report ran with (0 in the benchmark) the rerun must give its own lifecycle
flags (``matches_reports`` says whether it did for every report): the curve is the node's
rule, not an imitation of it. A camera whose threshold follows the scene keeps the scene
reference of the run (its recorded scores are already scene-relative), so its curve is close
but not exact away from the run's offset.

``lipfault offsets --faulty R... --clean R...`` draws the same curve from ``lipfault eval``
reports of a user's own recordings (fault-injected bags, clean bags of the cell), where the
thresholds matter.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lipfault_ros.alarm import AlarmConfig
from lipfault_ros.bench.quality_report import clean_hours, poisson_upper, rising_edges
from lipfault_ros.errors import InputError
from lipfault_ros.evaluation.comparison import held_flags, lifecycle_flags
from lipfault_ros.tuples import MODALITIES

__all__ = ['OFFSETS', 'add_arguments', 'format_offsets', 'load_report', 'main',
           'offset_curves', 'plot_offsets', 'quietest']

#: logit units added to every stored threshold (0: as calibrated)
OFFSETS = (-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0)


def _alarm(report: dict[str, Any]) -> AlarmConfig:
    life = report['lifecycle']
    return AlarmConfig(raise_k=life['raise_k'], raise_n=life['raise_n'],
                       clear_n=life['clear_n'], latch=life['latch'], hold=life['hold'])


def _rerun(report: dict[str, Any], offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) lifecycle flags of ``report``'s scores with the stored thresholds and their hold
    levels moved by ``offsets`` (3,), and (N, 3) which tuples lacked the modality.

    The report's thresholds are those it ran under, its own ``threshold_offsets`` included;
    they are taken off first, so an offset here means what ``threshold_offset_*`` means. A
    score JSON cannot hold is None: NaN for a missing modality, +inf for a non-finite input (a
    forced fault). ``series['missing']`` tells them apart; a report without it has every None
    taken as missing."""
    s, life = report['series'], report['lifecycle']
    names = [m.value for m in MODALITIES]
    none = np.array([[v is None for v in s['scores'][m]] for m in names]).T
    missing = (np.array([s['missing'][m] for m in names], bool).T if 'missing' in s
               else none)
    scores = np.array([[np.inf if v is None else v for v in s['scores'][m]] for m in names],
                      float).T
    thr = np.array([life['thresholds'][m] for m in names], float)
    holds = np.array([life['hold_levels'][m] for m in names], float)
    alarm = _alarm(report)
    moved = thr - _run_offsets(report) + np.asarray(offsets, float)
    held = held_flags(scores, moved, moved - alarm.hold_margins(thr, holds), alarm,
                      log_domain=False)
    stamps = np.array(s['stamps_ns'], np.int64)
    return lifecycle_flags(scores > moved[None, :], missing, stamps, alarm, held), missing


def _run_offsets(report: dict[str, Any]) -> np.ndarray:
    """(3,) the threshold offsets ``report`` ran with (0 where it does not say)."""
    given = report['lifecycle'].get('threshold_offsets') or {}
    return np.array([float(given.get(m.value, 0.0)) for m in MODALITIES])


def offset_curves(faulty: Sequence[dict[str, Any]], clean: Sequence[dict[str, Any]],
                  offsets: Sequence[float] = OFFSETS) -> dict[str, Any]:
    """Per modality, one row per offset (see the module docstring), from the reports of the
    faulty held-out episodes and of the clean runs."""
    names = [m.value for m in MODALITIES]
    hours = sum(clean_hours(r) for r in clean)
    matches = all(
        np.array_equal(_rerun(r, _run_offsets(r))[0],
                       np.array([r['series']['flags'][m] for m in names], bool).T)
        for r in list(faulty) + list(clean))
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in names}
    for offset in offsets:
        events = np.zeros(3)
        hit, pos, fa, neg = np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3)
        for r in clean:
            flags, missing = _rerun(r, np.full(3, offset))
            events += rising_edges(flags & ~missing)
        for r in faulty:
            flags, missing = _rerun(r, np.full(3, offset))
            up = flags & ~missing
            s = r['series']
            eff = np.array([s['effective_labels'][m] for m in names], bool).T & ~missing
            out = np.array([s['effective_excluded'][m] for m in names], bool).T
            ok = ~eff & ~out & ~missing
            hit += (up & eff).sum(0)
            pos += eff.sum(0)
            fa += (up & ok).sum(0)
            neg += ok.sum(0)
        for i, m in enumerate(names):
            rows[m].append({
                'offset': float(offset), 'events': int(events[i]),
                'events_per_hour': float(events[i] / hours) if hours else None,
                'events_per_hour_upper95': (poisson_upper(int(events[i])) / hours
                                            if hours else None),
                'recall': float(hit[i] / pos[i]) if pos[i] else None,
                'false_alarms_per_1000': float(1000 * fa[i] / neg[i]) if neg[i] else None})
    return {'offsets': [float(o) for o in offsets], 'clean_hours': float(hours),
            'matches_reports': matches, 'rows': rows}


def _cell(v: float | None, digits: int = 1) -> str:
    return '-' if v is None else f'{v:.{digits}f}'


def format_offsets(curves: dict[str, Any], target: float = 1.0) -> list[str]:
    """quality.md's section on the offsets: one row per offset, per modality the clean events
    per hour (95 % bound) and the recall of effectively faulty tuples; then per modality the
    smallest offset whose events per hour are within ``target`` (:func:`quietest`)."""
    names = list(curves['rows'])
    lines = ['', '## What a threshold offset buys (`threshold_offset_*`, the lifecycle rerun '
             'over the recorded scores)', '',
             '| offset | ' + ' | '.join(f'{m} events/h (95 % bound) | {m} recall'
                                      for m in names) + ' |',
             '|---' * (1 + 2 * len(names)) + '|']
    for k, offset in enumerate(curves['offsets']):
        cells = []
        for m in names:
            r = curves['rows'][m][k]
            cells += [f'{_cell(r["events_per_hour"])} ({_cell(r["events_per_hour_upper95"])})',
                      _cell(r['recall'], 3)]
        lines.append(f'| {offset:+g} | ' + ' | '.join(cells) + ' |')
    lines += ['', f'over {curves["clean_hours"]:.2f} clean hours; recall: share of the faulty '
              f'runs\' effectively faulty tuples under an alarm; each run\'s own offsets '
              f'reproduce its alarms: {"yes" if curves["matches_reports"] else "**no**"}']
    quiet = []
    for m in names:
        row = quietest(curves, m, target)
        quiet.append(f'{m} ' + ('none of these' if row is None else
                                f'{row["offset"]:+g} (recall {_cell(row["recall"], 3)})'))
    lines.append(f'smallest offset with at most {target:g} clean event per hour (the count, '
                 f'not its bound): ' + ', '.join(quiet))
    return lines


def quietest(curves: dict[str, Any], modality: str, target: float = 1.0
             ) -> dict[str, Any] | None:
    """The row of the smallest offset whose clean false-alarm events per hour are at most
    ``target`` for ``modality`` (None: none is, or there was no clean time)."""
    rows = [r for r in curves['rows'][modality]
            if r['events_per_hour'] is not None and r['events_per_hour'] <= target]
    return min(rows, key=lambda r: r['offset']) if rows else None


def plot_offsets(curves: dict[str, Any], path: Any, target: float = 1.0) -> None:
    """Per modality, clean false-alarm events per hour against recall, one point per offset
    (labelled), with the events target as a dashed line."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names = list(curves['rows'])
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6), sharey=True)
    for ax, m in zip(np.atleast_1d(axes), names):
        rows = [r for r in curves['rows'][m] if r['recall'] is not None
                and r['events_per_hour'] is not None]
        x = [r['recall'] for r in rows]
        y = [max(r['events_per_hour'], 0.1) for r in rows]  # 0 drawn on the log axis' floor
        ax.plot(x, y, 'o-')
        for r, xi, yi in zip(rows, x, y):
            ax.annotate(f'{r["offset"]:+g}', (xi, yi), textcoords='offset points',
                        xytext=(4, 4), fontsize=7)
        ax.axhline(target, color='k', ls='--', lw=0.8)
        ax.set_yscale('log')
        ax.set_xlim(0.0, 1.0)
        ax.set_title(m)
        ax.set_xlabel('recall of effectively faulty tuples')
    np.atleast_1d(axes)[0].set_ylabel('false-alarm events per clean hour (0 at 0.1)')
    fig.suptitle('threshold offset: alarms against detections', fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def load_report(path: Path, *, faulty: bool) -> dict[str, Any]:
    """A ``lipfault eval`` report (its ``report.json``, or the folder holding it), checked for
    what the curve reads: the per-tuple series and the lifecycle, and for a faulty one the
    effective labels (a bag written by ``lipfault inject`` records them)."""
    path = Path(path)
    file = path / 'report.json' if path.is_dir() else path
    try:
        report = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f'{file}: not a readable report ({exc})') from exc
    needs = {'series': ('stamps_ns', 'scores', 'flags'),
             'lifecycle': ('raise_k', 'raise_n', 'clear_n', 'latch', 'hold', 'thresholds',
                           'hold_levels')}
    for key, inner in needs.items():
        block = report.get(key) if isinstance(report, dict) else None
        if not isinstance(block, dict) or any(k not in block for k in inner):
            raise InputError(f'{file}: no complete {key!r} block ({", ".join(inner)}); a '
                             f'report of lipfault eval is needed')
    if faulty and not report['series'].get('effective_labels'):
        raise InputError(f'{file}: no effective labels, so no recall; score a bag written by '
                         f'lipfault inject')
    return report


def _offsets(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(',') if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f'offsets must be numbers, got {text!r}') from exc
    if not values:
        raise argparse.ArgumentTypeError('give at least one offset')
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--faulty', type=Path, nargs='*', default=[],
                        help='reports (report.json or its folder) of fault-injected bags: '
                             'the recall')
    parser.add_argument('--clean', type=Path, nargs='*', default=[],
                        help='reports of clean bags: the false-alarm events per hour')
    parser.add_argument('--offsets', type=_offsets, default=OFFSETS,
                        help='comma-separated logit units added to every threshold '
                             f'(default {",".join(f"{o:g}" for o in OFFSETS)}; with a '
                             f'negative first, --offsets=-1,0,1)')
    parser.add_argument('--plot', type=Path, default=None, help='write the curve as a PNG')
    parser.add_argument('--json', type=Path, default=None, help='write the figures as JSON')


def main(args: argparse.Namespace) -> int:
    if not args.faulty and not args.clean:
        raise InputError('give --faulty and/or --clean reports')
    faulty = [load_report(p, faulty=True) for p in args.faulty]
    clean = [load_report(p, faulty=False) for p in args.clean]
    curves = offset_curves(faulty, clean, args.offsets)
    print('\n'.join(format_offsets(curves)).lstrip())
    if args.json:
        args.json.write_text(json.dumps(curves, indent=1))
    if args.plot:
        plot_offsets(curves, args.plot)
    return 0
