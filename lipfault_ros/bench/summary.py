"""What a ``lipfault bench`` run reports: the machine it ran on, the headline figures, the
targets they are held to, and the tables printed.

The headline figures are the ones the documentation names, lifted to the top level of the JSON
so that a run can be compared with the targets without knowing where each section keeps them.
"""

from __future__ import annotations

import os
import platform
from typing import Any, Sequence

import numpy as np

__all__ = ['TARGETS', 'format_results', 'headline', 'machine_info', 'targets']

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


def headline(results: dict[str, Any]) -> dict[str, Any]:
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
                         'exported', 'compiled_clean', 'compiled_faulty', 'infer_clean_fp16',
                         'infer_ort_clean', 'infer_ort_faulty', 'stages_torch', 'stages_ort',
                         'stages_openvino'):
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
