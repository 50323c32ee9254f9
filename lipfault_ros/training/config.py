"""What a training run is told (:class:`TrainConfig`) and what it returns (:class:`TrainResult`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lipfault_ros.errors import ConfigError
from lipfault_ros.tuples import MODALITIES

__all__ = ['TrainConfig', 'TrainResult', 'format_summary']


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
    # alarm events per hour the thresholds' tail bound aims at (calibration.event_threshold;
    # 0: off): a few minutes of validation data must speak for hours of operation
    false_alarm_events_per_hour: float = 1.0
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
        if not 0.0 <= self.false_alarm_events_per_hour < float('inf'):
            raise ConfigError('TrainConfig.false_alarm_events_per_hour must be finite and >= 0')
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
