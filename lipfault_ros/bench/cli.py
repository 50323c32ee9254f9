"""``lipfault bench``: measure latency, throughput and memory on this machine.

Benchmarks (``--only`` picks some; all by default):

- ``model``: batch-1 forward latency of the default model config at 64, 128 and 256 pixels, clean
  (bypass) and faulty (correction) paths, through ``Engine.infer``, bare eager and compiled;
  parameters and memory (:mod:`lipfault_ros.bench.model`).
- ``pipeline``: the live node over DDS, sensors at 30/500/250 Hz from a separate process: latency
  from the arrival of a tuple's last input to publication of its outputs, tuples/s, dropped
  tuples, node CPU and RSS sampled over the run; the model forward of the same artifact on the
  same synthetic tuples is timed right before and after in the same process, and the overhead
  ratio is end-to-end p50 over that model p50 (:mod:`lipfault_ros.bench.pipeline`).
- ``sync``: messages/s through the builtin synchroniser on a jittered 30/500/250 Hz stream,
  offline, beside a bare loop over the same samples (:mod:`lipfault_ros.bench.sync`).
- ``bag``: tuples/s building training tuples from an mcap bag, and the ratio to a bare rosbags
  read of the same messages timed in the same run (:mod:`lipfault_ros.bench.data`).
- ``training``: tuples/s of each training stage (:mod:`lipfault_ros.bench.data`).

Figures are medians and percentiles over repeated runs, each paired with a baseline measured in
the same run, because a shared machine is noisy. ``--json FILE`` writes every figure, the
headline ones at the top level, and the machine they came from.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from lipfault_ros.errors import ConfigError
from lipfault_ros.evaluation.metrics import nan_to_none

__all__ = ['SECTIONS', 'TARGETS', 'add_arguments', 'machine_info', 'main', 'run_benchmarks']

log = logging.getLogger(__name__)

#: Benchmarks in the order they run (the long live run last).
SECTIONS: tuple[str, ...] = ('model', 'sync', 'bag', 'training', 'memory', 'pipeline')

#: (figure, comparison, limit, what it means): the CPU targets of a 2-core machine, 128x128 model.
TARGETS: tuple[tuple[str, str, float, str], ...] = (
    ('e2e_latency_ms.p50', '<=', 10.0, 'end-to-end latency p50 (ms)'),
    ('e2e_latency_ms.p99', '<=', 20.0, 'end-to-end latency p99 (ms)'),
    ('dropped_tuples', '<=', 0.0, 'dropped tuples at 30 Hz'),
    ('overhead_ratio', '<=', 1.5, 'end-to-end p50 / model forward p50'),
    ('rss_mb', '<=', 1536.0, 'node RSS (MiB)'),
    ('rss_growth_mb', '<=', 10.0, 'node RSS growth over the run (MiB)'),
    ('sync_msgs_per_s', '>=', 230_000.0, 'synchroniser messages/s'),
    ('bag_read_ratio', '<=', 2.0, 'bag-to-tuples time / bare read time'),
    ('gpu_forward_p99_ms', '<=', 2.0, 'CUDA forward p99 at 128x128, clean path (ms)'),
    ('gpu_forward_faulty_p99_ms', '<=', 2.0, 'CUDA forward p99 at 128x128, faulty path (ms)'),
)


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


# -- machine ------------------------------------------------------------------------------------

def machine_info(device: str = 'cpu') -> dict[str, Any]:
    """CPU model, cores, memory, load, torch version and threads, accelerator name."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next((line.split(':', 1)[1].strip() for line in f
                        if line.startswith('model name')), cpu)
    except OSError:
        pass
    mem_gb = float('nan')
    try:
        mem_gb = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
    except (ValueError, OSError, AttributeError):
        pass
    info: dict[str, Any] = {
        'cpu_model': cpu, 'cores': os.cpu_count(),
        'cores_usable': len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
        else os.cpu_count(),
        'memory_gb': round(mem_gb, 1), 'load_avg': [round(x, 2) for x in os.getloadavg()],
        'python': platform.python_version(), 'platform': platform.platform(),
        'torch': torch.__version__, 'torch_threads': torch.get_num_threads(),
        'cuda_available': torch.cuda.is_available(), 'device': device,
        'device_name': cpu, 'ros_distro': os.environ.get('ROS_DISTRO', ''),
        'rmw': os.environ.get('RMW_IMPLEMENTATION', ''),
    }
    if device.startswith('cuda') and torch.cuda.is_available():
        info['device_name'] = torch.cuda.get_device_name(0)
        info['cuda'] = torch.version.cuda
    return info


