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
from lipfault_ros.training.data import TrainingData
from lipfault_ros.training.objectives import Stage1Objective, Stage2Objective, lr_at
from lipfault_ros.tuples import MODALITIES, SensorTuple, TupleArrays

__all__ = ['fit']

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
    table = fault_table(config)
    stats = NormStats.fit(train)
    train_data = TrainingData(train, stats, model_config, device)
    val_data = TrainingData(val, stats, model_config, device)

    torch.manual_seed(config.seed)
    net = LipfaultNet(model_config).to(device)
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_FILE if checkpoint_dir is not None else None
    state: dict[str, Any] = {'stage': 1, 'epoch': 0, 'batch': 0, 'step': 0,
                             'history': {'stage1': [], 'stage2': []}, 'elapsed': [0.0, 0.0],
                             'seen': [0, 0], 'best': float('inf'), 'epoch_losses': []}
    ckpt = None
    if resume:
        ckpt = load_checkpoint(ckpt_path)
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
        objective: nn.Module = (Stage1Objective(net) if stage == 1
                                else Stage2Objective(net, config))
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
            save_checkpoint(ckpt_path, {
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
                perm = np.random.default_rng(seed_int(config.seed, stage, epoch)).permutation(
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
                                seed_int(config.seed, 1, step, rank))
                            keep = dropout_keep(present, config.modality_dropout, gen)
                            loss, parts = model_for_step(*inputs, present, keep)
                        else:
                            rng = np.random.default_rng(seed_int(config.seed, 2, step, rank))
                            labels, kinds, sev = draw_faults(
                                rng, present.cpu().numpy() > 0.5, config.fault_fraction, table,
                                config.severity_range)
                            prev, valid = train_data.previous_camera(idx)
                            corrupt, *changes = corrupt_with_history(inputs, kinds, sev, rng,
                                                                     prev, valid, config)
                            loss, parts = model_for_step(inputs, corrupt, present,
                                                         torch.from_numpy(labels).to(device),
                                                         tuple(changes))
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
            calibrate_error_scale(net, train_data, config)
            state.update(stage=2, epoch=0, batch=0, step=0, best=float('inf'))
        run_stage(2)
        state['stage'] = 3
        if distributed:
            import torch.distributed as dist
            dist.barrier()
        summary: dict[str, Any] = {}
        refresh_lipschitz(net)  # converge the spectral-norm estimates before calibrating
        if rank == 0:
            metrics = evaluate(net, val_data, config, table)
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
            save_artifact(out, net, stats=stats, summary=summary, overwrite=overwrite,
                          clean_levels=metrics['clean_levels'])
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
