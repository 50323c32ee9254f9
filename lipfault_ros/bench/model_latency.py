"""Model forward latency per tuple, batch 1, on the clean (bypass) and faulty (correction) paths.

Latency is what the live node pays per tuple, so it is measured through ``Engine.infer`` (input
checks, resize, normalisation, forward, outputs) and, beside it, the bare network forward on
ready tensors, eager and compiled. Every variant runs once per round, in the same round-robin, so
all of them see the same machine load: on a shared machine a figure only means something next to
the baseline measured with it. Each call is timed on the wall clock and on the process CPU clock;
with one thread the CPU time is what the call costs on an idle machine, and the gap between the
two is the load.

Variants, all on the plain network (``lipfault_ros.export.plain_network``: the Lipschitz
parametrizations folded into plain weights, as ``Engine`` runs it):

- ``infer_*``: ``Engine.infer`` on a tuple (what the node pays), ``forward_*``: the eager network
  forward on ready tensors;
- ``exported``: the TorchScript file of :func:`lipfault_ros.export.export_torchscript` loaded back
  with ``torch.jit.load`` (the deployable artifact for libtorch; it has no Python branch, so it
  always computes both paths and costs the same for clean and faulty tuples);
- ``compiled_*``, the fastest batch-1 path we know per device:

- on the CPU: traces each path once with TorchScript and freezes it (``torch.jit.freeze``), one
  graph per path because the bypass decision is data-dependent. The outputs are bit-identical to
  eager; the gain is the Python dispatch of ~40 modules per call. (``optimize_for_inference``
  was measured slower here and not bit-exact, so it is not used);
- on CUDA: captures each stage (encode/detect, then correct) in a CUDA graph with static input
  buffers fed from pinned host memory, so a tuple costs one host-to-device copy, two graph
  replays at most and the one device-to-host copy that returns the results. fp16 is measured
  beside fp32 with its largest score difference, so one can see whether accuracy holds.

Thresholds of an untrained network are pinned to +inf / -inf to force each path, since the
latency of a path does not depend on the weights.
"""

from __future__ import annotations

import gc
import logging
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from lipfault_ros.artifact import Artifact
from lipfault_ros.export import export_torchscript, plain_network
from lipfault_ros.device import resolve_device
from lipfault_ros.inference import Engine
from lipfault_ros.model.config import ModelConfig
from lipfault_ros.model.network import LipfaultNet, fault_decision
from lipfault_ros.normalise import NormStats
from lipfault_ros.tuples import MODALITIES, SensorTuple

__all__ = ['StagedForward', 'bench_model', 'percentiles', 'random_tuple', 'rss_mb',
           'time_rounds', 'traced_paths']

log = logging.getLogger(__name__)


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50/p99/max (and mean) of a list of milliseconds."""
    a = np.asarray(samples_ms, np.float64)
    if a.size == 0:
        return {'p50': float('nan'), 'p99': float('nan'), 'max': float('nan'),
                'mean': float('nan')}
    return {'p50': float(np.percentile(a, 50)), 'p99': float(np.percentile(a, 99)),
            'max': float(a.max()), 'mean': float(a.mean())}


def rss_mb(field: str = 'VmRSS:') -> float:
    """This process's resident memory (``VmRSS:``) or its peak (``VmHWM:``) in MiB."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float('nan')


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


def time_rounds(variants: dict[str, Callable[[], Any]], rounds: int, *,
                sync: Callable[[], None] | None = None) -> dict[str, dict[str, Any]]:
    """Run every variant once per round (round-robin, so all see the same load) and return per
    variant the wall-clock percentiles (``ms``) and the median process CPU time (``cpu_ms``).
    ``sync`` (e.g. ``torch.cuda.synchronize``) runs inside each timing."""
    wall: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            fn = variants[k]
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            if sync is not None:
                sync()
            wall[k].append((time.perf_counter() - t0) * 1e3)
            cpu[k].append((time.process_time() - c0) * 1e3)
    return {k: {'ms': percentiles(wall[k]), 'cpu_ms': float(np.median(cpu[k]))}
            for k in names}