# -- model artifact ---------------------------------------------------------------------------

def _default_artifact() -> Path | None:
    import lipfault_ros

    for root in (Path.cwd(), Path(lipfault_ros.__file__).resolve().parents[1]):
        candidate = root / 'models' / 'default'
        if (candidate / 'config.json').is_file():
            return candidate
    return None


def _untrained_artifact(directory: Path) -> Path:
    """An untrained default-config artifact for the synthetic joints (thresholds +inf: every
    tuple takes the bypass path)."""
    import torch

    from lipfault_ros.artifact import save_artifact
    from lipfault_ros.bench.pipeline import JOINT_NAMES
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
        return _untrained_artifact(tmp), f'no --model and no models/default: {untrained}'
    try:
        load_artifact(path)
    except ArtifactError as exc:
        return _untrained_artifact(tmp), f'no --model; {path} does not load ({exc}): {untrained}'
    return path, f'no --model: using {path}'


# -- sections -----------------------------------------------------------------------------------

def _model(quick: bool, device: str, threads: int) -> dict[str, Any]:
    from lipfault_ros.bench.model import bench_model

    rows = bench_model(sizes=(64, 128, 256), iterations=40 if quick else 300,
                       warmup=5 if quick else 20, device=device, threads=threads or None,
                       progress=sys.stderr.isatty())
    return {'rows': rows}


def _sync(quick: bool) -> dict[str, Any]:
    from lipfault_ros.bench.sync import bench_sync

    return bench_sync(duration_s=20.0 if quick else 60.0, repeats=3 if quick else 7)


def _bag_and_training(sections: Sequence[str], quick: bool, device: str, threads: int,
                      tmp: Path) -> dict[str, dict[str, Any]]:
    from lipfault_ros.bench.data import bench_bag_to_tuples, bench_training, write_synthetic_bag

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
    from lipfault_ros.bench.data import bench_streaming_memory

    if quick:
        return bench_streaming_memory(budget_mb=200.0, bag_mb=260.0)
    return bench_streaming_memory(budget_mb=400.0, bag_mb=1000.0)


