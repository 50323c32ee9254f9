"""``lipfault eval BAG --model ARTIFACT --out DIR``: score a model on a bag, offline.

Writes ``DIR/report.json`` (every number), ``DIR/report.md`` and PNG plots. Pass the clean bag
the evaluated one was injected from (``--clean``) to get correction errors against the clean
signal, and the bags the model was trained on (``--train-bag``) to fit the classical baselines on
the same clean training tuples.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lipfault_ros.errors import InputError

__all__ = ['add_arguments', 'main']


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


def main(args: argparse.Namespace) -> int:
    from lipfault_ros.evaluation.offline import evaluate

    if args.no_baselines and (args.baseline_artifact or args.train_bag):
        raise InputError('--no-baselines contradicts --baseline-artifact / --train-bag')
    report = evaluate(args.bag, args.model, out_dir=args.out, clean_bag=args.clean,
                      train_bags=args.train_bag, baselines=not args.no_baselines,
                      baseline_artifact=args.baseline_artifact, topics=topics_from_args(args),
                      device=args.device, overwrite=args.overwrite, plots=not args.no_plots,
                      progress=True)
    print(f'report: {args.out / "report.md"}')
    for row in ('camera', 'wrench', 'joints', 'overall'):
        b = report.get(row) or {}

        def f(key: str) -> str:
            v = b.get(key)
            return 'n/a' if v is None else f'{v:.3f}'
        print(f'  {row:<8} auroc {f("auroc")}  aupr {f("aupr")}  f1 {f("f1")}  '
              f'fa/1000 {f("false_alarms_per_1000")}  latency p50 '
              f'{f("detection_latency_ms_p50")} ms')
    for note in report.get('not_computed', []):
        print(f'  not computed: {note}')
    return 0
