"""The typed configuration of the network: sizes, latents and Lipschitz constants per module.

One frozen dataclass holds every size, so an artifact's ``config.json`` rebuilds exactly the
network its weights came from. The defaults fit the simulated Franka Panda: 128x128 RGB, a 6-axis
wrench and 7 joints (position, velocity, effort), with history windows of 32 samples. They are kept
small on purpose: the live node must answer within ~10 ms on a 2-core CPU.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from lipfault_ros.errors import ConfigError

__all__ = ['PANDA_JOINTS', 'ModelConfig']

#: Joint names of the simulated Franka Panda arm (fingers excluded).
PANDA_JOINTS: tuple[str, ...] = tuple(f'panda_joint{i}' for i in range(1, 8))


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and Lipschitz targets of :class:`~lipfault_ros.model.network.LipfaultNet`.

    A ``lip_*`` constant of ``None`` leaves that module unconstrained. With ``modulation`` off every
    constant is ignored (the ablation of the paper: a plain multimodal autoencoder + dense block).
    """

    # Camera input is resized to (image_size, image_size); it must be divisible by
    # camera_stem * 2 ** len(camera_channels).
    image_size: int = 128
    # The camera encoder starts with a space-to-depth step (pixel unshuffle) by this factor, and
    # the decoder ends with the inverse (pixel shuffle). It keeps convolutions local while
    # making a 128x128 frame ~10x cheaper to encode than strided convs at full resolution.
    camera_stem: int = 4
    # History windows (samples, oldest first) of the wrench and joint streams; divisible by
    # 2 ** len(signal_channels).
    wrench_window: int = 32
    joints_window: int = 32
    # Joint order of the joints input; the joints encoder sees 3 * len(joint_names) channels
    # (position, velocity, effort of each joint, joint-major).
    joint_names: tuple[str, ...] = PANDA_JOINTS
    # Output channels of the strided (k=3, s=2) 2-D convs of the camera encoder after the stem;
    # few channels keep batch-1 latency around a millisecond.
    camera_channels: tuple[int, ...] = (32, 32, 32)
    # Output channels of the strided (k=5, s=2) 1-D convs of the wrench and joints encoders.
    signal_channels: tuple[int, ...] = (16, 32, 32)
    # Per-modality latent sizes and the size of the fused (joint) latent.
    latent_camera: int = 32
    latent_wrench: int = 16
    latent_joints: int = 16
    latent: int = 64
    # Compute block: f(z) = compute_skip * z + g(z), g a dense MLP of compute_layers layers.
    # Lip(f) <= compute_skip + Lip(g); with modulation on Lip(g) is set to lip_compute - skip.
    compute_layers: int = 3
    compute_hidden: int = 128
    compute_skip: float = 0.5
    # Detection head: a dense trunk, then a normalised embedding and per-modality fault logits.
    detector_layers: int = 2
    detector_hidden: int = 64
    embed_dim: int = 32
    # Each modality's fault logit also gets a direct path from that modality's own residual
    # features with non-negative weights, so a larger own reconstruction error always pushes
    # the own score up (a fault far outside the training range cannot lower it).
    detector_error_skip: bool = True
    # Lipschitz modulation (spectral normalisation times a per-module constant).
    modulation: bool = True
    # Whole-module targets; a module's layers share the constant as c ** (1 / n_layers).
    # Encoders/decoders are unconstrained by default: they must fit the data in stage 1.
    lip_encoder: float | None = None
    lip_decoder: float | None = None
    # The fusion is one linear layer; a known constant keeps the latent's scale interpretable.
    lip_fusion: float | None = 1.0
    # c_corr < 1: the correction block is a contraction, it attenuates a fault.
    lip_compute: float = 0.9
    # c_det >= 1: the detection head must not smooth a fault signal away.
    lip_detector: float | None = 2.0
    # Power iterations per training step of each spectral-norm estimate.
    power_iterations: int = 1
    # In the correction path, modalities judged faulty are masked out of the fusion (as if
    # missing) before the compute block, so the fault reaches the block only through what the
    # detector missed; the contraction then attenuates that residue.
    mask_faulty: bool = True
    negative_slope: float = 0.1
    # Normalised wrench and joint inputs are soft-clipped to +-input_clip (c * tanh(x / c)) before
    # the encoders and the residual features: a sensor fault far outside the training range
    # (a bias of 50 standard deviations on a quiet channel) then stays a large but bounded
    # input, instead of driving the shared latent, and with it the other modalities'
    # reconstructions, somewhere training never went. None disables the clip.
    input_clip: float | None = 8.0
    # The camera's temporal context: each frame is compared with the previous one (see
    # residuals.frame_change) when that one is at most this old; after a longer gap (a dropped
    # stream, a new episode) there is nothing to compare with.
    camera_history_s: float = 0.25
    # The signals' reconstruction-error features are taken against a reconstruction fused
    # without the *other* signal (camera + the signal itself; stage 1's modality dropout trains
    # exactly these two-of-three fusions). Fused from all three, a fault on the joints leaks into
    # the wrench's reconstruction (and back), so the head learns to distrust large errors and a
    # plain sign flip or offset scores low; isolated, one signal's fault leaves the other's
    # features where they were. False: the all-modality reconstruction (format 7 and older).
    isolated_signal_residuals: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, 'joint_names', tuple(str(n) for n in self.joint_names))
        object.__setattr__(self, 'camera_channels', tuple(int(c) for c in self.camera_channels))
        object.__setattr__(self, 'signal_channels', tuple(int(c) for c in self.signal_channels))
        if not self.joint_names:
            raise ConfigError('ModelConfig.joint_names must name at least one joint')
        if len(set(self.joint_names)) != len(self.joint_names):
            raise ConfigError(f'ModelConfig.joint_names has duplicates: {self.joint_names}')
        if not self.camera_channels or not self.signal_channels:
            raise ConfigError('ModelConfig.camera_channels and signal_channels need >= 1 layer')
        if self.camera_stem < 1:
            raise ConfigError(f'ModelConfig.camera_stem must be >= 1, got {self.camera_stem}')
        down = self.camera_stem * 2 ** len(self.camera_channels)
        if self.image_size < down or self.image_size % down:
            raise ConfigError(f'ModelConfig.image_size={self.image_size} must be a multiple of '
                              f'{down} (camera_stem * 2 ** len(camera_channels))')
        down = 2 ** len(self.signal_channels)
        for name in ('wrench_window', 'joints_window'):
            value = getattr(self, name)
            if value < down or value % down:
                raise ConfigError(f'ModelConfig.{name}={value} must be a multiple of {down} '
                                  f'(2 ** len(signal_channels))')
        for name in ('latent_camera', 'latent_wrench', 'latent_joints', 'latent',
                     'compute_layers', 'compute_hidden', 'detector_layers', 'detector_hidden',
                     'embed_dim', 'power_iterations'):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f'ModelConfig.{name} must be >= 1, got {getattr(self, name)}')
        if not (math.isfinite(self.camera_history_s) and self.camera_history_s > 0):
            raise ConfigError('ModelConfig.camera_history_s must be positive, got '
                              f'{self.camera_history_s}')
        for name in ('lip_encoder', 'lip_decoder', 'lip_fusion', 'lip_detector', 'input_clip'):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(f'ModelConfig.{name} must be positive or None, got {value}')
        if self.modulation:
            if not 0 < self.lip_compute < 1:
                raise ConfigError(f'ModelConfig.lip_compute={self.lip_compute} must be in (0, 1):'
                                  ' the correction block is a contraction')
            if not 0 <= self.compute_skip < self.lip_compute:
                raise ConfigError(f'ModelConfig.compute_skip={self.compute_skip} must be in '
                                  f'[0, lip_compute={self.lip_compute})')

    @property
    def joints_channels(self) -> int:
        """Channels of the joints input: 3 per joint (position, velocity, effort)."""
        return 3 * len(self.joint_names)

    def follows(self, gap_ns: Any) -> Any:
        """Whether a camera frame ``gap_ns`` (int or int array) after another is compared with
        it (``camera_history_s``): the one rule training and inference share."""
        gap = np.asarray(gap_ns, np.int64)
        return (gap > 0) & (gap <= int(round(self.camera_history_s * 1e9)))

    def constant(self, module: str) -> float | None:
        """The configured Lipschitz target of a module (None: unconstrained or modulation off)."""
        if not self.modulation:
            return None
        return {'encoder': self.lip_encoder, 'decoder': self.lip_decoder,
                'fusion': self.lip_fusion, 'compute': self.lip_compute,
                'detector': self.lip_detector}[module]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are refused by name."""
        names = {f.name for f in dataclasses.fields(cls)}
        if not data.get('extra', True):  # an always-empty field of early format-1 artifacts
            data = {k: v for k, v in data.items() if k != 'extra'}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f'unknown ModelConfig keys: {", ".join(unknown)}')
        values = dict(data)
        for key in ('joint_names', 'camera_channels', 'signal_channels'):
            if key in values:
                values[key] = tuple(values[key])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f'invalid ModelConfig: {exc}') from exc

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def quick(cls, **changes: Any) -> ModelConfig:
        """The default network at 64x64: pairs with ``TrainConfig.quick()`` to train a usable
        model from ~2-3k tuples in one to two minutes on a 2-core CPU."""
        base: dict[str, Any] = dict(image_size=64)
        base.update(changes)
        return cls(**base)

    @classmethod
    def tiny(cls, **changes: Any) -> ModelConfig:
        """A very small network for tests: 32x32 images, windows of 16."""
        base = dict(image_size=32, wrench_window=16, joints_window=16, camera_stem=2,
                    camera_channels=(16, 16), signal_channels=(8, 16),
                    latent_camera=16, latent_wrench=8, latent_joints=8, latent=32,
                    compute_hidden=64, detector_hidden=64, embed_dim=16)
        base.update(changes)
        return cls(**base)