class _Sampler:
    """Samples this process's RSS (MiB) every ``interval`` seconds from a daemon thread."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='rss-sampler', daemon=True)

    def _run(self) -> None:
        from lipfault_ros.bench.model import rss_mb

        t0 = time.monotonic()
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - t0, rss_mb()))
            self._stop.wait(self.interval)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


def _artifact_forward(engine: Any, tuples: Sequence[Any]) -> tuple[list[float], list[float],
                                                                    int]:
    """Model forward (ms: the network call the engine makes for one tuple, on ready tensors)
    and ``Engine.infer`` (ms) on each tuple; bypassed count."""
    from lipfault_ros.tuples import MODALITIES

    # the forward ``infer`` itself uses (compiled once the engine has switched), else eager
    forward_one = getattr(engine, '_forward_one', None)
    if forward_one is None:
        def forward_one(tensors: Any) -> Any:
            return engine._run(*tensors)
    s = engine.image_size
    forward, infer, bypassed = [], [], 0
    for t in tuples:
        t0 = time.perf_counter()
        r = engine.infer(t)
        infer.append((time.perf_counter() - t0) * 1e3)
        bypassed += bool(r.bypassed)
        image = engine._resize(t.image, s, s, engine._cv2.INTER_AREA)
        missing = np.array([[m in t.missing for m in MODALITIES]])
        tensors = engine._prepare(image[None], t.wrench[None], t.joints[None], missing)
        t0 = time.perf_counter()
        forward_one(tensors)
        forward.append((time.perf_counter() - t0) * 1e3)
    return forward, infer, bypassed


def _pipeline(model: Path, quick: bool, duration: float | None, device: str,
              threads: int, inference_thread: bool = False) -> dict[str, Any]:
    from lipfault_ros.bench.model import percentiles
    from lipfault_ros.bench.pipeline import run_pipeline_bench, synthetic_samples
    from lipfault_ros.inference import Engine
    from lipfault_ros.sync import SyncConfig, assemble

    duration = float(duration if duration is not None else (15.0 if quick else 120.0))
    warmup = 2.0 if quick else 5.0
    engine = Engine.from_artifact(model, device=device)
    config = SyncConfig(wrench_window=engine.wrench_window, joints_window=engine.joints_window)
    stream = synthetic_samples(4.0 if quick else 10.0, image_size=128, seed=7)
    tuples = [t for t in assemble((s for _, s in stream), config, engine.joint_names)
              if not t.missing]
    for t in tuples[:10]:
        engine.infer(t)
    fwd0, inf0, byp0 = _artifact_forward(engine, tuples)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.monotonic()
    with _Sampler() as sampler:
        fig = run_pipeline_bench(model, duration, device=device, image_size=128,
                                 warmup_s=warmup, num_threads=threads,
                                 inference_thread=inference_thread)
    wall = time.monotonic() - wall0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    fwd1, inf1, byp1 = _artifact_forward(engine, tuples)
    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    # RSS over the measured part (after start-up and warm-up): first vs last tenth
    steady = [r for t, r in sampler.samples if t >= wall - duration]
    k = max(1, len(steady) // 10)
    rss_start = float(np.median(steady[:k])) if steady else float('nan')
    rss_end = float(np.median(steady[-k:])) if steady else float('nan')
    forward = percentiles(fwd0 + fwd1)
    out = dict(fig)
    out.update({
        'model': str(model), 'model_image_size': engine.image_size, 'input_image_size': 128,
        'inference_thread': bool(inference_thread),
        'node_cpu_percent': 100.0 * cpu_s / wall if wall else float('nan'),
        'rss_sampled_max_mb': max((r for _, r in sampler.samples), default=float('nan')),
        'rss_start_mb': rss_start, 'rss_end_mb': rss_end,
        'rss_growth_mb': rss_end - rss_start,
        'model_forward_ms': forward,
        'model_forward_before_ms': percentiles(fwd0), 'model_forward_after_ms': percentiles(fwd1),
        'engine_infer_ms': percentiles(inf0 + inf1),
        'baseline_tuples': 2 * len(tuples),
        'bypass_fraction': (byp0 + byp1) / (2 * len(tuples)) if tuples else float('nan'),
        'overhead_ratio': fig['latency_p50_ms'] / forward['p50'] if forward['p50'] else
        float('nan'),
    })
    return out


def _pipeline_child(model: Path, quick: bool, duration: float | None, device: str,
                    threads: int, tmp: Path, inference_thread: bool = False) -> dict[str, Any]:
    """:func:`_pipeline` in a child ``lipfault bench --only pipeline``, so that the memory the
    other benchmarks left in this process does not count as the node's."""
    import subprocess

    out = tmp / 'pipeline.json'
    cmd = [sys.executable, '-m', 'lipfault_ros.cli', 'bench', '--only', 'pipeline', '--model',
           str(model), '--device', device, '--threads', str(threads), '--json', str(out)]
    if quick:
        cmd.append('--quick')
    if inference_thread:
        cmd.append('--inference-thread')
    if duration is not None:
        cmd += ['--duration', str(duration)]
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if not out.is_file():
        raise RuntimeError(f'pipeline benchmark process failed (exit {proc.returncode}): '
                           f'{proc.stderr[-1500:]}')
    doc = json.loads(out.read_text())
    if 'pipeline' not in doc:
        raise RuntimeError(f'pipeline benchmark failed: {doc.get("errors", {}).get("pipeline")}')
    return doc['pipeline']


