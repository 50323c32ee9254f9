"""``lipfault eval BAG --model ARTIFACT --out DIR``: score a model on a bag, offline.

Writes ``DIR/report.json`` (every number), ``DIR/report.md`` and PNG plots. Pass the clean bag
the evaluated one was injected from (``--clean``) to get correction errors against the clean
signal and the effective labels (was the data actually changed?), and the bags the model was
trained on (``--train-bag``) to fit the classical baselines on the same clean training tuples.
``--raise-k/--raise-n/--clear-n/--latch`` set the fault lifecycle every detector's decisions go
through (defaults: the node's), ``--threshold-offset`` shifts the stored thresholds as the node's
``threshold_offset_*`` parameters do.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lipfault_ros.alarm import AlarmConfig
from lipfault_ros.scene_thresholds import (MODALITIES_TEXT_HELP, SceneConfig, ThresholdOffsets,
                                           modalities_from_text)
from lipfault_ros.errors import ConfigError, InputError
from lipfault_ros.settings import add_options, option_values

__all__ = ['add_arguments', 'main', 'summary_lines']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('bag', type=Path, help='the bag to evaluate (with fault truth)')
    parser.add_argument('--model', type=Path, required=True, help='model artifact folder')
    parser.add_argument('--out', type=Path, required=True, help='output folder for the report')
    parser.add_argument('--clean', type=Path, default=None,
                        help='the clean bag BAG was injected from (correction errors)')
    parser.add_argument('--train-bag', type=Path, action='append', default=[],
                        help='clean bag(s) the model was trained on; the classical baselines '
                             'are fitted on them (default: the --clean bag, optimistic)')
    parser.add_argument('--baseline-artifact', type=Path, default=None,
                        help='a second artifact to score as a baseline (e.g. trained without '
                             'Lipschitz modulation)')
    parser.add_argument('--no-baselines', action='store_true', help='score the model only')
    parser.add_argument('--no-plots', action='store_true', help='skip the PNG plots')
    parser.add_argument('--camera-topic', default=None)
    parser.add_argument('--wrench-topic', default=None)
    parser.add_argument('--joints-topic', default=None)
    parser.add_argument('--truth-topic', default=None)
    parser.add_argument('--device', default='cpu', help="torch device ('cpu', 'cuda', 'auto')")
    parser.add_argument('--overwrite', action='store_true', help='replace --out if it exists')
    life = parser.add_argument_group('fault lifecycle (as the pipeline node\'s alarm_* '
                                     'parameters)')
    add_options(life, AlarmConfig)  # --raise-k, --raise-n, --clear-n, --latch, --no-hold
    life.add_argument('--threshold-offset', type=float, nargs=3, default=[0.0, 0.0, 0.0],
                      metavar=('C', 'W', 'J'),
                      help='logit units added to the stored camera, wrench, joints thresholds '
                           '(> 0: fewer alarms; default 0 0 0; as the node\'s '
                           'threshold_offset_* parameters, in the same range)')
    life.add_argument('--scene-modalities', default=','.join(SceneConfig.modalities),
                      metavar='LIST', help=MODALITIES_TEXT_HELP.replace('%', '%%')
                      + ' (default %(default)s; the node\'s scene_modalities)')
    # --no-background (also spelt --no-camera-background) and --sample-loss-ratio
    add_options(life, SceneConfig, only=('background', 'sample_loss_ratio'))


def topics_from_args(args: argparse.Namespace):
    """The topic names: the package's pipeline.yaml, overridden by ``--*-topic``."""
    from lipfault_ros.topics import TopicConfig

    base = TopicConfig.from_yaml()
    values = {k: v for k, v in (('camera', args.camera_topic), ('wrench', args.wrench_topic),
                                ('joints', args.joints_topic), ('truth', args.truth_topic))
              if v}
    if not values:
        return base
    import dataclasses
    return TopicConfig.from_mapping({**dataclasses.asdict(base), **values})


