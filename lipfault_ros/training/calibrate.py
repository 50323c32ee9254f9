"""After the stages: the clean residual scales the detection features are standardised by
(after stage 1), and the thresholds and validation figures (after stage 2)."""

from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np
import torch

from lipfault_ros.calibration import CalibrationRule, calibrate
from lipfault_ros.model.network import LipfaultNet
from lipfault_ros.model.residuals import block_detail, frame_change, roughness, spatial_detail
from lipfault_ros.training.config import TrainConfig
from lipfault_ros.training.corruption import corrupt_with_history, seed_int
from lipfault_ros.training.data import TrainingData
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
def calibrate_error_scale(net: LipfaultNet, data: TrainingData, cfg: TrainConfig,
                          max_rows: int = 2048) -> None:
    """Set the network's per-channel clean residual and change scales from the stage-1
    reconstructions of (at most ``max_rows`` evenly spaced) training tuples, see
    ``ResidualFeatures.forward``.

    Residual scale: per channel, the mean over windows of the window's mean squared residual
    (floored, so a channel that is reconstructed nearly perfectly does not turn the smallest
    change into a huge standardised error).
    Change scale: per channel, a low (5 %) percentile over windows of the window's mean squared
    sample-to-sample change, the least a clean window of that channel moves; 0 for channels
    that some clean windows hold flat (a joint at rest), which the flatness feature then
    ignores. A mean would not do: contact events make the change heavy-tailed, and the
    typical window would look "flatter than clean" all the time. The camera's frame-to-frame
    change and its spatial detail get the same low percentile, and the detail's ceiling a high
    (99.5 %) one: the most detail a clean frame shows; the per-block detail ceilings are a
    99.9 % percentile per block. The signals' roughness ceiling is a
    high (99.9 %) percentile per channel of :func:`roughness`, the roughest a clean window is
    (0 for a channel that never moves). Last, each joint's velocity is
    fitted to its position steps (:func:`fit_motion`).
    """
    net.eval()
    rows = np.unique(np.linspace(0, data.n - 1, min(data.n, max_rows)).astype(np.int64))
    errs: list[list[torch.Tensor]] = [[], []]
    changes: list[list[torch.Tensor]] = [[], []]
    crosses: list[list[torch.Tensor]] = [[], []]
    rough: list[list[torch.Tensor]] = [[], []]
    frames: list[torch.Tensor] = []
    details: list[torch.Tensor] = []
    blocks: list[torch.Tensor] = []
    motion: list[tuple[torch.Tensor, torch.Tensor]] = []
    for b0 in range(0, len(rows), cfg.eval_batch_size):
        inputs, present = data.batch(rows[b0:b0 + cfg.eval_batch_size])
        prev, valid = data.previous_camera(rows[b0:b0 + cfg.eval_batch_size])
        frames.append(frame_change(inputs[0], prev, valid)[valid].cpu())
        cam = inputs[0][present[:, 0] > 0.5]
        motion.append(tuple(m.cpu() for m in net.residuals.motion_pairs(
            net.squash(inputs[2])[present[:, 2] > 0.5])))
        details.append(spatial_detail(cam).cpu())
        blocks.append(block_detail(cam).cpu())
        latents, z = net.encode(*inputs, present)
        recon = net.decode(z)
        cross = net.cross_reconstruction(latents, present)
        for k, i in enumerate((1, 2)):
            keep = present[:, i] > 0.5
            x = net.squash(inputs[i])[keep]
            errs[k].append((recon[i][keep] - x).pow(2).mean(2).cpu())
            changes[k].append((x[..., 1:] - x[..., :-1]).pow(2).mean(2).cpu())
            crosses[k].append((cross[i][keep] - x).pow(2).mean(2).cpu())
            rough[k].append(roughness(x).cpu())
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
    camera = []
    for acc in (details, frames):
        rows_c = torch.cat(acc).double() if acc else torch.zeros(0)
        camera.append(max(float(torch.quantile(rows_c, 0.05)), 0.0) if len(rows_c) else 0.0)
    rows_d = torch.cat(details).double() if details else torch.zeros(0)
    ceiling = float(torch.quantile(rows_d, 0.995)) if len(rows_d) else 0.0
    ceilings = [rough_ceiling(torch.cat(acc)) if sum(len(a) for a in acc) else None
                for acc in rough]
    net.residuals.set_scales(scales[0], scales[3], scales[1], scales[4], scales[2], scales[5],
                             space_camera=camera[0], frame_camera=camera[1],
                             space_ceiling_camera=ceiling, rough_ceiling_wrench=ceilings[0],
                             rough_ceiling_joints=ceilings[1],
                             block_ceiling_camera=torch.quantile(torch.cat(blocks).double(), 0.999,
                                                                 dim=0).float()
                             if sum(len(b) for b in blocks) else None)
    if motion:
        net.residuals.set_motion_fit(*fit_motion(torch.cat([m[0] for m in motion]),
                                       torch.cat([m[1] for m in motion])))
    log.debug('error scales: wrench %s joints %s camera detail %.3g change %.3g ceiling %.3g',
              scales[0].tolist(), scales[3].tolist(), *camera, ceiling)


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
