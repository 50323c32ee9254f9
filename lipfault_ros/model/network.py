"""The fault-tolerant multimodal network: encoders, fusion, compute block, detection head.

Data flow (shapes for batch B; see :class:`~lipfault_ros.model.config.ModelConfig` for sizes)::

    camera (B,3,H,W) in [0,1] ─ CameraEncoder ─ z_c ┐
    wrench (B,6,T_w) normalised ─ SignalEncoder ─ z_w ┼─ Fusion(concat * presence, presence) ─ z
    joints (B,3J,T_j) normalised ─ SignalEncoder ─ z_j┘                                        │
           ┌──────────────────────────────────────────────────────────────────────────────────┤
           │ decoders(z) = reconstruction (stage 1, also fills in a missing modality)          │
           │ DetectionHead(z_c, z_w, z_j, z, reconstruction-error features) ─ embedding, logits│
           │ faulty?  no ─ bypass (the compute block is skipped)                               │
           │          yes ─ ComputeBlock(Fusion with the faulty modality masked) ─ decoders    │

A missing modality has its input zeroed and its presence flag 0; stage 1 trains with random
modality dropout so the decoders reconstruct it from the others. ``forward`` returns
:class:`LipfaultOutput`; losses live in :mod:`lipfault_ros.training`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from lipfault_ros.errors import InputError
from lipfault_ros.model.config import ModelConfig
from lipfault_ros.model.lipschitz import apply_lipschitz

__all__ = [
    'CameraDecoder',
    'CameraEncoder',
    'ComputeBlock',
    'DetectionHead',
    'Fusion',
    'LipfaultNet',
    'LipfaultOutput',
    'N_ERROR_FEATURES',
    'SignalDecoder',
    'SignalEncoder',
    'frame_change',
]

#: Residual features per modality fed to the detection head (mean, largest channel mean,
#: local max of the standardised reconstruction error; flatness of the input; mean and largest
#: channel mean of the cross-modal residual, see ``LipfaultNet.cross_reconstruction``;
#: staleness against the previous input, see :func:`frame_change`; consistency between
#: redundant channels, see ``LipfaultNet.motion_residual``).
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


def _below(value: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """How far (in log) ``value`` (B,) fell below a clean ``floor`` (1,): ~0 at or above it,
    ~7 at zero; 0 everywhere when the floor is 0 (the feature is off)."""
    on = (floor > 0).to(value.dtype)
    return F.relu(-torch.log(value / floor.clamp_min(1e-12) + 1e-3)) * on


class CameraEncoder(nn.Module):
    """Space-to-depth stem, strided 2-D CNN (k=3, s=2), then a linear map to the latent."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.PixelUnshuffle(cfg.camera_stem)]
        c_in = 3 * cfg.camera_stem ** 2
        for c in cfg.camera_channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1),
                       nn.LeakyReLU(cfg.negative_slope)]
            c_in = c
        self.convs = nn.Sequential(*layers)
        self.side = cfg.image_size // (cfg.camera_stem * 2 ** len(cfg.camera_channels))
        self.proj = nn.Linear(c_in * self.side ** 2, cfg.latent_camera)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B,3,H,W) -> (B,L_c)
        return self.proj(self.convs(x).flatten(1))


