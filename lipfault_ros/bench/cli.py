"""``lipfault bench``: measure latency, throughput and memory on this machine.

Benchmarks (``--only`` picks some; all by default):

- ``model``: batch-1 forward latency of the default model config at 64, 128 and 256 pixels, clean
  (bypass) and faulty (correction) paths, through ``Engine.infer``, bare eager and compiled;
  parameters and memory (:mod:`lipfault_ros.bench.model_latency`).
- ``pipeline``: the live node over DDS, sensors at 30/500/250 Hz from a separate process: latency
  from the arrival of a tuple's last input to publication of its outputs, tuples/s, dropped
  tuples, node CPU and RSS sampled over the run; the model forward of the same artifact on the
  same synthetic tuples is timed right before and after in the same process, and the overhead
  ratio is end-to-end p50 over that model p50 (:mod:`lipfault_ros.bench.pipeline_latency`).
- ``sync``: messages/s through the builtin synchroniser on a jittered 30/500/250 Hz stream,
  offline, beside a bare loop over the same samples (:mod:`lipfault_ros.bench.sync_throughput`).
- ``bag``: tuples/s building training tuples from an mcap bag, and the ratio to a bare rosbags
  read of the same messages timed in the same run (:mod:`lipfault_ros.bench.data_path`).
- ``training``: tuples/s of each training stage (:mod:`lipfault_ros.bench.data_path`).

Figures are medians and percentiles over repeated runs, each paired with a baseline measured in
the same run, because a shared machine is noisy. ``--json FILE`` writes every figure, the
headline ones at the top level, the machine they came from and the targets, met or not
(:mod:`lipfault_ros.bench.summary`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Sequence

from lipfault_ros.bench.summary import TARGETS, format_results, headline, machine_info, targets
from lipfault_ros.errors import ConfigError
from lipfault_ros.jsonable import jsonable

__all__ = ['SECTIONS', 'TARGETS', 'add_arguments', 'machine_info', 'main', 'run_benchmarks',
           'untrained_artifact']

log = logging.getLogger(__name__)

#: Benchmarks in the order they run (the long live run last).
SECTIONS: tuple[str, ...] = ('model', 'sync', 'bag', 'training', 'memory', 'pipeline')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--quick', action='store_true',
                        help='short runs (about a minute in all) instead of the full ones')
    parser.add_argument('--json', metavar='FILE', type=Path,
                        help='write every figure and the machine info to FILE')
    parser.add_argument('--model', metavar='ARTIFACT', type=Path,
                        help='artifact for the live pipeline (default: models/default if '
                             'present, else an untrained one in a temporary directory)')
    parser.add_argument('--only', metavar='LIST', default=','.join(SECTIONS),
                        help=f'comma-separated benchmarks to run, of {",".join(SECTIONS)}')
    parser.add_argument('--duration', metavar='S', type=float,
                        help='seconds of the live pipeline run (default 120, quick 15)')
    parser.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'),
                        help='where the model runs (auto: cuda when available)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads of the model, as the node\'s num_threads '
                             '(default 1, the node default: a batch-1 forward of this model '
                             'gains nothing from more, and on busy cores they wait on each '
                             'other; 0: torch default)')
    parser.add_argument('--inference-thread', action='store_true',
                        help='the live run with the node\'s inference_thread on (inference on a '
                             'thread of its own instead of between the executor callbacks)')
    parser.add_argument('--domain-id', type=int,
                        help='ROS_DOMAIN_ID of the live run (default: 100 + pid %% 100; the '
                             'run always stays on this host)')


def _sections(text: str) -> list[str]:
    chosen = [s.strip() for s in text.split(',') if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown or not chosen:
        raise ConfigError(f'--only {text!r}: unknown benchmark(s) {unknown}; choose from '
                          f'{",".join(SECTIONS)}')
    return [s for s in SECTIONS if s in chosen]


# -- model artifact ---------------------------------------------------------------------------

def _default_artifact() -> Path | None:
    import lipfault_ros

    for root in (Path.cwd(), Path(lipfault_ros.__file__).resolve().parents[1]):
        candidate = root / 'models' / 'default'
        if (candidate / 'config.json').is_file():
            return candidate
    return None


def untrained_artifact(directory: Path) -> Path:
    """An untrained default-config artifact for the synthetic joints (thresholds +inf: every
    tuple takes the bypass path)."""
    import torch

    from lipfault_ros.artifact import save_artifact
    from lipfault_ros.synthetic import JOINT_NAMES
    from lipfault_ros.model.config import ModelConfig
    from lipfault_ros.model.network import LipfaultNet
    from lipfault_ros.normalise import NormStats

    torch.manual_seed(0)
    model = LipfaultNet(ModelConfig(joint_names=JOINT_NAMES)).eval()
    return save_artifact(directory / 'untrained', model,
                         stats=NormStats.identity(len(JOINT_NAMES)))


def _pick_artifact(tmp: Path) -> tuple[Path, str]:
    """models/default when it is there and loads, else an untrained artifact; and a note that
    says which."""
    from lipfault_ros.artifact import load_artifact
    from lipfault_ros.errors import ArtifactError

    untrained = ('using an untrained artifact (latency does not depend on the weights, but the '
                 'bypass fraction does: every tuple bypasses here)')
    path = _default_artifact()
    if path is None:
        return untrained_artifact(tmp), f'no --model and no models/default: {untrained}'
    try:
        load_artifact(path)
    except ArtifactError as exc:
        return untrained_artifact(tmp), f'no --model; {path} does not load ({exc}): {untrained}'
    return path, f'no --model: using {path}'


# -- sections -----------------------------------------------------------------------------------

def _model(quick: bool, device: str, threads: int) -> dict[str, Any]:
    from lipfault_ros.bench.model_latency import bench_model

    rows = bench_model(sizes=(64, 128, 256), iterations=40 if quick else 300,
                       warmup=5 if quick else 20, device=device, threads=threads or None,
                       progress=sys.stderr.isatty())
    return {'rows': rows}


def _sync(quick: bool) -> dict[str, Any]:
    from lipfault_ros.bench.sync_throughput import bench_sync

    return bench_sync(duration_s=20.0 if quick else 60.0, repeats=3 if quick else 7)


def _bag_and_training(sections: Sequence[str], quick: bool, device: str, threads: int,
                      tmp: Path) -> dict[str, dict[str, Any]]:
    from lipfault_ros.bench.data_path import (bench_bag_to_tuples, bench_training,
                                              write_synthetic_bag)

    bag = write_synthetic_bag(tmp / 'bench_bag', 4.0 if quick else 60.0, image_size=128)
    out: dict[str, dict[str, Any]] = {}
    if 'bag' in sections:
        out['bag'] = bench_bag_to_tuples(bag, image_size=128, window=32,
                                         repeats=1 if quick else 3)
    if 'training' in sections:
        out['training'] = bench_training(bag, quick=True, epochs=1,
                                         device='cpu' if device == 'auto' else device,
                                         num_threads=threads)
    return out


def _memory(quick: bool) -> dict[str, Any]:
    """Peak RSS while streaming a bag larger than the memory the build is allowed."""
    from lipfault_ros.bench.data_path import bench_streaming_memory

    if quick:
        return bench_streaming_memory(budget_mb=200.0, bag_mb=260.0)
    return bench_streaming_memory(budget_mb=400.0, bag_mb=1000.0)


def _ros_env(domain_id: int | None) -> None:
    """Keep the live run on this host, on its own domain (it publishes sensor topics)."""
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    if domain_id is not None:
        os.environ['ROS_DOMAIN_ID'] = str(domain_id)
    else:
        os.environ.setdefault('ROS_DOMAIN_ID', str(100 + os.getpid() % 100))


# -- entry points -------------------------------------------------------------------------------

def run_benchmarks(sections: Sequence[str], *, quick: bool = False, model: Path | None = None,
                   duration: float | None = None, device: str = 'auto', threads: int = 1,
                   inference_thread: bool = False,
                   echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the chosen benchmarks; returns ``{'machine', <section>..., 'errors', 'headline',
    'targets'}``. A failing benchmark is recorded under ``errors`` and the others still run."""
    import torch

    from lipfault_ros.device import resolve_device

    if threads:
        torch.set_num_threads(threads)
    dev = str(resolve_device(device))
    results: dict[str, Any] = {'machine': machine_info(dev), 'quick': quick,
                               'sections': list(sections), 'errors': {}}
    say = echo or (lambda text: None)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix='lipfault-bench-')))
        for name in sections:
            if name == 'training' and 'bag' in sections:
                continue  # runs with 'bag' on the same bag
            say(f'running {name} benchmark ...')
            t0 = time.perf_counter()
            try:
                if name == 'model':
                    results['model'] = _model(quick, dev, threads)
                elif name == 'sync':
                    results['sync'] = _sync(quick)
                elif name == 'memory':
                    results['memory'] = _memory(quick)
                elif name in ('bag', 'training'):
                    results.update(_bag_and_training(sections, quick, dev, threads, tmp))
                elif name == 'pipeline':
                    from lipfault_ros.bench.pipeline_latency import (bench_pipeline,
                                                                     bench_pipeline_in_child)

                    path, results['model_note'] = (model, '') if model is not None \
                        else _pick_artifact(tmp)
                    if len(sections) > 1:  # a fresh process: its RSS is the node's alone
                        results['pipeline'] = bench_pipeline_in_child(
                            Path(path), quick, duration, dev, threads, tmp, inference_thread)
                    else:
                        results['pipeline'] = bench_pipeline(Path(path), quick, duration, dev,
                                                            threads, inference_thread)
            except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide others
                log.exception('%s benchmark failed', name)
                results['errors'][name] = f'{type(exc).__name__}: {exc}'
            say(f'{name} done in {time.perf_counter() - t0:.1f} s')
    results['machine']['load_avg_end'] = [round(x, 2) for x in os.getloadavg()]
    results['headline'] = headline(results)
    results['targets'] = targets(results['headline'])
    return results


def main(args: argparse.Namespace) -> int:
    sections = _sections(args.only)
    if args.duration is not None and args.duration <= 0:
        raise ConfigError(f'--duration must be positive, got {args.duration}')
    if args.model is not None and not args.model.exists():
        raise FileNotFoundError(f'artifact {args.model} does not exist')
    if args.json is not None and args.json.parent and not args.json.parent.exists():
        raise FileNotFoundError(f'directory of --json {args.json} does not exist')
    if 'pipeline' in sections:
        _ros_env(args.domain_id)
    results = run_benchmarks(sections, quick=args.quick, model=args.model,
                             duration=args.duration, device=args.device, threads=args.threads,
                             inference_thread=args.inference_thread,
                             echo=lambda text: print(text, file=sys.stderr, flush=True))
    print(format_results(results))
    if args.json is not None:
        doc = dict(results['headline'])
        doc.update({k: v for k, v in results.items() if k != 'headline'})
        args.json.write_text(json.dumps(jsonable(doc), indent=2) + '\n')
        print(f'wrote {args.json}')
    return 1 if results['errors'] else 0