class _Paths(torch.nn.Module):
    """One fixed path of the forward as a traceable module: tensors in, tensors out."""

    def __init__(self, model: LipfaultNet, correct: bool) -> None:
        super().__init__()
        self.model = model
        self.correct = correct

    def forward(self, cam: torch.Tensor, wr: torch.Tensor, jo: torch.Tensor,
                present: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(cam, wr, jo, present, always_correct=self.correct)
        return (out.scores, out.faults) + tuple(out.corrected)


def traced_paths(model: LipfaultNet, example: tuple[torch.Tensor, ...]
                 ) -> tuple[torch.jit.ScriptModule, torch.jit.ScriptModule]:
    """TorchScript (traced and frozen) bypass and correction paths of the
    baked ``model`` for inputs shaped like ``example`` (camera, wrench, joints, present)."""
    baked = plain_network(model)
    out = []
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')
        for correct in (False, True):
            traced = torch.jit.trace(_Paths(baked, correct).eval(), example, check_trace=False)
            out.append(torch.jit.freeze(traced))
    return out[0], out[1]


class StagedForward:
    """The forward in two stages with static shapes, for batch-1 inference on an accelerator.

    Stage A (always): encode, fuse, decode, detect -> scores. Stage B (only when a modality is
    judged faulty): fuse without the faulty modalities, compute block, decode. The decision
    needs the scores on the host, which is the one device-to-host transfer a tuple needs anyway
    (the verdict is part of the result). With ``graphs`` (CUDA only) each stage is captured once
    in a CUDA graph over static buffers; inputs are copied into them from pinned host memory.
    Without, the same stages run eagerly (the CPU reference of the same computation).
    """

    def __init__(self, model: LipfaultNet, example: tuple[torch.Tensor, ...], *,
                 graphs: bool = False, warmup: int = 3) -> None:
        self.model = plain_network(model).to(example[0].device, example[0].dtype)
        self.thresholds = model.thresholds.detach().to(self.model.thresholds.device)
        dev = example[0].device
        self.graphs = bool(graphs) and dev.type == 'cuda'
        self.static = tuple(t.detach().clone() for t in example)  # cam, wr, jo, present
        self.host = tuple(t.detach().cpu().pin_memory() if self.graphs else t.detach().cpu()
                          for t in example)
        self.faults = torch.zeros_like(self.static[3])
        self._a_out: tuple[torch.Tensor, ...] | None = None
        self._b_out: tuple[torch.Tensor, ...] | None = None
        if self.graphs:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream), torch.inference_mode():
                for _ in range(warmup):
                    self._stage_a()
                    self._stage_b()
            torch.cuda.current_stream().wait_stream(stream)
            self._graph_a, self._graph_b = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
            with torch.inference_mode():
                with torch.cuda.graph(self._graph_a):
                    self._a_out = self._stage_a()
                with torch.cuda.graph(self._graph_b):
                    self._b_out = self._stage_b()

    def _stage_a(self) -> tuple[torch.Tensor, ...]:
        cam, wr, jo, present = self.static
        latents, z = self.model.encode(cam, wr, jo, present)
        recon = self.model.decode(z)
        _, logits = self.model.detect((cam, wr, jo), latents, z, recon, present)
        self._latents = latents
        return (logits,) + tuple(latents) + tuple(recon)

    def _stage_b(self) -> tuple[torch.Tensor, ...]:
        latents = self._latents
        zc = self.model.correct(latents, self.static[3], self.faults)
        return tuple(self.model.decode(zc))

    def __call__(self, cam: torch.Tensor, wr: torch.Tensor, jo: torch.Tensor,
                 present: torch.Tensor) -> tuple[np.ndarray, np.ndarray, tuple[torch.Tensor, ...]]:
        """Scores (3,), faults (3,) bool on the host, and the model-space outputs (corrected
        where faulty, else the reconstruction) on the device."""
        with torch.inference_mode():
            for buf, src in zip(self.static, (cam, wr, jo, present)):
                buf.copy_(src, non_blocking=True)
            if self.graphs:
                self._graph_a.replay()
                a = self._a_out
            else:
                a = self._stage_a()
            logits = a[0]
            faults = fault_decision(logits, self.thresholds, self.static[3])[1]
            host = torch.cat([logits[0].float(), faults[0].float()]).cpu().numpy()  # one copy
            scores_h, faults_h = host[:3], host[3:] > 0.5
            recon = a[4:]
            if not faults_h.any():
                return scores_h, faults_h, recon
            self.faults.copy_(faults.to(self.faults.dtype))
            if self.graphs:
                self._graph_b.replay()
                return scores_h, faults_h, self._b_out
            return scores_h, faults_h, self._stage_b()


