"""The training config of the tests that train a real model: a tiny network, seconds per run.

One text, so that the end-to-end test and the training tests cannot drift apart on what "tiny"
means; each says only what it changes (image size, epochs, checkpoints, validation blocks).
"""

from __future__ import annotations

__all__ = ['tiny_config']


def tiny_config(*, image_size: int = 32, stage1_epochs: int = 8, stage2_epochs: int = 8,
                checkpoint_every: int = 0, block_s: float = 2.0) -> str:
    """The YAML text of ``lipfault train --config`` for the tiny network."""
    return f"""
model:
  image_size: {image_size}
  camera_channels: [8, 16, 16]
  signal_channels: [8, 16]
  wrench_window: 16
  joints_window: 16
  latent_camera: 16
  latent_wrench: 8
  latent_joints: 8
  latent: 32
  compute_hidden: 48
  detector_hidden: 48
  embed_dim: 16
train:
  stage1_epochs: {stage1_epochs}
  stage2_epochs: {stage2_epochs}
  batch_size: 32
  lr: 0.005
  stage2_lr: 0.003
  warmup_steps: 5
  device: cpu
  num_threads: 1
  checkpoint_every: {checkpoint_every}
  fault_kinds: ['camera:black_frame', 'camera:noise', 'wrench:bias', 'wrench:spike',
                'joints:bias', 'joints:stuck']
data:
  block_s: {block_s}
  gap_s: 0.2
"""
