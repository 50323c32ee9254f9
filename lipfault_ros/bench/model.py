"""Model forward latency per tuple, batch 1, on the clean (bypass) and faulty (correction) paths.

Latency is what the live node pays per tuple, so it is measured through ``Engine.infer`` (input
checks, resize, normalisation, forward, outputs) and, beside it, the bare network forward on
ready tensors. Clean and faulty calls are interleaved so that both see the same machine load; the
thresholds of an untrained network are pinned to +inf / -inf to force each path, since the
latency of a path does not depend on the weights.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from lipfault_ros.artifact import Artifact
from lipfault_ros.inference import Engine
from lipfault_ros.model.config import ModelConfig
from lipfault_ros.model.network import LipfaultNet
from lipfault_ros.normalise import NormStats
from lipfault_ros.tuples import MODALITIES, SensorTuple

__all__ = ['bench_model', 'percentiles', 'random_tuple']


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50/p99/max (and mean) of a list of milliseconds."""
    a = np.asarray(samples_ms, np.float64)
    return {'p50': float(np.percentile(a, 50)), 'p99': float(np.percentile(a, 99)),
            'max': float(a.max()), 'mean': float(a.mean())}


def random_tuple(cfg: ModelConfig, rng: np.random.Generator, *, image_hw: tuple[int, int]
                 | None = None) -> SensorTuple:
    """A plausible tuple of the right shapes (values do not change the cost of a forward)."""
    h, w = image_hw or (cfg.image_size, cfg.image_size)
    return SensorTuple(
        stamp_ns=1, image=rng.integers(0, 255, (h, w, 3), dtype=np.uint8),
        wrench=rng.standard_normal((cfg.wrench_window, 6)).astype(np.float32),
        joints=rng.standard_normal((cfg.joints_window, len(cfg.joint_names), 3)).astype(
            np.float32),
        joint_names=cfg.joint_names)


def _engine(cfg: ModelConfig, threshold: float, device: str) -> Engine:
    torch.manual_seed(0)
    model = LipfaultNet(cfg).eval()
    artifact = Artifact(Path('<bench>'), cfg, model, NormStats.identity(len(cfg.joint_names)),
                        np.full(len(MODALITIES), threshold))
    return Engine(artifact, device=device)


def _rss_mb() -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    return float('nan')


def _time_ms(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def bench_model(*, sizes: Sequence[int] = (64, 128, 256), iterations: int = 200,
                warmup: int = 20, device: str = 'cpu', threads: int | None = None,
                seed: int = 0) -> list[dict[str, Any]]:
    """Per image size: latency percentiles of ``Engine.infer`` on both paths, the bare forward,
    TorchScript-traced forward where export works, parameter count and RSS growth."""
    if threads:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        gc.collect()
        rss0 = _rss_mb()
        cfg = ModelConfig(image_size=size)
        clean, faulty = _engine(cfg, np.inf, device), _engine(cfg, -np.inf, device)
        t = random_tuple(cfg, rng)
        for _ in range(warmup):
            clean.infer(t)
            faulty.infer(t)
        assert_paths = (clean.infer(t).bypassed, faulty.infer(t).bypassed)
        lat_clean, lat_faulty = [], []
        for _ in range(iterations):  # interleaved: both paths see the same load
            lat_clean += _time_ms(lambda: clean.infer(t), 1)
            lat_faulty += _time_ms(lambda: faulty.infer(t), 1)
        tensors = clean._prepare(t.image[None], t.wrench[None], t.joints[None],
                                 np.zeros((1, 3), bool))
        for _ in range(warmup):
            clean._run(*tensors)
        lat_forward = _time_ms(lambda: clean._run(*tensors), iterations)
        row: dict[str, Any] = {
            'image_size': size,
            'device': str(clean.device),
            'params': sum(p.numel() for p in clean.model.parameters()),
            'bypass_path_taken': bool(assert_paths[0]) and not bool(assert_paths[1]),
            'clean_ms': percentiles(lat_clean),
            'faulty_ms': percentiles(lat_faulty),
            'forward_ms': percentiles(lat_forward),
        }
        row['traced_forward_ms'] = _traced(clean, tensors, iterations, warmup)
        row['rss_growth_mb'] = _rss_mb() - rss0
        rows.append(row)
        del clean, faulty
    return rows


def _traced(engine: Engine, tensors: tuple[torch.Tensor, ...], iterations: int,
            warmup: int) -> dict[str, float] | None:
    """Forward latency of the exported (TorchScript) inference path, when export is available."""
    try:
        from lipfault_ros.export import export_torchscript  # noqa: F401
    except ImportError:
        return None
    import tempfile

    from lipfault_ros.export import export_torchscript
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'model.pt'
        try:
            export_torchscript(engine.model, path)
            module = torch.jit.load(str(path), map_location=engine.device)
        except Exception:  # noqa: BLE001 - export is optional; report as unavailable
            return None
    cam, wr, jo, present, _ = tensors
    with torch.inference_mode():
        for _ in range(warmup):
            module(cam, wr, jo, present)
        return percentiles(_time_ms(lambda: module(cam, wr, jo, present), iterations))
