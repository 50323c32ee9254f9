"""After the stages: the clean residual scales the detection features are standardised by
(after stage 1), and the thresholds and validation figures (after stage 2)."""

from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np
import torch

from lipfault_ros.calibration import CalibrationRule, calibrate, clean_level, hold_level
from lipfault_ros.model.network import LipfaultNet
from lipfault_ros.model.residuals import frame_change, roughness, spatial_detail
from lipfault_ros.training.config import TrainConfig
from lipfault_ros.training.corruption import corrupt_with_history, seed_int
from lipfault_ros.training.batches import TrainingData
from lipfault_ros.tuples import MODALITIES

__all__ = ['calibrate_error_scale', 'evaluate', 'fit_motion', 'rough_ceiling']

#: A joint enters the position-velocity consistency feature only where its position steps
#: explain at least this share of its clean velocity's variance (a joint that hardly moves, or
#: whose velocity is mostly noise, has no usable redundancy).
MIN_MOTION_R2 = 0.5

log = logging.getLogger(__name__)


@torch.no_grad()
def evaluate(net: LipfaultNet, data: TrainingData, cfg: TrainConfig,
             table: Mapping[int, tuple[str, ...]]) -> dict[str, Any]:
    """Thresholds on clean data, per-modality recon error, AUROC and correction ratio with
    injected faults."""
    from sklearn.metrics import roc_auc_score

    net.eval()
    saved = net.thresholds.clone()
    net.thresholds.fill_(float('inf'))
    rng = np.random.default_rng(seed_int(cfg.seed, 99))
    clean_scores, present_all = [], []
    recon_err = np.zeros(3)
    recon_n = np.zeros(3)
    fault_scores = {i: [] for i in range(3)}
    corr_err = np.zeros(3)
    corrupt_err = np.zeros(3)
    for b0 in range(0, data.n, cfg.eval_batch_size):
        idx = np.arange(b0, min(data.n, b0 + cfg.eval_batch_size))
        inputs, present = data.batch(idx)
        prev, valid = data.previous_camera(idx)
        change = frame_change(inputs[0], prev, valid)
        out = net(*inputs, present, camera_change=change)
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
            corrupt, _, change_f = corrupt_with_history(inputs, kinds, sev, rng, prev, valid, cfg)
            out_f = net(*corrupt, present, camera_change=change_f)
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
    rule = CalibrationRule(cfg.false_alarm_rate,
                           events_per_hour=cfg.false_alarm_events_per_hour)
    thresholds, levels, holds, aurocs, recon, ratio = {}, {}, {}, {}, {}, {}
    for i, m in enumerate(MODALITIES):
        neg = clean[pres[:, i], i]
        pos = np.concatenate(fault_scores[i])
        thresholds[m.value] = calibrate(neg, stamps[pres[:, i]], rule)
        levels[m.value] = clean_level(neg)
        holds[m.value] = hold_level(neg, thresholds[m.value], rule)
        if len(neg) and len(pos):
            y = np.r_[np.zeros(len(neg)), np.ones(len(pos))]
            aurocs[m.value] = float(roc_auc_score(y, np.r_[neg, pos]))
        else:
            aurocs[m.value] = float('nan')
        recon[m.value] = float(recon_err[i] / max(1.0, recon_n[i]))
        ratio[m.value] = float(corr_err[i] / max(1e-12, corrupt_err[i]))
    return {'thresholds': thresholds, 'clean_levels': levels, 'hold_levels': holds,
            'auroc': aurocs, 'recon_error': recon,
            'correction_ratio': ratio, 'calibration': rule.recipe()}


@torch.no_grad()
def calibrate_error_scale(net: LipfaultNet, data: TrainingData, cfg: TrainConfig,
                          max_rows: int = 2048) -> None:
    """Set the network's clean scales (``ResidualFeatures``) from the stage-1 reconstructions
    of (at most ``max_rows`` evenly spaced) training tuples.

    - Residual scales (reconstruction and cross-modal): per channel, the mean over windows of
      the window's mean squared residual (floored, so a channel that is reconstructed nearly
      perfectly does not turn the smallest change into a huge standardised error).
    - Change scales: per channel, a low (5 %) percentile over windows of the window's mean
      squared sample-to-sample change, the least a clean window of that channel moves; 0 for
      channels that some clean windows hold flat (a joint at rest), which the flatness feature
      then ignores. A mean would not do: contact events make the change heavy-tailed, and the
      typical window would look "flatter than clean" all the time.
    - The camera's frame-to-frame change and its spatial detail get the same low percentile;
      the detail's ceiling a high (99.5 %) one.
    - Roughness ceilings: 99.9 % per channel (:func:`rough_ceiling`).
    - Each joint's velocity is fitted to its position steps (:func:`fit_motion`).
    """
    net.eval()
    rows = np.unique(np.linspace(0, data.n - 1, min(data.n, max_rows)).astype(np.int64))
    c = _clean_rows(net, data, cfg, rows)
    sizes = {'wrench': 6, 'joints': net.cfg.joints_channels}
    scale = {f'{kind}_{m}': _channel_scale(c.get(f'{kind}_{m}'), n, robust=kind == 'change')
             for m, n in sizes.items() for kind in ('err', 'change', 'cross')}
    camera = [max(float(torch.quantile(c[k], 0.05)), 0.0) if k in c and len(c[k]) else 0.0
              for k in ('detail', 'frames')]
    ceiling = float(torch.quantile(c['detail'], 0.995)) if len(c.get('detail', ())) else 0.0
    rough = [rough_ceiling(c[f'rough_{m}']) if len(c.get(f'rough_{m}', ())) else None
             for m in sizes]
    net.residuals.set_scales(scale['err_wrench'], scale['err_joints'], scale['change_wrench'],
                             scale['change_joints'], scale['cross_wrench'],
                             scale['cross_joints'], space_camera=camera[0],
                             frame_camera=camera[1], space_ceiling_camera=ceiling,
                             rough_ceiling_wrench=rough[0], rough_ceiling_joints=rough[1])
    if 'motion_step' in c:
        net.residuals.set_motion_fit(*fit_motion(c['motion_step'].float(),
                                                 c['motion_vel'].float()))
    log.debug('error scales: wrench %s joints %s camera detail %.3g change %.3g ceiling %.3g',
              scale['err_wrench'].tolist(), scale['err_joints'].tolist(), *camera, ceiling)


