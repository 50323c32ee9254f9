"""The training loop: both stages, checkpoints, resume, DDP, and the artifact at the end."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from lipfault_ros.artifact import save_artifact
from lipfault_ros.device import resolve_device
from lipfault_ros.errors import ConfigError, LipfaultError
from lipfault_ros.model.config import ModelConfig
from lipfault_ros.model.lipschitz import refresh_lipschitz
from lipfault_ros.model.network import LipfaultNet
from lipfault_ros.normalise import NormStats
from lipfault_ros.training.calibrate import calibrate_error_scale, evaluate
from lipfault_ros.training.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from lipfault_ros.training.config import TrainConfig, TrainResult
from lipfault_ros.training.corruption import (corrupt_with_history, draw_faults, dropout_keep,
                                              fault_table, seed_int)
from lipfault_ros.training.batches import TrainingData
from lipfault_ros.training.objectives import Stage1Objective, Stage2Objective, lr_at
from lipfault_ros.tuples import MODALITIES, SensorTuple, TupleArrays

__all__ = ['fit', 'join_process_group']

log = logging.getLogger(__name__)

_MODULE_GROUPS = ('encoders', 'fusion', 'decoders', 'compute', 'detector')


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
    trainer = _Trainer(train, val, config, model_config, out=Path(out),
                       checkpoint_dir=checkpoint_dir, resume=resume, overwrite=overwrite)
    return trainer.run(progress=progress, log_dir=log_dir, on_step=on_step)


def join_process_group(device: str) -> tuple[int, int, bool]:
    """(world size, rank, whether this call started the process group) under torchrun
    (``WORLD_SIZE`` > 1; NCCL unless ``device`` is 'cpu' or CUDA is absent, else gloo); the
    one place the package starts DDP, whoever calls first."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world <= 1:
        return world, 0, False
    import torch.distributed as dist
    own = False
    if not dist.is_initialized():
        backend = 'nccl' if torch.cuda.is_available() and device != 'cpu' else 'gloo'
        dist.init_process_group(backend=backend)
        own = True
    return world, dist.get_rank(), own