def _ros_env(domain_id: int | None) -> None:
    """Keep the live run on this host, on its own domain (it publishes sensor topics)."""
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    if domain_id is not None:
        os.environ['ROS_DOMAIN_ID'] = str(domain_id)
    else:
        os.environ.setdefault('ROS_DOMAIN_ID', str(100 + os.getpid() % 100))


# -- report -------------------------------------------------------------------------------------

def _headline(results: dict[str, Any]) -> dict[str, Any]:
    """The figures named in the documentation, at the top level of the JSON."""
    head: dict[str, Any] = {}
    pipe = results.get('pipeline')
    if isinstance(pipe, dict) and 'latency_p50_ms' in pipe:
        head['model_latency_ms'] = {'p50': pipe['model_forward_ms']['p50'],
                                    'p99': pipe['model_forward_ms']['p99']}
        head['e2e_latency_ms'] = {'p50': pipe['latency_p50_ms'], 'p99': pipe['latency_p99_ms'],
                                  'max': pipe['latency_max_ms']}
        head['overhead_ratio'] = pipe['overhead_ratio']
        head['tuples_per_s'] = pipe['tuples_per_s']
        head['dropped_tuples'] = pipe['dropped']
        head['rss_mb'] = pipe['rss_mb']
        head['rss_growth_mb'] = pipe['rss_growth_mb']
        head['node_cpu_percent'] = pipe['node_cpu_percent']
    model = results.get('model')
    if isinstance(model, dict):
        row = next((r for r in model['rows'] if r['image_size'] == 128), None)
        if row is not None:
            head.setdefault('model_latency_ms', {'p50': row['forward_clean_ms']['p50'],
                                                 'p99': row['forward_clean_ms']['p99']})
            if row['device'].startswith('cuda'):
                best = row.get('compiled_clean_ms') or row['forward_clean_ms']
                head['gpu_forward_p99_ms'] = best['p99']
                best = row.get('compiled_faulty_ms') or row['forward_faulty_ms']
                head['gpu_forward_faulty_p99_ms'] = best['p99']
    sync = results.get('sync')
    if isinstance(sync, dict):
        head['sync_msgs_per_s'] = sync['sync_msgs_per_s']
        head['sync_msgs_per_cpu_s'] = sync.get('sync_msgs_per_cpu_s')
        head['sync_one_tuple_per_frame'] = sync['one_tuple_per_frame']
    bag = results.get('bag')
    if isinstance(bag, dict):
        head['bag_tuples_per_s'] = bag['build_tuples_per_s']
        head['bag_read_ratio'] = bag['build_over_bare']
    training = results.get('training')
    if isinstance(training, dict):
        head['train_stage1_tuples_per_s'] = training.get('stage1_tuples_per_s')
        head['train_stage2_tuples_per_s'] = training.get('stage2_tuples_per_s')
    return head