def _clean_rows(net: LipfaultNet, data: TrainingData, cfg: TrainConfig, rows: np.ndarray
                ) -> dict[str, torch.Tensor]:
    """Per-window clean statistics of ``rows``, concatenated (float64, on the CPU): ``err_*``,
    ``change_*``, ``cross_*`` (N, C) per signal, ``rough_*`` (N, C), the camera's ``detail``
    and ``frames`` (N,), and ``motion_step``/``motion_vel``."""
    acc: dict[str, list[torch.Tensor]] = {}

    def add(key: str, value: torch.Tensor) -> None:
        acc.setdefault(key, []).append(value.cpu())

    for b0 in range(0, len(rows), cfg.eval_batch_size):
        inputs, present = data.batch(rows[b0:b0 + cfg.eval_batch_size])
        prev, valid = data.previous_camera(rows[b0:b0 + cfg.eval_batch_size])
        add('frames', frame_change(inputs[0], prev, valid)[valid])
        cam = inputs[0][present[:, 0] > 0.5]
        step, vel = net.residuals.motion_pairs(net.squash(inputs[2])[present[:, 2] > 0.5])
        add('motion_step', step)
        add('motion_vel', vel)
        add('detail', spatial_detail(cam))
        latents, z = net.encode(*inputs, present)
        recon = net.residual_reconstruction(latents, present, net.decode(z))
        cross = net.cross_reconstruction(latents, present)
        for i, m in ((1, 'wrench'), (2, 'joints')):
            keep = present[:, i] > 0.5
            x = net.squash(inputs[i])[keep]
            add(f'err_{m}', (recon[i][keep] - x).pow(2).mean(2))
            add(f'change_{m}', (x[..., 1:] - x[..., :-1]).pow(2).mean(2))
            add(f'cross_{m}', (cross[i][keep] - x).pow(2).mean(2))
            add(f'rough_{m}', roughness(x))
    return {k: torch.cat(v).double() for k, v in acc.items()}


def _channel_scale(rows: torch.Tensor | None, size: int, *, robust: bool) -> torch.Tensor:
    """Per-channel scale of (N, C) clean rows (ones without any): the floored mean, or with
    ``robust`` the 5 % percentile, 0 where negligible against the largest channel's."""
    if rows is None or len(rows) == 0:
        return torch.ones(size)
    if robust:
        per = torch.quantile(rows, 0.05, dim=0)
        per = torch.where(per > 1e-3 * float(per.max()) + 1e-12, per, torch.zeros_like(per))
    else:
        per = rows.mean(dim=0).clamp_min(max(1e-6, 0.01 * float(rows.mean())))
    return per.float()


def rough_ceiling(rows: torch.Tensor, q: float = 0.999) -> torch.Tensor:
    """Per channel, the ``q`` percentile of clean :func:`roughness` rows (N, C); 0 for a
    channel whose ceiling is negligible against the others' (it never moves on clean data, so
    any motion would read as noise)."""
    per = torch.quantile(rows.double(), q, dim=0)
    return torch.where(per > 1e-6 * float(per.max()) + 1e-12, per, torch.zeros_like(per)).float()


def fit_motion(step: torch.Tensor, vel: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Least-squares velocity = gain * position step + offset per joint on clean windows
    (``step``, ``vel`` (N, J, T-1), see ``ResidualFeatures.motion_pairs``); returns gains, offsets
    and the mean squared misfit (J,) each, the misfit 0 for a joint whose fit explains less than
    ``MIN_MOTION_R2`` of its velocity's variance."""
    x = step.double().transpose(0, 1).reshape(step.shape[1], -1)  # (J, N*(T-1))
    y = vel.double().transpose(0, 1).reshape(vel.shape[1], -1)
    xm, ym = x.mean(1, keepdim=True), y.mean(1, keepdim=True)
    var = (x - xm).pow(2).mean(1)
    gain = ((x - xm) * (y - ym)).mean(1) / var.clamp_min(1e-18)
    offset = ym.squeeze(1) - gain * xm.squeeze(1)
    misfit = (y - gain[:, None] * x - offset[:, None]).pow(2).mean(1)
    r2 = 1 - misfit / (y - ym).pow(2).mean(1).clamp_min(1e-18)
    scale = torch.where((r2 >= MIN_MOTION_R2) & (var > 0), misfit.clamp_min(1e-9),
                        torch.zeros_like(misfit))
    return gain.float(), offset.float(), scale.float()
