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
modality dropout so the decoders reconstruct it from the others. The residual features and
the clean scales they are read in live in :mod:`lipfault_ros.model.residuals`. ``forward``
returns :class:`LipfaultOutput`; losses live in :mod:`lipfault_ros.training`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from lipfault_ros.errors import InputError
from lipfault_ros.model.config import ModelConfig
from lipfault_ros.model.lipschitz import apply_lipschitz
from lipfault_ros.model.residuals import N_ERROR_FEATURES, ResidualFeatures

__all__ = [
    'CameraDecoder',
    'CameraEncoder',
    'ComputeBlock',
    'DetectionHead',
    'Fusion',
    'LipfaultNet',
    'LipfaultOutput',
    'SignalDecoder',
    'SignalEncoder',
    'fault_decision',
]


def fault_decision(logits: torch.Tensor, thresholds: torch.Tensor, present: torch.Tensor,
                   force: torch.Tensor | None = None, *, raised: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The one rule from fault logits to the modalities to correct; the network's forward,
    the engine's stages, the exported graphs and the GPU benchmark all call it, so they cannot
    drift apart.

    A present modality is faulty when its logit is over its threshold (or, when ``raised``
    (B,3) bool is given, the fault lifecycle's alarm says so instead) or when ``force`` (B,3)
    bool marks it known bad (NaN/Inf input); a missing modality is never faulty (there is
    nothing to correct, its decoder already fills it in). Returns ``scores`` (the logits, +inf
    where forced) and ``faults`` (B,3) bool."""
    over = logits > thresholds if raised is None else raised
    scores = logits
    if force is not None:
        scores = logits.masked_fill(force, float('inf'))
        over = over | force
    return scores, over & (present > 0.5)
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
    reconstruction error, see :class:`~lipfault_ros.model.residuals.ResidualFeatures`); +inf marks a forced fault.
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
        self.residuals = ResidualFeatures(cfg)
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

    def cross_reconstruction(self, latents: tuple[torch.Tensor, ...], present: torch.Tensor
                             ) -> tuple[torch.Tensor | None, ...]:
        """Each signal modality estimated from the *other* modalities only (leave-one-out
        fusion; stage 1's modality dropout trains the decoders for exactly this): (None,
        wrench (B,6,T_w), joints (B,C,T_j)). A scaled, flipped, offset or swapped signal is
        reconstructed well from its own latent, but it disagrees with what the camera and the
        other sensor imply. The camera is left out (its faults show in its own residual, and
        its decoder is the costly one)."""
        return (None, self._decode_without(latents, present, 1, 'wrench'),
                self._decode_without(latents, present, 2, 'joints'))

    def _decode_without(self, latents: tuple[torch.Tensor, ...], present: torch.Tensor,
                        drop: int, name: str) -> torch.Tensor:
        """Signal ``name`` decoded from a fusion that leaves modality ``drop`` out."""
        keep = present.clone()
        keep[:, drop] = 0.0
        return self.decoders[name](self.fusion(latents, keep))

    def residual_reconstruction(self, latents: tuple[torch.Tensor, ...], present: torch.Tensor,
                                recon: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """The reconstructions the residual features compare the inputs with: ``recon`` (the
        all-modality decode) for the camera, and with ``ModelConfig.isolated_signal_residuals``
        each signal decoded from a fusion without the other signal, so that one signal's fault
        does not raise the other's reconstruction error."""
        if not self.cfg.isolated_signal_residuals:
            return recon
        return (recon[0], self._decode_without(latents, present, 2, 'wrench'),
                self._decode_without(latents, present, 1, 'joints'))

    def detect(self, inputs: tuple[torch.Tensor, ...], latents: tuple[torch.Tensor, ...],
               z: torch.Tensor, recon: tuple[torch.Tensor, ...], present: torch.Tensor,
               camera_change: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedding (B,E) and per-modality fault logits (B,3); residuals are taken against the
        soft-clipped signal inputs, the targets the decoders learn. ``camera_change`` (B,) is
        :func:`~lipfault_ros.model.residuals.frame_change` of the camera input (None: no temporal context)."""
        inputs = (inputs[0], self.squash(inputs[1]), self.squash(inputs[2]))
        recon = self.residual_reconstruction(latents, present, recon)
        errors = self.residuals(inputs, recon, present,
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
        ``camera_change`` (B,) is :func:`~lipfault_ros.model.residuals.frame_change` against the previous frame (None: none).
        ``always_correct`` runs the compute block on every row (tracing, analysis).
        """
        p = self.check_inputs(camera, wrench, joints, present)
        inputs = (camera, wrench, joints)
        latents, z = self.encode(camera, wrench, joints, p)
        recon = self.decode(z)
        embedding, logits = self.detect(inputs, latents, z, recon, p, camera_change)
        scores, faults = fault_decision(logits, self.thresholds, p, force_fault)
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
