"""Training: the two stages, threshold calibration and checkpoints.

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

Modules: :mod:`~.config` (settings and result), :mod:`~.objectives` (losses, schedule),
:mod:`~.data` (batches), :mod:`~.corruption` (faults drawn per step), :mod:`~.calibrate`
(residual scales, thresholds), :mod:`~.checkpoint`, :mod:`~.loop` (:func:`fit`).
"""

from lipfault_ros.training.checkpoint import CHECKPOINT_FILE
from lipfault_ros.training.config import TrainConfig, TrainResult, format_summary
from lipfault_ros.training.loop import fit, join_process_group
from lipfault_ros.training.objectives import lr_at, supervised_contrastive

__all__ = ['CHECKPOINT_FILE', 'TrainConfig', 'TrainResult', 'fit', 'format_summary',
           'join_process_group', 'lr_at', 'supervised_contrastive']