def alarm_from_args(args: argparse.Namespace) -> AlarmConfig:
    """The lifecycle of ``--raise-k/--raise-n/--clear-n/--no-hold/--latch`` (InputError when
    invalid)."""
    try:
        return option_values(args, AlarmConfig)
    except ConfigError as exc:
        raise InputError(f'--raise-k/--raise-n/--clear-n: {exc}') from None


def offsets_from_args(args: argparse.Namespace) -> tuple[float, float, float]:
    """The threshold shifts of ``--threshold-offset C W J`` (InputError when out of the range
    the node's parameters have too)."""
    try:
        return ThresholdOffsets(*args.threshold_offset).as_tuple()
    except ConfigError as exc:
        raise InputError(f'--threshold-offset: {exc}') from None


def scene_from_args(args: argparse.Namespace) -> SceneConfig:
    """The scene reference of ``--scene-modalities``, ``--no-background`` and
    ``--sample-loss-ratio`` (InputError when invalid)."""
    mods = modalities_from_text(args.scene_modalities)
    try:
        return SceneConfig(modalities=mods,
                           background=getattr(args, 'background', True),
                           sample_loss_ratio=getattr(args, 'sample_loss_ratio',
                                                     SceneConfig.sample_loss_ratio))
    except ConfigError as exc:
        raise InputError(f'--scene-modalities / --sample-loss-ratio: {exc}') from None


def summary_lines(report: dict) -> list[str]:
    """The printed lines: effective figures when the report has them, else interval ones."""
    which = 'effective' if report.get('effective') else 'interval'
    blocks = report.get(which) or {r: report.get(r) for r in ('camera', 'wrench', 'joints',
                                                              'overall')}
    lc = report.get('lifecycle') or {}
    lines = [f'  {which} labels; lifecycle {lc.get("raise_k")} of {lc.get("raise_n")} raise, '
             f'{lc.get("clear_n")} clear (hold {"on" if lc.get("hold") else "off"}), latch '
             f'{"on" if lc.get("latch") else "off"}']
    if not report.get('interval') and not report.get('effective'):  # no fault truth
        lines.append('  no fault truth in the bag: share of tuples with an alarm up '
                     + ', '.join(f'{row} {(report.get(row) or {}).get("flag_rate", 0.0):.4f}'
                                 for row in ('camera', 'wrench', 'joints', 'overall')))
        return lines
    for row in ('camera', 'wrench', 'joints', 'overall'):
        b = blocks.get(row) or {}

        def f(key: str) -> str:
            v = b.get(key)
            return 'n/a' if v is None else f'{v:.3f}'
        lines.append(f'  {row:<8} auroc {f("auroc")}  aupr {f("aupr")}  f1 {f("f1")}  '
                     f'fa/1000 {f("false_alarms_per_1000")}  detection rate '
                     f'{f("detection_rate")}  latency p50 {f("detection_latency_ms_p50")} ms')
    return lines


def main(args: argparse.Namespace) -> int:
    from lipfault_ros.evaluation.offline import evaluate

    if args.no_baselines and (args.baseline_artifact or args.train_bag):
        raise InputError('--no-baselines contradicts --baseline-artifact / --train-bag')
    report = evaluate(args.bag, args.model, out_dir=args.out, clean_bag=args.clean,
                      train_bags=args.train_bag, baselines=not args.no_baselines,
                      baseline_artifact=args.baseline_artifact, topics=topics_from_args(args),
                      device=args.device, overwrite=args.overwrite, plots=not args.no_plots,
                      progress=True, alarm=alarm_from_args(args),
                      threshold_offsets=offsets_from_args(args),
                      scene=scene_from_args(args))
    print(f'report: {args.out / "report.md"}')
    for line in summary_lines(report):
        print(line)
    for note in report.get('not_computed', []):
        print(f'  not computed: {note}')
    return 0