class CameraDecoder(nn.Module):
    """Mirror of :class:`CameraEncoder`: linear, transposed convs (k=4, s=2), depth-to-space,
    sigmoid."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        chans = list(reversed(cfg.camera_channels))
        self.side = cfg.image_size // (cfg.camera_stem * 2 ** len(chans))
        self.c0 = chans[0]
        self.proj = nn.Linear(cfg.latent, chans[0] * self.side ** 2)
        layers: list[nn.Module] = []
        outs = chans[1:] + [3 * cfg.camera_stem ** 2]
        for i, (c_in, c_out) in enumerate(zip(chans, outs)):
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if i < len(outs) - 1:
                layers.append(nn.LeakyReLU(cfg.negative_slope))
        layers.append(nn.PixelShuffle(cfg.camera_stem))
        self.act = nn.LeakyReLU(cfg.negative_slope)
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B,L) -> (B,3,H,W) in [0,1]
        h = self.act(self.proj(z)).view(z.shape[0], self.c0, self.side, self.side)
        return torch.sigmoid(self.deconvs(h))


class SignalEncoder(nn.Module):
    """Strided 1-D CNN (k=5, s=2) over a history window, then a linear map to the latent."""

    def __init__(self, cfg: ModelConfig, channels: int, window: int, latent: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for c in cfg.signal_channels:
            layers += [nn.Conv1d(c_in, c, 5, stride=2, padding=2),
                       nn.LeakyReLU(cfg.negative_slope)]
            c_in = c
        self.convs = nn.Sequential(*layers)
        self.length = window // 2 ** len(cfg.signal_channels)
        self.proj = nn.Linear(c_in * self.length, latent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B,C,T) -> (B,L_m)
        return self.proj(self.convs(x).flatten(1))


class SignalDecoder(nn.Module):
    """Mirror of :class:`SignalEncoder` with transposed 1-D convs (k=4, s=2); linear output."""

    def __init__(self, cfg: ModelConfig, channels: int, window: int) -> None:
        super().__init__()
        chans = list(reversed(cfg.signal_channels))
        self.length = window // 2 ** len(chans)
        self.c0 = chans[0]
        self.proj = nn.Linear(cfg.latent, chans[0] * self.length)
        layers: list[nn.Module] = []
        outs = chans[1:] + [channels]
        for i, (c_in, c_out) in enumerate(zip(chans, outs)):
            layers.append(nn.ConvTranspose1d(c_in, c_out, 4, stride=2, padding=1))
            if i < len(outs) - 1:
                layers.append(nn.LeakyReLU(cfg.negative_slope))
        self.act = nn.LeakyReLU(cfg.negative_slope)
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B,L) -> (B,C,T)
        h = self.act(self.proj(z)).view(z.shape[0], self.c0, self.length)
        return self.deconvs(h)


class Fusion(nn.Module):
    """Concatenate presence-masked latents and the presence mask, one linear projection.

    One linear layer keeps its Lipschitz constant known (its spectral norm).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        width = cfg.latent_camera + cfg.latent_wrench + cfg.latent_joints + 3
        self.linear = nn.Linear(width, cfg.latent)

    def forward(self, latents: tuple[torch.Tensor, ...], present: torch.Tensor) -> torch.Tensor:
        parts = [z * present[:, i:i + 1] for i, z in enumerate(latents)]
        return self.linear(torch.cat(parts + [present], dim=1))  # (B, L)