class _Trainer:
    """What one :func:`fit` call shares between its stages: data, network, the resumable
    ``state`` (stage, epoch, batch, step, loss history, time and tuples per stage) and the
    optimiser of the stage that runs."""

    def __init__(self, train: TupleArrays | Iterable[SensorTuple],
                 val: TupleArrays | Iterable[SensorTuple], config: TrainConfig,
                 model_config: ModelConfig, *, out: Path, checkpoint_dir: Path | None,
                 resume: bool, overwrite: bool) -> None:
        size = (model_config.image_size, model_config.image_size)
        if not isinstance(train, TupleArrays):  # any iterable of synchronised SensorTuples
            train = TupleArrays.from_tuples(list(train), image_size=size)
        if not isinstance(val, TupleArrays):
            val = TupleArrays.from_tuples(list(val), image_size=size)
        self.config, self.model_config, self.out, self.overwrite = (config, model_config, out,
                                                                     overwrite)
        self.world, self.rank, self.own_group = join_process_group(config.device)
        self.distributed = self.world > 1
        if out.exists() and not overwrite:
            raise FileExistsError(f'artifact {out} exists (pass overwrite=True to replace it)')
        if resume and checkpoint_dir is None:
            raise ConfigError('resume=True needs a checkpoint_dir')
        if self.distributed and torch.cuda.is_available() and config.device in ('auto', 'cuda'):
            self.device = torch.device('cuda', int(os.environ.get('LOCAL_RANK', '0')))
            torch.cuda.set_device(self.device)
        else:
            self.device = resolve_device(config.device)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        self.use_amp = bool(config.amp and self.device.type == 'cuda')
        self.table = fault_table(config)
        self.stats = NormStats.fit(train)
        self.train_data = TrainingData(train, self.stats, model_config, self.device)
        self.val_data = TrainingData(val, self.stats, model_config, self.device)
        torch.manual_seed(config.seed)
        self.net = LipfaultNet(model_config).to(self.device)
        self.ckpt_path = Path(checkpoint_dir) / CHECKPOINT_FILE if checkpoint_dir is not None \
            else None
        self.state: dict[str, Any] = {
            'stage': 1, 'epoch': 0, 'batch': 0, 'step': 0,
            'history': {'stage1': [], 'stage2': []}, 'elapsed': [0.0, 0.0], 'seen': [0, 0],
            'best': float('inf'), 'epoch_losses': []}
        self.ckpt = self._resume() if resume else None
        self.per_rank = self.train_data.n // self.world
        self.steps_per_epoch = max(1, math.ceil(self.per_rank / config.batch_size))
        self.writer: Any = None
        self.opt: Any = None
        self.scaler: Any = None

    def _resume(self) -> dict[str, Any]:
        ckpt = load_checkpoint(self.ckpt_path)
        try:
            if json.loads(ckpt['model_config']) != json.loads(json.dumps(
                    self.model_config.to_dict())):
                raise ConfigError(f'checkpoint {self.ckpt_path} was made with another '
                                  f'ModelConfig')
        except KeyError as exc:
            raise LipfaultError(f'checkpoint {self.ckpt_path} lacks {exc.args[0]}') from exc
        self.net.load_state_dict(ckpt['model'])
        self.state.update(json.loads(ckpt['state']))
        torch.set_rng_state(ckpt['torch_rng'])
        log.info('resuming from %s at stage %d epoch %d batch %d', self.ckpt_path,
                 self.state['stage'], self.state['epoch'], self.state['batch'])
        return ckpt

    def run(self, *, progress: bool, log_dir: Path | None,
            on_step: Callable[[int, int], None] | None) -> TrainResult:
        if log_dir is not None and self.rank == 0:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(log_dir))
        state = self.state
        try:
            if state['stage'] == 1:
                self._run_stage(1, progress, on_step)
                calibrate_error_scale(self.net, self.train_data, self.config)
                state.update(stage=2, epoch=0, batch=0, step=0, best=float('inf'))
            self._run_stage(2, progress, on_step)
            state['stage'] = 3
            self._barrier()
            refresh_lipschitz(self.net)  # converge the spectral-norm estimates first
            summary = self._calibrate_and_save() if self.rank == 0 else {}
            self._barrier()
            return TrainResult(self.out, summary,
                               {k: list(v) for k, v in state['history'].items()})
        finally:
            if self.writer is not None:
                self.writer.close()
            if self.own_group:
                import torch.distributed as dist
                dist.destroy_process_group()

    def _barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist
            dist.barrier()

    def _calibrate_and_save(self) -> dict[str, Any]:
        """Thresholds, clean and hold levels on the validation data, then the artifact."""
        config, state, net = self.config, self.state, self.net
        metrics = evaluate(net, self.val_data, config, self.table)
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
            'train_tuples': self.train_data.n, 'val_tuples': self.val_data.n,
            'false_alarm_rate': config.false_alarm_rate, 'seed': config.seed,
            'device': str(self.device), 'world_size': self.world,
            'train_config': config.to_dict(),
        }
        net.cpu()
        save_artifact(self.out, net, stats=self.stats, summary=summary,
                      overwrite=self.overwrite, clean_levels=metrics['clean_levels'],
                      hold_levels=metrics['hold_levels'])
        if self.writer is not None:
            for m in MODALITIES:
                self.writer.add_scalar(f'val/auroc_{m.value}', metrics['auroc'][m.value])
        return summary

    def _save(self, stage: int, tag: str) -> None:
        if self.ckpt_path is None or self.rank != 0:
            return
        save_checkpoint(self.ckpt_path, {
            'model': self.net.state_dict(), 'optimizer': self.opt.state_dict(),
            'scaler': self.scaler.state_dict() if self.use_amp else {},
            'model_config': json.dumps(self.model_config.to_dict()),
            'train_config': json.dumps(self.config.to_dict()),
            'stats': json.dumps(self.stats.to_dict()),
            'state': json.dumps(self.state), 'torch_rng': torch.get_rng_state(),
        })
        log.debug('checkpoint (%s) stage %d step %d -> %s', tag, stage, self.state['step'],
                  self.ckpt_path)

    def _prepare_stage(self, stage: int) -> tuple[nn.Module, float]:
        """Trainable parameters, objective (wrapped in DDP when distributed), optimiser and
        scaler of ``stage`` (restored from the checkpoint being resumed); its base rate."""
        config = self.config
        params = _set_trainable(self.net, stage, config)
        objective: nn.Module = (Stage1Objective(self.net) if stage == 1
                                else Stage2Objective(self.net, config))
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel
            objective = DistributedDataParallel(
                objective, device_ids=[self.device.index] if self.device.type == 'cuda'
                else None)
        base_lr = config.lr if stage == 1 else config.stage2_lr
        self.opt = torch.optim.Adam(params, lr=base_lr, weight_decay=config.weight_decay)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.use_amp)
        ckpt = self.ckpt
        if ckpt is not None and self.state['stage'] == stage and 'optimizer' in ckpt:
            self.opt.load_state_dict(ckpt['optimizer'])
            if ckpt.get('scaler'):
                self.scaler.load_state_dict(ckpt['scaler'])
        self.ckpt = None
        return objective, base_lr

    def _loss(self, objective: nn.Module, stage: int, idx: np.ndarray, step: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of one batch: stage 1 with modality dropout, stage 2 on drawn faults."""
        config, net, device = self.config, self.net, self.device
        inputs, present = self.train_data.batch(idx)
        net.train()
        if stage == 2 and config.freeze_stage1:
            # frozen modules keep their power-iteration state
            for group in ('encoders', 'fusion', 'decoders'):
                getattr(net, group).eval()
        with torch.autocast(device.type, enabled=self.use_amp):
            if stage == 1:
                gen = torch.Generator().manual_seed(seed_int(config.seed, 1, step, self.rank))
                keep = dropout_keep(present, config.modality_dropout, gen)
                return objective(*inputs, present, keep)
            rng = np.random.default_rng(seed_int(config.seed, 2, step, self.rank))
            labels, kinds, sev = draw_faults(rng, present.cpu().numpy() > 0.5,
                                             config.fault_fraction, self.table,
                                             config.severity_range)
            prev, valid = self.train_data.previous_camera(idx)
            corrupt, *changes = corrupt_with_history(inputs, kinds, sev, rng, prev, valid,
                                                     config)
            return objective(inputs, corrupt, present, torch.from_numpy(labels).to(device),
                             tuple(changes))

    def _optimise(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.opt)
        _clip(self.net, self.config)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad(set_to_none=True)

    def _log_step(self, stage: int, step: int, loss: float, lr: float, parts: torch.Tensor
                  ) -> None:
        if self.writer is None:
            return
        self.writer.add_scalar(f'stage{stage}/loss', loss, step)
        self.writer.add_scalar(f'stage{stage}/lr', lr, step)
        names = ('camera', 'wrench', 'joints') if stage == 1 else ('recon', 'contrastive', 'bce')
        for n, v in zip(names, parts.detach().cpu().tolist()):
            self.writer.add_scalar(f'stage{stage}/{n}', v, step)

    def _run_stage(self, stage: int, progress: bool,
                   on_step: Callable[[int, int], None] | None) -> None:
        """Every remaining epoch of ``stage``, checkpointing as configured (and on Ctrl-C)."""
        config, state = self.config, self.state
        objective, base_lr = self._prepare_stage(stage)
        epochs = config.stage1_epochs if stage == 1 else config.stage2_epochs
        total = self.steps_per_epoch * epochs
        bar = None
        if progress and self.rank == 0:
            from tqdm import tqdm
            bar = tqdm(total=total, initial=state['step'], desc=f'stage {stage}', unit='step',
                       leave=False)
        nonfinite = 0
        try:
            while state['epoch'] < epochs:
                epoch = state['epoch']
                perm = np.random.default_rng(seed_int(config.seed, stage, epoch)).permutation(
                    self.train_data.n)[:self.per_rank * self.world][self.rank::self.world]
                losses = state['epoch_losses']  # survives an interrupt mid-epoch
                t0 = time.perf_counter()
                while state['batch'] < self.steps_per_epoch:
                    b = state['batch']
                    idx = perm[b * config.batch_size:(b + 1) * config.batch_size]
                    step = state['step']
                    lr = lr_at(step, total, base=base_lr, warmup=config.warmup_steps,
                               min_ratio=config.min_lr_ratio)
                    for g in self.opt.param_groups:
                        g['lr'] = lr
                    loss, parts = self._loss(objective, stage, idx, step)
                    if not torch.isfinite(loss):
                        nonfinite += 1
                        log.warning('non-finite loss at stage %d step %d, step skipped', stage,
                                    step)
                        self.opt.zero_grad(set_to_none=True)
                        if nonfinite > 10:
                            raise LipfaultError(f'stage {stage}: loss is not finite for '
                                                f'{nonfinite} steps (lower TrainConfig.lr?)')
                    else:
                        nonfinite = 0
                        self._optimise(loss)
                        losses.append(float(loss.detach()))
                        self._log_step(stage, step, losses[-1], lr, parts)
                    state['batch'] += 1
                    state['step'] += 1
                    state['seen'][stage - 1] += len(idx) * self.world
                    if bar is not None:
                        bar.update(1)
                        if losses:
                            bar.set_postfix(loss=f'{losses[-1]:.4f}')
                    if config.checkpoint_every and state['step'] % config.checkpoint_every == 0:
                        state['elapsed'][stage - 1] += time.perf_counter() - t0
                        t0 = time.perf_counter()
                        self._save(stage, 'step')
                    if on_step is not None:
                        on_step(stage, state['step'])
                state['elapsed'][stage - 1] += time.perf_counter() - t0
                self._end_epoch(stage, epoch, losses)
        except KeyboardInterrupt:
            self._save(stage, 'interrupt')
            raise
        finally:
            if bar is not None:
                bar.close()

    def _end_epoch(self, stage: int, epoch: int, losses: list[float]) -> None:
        state = self.state
        mean = float(np.mean(losses)) if losses else float('nan')
        state['history'][f'stage{stage}'].append(mean)
        if math.isfinite(mean):
            state['best'] = min(state['best'], mean)  # best epoch loss of this stage
        state['epoch'] += 1
        state['batch'] = 0
        state['epoch_losses'] = []
        log.debug('stage %d epoch %d loss %.5f', stage, epoch, mean)
        self._save(stage, 'epoch')
