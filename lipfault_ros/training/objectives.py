"""The two stages' losses and the learning-rate schedule.

Stage 1: clean reconstruction with modality dropout. Stage 2: reconstruction-to-clean of the
corrected tuple + lambda * supervised contrastive (NT-Xent over clean / camera-fault /
wrench-fault / joints-fault classes) + mu * per-modality BCE.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lipfault_ros.model.network import LipfaultNet
from lipfault_ros.training.config import TrainConfig

__all__ = ['Stage1Objective', 'Stage2Objective', 'lr_at', 'supervised_contrastive']


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


class Stage1Objective(nn.Module):
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


class Stage2Objective(nn.Module):
    """Correction + contrastive + per-modality BCE. Returns (loss, parts (3,): recon,
    contrastive, bce)."""

    def __init__(self, net: LipfaultNet, cfg: TrainConfig) -> None:
        super().__init__()
        self.net = net
        self.cfg = cfg

    def forward(self, clean: tuple[torch.Tensor, ...], corrupt: tuple[torch.Tensor, ...],
                present: torch.Tensor, labels: torch.Tensor,
                changes: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``changes``: the camera's frame change (B,) of the clean and of the corrupted
        batch (see :func:`~lipfault_ros.training.corruption.camera_history`)."""
        net, cfg = self.net, self.cfg
        with torch.set_grad_enabled(torch.is_grad_enabled() and not cfg.freeze_stage1):
            lat_c, z_c = net.encode(*clean, present)
            rec_c = net.decode(z_c)
            lat_f, z_f = net.encode(*corrupt, present)
            rec_f = net.decode(z_f)
        change_c, change_f = changes if changes is not None else (None, None)
        emb_c, log_c = net.detect(clean, lat_c, z_c, rec_c, present, change_c)
        emb_f, log_f = net.detect(corrupt, lat_f, z_f, rec_f, present, change_f)
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
