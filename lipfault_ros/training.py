"""The two training stages, threshold calibration and checkpoints.

Stage 1 trains encoders, fusion and decoders to reconstruct clean tuples, with random modality
dropout (one present modality zeroed and flagged absent) so a missing sensor can be rebuilt from
the others. Stage 2 freezes those weights (configurable) and trains the compute block and the
detection head on tuples with one modality corrupted on the fly by :mod:`lipfault_ros.faults`
(a fraction stays clean): loss = reconstruction-to-clean + lambda * supervised contrastive
(NT-Xent over clean / camera-fault / wrench-fault / joints-fault classes) + mu * per-modality BCE.
Per-modality thresholds are then set on clean validation data at a target false-alarm rate.

Determinism: every random draw of a step (shuffling, dropout, faults) is derived from
``(seed, stage, epoch/step)``, so a run resumed from a checkpoint ends with bit-identical weights
(CPU). Under ``torchrun`` (``WORLD_SIZE`` > 1) the objective is wrapped in DDP (gloo on CPU, NCCL
on CUDA), each rank takes a disjoint shard of every epoch's permutation and only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lipfault_ros.artifact import save_artifact
from lipfault_ros.calibration import CalibrationRule, calibrate
from lipfault_ros.errors import ConfigError, InputError, LipfaultError
from lipfault_ros.inference import resolve_device
from lipfault_ros.model.config import ModelConfig
from lipfault_ros.model.lipschitz import refresh_lipschitz
from lipfault_ros.model.network import LipfaultNet
from lipfault_ros.normalise import NormStats
from lipfault_ros.tuples import MODALITIES, SensorTuple, TupleArrays

__all__ = ['TrainConfig', 'TrainResult', 'fit', 'lr_at', 'supervised_contrastive',
           'format_summary', 'CHECKPOINT_FILE']

log = logging.getLogger(__name__)

CHECKPOINT_FILE = 'last.pt'
_MODULE_GROUPS = ('encoders', 'fusion', 'decoders', 'compute', 'detector')


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a training run (the model's sizes are in ModelConfig)."""

    stage1_epochs: int = 30
    stage2_epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3              # stage 1 peak learning rate (Adam)
    stage2_lr: float = 2e-3       # stage 2 peak learning rate
    weight_decay: float = 0.0
    warmup_steps: int = 20        # linear warm-up, then cosine decay to min_lr_ratio * lr
    min_lr_ratio: float = 0.1
    seed: int = 0
    device: str = 'auto'          # 'auto' -> cuda when available
    amp: bool = True              # mixed precision, only used on CUDA
    modality_dropout: float = 0.3  # stage 1: chance a sample loses one present modality
    freeze_stage1: bool = True    # stage 2 trains only the compute block and detection head
    fault_fraction: float = 0.75  # stage 2: share of samples with one corrupted modality
    severity_range: tuple[float, float] = (0.4, 1.0)
    # share of signal faults that began before the window (the whole window is faulty): on a
    # robot a lasting fault (bias, drift, stuck) soon fills every window, with no step left in it
    whole_window_fraction: float = 0.5
    # signal fault magnitudes (offsets, noise, spikes) are multiples of the normalised scale 1
    # times a factor drawn log-uniformly from this range: a live sensor's fault is sized in its
    # own units, which can be many standard deviations of a quiet channel (a 1 Nm bias on a
    # torque axis that varies by 0.02 Nm), and the detector must have seen such sizes
    fault_scale_range: tuple[float, float] = (1.0, 4.0)
    # 'modality:kind' entries to draw faults from; empty = every fault of the library
    fault_kinds: tuple[str, ...] = ()
    recon_weight: float = 1.0
    contrastive_weight: float = 0.5   # lambda
    bce_weight: float = 1.0           # mu
    temperature: float = 0.1
    # per-module max gradient norm (0 disables clipping of that module)
    clip_encoders: float = 1.0
    clip_fusion: float = 1.0
    clip_decoders: float = 1.0
    clip_compute: float = 1.0
    clip_detector: float = 5.0
    false_alarm_rate: float = 0.01    # per-modality threshold target on clean validation data
    checkpoint_every: int = 200       # steps between checkpoints (0: only at epoch ends)
    eval_batch_size: int = 128
    num_threads: int = 0              # torch threads on CPU (0: leave torch's default)

    def __post_init__(self) -> None:
        object.__setattr__(self, 'severity_range', tuple(float(s) for s in self.severity_range))
        object.__setattr__(self, 'fault_scale_range',
                           tuple(float(s) for s in self.fault_scale_range))
        object.__setattr__(self, 'fault_kinds', tuple(self.fault_kinds))
        for name in ('stage1_epochs', 'stage2_epochs', 'warmup_steps', 'checkpoint_every',
                     'num_threads'):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f'TrainConfig.{name} must be >= 0, got {getattr(self, name)}')
        for name in ('batch_size', 'eval_batch_size'):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f'TrainConfig.{name} must be >= 1, got {getattr(self, name)}')
        for name in ('modality_dropout', 'fault_fraction', 'whole_window_fraction'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f'TrainConfig.{name} must be in [0, 1]')
        if not 0.0 < self.false_alarm_rate < 1.0:
            raise ConfigError('TrainConfig.false_alarm_rate must be in (0, 1)')
        lo, hi = self.severity_range
        if not 0.0 < lo <= hi <= 1.0:
            raise ConfigError(f'TrainConfig.severity_range must satisfy 0 < lo <= hi <= 1, got '
                              f'{self.severity_range}')
        lo, hi = self.fault_scale_range
        if not 0.0 < lo <= hi:
            raise ConfigError(f'TrainConfig.fault_scale_range must satisfy 0 < lo <= hi, got '
                              f'{self.fault_scale_range}')
        if self.lr <= 0 or self.stage2_lr <= 0:
            raise ConfigError('TrainConfig.lr and stage2_lr must be positive')
        for entry in self.fault_kinds:
            if entry.count(':') != 1:
                raise ConfigError(f'TrainConfig.fault_kinds entry {entry!r} must be '
                                  f'"modality:kind"')

    @classmethod
    def quick(cls, **changes: Any) -> TrainConfig:
        """A short run that gives a usable small model from ~2-3k tuples in one to two minutes
        on a 2-core CPU (``lipfault train --quick`` and the demo).

        Stage 1 gets most of the epochs: they are cheap, and the detector can only be as good
        as the clean reconstruction it compares against (a few epochs leave the joint
        positions unreconstructed, and a joint fault then looks like every clean window). One
        torch thread: the model's small ops gain nothing from a second one, and on a busy
        2-core machine two threads per process make stage 2 several times slower."""
        base = dict(stage1_epochs=20, stage2_epochs=10, batch_size=32, lr=3e-3, stage2_lr=3e-3,
                    warmup_steps=10, checkpoint_every=0, num_threads=1)
        base.update(changes)
        return cls(**base)

    @classmethod
    def tiny(cls, **changes: Any) -> TrainConfig:
        """For tests on a few hundred tuples of the tiny model."""
        base = dict(stage1_epochs=12, stage2_epochs=12, batch_size=32, lr=5e-3, stage2_lr=3e-3,
                    warmup_steps=5, checkpoint_every=0, device='cpu')
        base.update(changes)
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out['severity_range'] = list(self.severity_range)
        out['fault_scale_range'] = list(self.fault_scale_range)
        out['fault_kinds'] = list(self.fault_kinds)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f'unknown TrainConfig keys: {", ".join(unknown)}')
        try:
            return cls(**dict(data))
        except TypeError as exc:
            raise ConfigError(f'invalid TrainConfig: {exc}') from exc


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`fit`: the artifact path, the summary stored in it, loss history."""

    artifact: Path
    summary: Mapping[str, Any]
    history: Mapping[str, list[float]] = field(default_factory=dict)

    def format(self) -> str:
        return format_summary(self.summary)


def format_summary(summary: Mapping[str, Any]) -> str:
    """A short human-readable table of a training summary."""
    lines = [f'{"modality":<9} {"recon MSE":>10} {"AUROC":>7} {"threshold":>10} '
             f'{"corr/corrupt":>12}']
    for m in MODALITIES:
        k = m.value

        def get(key: str) -> float:
            return float(summary.get(key, {}).get(k, float('nan')))
        lines.append(f'{k:<9} {get("recon_error"):>10.4g} {get("auroc"):>7.3f} '
                     f'{get("thresholds"):>10.4g} {get("correction_ratio"):>12.3f}')
    tps = summary.get('tuples_per_s', {})
    lines.append('throughput: ' + ', '.join(f'{k} {v:.0f} tuples/s' for k, v in tps.items()))
    return '\n'.join(lines)


def lr_at(step: int, total: int, *, base: float, warmup: int, min_ratio: float) -> float:
    """Learning rate at ``step`` (0-based) of ``total``: linear warm-up then cosine decay."""
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, max(0.0, (step - warmup) / span))
    return base * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def supervised_contrastive(embedding: torch.Tensor, classes: torch.Tensor,
                           temperature: float) -> torch.Tensor:
    """NT-Xent generalised to labels: same-class embeddings attract, others repel.

    ``embedding`` (B, E) unit norm, ``classes`` (B,) int. Anchors without a positive are skipped.
    """
    b = embedding.shape[0]
    sim = embedding @ embedding.t() / temperature
    eye = torch.eye(b, dtype=torch.bool, device=embedding.device)
    sim = sim.masked_fill(eye, float('-inf'))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos = (classes[:, None] == classes[None, :]) & ~eye
    n_pos = pos.sum(1)
    per_anchor = -log_prob.masked_fill(~pos, 0.0).sum(1) / n_pos.clamp_min(1)
    keep = n_pos > 0
    if not bool(keep.any()):
        return embedding.sum() * 0.0
    return per_anchor[keep].mean()


def _masked_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean squared error per sample, averaged over samples with weight 1."""
    per = (pred - target).pow(2).flatten(1).mean(1)
    return (per * weight).sum() / weight.sum().clamp_min(1.0)


