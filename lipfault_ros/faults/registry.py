"""The registry: fault names per modality, one line of description per fault, and the checks of a
fault name and a severity that every entry point runs."""

from __future__ import annotations

import enum
from typing import Mapping

from lipfault_ros.errors import FaultError
from lipfault_ros.tuples import MODALITIES, Modality

__all__ = [
    'DESCRIPTIONS',
    'FAULTS',
    'ImageFault',
    'PERSISTENT_IMAGE_FAULTS',
    'SignalFault',
    'check_fault',
    'check_severity',
]


class ImageFault(str, enum.Enum):
    """Camera faults: optical contamination, exposure errors and broken frames."""

    BLUR = 'blur'
    NOISE = 'noise'
    OCCLUSION = 'occlusion'
    BRIGHTNESS = 'brightness'
    CONTRAST = 'contrast'
    COLOUR_SHIFT = 'colour_shift'
    DUST = 'dust'
    PERLIN = 'perlin'
    FLARE = 'flare'
    WATER_DROPS = 'water_drops'
    SCRATCHES = 'scratches'
    NOISE_FRAME = 'noise_frame'
    BLACK_FRAME = 'black_frame'
    SATURATED_FRAME = 'saturated_frame'
    FROZEN_FRAME = 'frozen_frame'

    def __str__(self) -> str:
        return self.value


class SignalFault(str, enum.Enum):
    """Force/torque and joint-state faults: the classic sensor failure modes."""

    NOISE = 'noise'
    BIAS = 'bias'
    DRIFT = 'drift'
    SPIKE = 'spike'
    GAIN = 'gain'
    STUCK = 'stuck'
    SATURATION = 'saturation'
    DROPOUT = 'dropout'
    SIGN_FLIP = 'sign_flip'
    CUTOUT = 'cutout'

    def __str__(self) -> str:
        return self.value


#: The registry: fault names per modality (wrench and joints share the signal faults).
FAULTS: Mapping[Modality, tuple[str, ...]] = {
    Modality.CAMERA: tuple(f.value for f in ImageFault),
    Modality.WRENCH: tuple(f.value for f in SignalFault),
    Modality.JOINTS: tuple(f.value for f in SignalFault),
}

#: One line per fault for `lipfault faults` and the docs.
DESCRIPTIONS: Mapping[str, Mapping[str, str]] = {
    'image': {
        'blur': 'Gaussian blur (defocus, motion); sigma grows with severity',
        'noise': 'additive Gaussian pixel noise',
        'occlusion': 'a solid rectangle hides part of the view (5-50% of the area)',
        'brightness': 'global brightness offset, up or down',
        'contrast': 'contrast raised or lowered around the image mean',
        'colour_shift': 'per-channel colour cast (white-balance failure)',
        'dust': 'lens contamination: dark semi-transparent specks',
        'perlin': 'Perlin-noise overlay (smudge, fog, uneven illumination)',
        'flare': 'lens flare: a bright glow with ghost circles',
        'water_drops': 'water drops on the lens that refract and blur the view',
        'scratches': 'bright lines across the lens',
        'noise_frame': 'the frame is (mostly) replaced by random noise',
        'black_frame': 'the frame goes (almost) black',
        'saturated_frame': 'the frame goes (almost) white',
        'frozen_frame': 'the same old frame is repeated (stale driver buffer)',
    },
    'signal': {
        'noise': 'additive Gaussian noise on every channel',
        'bias': 'constant offset (step) on some channels',
        'drift': 'offset that grows linearly from the onset',
        'spike': 'isolated large spikes',
        'gain': 'channels scaled up or down (miscalibration)',
        'stuck': 'channels hold the last healthy value',
        'saturation': 'values clipped to a narrowed range',
        'dropout': 'samples lost: zeros in windows, dropped messages in streams',
        'sign_flip': 'channels change sign (wiring or frame error)',
        'cutout': 'a contiguous stretch reads zero',
    },
}

# Image faults whose geometry (spots, drops, rectangle, flare position...) stays fixed while a
# fault lasts in a stream, as a real contamination would; the rest redraw their noise per frame.
PERSISTENT_IMAGE_FAULTS = frozenset({
    ImageFault.OCCLUSION, ImageFault.BRIGHTNESS, ImageFault.CONTRAST, ImageFault.COLOUR_SHIFT,
    ImageFault.DUST, ImageFault.PERLIN, ImageFault.FLARE, ImageFault.WATER_DROPS,
    ImageFault.SCRATCHES,
})


def check_fault(modality: Modality | str, name: str) -> str:
    """Return ``name`` if it is a fault of ``modality``; raise :class:`FaultError` listing the
    valid names otherwise."""
    try:
        modality = Modality(modality)
    except ValueError:
        raise FaultError(f'unknown fault modality {modality!r}; valid: '
                         f'{", ".join(m.value for m in MODALITIES)}') from None
    name = str(name)
    if name not in FAULTS[modality]:
        raise FaultError(f'unknown {modality.value} fault {name!r}; valid: '
                         f'{", ".join(FAULTS[modality])}')
    return name


def check_severity(severity: float, *, what: str = 'severity') -> float:
    """Return ``severity`` as float if it lies in (0, 1]; raise :class:`FaultError` otherwise."""
    try:
        value = float(severity)
    except (TypeError, ValueError):
        raise FaultError(f'{what} must be a number in (0, 1], got {severity!r}') from None
    if not 0.0 < value <= 1.0:
        raise FaultError(f'{what} must be in (0, 1], got {value}')
    return value
