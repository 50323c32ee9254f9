"""The residual features the detection head reads: how far each input is from what the
autoencoder, the other sensors and the input's own context say it should be.

They are standardised by clean scales measured after stage 1 (:meth:`ResidualFeatures.
set_scales`, :meth:`ResidualFeatures.set_motion_fit`), so every feature reads about the same on
clean data whatever the channel, and they are kept apart from the network's learned parts: the
head learns how to weigh them, not what "far" means.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lipfault_ros.errors import InputError
from lipfault_ros.model.config import ModelConfig

__all__ = ['N_ERROR_FEATURES', 'ResidualFeatures', 'frame_change', 'roughness', 'spatial_detail']


#: Residual features per modality fed to the detection head (mean, largest channel mean,
#: local max of the standardised reconstruction error; flatness of the input; mean and largest
#: channel mean of the cross-modal residual, see ``LipfaultNet.cross_reconstruction``;
#: staleness against the previous input, see :func:`frame_change`, or for a signal its
#: roughness above the clean ceiling, see :func:`roughness`; consistency between redundant
#: channels, see :meth:`ResidualFeatures.motion_residual`); the camera uses one of the
#: cross-modal slots for detail above the clean ceiling.
N_ERROR_FEATURES = 8


def frame_change(current: torch.Tensor, previous: torch.Tensor, valid: torch.Tensor
                 ) -> torch.Tensor:
    """Mean squared per-pixel change from the previous frame to this one, (B,) in model space
    ([0,1] pixels at the model's image size), -1 where ``valid`` (B,) is False (no previous
    frame, or one too old to compare with).

    The camera's temporal context: one frame cannot tell a frozen stream from a live one, but a
    live camera never repeats a frame exactly (sensor noise alone changes it), while a stale
    driver buffer repeats it bit for bit.
    """
    change = (current - previous).pow(2).flatten(1).mean(1)
    return torch.where(valid, change, torch.full_like(change, -1.0))


def spatial_detail(images: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels (down and across) of (B,3,H,W)
    frames, (B,): what blur, fog and smudges take away."""
    return ((images[..., 1:, :] - images[..., :-1, :]).pow(2).flatten(1).mean(1)
            + (images[..., 1:] - images[..., :-1]).pow(2).flatten(1).mean(1))