class _Stage1Objective(nn.Module):
    """Clean reconstruction with modality dropout. Returns (loss, per-modality losses (3,))."""

    def __init__(self, net: LipfaultNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, cam: torch.Tensor, wr: torch.Tensor, jo: torch.Tensor,
                present: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = (cam, self.net.squash(wr), self.net.squash(jo))  # the decoders' targets
        masked = tuple(x * keep[:, i].view(-1, *([1] * (x.dim() - 1)))
                       for i, x in enumerate((cam, wr, jo)))
        _, z = self.net.encode(*masked, keep)
        recon = self.net.decode(z)
        parts = torch.stack([_masked_mse(r, x, present[:, i])
                             for i, (r, x) in enumerate(zip(recon, inputs))])
        return parts.sum(), parts


class _Stage2Objective(nn.Module):
    """Correction + contrastive + per-modality BCE. Returns (loss, parts (3,): recon,
    contrastive, bce)."""

    def __init__(self, net: LipfaultNet, cfg: TrainConfig) -> None:
        super().__init__()
        self.net = net
        self.cfg = cfg

    def forward(self, clean: tuple[torch.Tensor, ...], corrupt: tuple[torch.Tensor, ...],
                present: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        net, cfg = self.net, self.cfg
        with torch.set_grad_enabled(torch.is_grad_enabled() and not cfg.freeze_stage1):
            lat_c, z_c = net.encode(*clean, present)
            rec_c = net.decode(z_c)
            lat_f, z_f = net.encode(*corrupt, present)
            rec_f = net.decode(z_f)
        emb_c, log_c = net.detect(clean, lat_c, z_c, rec_c, present)
        emb_f, log_f = net.detect(corrupt, lat_f, z_f, rec_f, present)
        logits = torch.cat([log_c, log_f])
        targets = torch.cat([torch.zeros_like(labels), labels])
        pmask = torch.cat([present, present])
        bce = (F.binary_cross_entropy_with_logits(logits, targets, reduction='none') * pmask
               ).sum() / pmask.sum().clamp_min(1.0)
        classes = torch.cat([torch.zeros(labels.shape[0], dtype=torch.long, device=labels.device),
                             (labels * torch.arange(1, 4, device=labels.device)).sum(1).long()])
        con = supervised_contrastive(torch.cat([emb_c, emb_f]), classes, cfg.temperature)
        dec = net.decode(net.correct(lat_f, present, labels))
        target = (clean[0], net.squash(clean[1]), net.squash(clean[2]))
        recon = sum(_masked_mse(d, x, present[:, i]) for i, (d, x) in enumerate(zip(dec, target)))
        parts = torch.stack([recon, con, bce])
        loss = cfg.recon_weight * recon + cfg.contrastive_weight * con + cfg.bce_weight * bce
        return loss, parts


class _Data:
    """Model-space batches from TupleArrays; images are resized once if needed."""

    def __init__(self, arrays: TupleArrays, stats: NormStats, mcfg: ModelConfig,
                 device: torch.device) -> None:
        if len(arrays) == 0:
            raise InputError('training/validation set is empty')
        if tuple(arrays.joint_names) != mcfg.joint_names:
            raise InputError(f'data joint names {arrays.joint_names} differ from the model '
                             f'config {mcfg.joint_names}')
        if arrays.wrench.shape[1] != mcfg.wrench_window:
            raise InputError(f'data wrench window {arrays.wrench.shape[1]} differs from the model '
                             f'config wrench_window={mcfg.wrench_window}')
        if arrays.joints.shape[1] != mcfg.joints_window:
            raise InputError(f'data joints window {arrays.joints.shape[1]} differs from the model '
                             f'config joints_window={mcfg.joints_window}')
        s = mcfg.image_size
        images = arrays.images
        if images.shape[1:3] != (s, s):
            import cv2
            images = np.stack([cv2.resize(np.asarray(im), (s, s), interpolation=cv2.INTER_AREA)
                               for im in images])
        self.images = images
        self.arrays = arrays
        self.stats = stats
        self.device = device
        self.n = len(arrays)

    def batch(self, idx: np.ndarray) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        idx = np.sort(idx)
        missing = np.asarray(self.arrays.missing[idx], bool)
        wr = self.stats.normalise_wrench(np.asarray(self.arrays.wrench[idx], np.float64))
        jo = self.stats.normalise_joints(np.asarray(self.arrays.joints[idx], np.float64))
        bad = np.stack([np.zeros(len(idx), bool), ~np.isfinite(wr).all((1, 2)),
                        ~np.isfinite(jo).all((1, 2))], 1)
        missing = missing | bad  # a non-finite training window is treated as absent
        wr = np.where(np.isfinite(wr), wr, 0.0).astype(np.float32)
        jo = np.where(np.isfinite(jo), jo, 0.0).astype(np.float32)
        cam = torch.from_numpy(np.asarray(self.images[idx])).permute(0, 3, 1, 2).float() / 255.0
        present = torch.from_numpy(~missing).float()
        tensors = [cam, torch.from_numpy(wr), torch.from_numpy(jo)]
        tensors = [t * present[:, i].view(-1, *([1] * (t.dim() - 1)))
                   for i, t in enumerate(tensors)]
        dev = self.device
        return tuple(t.to(dev) for t in tensors), present.to(dev)


def _seed_int(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _fault_table(cfg: TrainConfig) -> dict[int, tuple[str, ...]]:
    from lipfault_ros.faults import FAULTS, check_fault
    if not cfg.fault_kinds:
        return {i: tuple(FAULTS[m]) for i, m in enumerate(MODALITIES)}
    table: dict[int, list[str]] = {i: [] for i in range(3)}
    for entry in cfg.fault_kinds:
        mod, kind = entry.split(':')
        try:
            i = [m.value for m in MODALITIES].index(mod)
        except ValueError as exc:
            raise ConfigError(f'TrainConfig.fault_kinds: unknown modality {mod!r}') from exc
        table[i].append(check_fault(MODALITIES[i], kind))
    for i, kinds in table.items():
        if not kinds:
            raise ConfigError(f'TrainConfig.fault_kinds names no fault for {MODALITIES[i].value}')
    return {i: tuple(k) for i, k in table.items()}


def _draw_faults(rng: np.random.Generator, present: np.ndarray, fraction: float,
                 table: Mapping[int, tuple[str, ...]], severity: tuple[float, float]
                 ) -> tuple[np.ndarray, list[list[str]], np.ndarray]:
    """Per sample: maybe one present modality and a kind; returns labels (B,3), kinds per
    modality (3 lists of B), severities (B,)."""
    b = present.shape[0]
    labels = np.zeros((b, 3), np.float32)
    kinds = [[''] * b for _ in range(3)]
    sev = rng.uniform(severity[0], severity[1], size=b)
    faulty = rng.random(b) < fraction
    choice = rng.random(b)
    pick = rng.random(b)
    for i in range(b):
        avail = np.flatnonzero(present[i])
        if not faulty[i] or len(avail) == 0:
            continue
        m = int(avail[min(int(choice[i] * len(avail)), len(avail) - 1)])
        options = table[m]
        kinds[m][i] = options[min(int(pick[i] * len(options)), len(options) - 1)]
        labels[i, m] = 1.0
    return labels, kinds, sev


def _corrupt(inputs: tuple[torch.Tensor, ...], kinds: list[list[str]], sev: np.ndarray,
             rng: np.random.Generator, whole_window: float,
             scale_range: tuple[float, float] = (1.0, 1.0)) -> tuple[torch.Tensor, ...]:
    """Corrupted copies of the model-space inputs. Signal faults start inside the window
    (a step the encoder can see) or, for a ``whole_window`` share, before it; their size is
    scaled by a factor drawn log-uniformly from ``scale_range`` (the window is divided by it,
    corrupted at scale 1 and multiplied back, so offsets, noise and spikes grow with it while
    stuck, gain, dropout and sign faults are unchanged)."""
    from lipfault_ros.faults import corrupt_batch
    out = []
    for i, x in enumerate(inputs):
        if any(kinds[i]):
            onsets = None
            if x.ndim == 3:  # (B, C, T) signals
                t_len = x.shape[2]
                onsets = rng.integers(0, max(1, (3 * t_len) // 4), size=x.shape[0])
                onsets[rng.random(x.shape[0]) < whole_window] = 0
                lo, hi = scale_range
                k = torch.from_numpy(np.exp(rng.uniform(np.log(lo), np.log(hi), x.shape[0]))
                                     ).to(torch.float32).view(-1, 1, 1)
                y = corrupt_batch(MODALITIES[i], x.cpu() / k, kinds[i], torch.from_numpy(sev),
                                  rng, onsets=onsets) * k
            else:
                y = corrupt_batch(MODALITIES[i], x.cpu(), kinds[i], torch.from_numpy(sev), rng)
            out.append(torch.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0).to(x.device))
        else:
            out.append(x)
    return tuple(out)


def _dropout_keep(present: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Drop one present modality of a sample with probability p (never the last one)."""
    b = present.shape[0]
    cpu = present.cpu()
    r = torch.rand(b, generator=gen)
    which = torch.rand(b, generator=gen)
    keep = cpu.clone()
    for i in range(b):
        avail = cpu[i].nonzero(as_tuple=True)[0]
        if r[i] < p and len(avail) >= 2:
            keep[i, avail[min(int(which[i] * len(avail)), len(avail) - 1)]] = 0.0
    return keep.to(present.device)


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Atomic: write a temp file beside ``path`` and rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f'no checkpoint at {path} to resume from')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # a corrupt file: name it
        raise LipfaultError(f'checkpoint {path} cannot be loaded: {exc}') from exc


@torch.no_grad()
def _evaluate(net: LipfaultNet, data: _Data, cfg: TrainConfig, table: Mapping[int, tuple[str, ...]]
              ) -> dict[str, Any]:
    """Thresholds on clean data, per-modality recon error, AUROC and correction ratio with
    injected faults."""
    from sklearn.metrics import roc_auc_score

    net.eval()
    saved = net.thresholds.clone()
    net.thresholds.fill_(float('inf'))
    rng = np.random.default_rng(_seed_int(cfg.seed, 99))
    clean_scores, present_all = [], []
    recon_err = np.zeros(3)
    recon_n = np.zeros(3)
    fault_scores = {i: [] for i in range(3)}
    corr_err = np.zeros(3)
    corrupt_err = np.zeros(3)
    for b0 in range(0, data.n, cfg.eval_batch_size):
        idx = np.arange(b0, min(data.n, b0 + cfg.eval_batch_size))
        inputs, present = data.batch(idx)
        out = net(*inputs, present)
        targets = (inputs[0], net.squash(inputs[1]), net.squash(inputs[2]))
        clean_scores.append(out.scores.cpu().numpy())
        pres = present.cpu().numpy() > 0.5
        present_all.append(pres)
        for i in range(3):
            per = (out.reconstruction[i] - targets[i]).pow(2).flatten(1).mean(1).cpu().numpy()
            recon_err[i] += per[pres[:, i]].sum()
            recon_n[i] += pres[:, i].sum()
        for i in range(3):
            b = len(idx)
            kinds = [[''] * b for _ in range(3)]
            opts = table[i]
            kinds[i] = [opts[int(k)] for k in rng.integers(0, len(opts), b)]
            sev = rng.uniform(*cfg.severity_range, size=b)
            corrupt = _corrupt(inputs, kinds, sev, rng, cfg.whole_window_fraction,
                               cfg.fault_scale_range)
            out_f = net(*corrupt, present)
            sc = out_f.scores[:, i].cpu().numpy()
            fault_scores[i].append(sc[pres[:, i]])
            labels = torch.zeros_like(present)
            labels[:, i] = 1.0
            lat, _ = net.encode(*corrupt, present)
            dec = net.decode(net.correct(lat, present, labels))
            bad = corrupt[i] if i == 0 else net.squash(corrupt[i])
            e_corr = (dec[i] - targets[i]).pow(2).flatten(1).mean(1).cpu().numpy()
            e_cor = (bad - targets[i]).pow(2).flatten(1).mean(1).cpu().numpy()
            corr_err[i] += e_corr[pres[:, i]].sum()
            corrupt_err[i] += e_cor[pres[:, i]].sum()
    net.thresholds.copy_(saved)
    clean = np.concatenate(clean_scores)
    pres = np.concatenate(present_all)
    stamps = np.asarray(data.arrays.stamps_ns, np.int64)[:len(clean)]
    rule = CalibrationRule(cfg.false_alarm_rate)
    thresholds, aurocs, recon, ratio = {}, {}, {}, {}
    for i, m in enumerate(MODALITIES):
        neg = clean[pres[:, i], i]
        pos = np.concatenate(fault_scores[i])
        thresholds[m.value] = calibrate(neg, stamps[pres[:, i]], rule)
        if len(neg) and len(pos):
            y = np.r_[np.zeros(len(neg)), np.ones(len(pos))]
            aurocs[m.value] = float(roc_auc_score(y, np.r_[neg, pos]))
        else:
            aurocs[m.value] = float('nan')
        recon[m.value] = float(recon_err[i] / max(1.0, recon_n[i]))
        ratio[m.value] = float(corr_err[i] / max(1e-12, corrupt_err[i]))
    return {'thresholds': thresholds, 'auroc': aurocs, 'recon_error': recon,
            'correction_ratio': ratio, 'calibration': rule.recipe()}


@torch.no_grad()
def _calibrate_error_scale(net: LipfaultNet, data: _Data, cfg: TrainConfig,
                           max_rows: int = 2048) -> None:
    """Set the network's per-channel clean residual and change scales from the stage-1
    reconstructions of (at most ``max_rows`` evenly spaced) training tuples, see
    ``LipfaultNet.error_features``.

    Residual scale: per channel, the mean over windows of the window's mean squared residual
    (floored, so a channel that is reconstructed nearly perfectly does not turn the smallest
    change into a huge standardised error).
    Change scale: per channel, a low (5 %) percentile over windows of the window's mean squared
    sample-to-sample change, the least a clean window of that channel moves; 0 for channels
    that some clean windows hold flat (a joint at rest), which the flatness feature then
    ignores. A mean would not do: contact events make the change heavy-tailed, and the
    typical window would look "flatter than clean" all the time.
    """
    net.eval()
    rows = np.unique(np.linspace(0, data.n - 1, min(data.n, max_rows)).astype(np.int64))
    errs: list[list[torch.Tensor]] = [[], []]
    changes: list[list[torch.Tensor]] = [[], []]
    crosses: list[list[torch.Tensor]] = [[], []]
    for b0 in range(0, len(rows), cfg.eval_batch_size):
        inputs, present = data.batch(rows[b0:b0 + cfg.eval_batch_size])
        latents, z = net.encode(*inputs, present)
        recon = net.decode(z)
        cross = net.cross_reconstruction(latents, present)
        for k, i in enumerate((1, 2)):
            keep = present[:, i] > 0.5
            x = net.squash(inputs[i])[keep]
            errs[k].append((recon[i][keep] - x).pow(2).mean(2).cpu())
            changes[k].append((x[..., 1:] - x[..., :-1]).pow(2).mean(2).cpu())
            crosses[k].append((cross[i][keep] - x).pow(2).mean(2).cpu())
    scales = []
    for k, size in enumerate((6, net.cfg.joints_channels)):
        for acc, robust in ((errs[k], False), (changes[k], True), (crosses[k], False)):
            if not acc or sum(len(a) for a in acc) == 0:
                scales.append(torch.ones(size))
                continue
            rows_k = torch.cat(acc).double()
            if robust:
                per = torch.quantile(rows_k, 0.05, dim=0)
                per = torch.where(per > 1e-3 * float(per.max()) + 1e-12, per,
                                  torch.zeros_like(per))
            else:
                per = rows_k.mean(dim=0).clamp_min(max(1e-6, 0.01 * float(rows_k.mean())))
            scales.append(per.float())
    net.set_error_scale(scales[0], scales[3], scales[1], scales[4], scales[2], scales[5])
    log.debug('error scales: wrench %s joints %s', scales[0].tolist(), scales[3].tolist())


def _clip(net: LipfaultNet, cfg: TrainConfig) -> None:
    for group in _MODULE_GROUPS:
        limit = getattr(cfg, f'clip_{group}')
        if limit > 0:
            params = [p for p in getattr(net, group).parameters() if p.grad is not None]
            if params:
                torch.nn.utils.clip_grad_norm_(params, limit)


def _set_trainable(net: LipfaultNet, stage: int, cfg: TrainConfig) -> list[nn.Parameter]:
    stage1 = ('encoders', 'fusion', 'decoders')
    for group in _MODULE_GROUPS:
        train = (group in stage1) if stage == 1 else (
            group in ('compute', 'detector') or not cfg.freeze_stage1)
        for p in getattr(net, group).parameters():
            p.requires_grad_(train)
    return [p for p in net.parameters() if p.requires_grad]


def fit(train: TupleArrays | Iterable[SensorTuple], val: TupleArrays | Iterable[SensorTuple],
        config: TrainConfig, model_config: ModelConfig,
        *, out: Path, checkpoint_dir: Path | None = None, resume: bool = False,
        progress: bool = True, log_dir: Path | None = None, overwrite: bool = False,
        on_step: Callable[[int, int], None] | None = None) -> TrainResult:
    """Train both stages, calibrate thresholds on ``val`` and write the artifact at ``out``.

    ``train``/``val`` are TupleArrays or any iterable of synchronised SensorTuples (stacked
    here; images resized to the model size).

    ``resume`` continues from ``checkpoint_dir/last.pt`` (same data and configs expected).
    ``on_step(stage, step)`` is called after every optimiser step (progress hooks; raising
    KeyboardInterrupt there behaves like Ctrl-C: a checkpoint is written, then it re-raises).
    """
    out = Path(out)
    size = (model_config.image_size, model_config.image_size)
    if not isinstance(train, TupleArrays):  # any iterable of synchronised SensorTuples
        train = TupleArrays.from_tuples(list(train), image_size=size)
    if not isinstance(val, TupleArrays):
        val = TupleArrays.from_tuples(list(val), image_size=size)
    world = int(os.environ.get('WORLD_SIZE', '1'))
    distributed = world > 1
    rank = 0
    own_group = False
    if distributed:
        import torch.distributed as dist
        if not dist.is_initialized():
            backend = 'nccl' if torch.cuda.is_available() and config.device != 'cpu' else 'gloo'
            dist.init_process_group(backend=backend)
            own_group = True
        rank = dist.get_rank()
    if out.exists() and not overwrite:
        raise FileExistsError(f'artifact {out} exists (pass overwrite=True to replace it)')
    if resume and checkpoint_dir is None:
        raise ConfigError('resume=True needs a checkpoint_dir')
    if distributed and torch.cuda.is_available() and config.device in ('auto', 'cuda'):
        device = torch.device('cuda', int(os.environ.get('LOCAL_RANK', '0')))
        torch.cuda.set_device(device)
    else:
        device = resolve_device(config.device)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    use_amp = bool(config.amp and device.type == 'cuda')
    table = _fault_table(config)
    stats = NormStats.fit(train)
    train_data = _Data(train, stats, model_config, device)
    val_data = _Data(val, stats, model_config, device)

    torch.manual_seed(config.seed)
    net = LipfaultNet(model_config).to(device)
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_FILE if checkpoint_dir is not None else None
    state: dict[str, Any] = {'stage': 1, 'epoch': 0, 'batch': 0, 'step': 0,
                             'history': {'stage1': [], 'stage2': []}, 'elapsed': [0.0, 0.0],
                             'seen': [0, 0], 'best': float('inf'), 'epoch_losses': []}
    ckpt = None
    if resume:
        ckpt = _load_checkpoint(ckpt_path)
        try:
            if json.loads(ckpt['model_config']) != json.loads(json.dumps(
                    model_config.to_dict())):
                raise ConfigError(f'checkpoint {ckpt_path} was made with another ModelConfig')
        except KeyError as exc:
            raise LipfaultError(f'checkpoint {ckpt_path} lacks {exc.args[0]}') from exc
        net.load_state_dict(ckpt['model'])
        state.update(json.loads(ckpt['state']))
        torch.set_rng_state(ckpt['torch_rng'])
        log.info('resuming from %s at stage %d epoch %d batch %d', ckpt_path, state['stage'],
                 state['epoch'], state['batch'])

    writer = None
    if log_dir is not None and rank == 0:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(log_dir))

    per_rank = train_data.n // world
    steps_per_epoch = max(1, math.ceil(per_rank / config.batch_size))
    stage_total = {1: steps_per_epoch * config.stage1_epochs,
                   2: steps_per_epoch * config.stage2_epochs}

    def run_stage(stage: int) -> None:
        nonlocal ckpt
        params = _set_trainable(net, stage, config)
        objective: nn.Module = (_Stage1Objective(net) if stage == 1
                                else _Stage2Objective(net, config))
        model_for_step: nn.Module = objective
        if distributed:
            from torch.nn.parallel import DistributedDataParallel
            model_for_step = DistributedDataParallel(
                objective, device_ids=[device.index] if device.type == 'cuda' else None)
        base_lr = config.lr if stage == 1 else config.stage2_lr
        opt = torch.optim.Adam(params, lr=base_lr, weight_decay=config.weight_decay)
        scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
        if ckpt is not None and state['stage'] == stage and 'optimizer' in ckpt:
            opt.load_state_dict(ckpt['optimizer'])
            if ckpt.get('scaler'):
                scaler.load_state_dict(ckpt['scaler'])
        ckpt = None
        epochs = config.stage1_epochs if stage == 1 else config.stage2_epochs
        total = stage_total[stage]
        bar = None
        if progress and rank == 0:
            from tqdm import tqdm
            bar = tqdm(total=total, initial=state['step'], desc=f'stage {stage}', unit='step',
                       leave=False)
        nonfinite = 0

        def save(tag: str) -> None:
            if ckpt_path is None or rank != 0:
                return
            _save_checkpoint(ckpt_path, {
                'model': net.state_dict(), 'optimizer': opt.state_dict(),
                'scaler': scaler.state_dict() if use_amp else {},
                'model_config': json.dumps(model_config.to_dict()),
                'train_config': json.dumps(config.to_dict()),
                'stats': json.dumps(stats.to_dict()),
                'state': json.dumps(state), 'torch_rng': torch.get_rng_state(),
            })
            log.debug('checkpoint (%s) stage %d step %d -> %s', tag, stage, state['step'],
                      ckpt_path)

        try:
            while state['epoch'] < epochs:
                epoch = state['epoch']
                perm = np.random.default_rng(_seed_int(config.seed, stage, epoch)).permutation(
                    train_data.n)[:per_rank * world][rank::world]
                losses = state['epoch_losses']  # survives an interrupt mid-epoch
                t0 = time.perf_counter()
                while state['batch'] < steps_per_epoch:
                    b = state['batch']
                    idx = perm[b * config.batch_size:(b + 1) * config.batch_size]
                    step = state['step']
                    lr = lr_at(step, total, base=base_lr, warmup=config.warmup_steps,
                               min_ratio=config.min_lr_ratio)
                    for g in opt.param_groups:
                        g['lr'] = lr
                    inputs, present = train_data.batch(idx)
                    net.train()
                    if stage == 2 and config.freeze_stage1:
                        # frozen modules keep their power-iteration state
                        for group in ('encoders', 'fusion', 'decoders'):
                            getattr(net, group).eval()
                    with torch.autocast(device.type, enabled=use_amp):
                        if stage == 1:
                            gen = torch.Generator().manual_seed(
                                _seed_int(config.seed, 1, step, rank))
                            keep = _dropout_keep(present, config.modality_dropout, gen)
                            loss, parts = model_for_step(*inputs, present, keep)
                        else:
                            rng = np.random.default_rng(_seed_int(config.seed, 2, step, rank))
                            labels, kinds, sev = _draw_faults(
                                rng, present.cpu().numpy() > 0.5, config.fault_fraction, table,
                                config.severity_range)
                            corrupt = _corrupt(inputs, kinds, sev, rng,
                                               config.whole_window_fraction,
                                               config.fault_scale_range)
                            loss, parts = model_for_step(inputs, corrupt, present,
                                                         torch.from_numpy(labels).to(device))
                    if not torch.isfinite(loss):
                        nonfinite += 1
                        log.warning('non-finite loss at stage %d step %d, step skipped', stage,
                                    step)
                        opt.zero_grad(set_to_none=True)
                        if nonfinite > 10:
                            raise LipfaultError(f'stage {stage}: loss is not finite for '
                                                f'{nonfinite} steps (lower TrainConfig.lr?)')
                    else:
                        nonfinite = 0
                        scaler.scale(loss).backward()
                        scaler.unscale_(opt)
                        _clip(net, config)
                        scaler.step(opt)
                        scaler.update()
                        opt.zero_grad(set_to_none=True)
                        losses.append(float(loss.detach()))
                        if writer is not None:
                            writer.add_scalar(f'stage{stage}/loss', losses[-1], step)
                            writer.add_scalar(f'stage{stage}/lr', lr, step)
                            names = (('camera', 'wrench', 'joints') if stage == 1 else
                                     ('recon', 'contrastive', 'bce'))
                            for n, v in zip(names, parts.detach().cpu().tolist()):
                                writer.add_scalar(f'stage{stage}/{n}', v, step)
                    state['batch'] += 1
                    state['step'] += 1
                    state['seen'][stage - 1] += len(idx) * world
                    if bar is not None:
                        bar.update(1)
                        if losses:
                            bar.set_postfix(loss=f'{losses[-1]:.4f}')
                    if config.checkpoint_every and state['step'] % config.checkpoint_every == 0:
                        state['elapsed'][stage - 1] += time.perf_counter() - t0
                        t0 = time.perf_counter()
                        save('step')
                    if on_step is not None:
                        on_step(stage, state['step'])
                state['elapsed'][stage - 1] += time.perf_counter() - t0
                mean = float(np.mean(losses)) if losses else float('nan')
                state['history'][f'stage{stage}'].append(mean)
                if math.isfinite(mean):
                    state['best'] = min(state['best'], mean)  # best epoch loss of this stage
                state['epoch'] += 1
                state['batch'] = 0
                state['epoch_losses'] = []
                log.debug('stage %d epoch %d loss %.5f', stage, epoch, mean)
                save('epoch')
        except KeyboardInterrupt:
            save('interrupt')
            raise
        finally:
            if bar is not None:
                bar.close()

    try:
        if state['stage'] == 1:
            run_stage(1)
            _calibrate_error_scale(net, train_data, config)
            state.update(stage=2, epoch=0, batch=0, step=0, best=float('inf'))
        run_stage(2)
        state['stage'] = 3
        if distributed:
            import torch.distributed as dist
            dist.barrier()
        summary: dict[str, Any] = {}
        refresh_lipschitz(net)  # converge the spectral-norm estimates before calibrating
        if rank == 0:
            metrics = _evaluate(net, val_data, config, table)
            thr = metrics['thresholds']
            with torch.no_grad():
                net.thresholds.copy_(torch.tensor([thr[m.value] for m in MODALITIES]))
            seen, elapsed = state['seen'], state['elapsed']
            summary = {
                **metrics,
                'tuples_per_s': {f'stage{i + 1}': (seen[i] / elapsed[i] if elapsed[i] else 0.0)
                                 for i in range(2)},
                'final_loss': {k: (v[-1] if v else float('nan'))
                               for k, v in state['history'].items()},
                'train_tuples': train_data.n, 'val_tuples': val_data.n,
                'false_alarm_rate': config.false_alarm_rate, 'seed': config.seed,
                'device': str(device), 'world_size': world,
                'train_config': config.to_dict(),
            }
            net.cpu()
            save_artifact(out, net, stats=stats, summary=summary, overwrite=overwrite)
            if writer is not None:
                for m in MODALITIES:
                    writer.add_scalar(f'val/auroc_{m.value}', metrics['auroc'][m.value])
        if distributed:
            import torch.distributed as dist
            dist.barrier()
        return TrainResult(out, summary, {k: list(v) for k, v in state['history'].items()})
    finally:
        if writer is not None:
            writer.close()
        if own_group:
            import torch.distributed as dist
            dist.destroy_process_group()
