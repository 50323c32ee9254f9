"""Model-space training batches from stacked tuples."""

from __future__ import annotations

import numpy as np
import torch

from lipfault_ros.errors import InputError
from lipfault_ros.model.config import ModelConfig
from lipfault_ros.normalise import NormStats
from lipfault_ros.tuples import TupleArrays

__all__ = ['TrainingData']


class TrainingData:
    """Model-space batches from TupleArrays; images are resized once if needed.

    Rows are in time order; each row's previous camera frame is the row before it when
    ``ModelConfig.follows`` says so (same stream, no gap), the camera's temporal context.
    """

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
        camera = ~np.asarray(arrays.missing[:, 0], bool)
        gaps = np.diff(np.asarray(arrays.stamps_ns, np.int64))
        linked = mcfg.follows(gaps) & camera[1:] & camera[:-1]
        #: index of each row's previous frame, -1 where there is none to compare with
        self.previous = np.where(np.r_[False, linked], np.arange(-1, self.n - 1), -1)

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

    def previous_camera(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The previous frames of rows ``idx`` (sorted, as :meth:`batch` orders them) in model
        space, (B,3,S,S) (zeros where there is none), and whether there is one, (B,) bool."""
        prev = self.previous[np.sort(idx)]
        valid = prev >= 0
        frames = np.asarray(self.images[np.where(valid, prev, 0)])
        cam = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
        cam = cam * torch.from_numpy(valid).float().view(-1, 1, 1, 1)
        return cam.to(self.device), torch.from_numpy(valid).to(self.device)