def roughness(x: torch.Tensor) -> torch.Tensor:
    """Per channel, the median over the window of the squared sample-to-sample change of a
    (B, C, T) signal, (B, C): what additive sensor noise raises on every sample. The median,
    not the mean, so that one contact impact (a single large step) in a clean window does not
    read as noise."""
    step = (x[..., 1:] - x[..., :-1]).pow(2)
    return step.sort(dim=-1).values[..., (step.shape[-1] - 1) // 2]


def _rougher(value: torch.Tensor, ceiling: torch.Tensor) -> torch.Tensor:
    """How far (in log) the roughest channel of ``value`` (B, C) rose above its clean
    ``ceiling`` (C,): 0 at or below it; channels with a ceiling of 0 never count (all 0: off)."""
    used = (ceiling > 0).view(1, -1)
    ratio = (value / ceiling.clamp_min(1e-12).view(1, -1)).masked_fill(~used, 0.0)
    return F.relu(torch.log(ratio.amax(1) + 1e-12)) * used.any().to(value.dtype)


def _errors(err: torch.Tensor) -> list[torch.Tensor]:
    """Log of the mean, the largest per-channel mean and the largest local mean of a squared
    residual (B,C,H,W) or (B,C,T), each (B,): local is 4x4 image blocks of the channel mean, or
    4-sample blocks per channel, so that global faults (noise, drift), channel faults (bias,
    stuck) and local ones (occlusion, spikes) all stand out."""
    if err.dim() == 4:
        local = F.avg_pool2d(err.mean(dim=1, keepdim=True), 4).flatten(1).amax(1)
    else:
        local = F.avg_pool1d(err, 4).flatten(1).amax(1)
    return [torch.log(err.flatten(1).mean(1) + 1e-6),
            torch.log(err.flatten(2).mean(2).amax(1) + 1e-6), torch.log(local + 1e-6)]


def _below(value: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """How far (in log) ``value`` (B,) fell below a clean ``floor`` (1,): ~0 at or above it,
    ~7 at zero; 0 everywhere when the floor is 0 (the feature is off)."""
    on = (floor > 0).to(value.dtype)
    return F.relu(-torch.log(value / floor.clamp_min(1e-12) + 1e-3)) * on


def _above(value: torch.Tensor, ceiling: torch.Tensor) -> torch.Tensor:
    """How far (in log) ``value`` (B,) rose above a clean ``ceiling`` (1,): 0 at or below it;
    0 everywhere when the ceiling is 0 (the feature is off)."""
    on = (ceiling > 0).to(value.dtype)
    return F.relu(torch.log(value / ceiling.clamp_min(1e-12) + 1e-12)) * on


class ResidualFeatures(nn.Module):
    """The clean scales (buffers, saved with the weights) and the features computed from them:
    ``forward(inputs, recon, present, cross, camera_change) -> (B, 3 * N_ERROR_FEATURES)``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        # per-channel clean residual scales of the signal reconstructions (set after stage 1)
        self.register_buffer('error_scale_wrench', torch.ones(6))
        self.register_buffer('error_scale_joints', torch.ones(cfg.joints_channels))
        # per-channel least clean mean squared sample-to-sample change of the (soft-clipped)
        # inputs (a low percentile; 0: the channel is flat on some clean windows)
        self.register_buffer('diff_scale_wrench', torch.ones(6))
        self.register_buffer('diff_scale_joints', torch.ones(cfg.joints_channels))
        # least clean spatial detail of the camera (a low percentile of the mean squared
        # neighbour-pixel difference) and least clean frame-to-frame change (of frame_change);
        # 0 switches the feature off (clean frames without detail, or repeated exactly)
        self.register_buffer('space_scale_camera', torch.zeros(1))
        self.register_buffer('frame_scale_camera', torch.zeros(1))
        # most clean spatial detail of the camera (a high percentile): pixel noise and grain
        # add detail no clean frame shows; 0 switches the feature off
        self.register_buffer('space_ceiling_camera', torch.zeros(1))
        # per channel, the most clean roughness of the (soft-clipped) signal inputs (a high
        # percentile of :func:`roughness`): additive noise roughens every sample, which a
        # reconstruction error averaged with the signal's own motion hides; 0 leaves a
        # channel out
        self.register_buffer('rough_ceiling_wrench', torch.zeros(6))
        self.register_buffer('rough_ceiling_joints', torch.zeros(cfg.joints_channels))
        # per joint: velocity ~ gain * (position step) + offset, fitted on clean data after
        # stage 1, and the clean mean squared misfit (0: the joint is left out)
        self.register_buffer('motion_fit_joints', torch.zeros(2, len(cfg.joint_names)))
        self.register_buffer('motion_scale_joints', torch.zeros(len(cfg.joint_names)))
        # per-channel clean residual scales of the cross-modal estimates (set after stage 1)
        self.register_buffer('cross_scale_wrench', torch.ones(6))
        self.register_buffer('cross_scale_joints', torch.ones(cfg.joints_channels))

    def set_scales(self, wrench: torch.Tensor, joints: torch.Tensor,
                   diff_wrench: torch.Tensor | None = None,
                   diff_joints: torch.Tensor | None = None,
                   cross_wrench: torch.Tensor | None = None,
                   cross_joints: torch.Tensor | None = None,
                   space_camera: torch.Tensor | float | None = None,
                   frame_camera: torch.Tensor | float | None = None,
                   space_ceiling_camera: torch.Tensor | float | None = None,
                   rough_ceiling_wrench: torch.Tensor | None = None,
                   rough_ceiling_joints: torch.Tensor | None = None) -> None:
        """Set the per-channel clean residual scales (mean squared reconstruction error per
        channel on clean data, measured after stage 1) and, when given, the clean mean squared
        sample-to-sample changes of the inputs, the clean residual scales of the cross-modal
        estimates, the least clean spatial detail and frame-to-frame change of the camera, its
        most clean spatial detail and the signals' most clean roughness; see
        :meth:`forward`."""
        pairs = [(self.error_scale_wrench, wrench), (self.error_scale_joints, joints)]
        for buf, value in ((self.space_scale_camera, space_camera),
                           (self.frame_scale_camera, frame_camera),
                           (self.space_ceiling_camera, space_ceiling_camera),
                           (self.rough_ceiling_wrench, rough_ceiling_wrench),
                           (self.rough_ceiling_joints, rough_ceiling_joints),
                           (self.diff_scale_wrench, diff_wrench),
                           (self.diff_scale_joints, diff_joints),
                           (self.cross_scale_wrench, cross_wrench),
                           (self.cross_scale_joints, cross_joints)):
            if value is not None:
                pairs.append((buf, value))
        with torch.no_grad():
            for buf, value in pairs:
                value = torch.as_tensor(value, dtype=buf.dtype, device=buf.device).reshape(
                    buf.shape)
                if not bool(torch.isfinite(value).all()) or bool((value < 0).any()):
                    raise InputError('error scales must be finite and non-negative')
                buf.copy_(value)

    def set_motion_fit(self, gain: torch.Tensor, offset: torch.Tensor, scale: torch.Tensor
                       ) -> None:
        """Set the per-joint position-velocity fit and its clean misfit scale (see
        :meth:`motion_residual`); a scale of 0 leaves that joint out."""
        with torch.no_grad():
            fit = torch.stack([torch.as_tensor(gain), torch.as_tensor(offset)]).to(
                self.motion_fit_joints)
            scale = torch.as_tensor(scale).to(self.motion_scale_joints).reshape(-1)
            if fit.shape != self.motion_fit_joints.shape or \
                    scale.shape != self.motion_scale_joints.shape:
                raise InputError(f'motion fit must be 2 x {scale.numel()} gains and offsets')
            if not bool(torch.isfinite(fit).all() & torch.isfinite(scale).all()) or \
                    bool((scale < 0).any()):
                raise InputError('motion fit must be finite with non-negative scales')
            self.motion_fit_joints.copy_(fit)
            self.motion_scale_joints.copy_(scale)

    @staticmethod
    def motion_pairs(joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per joint, the position step between consecutive samples and the mean velocity over
        that step, both (B, J, T-1), from a (soft-clipped) joints input (B, 3J, T)."""
        pos, vel = joints[:, 0::3], joints[:, 1::3]
        return pos[..., 1:] - pos[..., :-1], 0.5 * (vel[..., 1:] + vel[..., :-1])

    def motion_residual(self, joints: torch.Tensor) -> torch.Tensor:
        """How badly a joint's velocity disagrees with its own position steps, (B,): the log
        of the largest per-joint mean squared misfit in clean scales. A joint's position and
        velocity are redundant (the velocity is the position's derivative); a gain, sign flip,
        saturation or drift on one of them breaks that, though each channel alone still looks
        like a plausible signal. Joints without a fit (scale 0) are left out; 0 when none is
        fitted."""
        step, vel = self.motion_pairs(joints)
        gain, offset = self.motion_fit_joints[0].view(1, -1, 1), self.motion_fit_joints[1].view(
            1, -1, 1)
        used = self.motion_scale_joints > 0
        misfit = (vel - gain * step - offset).pow(2).mean(2) / self.motion_scale_joints.clamp_min(
            1e-12).view(1, -1)
        worst = misfit.masked_fill(~used.view(1, -1), 0.0).amax(1)
        return torch.log(worst + 1e-6) * used.any().to(joints.dtype)


    def forward(self, inputs: tuple[torch.Tensor, ...], recon: tuple[torch.Tensor, ...],
                present: torch.Tensor, cross: tuple[torch.Tensor | None, ...] | None = None,
                camera_change: torch.Tensor | None = None) -> torch.Tensor:
        """The residual features of a batch, (B, 3 * N_ERROR_FEATURES), per modality:

        ====  ==================================  ===================================
        slot  camera                              wrench, joints
        ====  ==================================  ===================================
        0-2   reconstruction error: mean, largest channel, largest local (see _errors)
        3     detail below the clean floor        flatness (see _signal_features)
        4     detail above the clean ceiling      cross-modal residual, mean
        5     0                                   cross-modal residual, largest channel
        6     staleness (``camera_change``)       roughness above the clean ceiling
        7     0                                   joints: position-velocity misfit
        ====  ==================================  ===================================

        ``cross`` holds the cross-modal estimates (:meth:`LipfaultNet.cross_reconstruction`;
        None: those features are 0), ``camera_change`` the :func:`frame_change` of each frame
        (None: no previous frame). Missing modalities get 0 throughout.
        """
        crosses = cross if cross is not None else (None, None, None)
        others = present.sum(dim=1, keepdim=True) - present  # (B,3) other modalities present
        feats = self._camera_features(inputs[0], recon[0], present[:, 0], camera_change)
        for i in (1, 2):
            p = present[:, i]
            feats += self._signal_features(i, inputs[i], recon[i], p, crosses[i],
                                           p * (others[:, i] > 0.5).to(p.dtype))
        return torch.stack(feats, dim=1)

    def _camera_features(self, x: torch.Tensor, r: torch.Tensor, p: torch.Tensor,
                         change: torch.Tensor | None) -> list[torch.Tensor]:
        """The camera's eight (B,) features. Its spatial detail (mean squared neighbour-pixel
        difference) against the least clean detail (``space_scale_camera``): blur, fog and
        smudges remove detail, which the residual of a decoder that is itself smooth does not
        show; against the most (``space_ceiling_camera``): pixel noise and grain raise it while
        the reconstruction error barely moves. Staleness: the change from the previous frame against
        the least clean change (``frame_scale_camera``), ~7 for a repeated frame, ~0 for a
        live one, 0 without a previous frame."""
        detail = spatial_detail(x)
        stale = torch.zeros_like(p)
        if change is not None:
            known = (change >= 0).to(p.dtype)
            stale = _below(change.clamp_min(0.0), self.frame_scale_camera) * known
        feats = _errors((x - r).pow(2)) + [
            _below(detail, self.space_scale_camera), _above(detail, self.space_ceiling_camera),
            torch.zeros_like(p), stale]
        return [f * p for f in feats] + [torch.zeros_like(p)]

    def _signal_features(self, i: int, x: torch.Tensor, r: torch.Tensor, p: torch.Tensor,
                         cross: torch.Tensor | None, use: torch.Tensor) -> list[torch.Tensor]:
        """The eight (B,) features of signal modality ``i`` (1 wrench, 2 joints). Residuals are
        divided per channel by the clean residual scale (``error_scale_*``), so every channel
        reads ~1 on clean data: without it a fault on one quiet channel (a joint position)
        drowns in the channel mean, which the noisy channels (efforts, contact forces)
        dominate. Faults that remove variation (stuck, saturation, cutout, a gain below 1)
        lower the residual, so flatness looks at the input alone: per channel, how far (in
        log) its mean squared sample-to-sample change fell below the least clean windows show
        (``diff_scale_*``; 0 marks a channel flat on some clean windows, left out), averaged
        over channels. The cross-modal residual against ``cross``, per channel in
        ``cross_scale_*``, counts only where ``use`` (another modality is present). Roughness
        (:func:`roughness`) is the other side of flatness: how far the roughest channel rose
        above the most clean windows show (``rough_ceiling_*``). The joints add the consistency
        of each joint's velocity with its own position (:meth:`motion_residual`)."""
        name = ('wrench', 'joints')[i - 1]
        err = (x - r).pow(2) / getattr(self, f'error_scale_{name}').view(1, -1, 1)
        diff = getattr(self, f'diff_scale_{name}')
        change = (x[..., 1:] - x[..., :-1]).pow(2).mean(2) / diff.clamp_min(1e-12).view(1, -1)
        used = diff.view(1, -1) > 0  # channels flat on some clean windows never count
        flat = F.relu(-torch.log(change.masked_fill(~used, 1.0) + 1e-3)).mean(1)
        feats = [f * p for f in _errors(err) + [flat]]
        if cross is not None:
            per_channel = ((x - cross).pow(2) / getattr(self, f'cross_scale_{name}').view(
                1, -1, 1)).mean(2)
            feats += [torch.log(per_channel.mean(1) + 1e-6) * use,
                      torch.log(per_channel.amax(1) + 1e-6) * use]
        else:
            feats += [torch.zeros_like(p), torch.zeros_like(p)]
        feats.append(_rougher(roughness(x), getattr(self, f'rough_ceiling_{name}')) * p)
        feats.append(self.motion_residual(x) * p if i == 2 else torch.zeros_like(p))
        return feats
