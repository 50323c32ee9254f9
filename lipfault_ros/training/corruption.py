"""Faults drawn and applied on the fly to stage-2 batches, and stage 1's modality dropout.

Every draw comes from a generator seeded by the step (see :func:`seed_int`), so a resumed run
draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import copy
from typing import Mapping, Sequence

import numpy as np
import torch

from lipfault_ros.errors import ConfigError
from lipfault_ros.training.config import TrainConfig
from lipfault_ros.tuples import MODALITIES

__all__ = ['camera_history', 'corrupt_inputs', 'corrupt_with_history', 'draw_faults',
           'dropout_keep', 'fault_table', 'seed_int']


def seed_int(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def fault_table(cfg: TrainConfig) -> dict[int, tuple[str, ...]]:
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


def draw_faults(rng: np.random.Generator, present: np.ndarray, fraction: float,
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


def corrupt_inputs(inputs: tuple[torch.Tensor, ...], kinds: list[list[str]], sev: np.ndarray,
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


def dropout_keep(present: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
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


def camera_history(clean: torch.Tensor, corrupted: torch.Tensor, kinds: Sequence[str],
                   sev: np.ndarray, previous: torch.Tensor, valid: torch.Tensor,
                   replay: np.random.Generator, rng: np.random.Generator, lasting: float
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The camera's temporal context for a stage-2 batch: returns the corrupted frames with
    ``frozen_frame`` made real (the previous frame repeated bit for bit, as a stale driver
    buffer does), and :func:`~lipfault_ros.model.residuals.frame_change` of the clean and of the
    corrupted batch.

    A fault that began before the previous frame (a ``lasting`` share) corrupts that frame too,
    the way a stream fault does (:class:`~lipfault_ros.faults.StreamFault`): contamination
    with the same geometry (``replay`` is the generator's state from before ``corrupted`` was
    drawn, so its draws repeat), noise drawn afresh; otherwise the previous frame is clean and
    the pair shows the fault's onset.
    """
    from lipfault_ros.faults import PERSISTENT_IMAGE_FAULTS, corrupt_batch
    from lipfault_ros.model.residuals import frame_change

    change = frame_change(clean, previous, valid)
    if not any(kinds):
        return corrupted, change, change
    dev = clean.device
    frozen = torch.tensor([k == 'frozen_frame' for k in kinds], device=dev) & valid
    frames = torch.where(frozen.view(-1, 1, 1, 1), previous, corrupted)
    ok = valid.cpu().numpy()
    last = rng.random(len(kinds)) < lasting
    kinds = [k if k != 'frozen_frame' else '' for k in kinds]
    before = previous
    if any(k and last[i] and ok[i] for i, k in enumerate(kinds)):
        # same draws as the current frame's (every kind consumes them, so all are replayed)
        same = corrupt_batch('camera', previous.cpu(), kinds, sev, replay).to(dev)
        fresh_rows = [i for i, k in enumerate(kinds) if k and last[i] and ok[i]
                      and k not in PERSISTENT_IMAGE_FAULTS]
        if fresh_rows:
            sub = corrupt_batch('camera', previous[fresh_rows].cpu(),
                                [kinds[i] for i in fresh_rows], sev[fresh_rows], rng)
            same[fresh_rows] = sub.to(dev)
        use = torch.from_numpy(last & ok & np.array([bool(k) for k in kinds])).to(dev)
        before = torch.where(use.view(-1, 1, 1, 1), same, previous)
    return frames, change, frame_change(frames, before, valid)


def corrupt_with_history(inputs: tuple[torch.Tensor, ...], kinds: list[list[str]],
                         sev: np.ndarray, rng: np.random.Generator, previous: torch.Tensor,
                         valid: torch.Tensor, cfg: TrainConfig
                         ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
    """:func:`corrupt_inputs`, then the camera's past (:func:`camera_history`): the corrupted
    inputs and the frame changes (B,) of the clean and of the corrupted batch."""
    replay = copy.deepcopy(rng)  # the camera's draws, replayed for its previous frame
    corrupt = corrupt_inputs(inputs, kinds, sev, rng, cfg.whole_window_fraction,
                             cfg.fault_scale_range)
    cam, clean, faulty = camera_history(inputs[0], corrupt[0], kinds[0], sev, previous, valid,
                                        replay, rng, cfg.whole_window_fraction)
    return (cam, *corrupt[1:]), clean, faulty