class ComputeBlock(nn.Module):
    """Contractive residual correction f(z) = skip * z + g(z) on the joint latent.

    g is a dense MLP; with modulation its layers are spectral-normalised so that
    Lip(g) = lip_compute - skip, hence Lip(f) <= lip_compute < 1.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.skip = float(cfg.compute_skip)
        dims = [cfg.latent] + [cfg.compute_hidden] * (cfg.compute_layers - 1) + [cfg.latent]
        layers: list[nn.Module] = []
        for i in range(cfg.compute_layers):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < cfg.compute_layers - 1:
                layers.append(nn.LeakyReLU(cfg.negative_slope))
        self.g = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B,L) -> (B,L)
        return self.skip * z + self.g(z)


class DetectionHead(nn.Module):
    """Dense trunk on the pre-correction latents and reconstruction-error features.

    Outputs a unit-norm embedding (for the contrastive loss) and one fault logit per modality.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        latent_width = cfg.latent_camera + cfg.latent_wrench + cfg.latent_joints + cfg.latent
        width = latent_width + 3 * N_ERROR_FEATURES + 3
        layers: list[nn.Module] = []
        for i in range(cfg.detector_layers):
            layers += [nn.Linear(width if i == 0 else cfg.detector_hidden, cfg.detector_hidden),
                       nn.LeakyReLU(cfg.negative_slope)]
        self.trunk = nn.Sequential(*layers)
        self.embed = nn.Linear(cfg.detector_hidden, cfg.embed_dim)
        self.logits = nn.Linear(cfg.detector_hidden, 3)
        # direct, non-negative path from a modality's own residual features to its logit
        # (see ModelConfig.detector_error_skip)
        # (softplus of a raw parameter; a plain parameter, outside the spectral normalisation)
        self.error_offset = latent_width
        self.error_skip = (nn.Parameter(torch.full((3, N_ERROR_FEATURES), -1.0))
                           if cfg.detector_error_skip else None)

    def features(self, latents: tuple[torch.Tensor, ...], z: torch.Tensor,
                 errors: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        parts = [lat * present[:, i:i + 1] for i, lat in enumerate(latents)]
        return torch.cat(parts + [z, errors, present], dim=1)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.trunk(h)
        logits = self.logits(t)
        if self.error_skip is not None:
            errors = h[:, self.error_offset:self.error_offset + 3 * N_ERROR_FEATURES]
            own = (errors.view(-1, 3, N_ERROR_FEATURES) * F.softplus(self.error_skip)).sum(2)
            logits = logits + own
        return F.normalize(self.embed(t), dim=1), logits  # (B,E), (B,3)


class LipfaultOutput(NamedTuple):
    """What :meth:`LipfaultNet.forward` returns (B = batch).

    Reconstructions are model-space tensors: camera (B,3,H,W) in [0,1], wrench (B,6,T_w) and
    joints (B,3J,T_j) normalised. ``corrected`` equals ``reconstruction`` on rows that bypassed the
    compute block. ``scores`` are the per-modality fault logits (they combine the latent and the
    reconstruction error, see :meth:`LipfaultNet.error_features`); +inf marks a forced fault.
    ``computed`` says whether the compute block ran at all for this batch.
    """

    reconstruction: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    corrected: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    latent: torch.Tensor          # (B, L) pre-correction joint latent
    corrected_latent: torch.Tensor  # (B, L)
    embedding: torch.Tensor       # (B, E) unit norm
    scores: torch.Tensor          # (B, 3)
    faults: torch.Tensor          # (B, 3) bool, present modalities above threshold
    bypassed: torch.Tensor        # (B,) bool
    computed: bool


class LipfaultNet(nn.Module):
    """Encoders, fusion, decoders, compute block and detection head with Lipschitz modulation.

    Buffers: ``thresholds`` (3,) per-modality score thresholds (calibrated after training,
    +inf until then).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoders = nn.ModuleDict({
            'camera': CameraEncoder(cfg),
            'wrench': SignalEncoder(cfg, 6, cfg.wrench_window, cfg.latent_wrench),
            'joints': SignalEncoder(cfg, cfg.joints_channels, cfg.joints_window,
                                    cfg.latent_joints),
        })
        self.fusion = Fusion(cfg)
        self.decoders = nn.ModuleDict({
            'camera': CameraDecoder(cfg),
            'wrench': SignalDecoder(cfg, 6, cfg.wrench_window),
            'joints': SignalDecoder(cfg, cfg.joints_channels, cfg.joints_window),
        })
        self.compute = ComputeBlock(cfg)
        self.detector = DetectionHead(cfg)
        self.register_buffer('thresholds', torch.full((3,), float('inf')))
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
        # per joint: velocity ~ gain * (position step) + offset, fitted on clean data after
        # stage 1, and the clean mean squared misfit (0: the joint is left out)
        self.register_buffer('motion_fit_joints', torch.zeros(2, len(cfg.joint_names)))
        self.register_buffer('motion_scale_joints', torch.zeros(len(cfg.joint_names)))
        # per-channel clean residual scales of the cross-modal estimates (set after stage 1)
        self.register_buffer('cross_scale_wrench', torch.ones(6))
        self.register_buffer('cross_scale_joints', torch.ones(cfg.joints_channels))
        if cfg.modulation:
            it = cfg.power_iterations
            for enc in self.encoders.values():
                apply_lipschitz(enc, cfg.lip_encoder, per_layer=False, n_power_iterations=it)
            for dec in self.decoders.values():
                apply_lipschitz(dec, cfg.lip_decoder, per_layer=False, n_power_iterations=it)
            apply_lipschitz(self.fusion, cfg.lip_fusion, per_layer=False, n_power_iterations=it)
            apply_lipschitz(self.compute.g, cfg.lip_compute - cfg.compute_skip, per_layer=False,
                            n_power_iterations=it)
            apply_lipschitz(self.detector, cfg.lip_detector, per_layer=True,
                            n_power_iterations=it)

    # -- parts -----------------------------------------------------------------------------

    def check_inputs(self, camera: torch.Tensor, wrench: torch.Tensor, joints: torch.Tensor,
                     present: torch.Tensor | None = None) -> torch.Tensor:
        """Validate shapes and dtypes; return the presence mask as float (B,3)."""
        cfg = self.cfg
        expected = {'camera': (3, cfg.image_size, cfg.image_size),
                    'wrench': (6, cfg.wrench_window),
                    'joints': (cfg.joints_channels, cfg.joints_window)}
        b = None
        for name, x in (('camera', camera), ('wrench', wrench), ('joints', joints)):
            if not isinstance(x, torch.Tensor):
                raise InputError(f'{name} input must be a torch.Tensor, got {type(x).__name__}')
            if not x.is_floating_point():
                raise InputError(f'{name} input must be floating point, got {x.dtype}')
            if x.dim() != len(expected[name]) + 1 or tuple(x.shape[1:]) != expected[name]:
                raise InputError(f'{name} input must be (B, {", ".join(map(str, expected[name]))})'
                                 f', got {tuple(x.shape)}')
            if b is None:
                b = x.shape[0]
            elif x.shape[0] != b:
                raise InputError(f'{name} input has batch {x.shape[0]}, camera has {b}')
        if present is None:
            return camera.new_ones((b, 3))
        if tuple(present.shape) != (b, 3):
            raise InputError(f'present mask must be ({b}, 3), got {tuple(present.shape)}')
        return present.to(camera.dtype)

    def encode(self, camera: torch.Tensor, wrench: torch.Tensor, joints: torch.Tensor,
               present: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """Per-modality latents and the fused latent (B, L); signal inputs are soft-clipped
        (:meth:`squash`) first."""
        latents = (self.encoders['camera'](camera), self.encoders['wrench'](self.squash(wrench)),
                   self.encoders['joints'](self.squash(joints)))
        return latents, self.fusion(latents, present)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (self.decoders['camera'](z), self.decoders['wrench'](z),
                self.decoders['joints'](z))

    def squash(self, x: torch.Tensor) -> torch.Tensor:
        """Soft clip of a normalised signal input to +-``input_clip`` (identity when None)."""
        c = self.cfg.input_clip
        return x if c is None else c * torch.tanh(x / c)

    def set_error_scale(self, wrench: torch.Tensor, joints: torch.Tensor,
                        diff_wrench: torch.Tensor | None = None,
                        diff_joints: torch.Tensor | None = None,
                        cross_wrench: torch.Tensor | None = None,
                        cross_joints: torch.Tensor | None = None,
                        space_camera: torch.Tensor | float | None = None,
                        frame_camera: torch.Tensor | float | None = None) -> None:
        """Set the per-channel clean residual scales (mean squared reconstruction error per
        channel on clean data, measured after stage 1) and, when given, the clean mean squared
        sample-to-sample changes of the inputs, the clean residual scales of the cross-modal
        estimates and the least clean spatial detail and frame-to-frame change of the camera;
        see :meth:`error_features`."""
        pairs = [(self.error_scale_wrench, wrench), (self.error_scale_joints, joints)]
        for buf, value in ((self.space_scale_camera, space_camera),
                           (self.frame_scale_camera, frame_camera),
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

    def cross_reconstruction(self, latents: tuple[torch.Tensor, ...], present: torch.Tensor
                             ) -> tuple[torch.Tensor | None, ...]:
        """Each signal modality estimated from the *other* modalities only (leave-one-out
        fusion; stage 1's modality dropout trains the decoders for exactly this): (None,
        wrench (B,6,T_w), joints (B,C,T_j)). A scaled, flipped, offset or swapped signal is
        reconstructed well from its own latent, but it disagrees with what the camera and the
        other sensor imply. The camera is left out (its faults show in its own residual, and
        its decoder is the costly one)."""
        out: list[torch.Tensor | None] = [None]
        for i, name in ((1, 'wrench'), (2, 'joints')):
            keep = present.clone()
            keep[:, i] = 0.0
            out.append(self.decoders[name](self.fusion(latents, keep)))
        return tuple(out)

    def error_features(self, inputs: tuple[torch.Tensor, ...], recon: tuple[torch.Tensor, ...],
                       present: torch.Tensor,
                       cross: tuple[torch.Tensor | None, ...] | None = None,
                       camera_change: torch.Tensor | None = None) -> torch.Tensor:
        """Log reconstruction errors per modality: (B, 3 * N_ERROR_FEATURES).

        Signal residuals are first divided per channel by the clean residual scale
        (``error_scale_*``), so every channel reads ~1 on clean data: without it a fault on one
        quiet channel (a joint position) drowns in the channel mean, which the noisy channels
        (joint efforts, contact forces) dominate. Per modality: the mean error, the largest
        per-channel mean (a fault on a few channels) and the largest local error (4x4 image
        blocks of the channel mean, 4-sample blocks per channel), so global faults (noise,
        drift), channel faults (bias, stuck) and local ones (occlusion, spikes) all stand out.
        Faults that remove variation instead of adding it (stuck, saturation, cutout, a gain
        below 1) lower the residual, so a fourth feature looks at the input alone: per channel,
        how far (in log) its mean squared sample-to-sample change fell below the lowest level
        clean windows show (``diff_scale_*``, a low percentile; 0 marks a channel that is flat
        on some clean windows, e.g. a joint position at rest, and is left out), averaged over
        channels. ~0 on clean data, it grows with the share of channels that went flat. For the
        camera it reads the image's spatial detail (mean squared neighbour-pixel difference)
        against the least clean detail (``space_scale_camera``): blur, fog and smudges remove
        detail, which the residual of a decoder that is itself smooth does not show. Two more
        features compare the signal with its
        cross-modal estimate (``cross``, :meth:`cross_reconstruction`), standardised per channel
        by ``cross_scale_*``: the mean and the largest channel mean (0 for the camera, for a
        modality with no other modality present, and when ``cross`` is None). The last is the
        camera's staleness: the change from the previous frame (``camera_change``,
        :func:`frame_change`) against the least clean change (``frame_scale_camera``), ~7 for a
        repeated frame, ~0 for a live one; 0 without a previous frame and for the signals.
        The joints' last feature is the consistency of each joint's velocity with its own
        position (:meth:`motion_residual`), 0 for the other modalities. Missing modalities
        get 0.
        """
        crosses = cross if cross is not None else (None, None, None)
        cross_scales = (None, self.cross_scale_wrench, self.cross_scale_joints)
        others = present.sum(dim=1, keepdim=True) - present  # (B,3) other modalities present
        scales = (None, self.error_scale_wrench, self.error_scale_joints)
        diffs = (None, self.diff_scale_wrench, self.diff_scale_joints)
        feats = []
        for i, (x, r) in enumerate(zip(inputs, recon)):
            err = (x - r).pow(2)
            if scales[i] is not None:
                err = err / scales[i].view(1, -1, 1)
            mean = err.flatten(1).mean(1)
            channel = err.flatten(2).mean(2).amax(1)
            if err.dim() == 4:
                local = F.avg_pool2d(err.mean(dim=1, keepdim=True), 4).flatten(1).amax(1)
            else:
                local = F.avg_pool1d(err, 4).flatten(1).amax(1)
            if diffs[i] is not None:
                change = ((x[..., 1:] - x[..., :-1]).pow(2).mean(2)
                          / diffs[i].clamp_min(1e-12).view(1, -1))
                # channels that are flat on some clean windows (scale 0) never count
                used = diffs[i].view(1, -1) > 0
                flat = F.relu(-torch.log(change.masked_fill(~used, 1.0) + 1e-3))
                quiet = flat.mean(1)
            else:  # the camera: spatial detail
                detail = ((x[..., 1:, :] - x[..., :-1, :]).pow(2).flatten(1).mean(1)
                          + (x[..., 1:] - x[..., :-1]).pow(2).flatten(1).mean(1))
                quiet = _below(detail, self.space_scale_camera)
            p = present[:, i]
            feats += [torch.log(mean + 1e-6) * p, torch.log(channel + 1e-6) * p,
                      torch.log(local + 1e-6) * p, quiet * p]
            if crosses[i] is not None:
                cerr = (x - crosses[i]).pow(2) / cross_scales[i].view(1, -1, 1)
                per_channel = cerr.mean(2)
                use = p * (others[:, i] > 0.5).to(p.dtype)
                feats += [torch.log(per_channel.mean(1) + 1e-6) * use,
                          torch.log(per_channel.amax(1) + 1e-6) * use]
            else:
                feats += [torch.zeros_like(mean), torch.zeros_like(mean)]
            if i == 0 and camera_change is not None:
                known = (camera_change >= 0).to(mean.dtype)
                feats.append(_below(camera_change.clamp_min(0.0), self.frame_scale_camera)
                             * known * p)
            else:
                feats.append(torch.zeros_like(mean))
            feats.append(self.motion_residual(x) * p if i == 2 else torch.zeros_like(mean))
        return torch.stack(feats, dim=1)

    def detect(self, inputs: tuple[torch.Tensor, ...], latents: tuple[torch.Tensor, ...],
               z: torch.Tensor, recon: tuple[torch.Tensor, ...], present: torch.Tensor,
               camera_change: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedding (B,E) and per-modality fault logits (B,3); residuals are taken against the
        soft-clipped signal inputs, the targets the decoders learn. ``camera_change`` (B,) is
        :func:`frame_change` of the camera input (None: no temporal context)."""
        inputs = (inputs[0], self.squash(inputs[1]), self.squash(inputs[2]))
        errors = self.error_features(inputs, recon, present,
                                     self.cross_reconstruction(latents, present), camera_change)
        return self.detector(self.detector.features(latents, z, errors, present))

    def correct(self, latents: tuple[torch.Tensor, ...], present: torch.Tensor,
                faults: torch.Tensor) -> torch.Tensor:
        """Corrected joint latent: fuse without the faulty modalities (if configured), then the
        contractive compute block."""
        keep = present * (1 - faults.to(present.dtype)) if self.cfg.mask_faulty else present
        return self.compute(self.fusion(latents, keep))

    # -- forward ----------------------------------------------------------------------------

    def forward(self, camera: torch.Tensor, wrench: torch.Tensor, joints: torch.Tensor,
                present: torch.Tensor | None = None, *, force_fault: torch.Tensor | None = None,
                camera_change: torch.Tensor | None = None,
                always_correct: bool = False) -> LipfaultOutput:
        """Encode, detect, and correct the tuples judged faulty (clean ones bypass).

        ``present`` (B,3) marks available modalities (missing ones must have zeroed input).
        ``force_fault`` (B,3) bool marks modalities known bad (e.g. NaN input): they score +inf.
        ``camera_change`` (B,) is :func:`frame_change` against the previous frame (None: none).
        ``always_correct`` runs the compute block on every row (tracing, analysis).
        """
        p = self.check_inputs(camera, wrench, joints, present)
        inputs = (camera, wrench, joints)
        latents, z = self.encode(camera, wrench, joints, p)
        recon = self.decode(z)
        embedding, logits = self.detect(inputs, latents, z, recon, p, camera_change)
        present_b = p > 0.5
        scores = logits
        faults = scores > self.thresholds
        if force_fault is not None:
            scores = logits.masked_fill(force_fault, float('inf'))
            faults = faults | force_fault
        faults = faults & present_b
        rows = faults.any(dim=1)
        if always_correct:
            rows = torch.ones_like(rows)
        if bool(rows.any()):
            idx = rows.nonzero(as_tuple=True)[0]
            sub = tuple(lat[idx] for lat in latents)
            zc = self.correct(sub, p[idx], faults[idx])
            dec = self.decode(zc)
            corrected = tuple(r.index_copy(0, idx, d) for r, d in zip(recon, dec))
            z_corr = z.index_copy(0, idx, zc)
            computed = True
        else:
            corrected, z_corr, computed = recon, z, False
        return LipfaultOutput(recon, corrected, z, z_corr, embedding, scores, faults, ~rows,
                              computed)