def _lookup(head: dict[str, Any], key: str) -> Any:
    value: Any = head
    for part in key.split('.'):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def targets(head: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured value, whether it is met, and the margin."""
    out = []
    for key, op, limit, what in TARGETS:
        value = _lookup(head, key)
        if value is None:
            continue
        value = float(value)
        met = value <= limit if op == '<=' else value >= limit
        out.append({'figure': key, 'what': what, 'target': f'{op} {limit:g}', 'value': value,
                    'met': bool(met), 'factor': (value / limit if op == '<=' else limit / value)
                    if limit and value else None})
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return '-'
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return f'{int(v):,}'
    if isinstance(v, float):
        if not np.isfinite(v):
            return str(v)
        return f'{v:,.0f}' if abs(v) >= 1000 else f'{v:.3g}' if abs(v) < 10 else f'{v:.1f}'
    return str(v)


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(header)]
    line = '  '.join('-' * w for w in widths)
    out = [title, '  '.join(h.ljust(w) for h, w in zip(header, widths)), line]
    out += ['  '.join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                      enumerate(zip(r, widths))) for r in cells]
    return '\n'.join(out) + '\n'


def format_results(results: dict[str, Any]) -> str:
    """The human-readable tables of everything measured."""
    parts = []
    m = results['machine']
    parts.append(f"machine: {m['cpu_model']}, {m['cores_usable']}/{m['cores']} cores, "
                 f"{m['memory_gb']} GB, load {m['load_avg']} -> {m.get('load_avg_end')}, "
                 f"torch {m['torch']} ({m['torch_threads']} threads), device "
                 f"{m['device_name']}\n")
    if results.get('model_note'):
        parts.append(results['model_note'] + '\n')
    model = results.get('model')
    if isinstance(model, dict):
        rows = []
        for r in model['rows']:
            for name in ('infer_clean', 'infer_faulty', 'forward_clean', 'forward_faulty',
                         'exported', 'compiled_clean', 'compiled_faulty', 'infer_clean_fp16'):
                if f'{name}_ms' in r:
                    f = r[f'{name}_ms']
                    rows.append([f"{r['image_size']}x{r['image_size']}", name, f['p50'],
                                 f['p99'], f['max'], r[f'{name}_cpu_ms']])
        parts.append(_table(f"model latency, batch 1, {model['rows'][0]['device']} "
                            '(ms; rows interleaved, cpu = process CPU time p50)',
                            ['size', 'path', 'p50', 'p99', 'max', 'cpu'], rows))
        parts.append(_table('model size and memory', ['size', 'params', 'compiled',
                                                      'compiled/eager diff', 'speedup',
                                                      'rss growth MiB'],
                            [[f"{r['image_size']}", r['params'], r.get('compiled'),
                              r.get('compiled_max_diff'), r.get('compiled_speedup'),
                              r['rss_growth_mb']] for r in model['rows']]))
    for name in ('pipeline', 'sync', 'bag', 'training', 'memory'):
        sec = results.get(name)
        if not isinstance(sec, dict):
            continue
        rows = []
        for k, v in sec.items():
            if isinstance(v, dict) and {'p50', 'p99'} <= set(v):
                rows.append([k, f"p50 {_fmt(v['p50'])}  p99 {_fmt(v['p99'])}  "
                                f"max {_fmt(v['max'])}"])
            elif not isinstance(v, (dict, list)) and v is not None:
                rows.append([k, _fmt(v)])
        parts.append(_table(name, ['figure', 'value'], rows))
    for name, err in results.get('errors', {}).items():
        parts.append(f'{name}: FAILED: {err}\n')
    tg = results.get('targets') or []
    if tg:
        parts.append(_table('targets', ['figure', 'target', 'value', 'met', 'value/target'],
                            [[t['figure'], t['target'], t['value'], 'yes' if t['met'] else 'NO',
                              t['factor']] for t in tg]))
    return '\n'.join(parts)


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
                    path, results['model_note'] = (model, '') if model is not None \
                        else _pick_artifact(tmp)
                    if len(sections) > 1:  # a fresh process: its RSS is the node's alone
                        results['pipeline'] = _pipeline_child(Path(path), quick, duration, dev,
                                                              threads, tmp, inference_thread)
                    else:
                        results['pipeline'] = _pipeline(Path(path), quick, duration, dev,
                                                        threads, inference_thread)
            except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide others
                log.exception('%s benchmark failed', name)
                results['errors'][name] = f'{type(exc).__name__}: {exc}'
            say(f'{name} done in {time.perf_counter() - t0:.1f} s')
    results['machine']['load_avg_end'] = [round(x, 2) for x in os.getloadavg()]
    results['headline'] = _headline(results)
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
        args.json.write_text(json.dumps(nan_to_none(doc), indent=2) + '\n')
        print(f'wrote {args.json}')
    return 1 if results['errors'] else 0