def _engine(cfg: ModelConfig, threshold: float, device: str, *, half: bool = False) -> Engine:
    torch.manual_seed(0)
    model = LipfaultNet(cfg).eval()
    thresholds = np.full(len(MODALITIES), threshold)
    with torch.no_grad():  # the network decides the path from its own buffer
        model.thresholds.fill_(float(threshold))
    artifact = Artifact(Path('<bench>'), cfg, model, NormStats.identity(len(cfg.joint_names)),
                        thresholds)
    return Engine(artifact, device=device, half=half)


def _max_diff(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    return max(float((x.float() - y.float()).abs().max()) for x, y in zip(a, b))


def bench_model(*, sizes: Sequence[int] = (64, 128, 256), iterations: int = 200,
                warmup: int = 20, device: str = 'cpu', threads: int | None = None,
                seed: int = 0, compiled: bool = True, exported: bool = True,
                half: bool | None = None, runtimes: bool = True,
                progress: bool = False) -> list[dict[str, Any]]:
    """Per image size (default model config otherwise), batch 1: percentiles of
    ``Engine.infer`` on both paths, of the bare eager forward on both paths, and of the compiled
    forward (see module doc), all interleaved; parameter count, memory, and the largest
    difference between compiled and eager outputs. ``half`` (default: on CUDA only) adds fp16;
    ``runtimes`` (CPU only) adds ONNX Runtime and OpenVINO (:mod:`lipfault_ros.bench.runtimes`).
    """
    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    cuda = dev.type == 'cuda'
    half = cuda if half is None else bool(half) and cuda
    rng = np.random.default_rng(seed)
    sizes = list(sizes)
    if progress:
        from tqdm import tqdm
        sizes = tqdm(sizes, desc='model', unit='size', leave=False)
    return [_bench_size(size, dev, rng, iterations=iterations, warmup=warmup,
                        compiled=compiled, exported=exported, half=half,
                        runtimes=runtimes and not cuda) for size in sizes]


def _bench_size(size: int, dev: torch.device, rng: np.random.Generator, *, iterations: int,
                warmup: int, compiled: bool, exported: bool, half: bool, runtimes: bool
                ) -> dict[str, Any]:
    """One row of :func:`bench_model`: every variant at one image size, interleaved."""
    cuda = dev.type == 'cuda'
    gc.collect()
    rss0 = rss_mb()
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    cfg = ModelConfig(image_size=size)
    clean, faulty = _engine(cfg, np.inf, str(dev)), _engine(cfg, -np.inf, str(dev))
    t = random_tuple(cfg, rng)
    paths = (clean.infer(t).bypassed, faulty.infer(t).bypassed)
    tensors = clean.model_inputs(t)
    variants: dict[str, Callable[[], Any]] = {
        'infer_clean': lambda: clean.infer(t),
        'infer_faulty': lambda: faulty.infer(t),
        'forward_clean': lambda: clean.forward(tensors),
        'forward_faulty': lambda: faulty.forward(tensors),
    }
    row: dict[str, Any] = {
        'image_size': size, 'device': str(clean.device),
        'threads': torch.get_num_threads(),
        'params': sum(p.numel() for p in clean.model.parameters()),
        'bypass_path_taken': bool(paths[0]) and not bool(paths[1]),
    }
    if compiled:
        _add_compiled(row, variants, clean, faulty, tensors, cuda)
    if exported:
        _add_exported(row, variants, clean, tensors)
    if runtimes:
        from lipfault_ros.bench.runtimes import add_runtimes
        add_runtimes(row, variants, clean, faulty, t, tensors)
    if half:
        h_clean = _engine(cfg, np.inf, str(dev), half=True)
        variants['infer_clean_fp16'] = lambda: h_clean.infer(t)
        a, b = clean.infer(t), h_clean.infer(t)
        row['fp16_max_score_diff'] = float(np.nanmax(np.abs(
            np.array([a.results[m].score for m in MODALITIES])
            - np.array([b.results[m].score for m in MODALITIES]))))
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    timed = time_rounds(variants, iterations, sync=torch.cuda.synchronize if cuda else None)
    for name, fig in timed.items():
        row[f'{name}_ms'] = fig['ms']
        row[f'{name}_cpu_ms'] = fig['cpu_ms']
    if 'compiled_clean' in timed:  # CPU time on the CPU (steadier under load), else wall
        key = (lambda f: f['ms']['p50']) if cuda else (lambda f: f['cpu_ms'])
        row['compiled_speedup'] = key(timed['forward_clean']) / key(timed['compiled_clean'])
    row['rss_growth_mb'] = rss_mb() - rss0
    if cuda:
        row['cuda_peak_mb'] = torch.cuda.max_memory_allocated(dev) / 2**20
    return row


def _add_compiled(row: dict[str, Any], variants: dict[str, Callable[[], Any]], clean: Any,
                  faulty: Any, tensors: tuple[torch.Tensor, ...], cuda: bool) -> None:
    """The compiled forward on both paths (CUDA graphs on a GPU, frozen TorchScript on the
    CPU) and its largest difference from eager; the reason when it is unavailable."""
    cam, wr, jo, present, _, _ = tensors
    size = cam.shape[-1]
    try:
        if cuda:
            st_c = StagedForward(clean.model, (cam, wr, jo, present), graphs=True)
            st_f = StagedForward(faulty.model, (cam, wr, jo, present), graphs=True)
            host = st_c.host
            variants['compiled_clean'] = lambda: st_c(*host)
            variants['compiled_faulty'] = lambda: st_f(*host)
            row['compiled'] = 'cuda-graphs'
            ref = faulty.forward(tensors)
            got = st_f(*host)
            row['compiled_max_diff'] = _max_diff(ref.corrected, got[2])
        else:
            tr_c, _ = traced_paths(clean.model, (cam, wr, jo, present))
            _, tr_f = traced_paths(faulty.model, (cam, wr, jo, present))

            def run_traced(module: Any) -> Any:
                with torch.inference_mode():
                    return module(cam, wr, jo, present)

            variants['compiled_clean'] = lambda: run_traced(tr_c)
            variants['compiled_faulty'] = lambda: run_traced(tr_f)
            row['compiled'] = 'torchscript-freeze'
            ref = faulty.forward(tensors)
            row['compiled_max_diff'] = _max_diff(ref.corrected, run_traced(tr_f)[2:])
    except Exception as exc:  # noqa: BLE001 - an optional path; report why it is absent
        log.warning('compiled path unavailable at %dx%d: %s', size, size, exc)
        row['compiled'] = f'unavailable: {exc}'[:200]


def _add_exported(row: dict[str, Any], variants: dict[str, Callable[[], Any]], clean: Any,
                  tensors: tuple[torch.Tensor, ...]) -> None:
    """The exported TorchScript file, loaded back and run, and its largest difference from
    eager; the reason when it is unavailable."""
    cam, wr, jo, present, _, change = tensors
    size = cam.shape[-1]
    try:
        with tempfile.TemporaryDirectory(prefix='lipfault-bench-') as tmp:
            path = export_torchscript(clean.model, Path(tmp) / 'model.pt')
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', DeprecationWarning)  # jit is, upstream
                scripted = torch.jit.load(str(path), map_location=clean.device)

        def run_exported() -> Any:
            with torch.inference_mode():
                return scripted(cam, wr, jo, present, change)

        variants['exported'] = run_exported
        ref = clean.forward(tensors)
        row['exported_max_diff'] = _max_diff(ref.corrected, run_exported()[3:])
    except Exception as exc:  # noqa: BLE001 - optional; report why it is absent
        log.warning('TorchScript export unavailable at %dx%d: %s', size, size, exc)
        row['exported'] = f'unavailable: {exc}'[:200]
