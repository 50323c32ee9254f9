"""The fault library: every sensor corruption the model trains on, the sim injects and evaluation
scores, behind one registry of names.

Three entry points share one implementation per fault, so what the model saw in training is what
the simulated robot produces live:

- :func:`corrupt_image` and :func:`corrupt_window` corrupt one frame or one (T, C) history window
  (NumPy), the latter returning the ground-truth mask of affected samples;
- :func:`corrupt_batch` corrupts a model-ready torch batch of one modality, per-sample kinds;
- :class:`StreamFault` is the stateful injector of the sim and the recorder: one
  :class:`FaultSpec` (modality, kind, severity, start, duration) applied sample by sample.

Every fault takes a severity in (0, 1] and a seeded ``numpy.random.Generator``; the same seed
gives the same corruption. Signal magnitudes are multiples of ``scale`` (per-channel standard
deviation, 1.0 for normalised data) so that severity 0.5 is clearly visible but not absurd
whatever the units. The names (``FAULTS``) are enums (:class:`ImageFault`, :class:`SignalFault`)
whose values are the strings used on the command line, in parameters and in bags.
"""

from __future__ import annotations

import argparse
import enum
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import cv2
import numpy as np

from lipfault_ros.errors import FaultError, InputError
from lipfault_ros.truth import END_OF_TIME_NS, FaultInterval
from lipfault_ros.tuples import MODALITIES, Modality

if TYPE_CHECKING:  # torch is only needed by corrupt_batch; `lipfault faults` stays light
    import torch

__all__ = [
    'DESCRIPTIONS',
    'FAULTS',
    'FaultSpec',
    'ImageFault',
    'PERSISTENT_IMAGE_FAULTS',
    'SignalFault',
    'StreamFault',
    'add_arguments',
    'check_fault',
    'check_severity',
    'corrupt_batch',
    'corrupt_image',
    'corrupt_window',
    'main',
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


# --------------------------------------------------------------------------------------- images

def _noise_field(h: int, w: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """Perlin gradient noise on an (h, w) grid with ``cells`` lattice cells per side, ~[-1, 1]."""
    ys = np.linspace(0, cells, h, endpoint=False)
    xs = np.linspace(0, cells, w, endpoint=False)
    yi, xi = ys.astype(int), xs.astype(int)
    yf, xf = (ys - yi)[:, None], (xs - xi)[None, :]
    angles = rng.uniform(0, 2 * np.pi, (cells + 1, cells + 1))
    gy, gx = np.sin(angles), np.cos(angles)

    def corner(dy: int, dx: int) -> np.ndarray:
        iy, ix = (yi + dy)[:, None], (xi + dx)[None, :]
        return gy[iy, ix] * (yf - dy) + gx[iy, ix] * (xf - dx)

    def fade(t: np.ndarray) -> np.ndarray:
        return t * t * t * (t * (t * 6 - 15) + 10)

    u, v = fade(xf), fade(yf)
    top = corner(0, 0) * (1 - u) + corner(0, 1) * u
    bottom = corner(1, 0) * (1 - u) + corner(1, 1) * u
    return (top * (1 - v) + bottom * v) * math.sqrt(2)


def _perlin(h: int, w: int, rng: np.random.Generator, octaves: int = 3) -> np.ndarray:
    """Fractal Perlin noise (octaves 2, 4, 8 cells...), normalised to about [-1, 1].

    The field is smooth at the scale of 1/16 of the image, so it is computed on at most 64
    pixels per side and resized: same look, a fraction of the cost on large frames."""
    gh, gw = min(h, 64), min(w, 64)
    total = np.zeros((gh, gw))
    amp, norm = 1.0, 0.0
    for k in range(octaves):
        total += amp * _noise_field(gh, gw, 2 ** (k + 1), rng)
        norm += amp
        amp *= 0.5
    total = (total / norm).astype(np.float32)
    if (gh, gw) != (h, w):
        total = cv2.resize(total, (w, h), interpolation=cv2.INTER_LINEAR)
    return total


def _soft_spots(h: int, w: int, centres: np.ndarray, radii: np.ndarray, alphas: np.ndarray,
                blur: float) -> np.ndarray:
    """An (h, w) float32 opacity map of filled circles, softened by a Gaussian blur."""
    mask = np.zeros((h, w), np.float32)
    for (cx, cy), r, a in zip(centres, radii, alphas):
        cv2.circle(mask, (int(cx), int(cy)), max(1, int(round(r))), float(a), -1,
                   lineType=cv2.LINE_AA)
    if blur > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), blur)
    return np.clip(mask, 0.0, 1.0)


def _blend(image: np.ndarray, overlay: np.ndarray | float, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None] if alpha.ndim == 2 else alpha
    return image.astype(np.float32) * (1 - a) + np.asarray(overlay, np.float32) * a


def corrupt_image(image: np.ndarray, kind: str, severity: float, rng: np.random.Generator, *,
                  previous: np.ndarray | None = None) -> np.ndarray:
    """Corrupt one (H, W, 3) uint8 RGB frame; returns a new uint8 array of the same shape.

    ``previous`` is the frame ``frozen_frame`` repeats; without it the frame is returned
    unchanged (a frozen stream is only visible against its past).
    """
    kind = ImageFault(check_fault(Modality.CAMERA, kind))
    s = check_severity(severity)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f'corrupt_image expects (H, W, 3) uint8, got {image.shape} {image.dtype}')
    h, w = image.shape[:2]
    side = min(h, w)
    img = image.astype(np.float32)

    if kind is ImageFault.BLUR:
        out = cv2.GaussianBlur(image, (0, 0), (0.6 + 3.4 * s) * side / 128)
        return out
    if kind is ImageFault.NOISE:
        out = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(8.0 + 60.0 * s)
    elif kind is ImageFault.OCCLUSION:
        frac = 0.05 + 0.45 * s
        aspect = rng.uniform(0.5, 2.0)
        rh = int(np.clip(round(math.sqrt(frac * h * w / aspect)), 1, h))
        rw = int(np.clip(round(frac * h * w / rh), 1, w))
        y0, x0 = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
        out = img.copy()
        out[y0:y0 + rh, x0:x0 + rw] = rng.uniform(0, 80, 3)
    elif kind is ImageFault.BRIGHTNESS:
        out = img + rng.choice([-1.0, 1.0]) * (25.0 + 100.0 * s)
    elif kind is ImageFault.CONTRAST:
        factor = 1 - (0.3 + 0.6 * s) if rng.random() < 0.5 else 1 + (0.5 + 1.5 * s)
        mean = img.mean(axis=(0, 1), keepdims=True)
        out = (img - mean) * factor + mean
    elif kind is ImageFault.COLOUR_SHIFT:
        direction = rng.normal(size=3)
        direction -= direction.mean()
        direction /= np.linalg.norm(direction) + 1e-9
        gains = 1.0 + direction * (0.2 + 0.6 * s)
        out = img * gains + direction * (15.0 + 50.0 * s)
    elif kind is ImageFault.DUST:
        n = int(15 + 100 * s)
        centres = rng.uniform(0, 1, (n, 2)) * (w, h)
        radii = rng.uniform(0.5, 1.5 + 4.0 * s, n) * side / 128
        alphas = rng.uniform(0.3, 0.6 + 0.4 * s, n)
        mask = _soft_spots(h, w, centres, radii, alphas, 0.8 * side / 128)
        haze = 0.15 * s
        out = _blend(img, (70.0, 62.0, 55.0), mask) * (1 - haze) + haze * 128.0
    elif kind is ImageFault.PERLIN:
        field = _perlin(h, w, rng)
        amp = (0.25 + 0.75 * s) * 255.0
        tint = rng.uniform(0.7, 1.0, 3)
        out = img + (field * np.float32(amp))[..., None] * tint.astype(np.float32)
    elif kind is ImageFault.FLARE:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        yy, xx = np.ogrid[:h, :w]
        colour = np.array([255.0, rng.uniform(200, 250), rng.uniform(140, 220)], np.float32)
        r0 = (0.12 + 0.3 * s) * side
        light = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r0 ** 2)) * (0.6 + 0.8 * s)
        # ghosts along the line from the light source through the image centre
        for t in rng.uniform(-1.2, -0.2, int(rng.integers(2, 5))):
            gx, gy = w / 2 + (cx - w / 2) * t, h / 2 + (cy - h / 2) * t
            gr = rng.uniform(0.04, 0.1) * side
            ring = ((xx - gx) ** 2 + (yy - gy) ** 2) < gr ** 2
            light = light + ring * (0.15 + 0.25 * s)
        out = img + light[..., None].astype(np.float32) * colour
    elif kind is ImageFault.WATER_DROPS:
        n = int(3 + 15 * s)
        map_x, map_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        inside = np.zeros((h, w), bool)
        for _ in range(n):
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            r = rng.uniform(0.03, 0.07 + 0.08 * s) * side
            y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, h)
            x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, w)
            if y0 >= y1 or x0 >= x1:
                continue
            yy, xx = np.ogrid[y0:y1, x0:x1]
            m = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
            # a drop is a small lens: an inverted, magnified view of its surroundings
            bx, by = map_x[y0:y1, x0:x1], map_y[y0:y1, x0:x1]
            bx[m] = np.clip(cx - (bx[m] - cx) * 1.8, 0, w - 1)
            by[m] = np.clip(cy - (by[m] - cy) * 1.8, 0, h - 1)
            inside[y0:y1, x0:x1] |= m
        blurred = cv2.GaussianBlur(image, (0, 0), (1.0 + 2.0 * s) * side / 128)
        refracted = cv2.remap(blurred, map_x, map_y, cv2.INTER_LINEAR).astype(np.float32)
        out = np.where(inside[..., None], refracted * 0.85 + 30.0, img)
    elif kind is ImageFault.SCRATCHES:
        n = int(2 + 14 * s)
        mask = np.zeros((h, w), np.float32)
        for _ in range(n):
            p0 = rng.uniform(0, 1, 2) * (w, h)
            angle, length = rng.uniform(0, np.pi), rng.uniform(0.2, 0.9) * side
            p1 = p0 + length * np.array([math.cos(angle), math.sin(angle)])
            cv2.line(mask, tuple(int(v) for v in p0), tuple(int(v) for v in p1),
                     float(rng.uniform(0.5, 1.0)), 1 + int(rng.random() < s), cv2.LINE_AA)
        out = _blend(img, 230.0, mask)
    elif kind is ImageFault.NOISE_FRAME:
        alpha = 0.6 + 0.4 * s
        out = img * np.float32(1 - alpha) + rng.random(img.shape, dtype=np.float32) * \
            np.float32(255 * alpha)
    elif kind is ImageFault.BLACK_FRAME:
        out = img * (0.25 * (1 - s))
    elif kind is ImageFault.SATURATED_FRAME:
        out = img + (255.0 - img) * (0.75 + 0.25 * s)
    else:  # FROZEN_FRAME
        if previous is None:
            return image.copy()
        previous = np.asarray(previous)
        if previous.shape != image.shape:
            raise InputError(f'frozen_frame: previous frame {previous.shape} does not match '
                             f'{image.shape}')
        return previous.astype(np.uint8, copy=True)
    out = np.asarray(out, np.float32)
    np.clip(out + np.float32(0.5), 0, 255, out=out)
    return out.astype(np.uint8)


# -------------------------------------------------------------------------------------- signals

def _channels(rng: np.random.Generator, c: int) -> np.ndarray:
    """A random non-empty subset of channel indices."""
    return np.sort(rng.choice(c, int(rng.integers(1, c + 1)), replace=False))


def _gain(rng: np.random.Generator, s: float) -> float:
    up = 1.0 + 0.3 + 1.2 * s
    return up if rng.random() < 0.5 else 1.0 / up


def _scale_vector(scale: np.ndarray | float, c: int) -> np.ndarray:
    sc = np.asarray(scale, np.float64)
    if sc.ndim == 0:
        return np.full(c, float(sc))
    if sc.shape != (c,):
        raise InputError(f'scale has shape {sc.shape}, expected ({c},) or a scalar')
    return sc


def corrupt_window(window: np.ndarray, kind: str, severity: float, rng: np.random.Generator, *,
                   onset: int = 0, scale: np.ndarray | float = 1.0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt a (T, C) signal window from sample ``onset`` on.

    Returns ``(corrupted, mask)``: the corrupted copy (same dtype and shape) and a (T,) bool mask
    of the samples the fault touched (from ``onset`` on for lasting faults; only the hit samples
    for ``spike`` and ``dropout``). ``scale`` is the per-channel signal scale, shape (C,) or a
    scalar (1.0 for normalised data); offsets, noise and spikes are multiples of it.
    """
    kind = SignalFault(check_fault(Modality.WRENCH, kind))
    s = check_severity(severity)
    window = np.asarray(window)
    if window.ndim != 2 or window.shape[0] == 0 or window.shape[1] == 0:
        raise InputError(f'corrupt_window expects a non-empty (T, C) array, got {window.shape}')
    t_len, c = window.shape
    onset = int(onset)
    if not 0 <= onset < t_len:
        raise InputError(f'onset {onset} outside the window of {t_len} samples')
    sc = _scale_vector(scale, c)
    x = window.astype(np.float64)
    seg = slice(onset, t_len)
    n = t_len - onset
    mask = np.zeros(t_len, bool)
    mask[seg] = True

    if kind is SignalFault.NOISE:
        x[seg] += rng.normal(0.0, 1.0, (n, c)) * (1.5 * s) * sc
    elif kind is SignalFault.BIAS:
        ch = _channels(rng, c)
        x[seg, ch] += rng.choice([-1.0, 1.0], ch.size) * (0.5 + 2.5 * s) * sc[ch]
    elif kind is SignalFault.DRIFT:
        ch = _channels(rng, c)
        ramp = np.arange(1, n + 1) / n * (1.0 + 3.0 * s)
        x[seg, ch] += ramp[:, None] * rng.choice([-1.0, 1.0], ch.size) * sc[ch]
    elif kind is SignalFault.SPIKE:
        k = max(1, int(round((0.05 + 0.15 * s) * n)))
        pos = onset + rng.choice(n, k, replace=False)
        ch = rng.integers(0, c, k)
        x[pos, ch] += rng.choice([-1.0, 1.0], k) * (3.0 + 7.0 * s) * sc[ch]
        mask[:] = False
        mask[pos] = True
    elif kind is SignalFault.GAIN:
        ch = _channels(rng, c)
        x[seg, ch] *= _gain(rng, s)
    elif kind is SignalFault.STUCK:
        ch = np.sort(rng.choice(c, max(1, math.ceil(s * c)), replace=False))
        held = x[max(onset - 1, 0), ch].copy()
        x[seg, ch] = held
    elif kind is SignalFault.SATURATION:
        lo, hi = x[seg].min(axis=0), x[seg].max(axis=0)
        cut = (0.1 + 0.35 * s) * (hi - lo)
        x[seg] = np.clip(x[seg], lo + cut, hi - cut)
    elif kind is SignalFault.DROPOUT:
        drop = rng.random(n) < 0.3 + 0.7 * s
        if not drop.any():
            drop[int(rng.integers(0, n))] = True
        pos = onset + np.flatnonzero(drop)
        x[pos] = 0.0
        mask[:] = False
        mask[pos] = True
    elif kind is SignalFault.SIGN_FLIP:
        ch = _channels(rng, c)
        x[seg, ch] *= -1.0
    else:  # CUTOUT
        length = max(1, int(round((0.2 + 0.8 * s) * n)))
        x[onset:onset + length] = 0.0
        mask[:] = False
        mask[onset:onset + length] = True
    return x.astype(window.dtype, copy=False), mask


# ---------------------------------------------------------------------------------------- batch

def corrupt_batch(modality: Modality | str, x: torch.Tensor, kinds: Sequence[str],
                  severity: float | torch.Tensor | Sequence[float],
                  generator: np.random.Generator, *,
                  onsets: Sequence[int] | None = None) -> torch.Tensor:
    """Return a corrupted copy of a model-ready batch, sample ``i`` with fault ``kinds[i]``.

    Layouts: camera (B, 3, H, W) float in [0, 1]; wrench (B, 6, T) and joints (B, C, T)
    normalised (scale 1). An empty kind (or ``'none'``) leaves that sample clean. ``severity`` is
    one float or one per sample. Signal faults start at ``onsets[i]`` (default: random in the
    first three quarters of the window, so the fault is present at the window's end, the tuple
    stamp). ``frozen_frame`` repeats the previous sample of the batch (a stale frame).
    """
    import torch

    modality = Modality(modality)
    if x.ndim not in (3, 4) or x.shape[0] != len(kinds):
        raise InputError(f'corrupt_batch: batch of shape {tuple(x.shape)} with {len(kinds)} kinds')
    b = x.shape[0]
    sev = np.broadcast_to(np.asarray(
        severity.detach().cpu().numpy() if isinstance(severity, torch.Tensor) else severity,
        np.float64), (b,))
    out = x.detach().clone()
    if modality is Modality.CAMERA:
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(f'camera batch must be (B, 3, H, W), got {tuple(x.shape)}')
        frames = None
        for i, kind in enumerate(kinds):
            if not kind or kind == 'none':
                continue
            if frames is None:
                frames = (x.detach().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255.0
                          ).round().astype(np.uint8)
            prev = frames[(i - 1) % b] if b > 1 else None
            img = corrupt_image(frames[i], kind, float(sev[i]), generator, previous=prev)
            out[i] = torch.from_numpy(img.astype(np.float32) / 255.0).permute(2, 0, 1).to(out)
        return out
    if x.ndim != 3:
        raise InputError(f'{modality.value} batch must be (B, C, T), got {tuple(x.shape)}')
    t_len = x.shape[2]
    data = None
    for i, kind in enumerate(kinds):
        if not kind or kind == 'none':
            continue
        if data is None:
            data = x.detach().cpu().numpy()
        onset = int(onsets[i]) if onsets is not None else \
            int(generator.integers(0, max(1, (3 * t_len) // 4)))
        window, _ = corrupt_window(data[i].T, kind, float(sev[i]), generator, onset=onset)
        out[i] = torch.from_numpy(np.ascontiguousarray(window.T)).to(out)
    return out


# -------------------------------------------------------------------------------------- streams

@dataclass(frozen=True)
class FaultSpec:
    """One fault to inject into a stream: ``kind`` on ``modality`` with ``severity`` in (0, 1],
    active from ``start_s`` for ``duration_s`` seconds (seconds since the stream started;
    ``duration_s`` may be ``inf``)."""

    modality: Modality
    kind: str
    severity: float
    start_s: float
    duration_s: float

    def __post_init__(self) -> None:
        try:
            modality = Modality(self.modality)
        except ValueError:
            raise FaultError(f'unknown fault modality {self.modality!r}; valid: '
                             f'{", ".join(m.value for m in MODALITIES)}') from None
        object.__setattr__(self, 'modality', modality)
        object.__setattr__(self, 'kind', check_fault(modality, self.kind))
        object.__setattr__(self, 'severity', check_severity(self.severity))
        for name in ('start_s', 'duration_s'):
            value = float(getattr(self, name))
            if math.isnan(value):
                raise FaultError(f'fault {name} is NaN')
            object.__setattr__(self, name, value)
        if self.start_s < 0 or math.isinf(self.start_s):
            raise FaultError(f'fault start_s must be a finite number >= 0, got {self.start_s}')
        if self.duration_s <= 0:
            raise FaultError(f'fault duration_s must be > 0, got {self.duration_s}')

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Parse ``modality:type:severity:start_s:duration_s``, e.g. ``camera:blur:0.5:10:5``."""
        parts = str(text).strip().split(':')
        if len(parts) != 5:
            raise FaultError(f'fault spec {text!r} must be modality:type:severity:start_s:'
                             f'duration_s (5 fields, got {len(parts)})')
        modality, kind, severity, start, duration = parts
        values = []
        for name, raw in (('severity', severity), ('start_s', start), ('duration_s', duration)):
            try:
                values.append(float(raw))
            except ValueError:
                raise FaultError(f'fault spec {text!r}: {name} {raw!r} is not a number') from None
        return cls(modality, kind, *values)

    def __str__(self) -> str:
        return (f'{self.modality.value}:{self.kind}:{self.severity:g}:{self.start_s:g}:'
                f'{self.duration_s:g}')

    def interval(self, origin_ns: int) -> FaultInterval:
        """The ground-truth interval in stamps, for a stream whose time zero is ``origin_ns``."""
        start = int(origin_ns) + int(round(self.start_s * 1e9))
        end = END_OF_TIME_NS if math.isinf(self.duration_s) else \
            int(origin_ns) + int(round(self.end_s * 1e9))
        return FaultInterval(self.modality, self.kind, self.severity, start, end)


class StreamFault:
    """Stateful injector of one :class:`FaultSpec` into a live stream of samples.

    Call :meth:`apply_image` / :meth:`apply_values` for every sample of the spec's modality, in
    time order, with ``t_s`` the seconds since the stream started. Lasting faults keep their
    geometry (channels, offsets, spots) for the whole interval; ``drift`` grows with the time
    since onset, ``stuck`` holds the last value before onset, ``frozen_frame`` repeats the last
    frame before onset, and ``dropout`` returns ``None`` ("drop the message") with a probability
    that reaches 1 at severity 1 (a silent topic).
    """

    def __init__(self, spec: FaultSpec, rng: np.random.Generator, *,
                 scale: np.ndarray | float = 1.0) -> None:
        self.spec = spec
        self._rng = rng
        self._scale = scale
        self._last: np.ndarray | None = None      # the latest sample seen (for stuck / frozen)
        self._state: dict | None = None           # per-activation parameters

    def active(self, t_s: float) -> bool:
        return self.spec.start_s <= t_s < self.spec.end_s

    def _activate(self, c: int) -> dict:
        rng, s = self._rng, self.spec.severity
        state: dict = {'seed': int(rng.integers(0, 2 ** 63 - 1))}
        if c:
            sc = _scale_vector(self._scale, c)
            ch = _channels(rng, c)
            state.update(sc=sc, ch=ch, sign=rng.choice([-1.0, 1.0], ch.size),
                         gain=_gain(rng, s),
                         stuck_ch=np.sort(rng.choice(c, max(1, math.ceil(s * c)),
                                                     replace=False)))
        return state

    def apply_image(self, t_s: float, image: np.ndarray) -> np.ndarray:
        """The frame as the faulty camera delivers it at ``t_s``."""
        if not self.active(t_s):
            self._state = None
            self._last = image
            return image
        if self._state is None:
            self._state = self._activate(0)
            self._state['frozen'] = self._last if self._last is not None else image.copy()
        kind = ImageFault(self.spec.kind)
        if kind is ImageFault.FROZEN_FRAME:
            return self._state['frozen'].copy()
        rng = np.random.default_rng(self._state['seed']) if kind in PERSISTENT_IMAGE_FAULTS \
            else self._rng
        return corrupt_image(image, kind.value, self.spec.severity, rng)

    def apply_values(self, t_s: float, values: np.ndarray) -> np.ndarray | None:
        """The (C,) reading as the faulty sensor delivers it at ``t_s``, or ``None`` when the
        message is lost."""
        values = np.asarray(values, np.float64)
        if not self.active(t_s):
            self._state = None
            self._last = values
            return values
        c = values.shape[0]
        if self._state is None:
            self._state = self._activate(c)
            self._state['held'] = self._last if self._last is not None else values.copy()
            self._state['v0'] = self._state['held'].copy()
        st, s, rng = self._state, self.spec.severity, self._rng
        sc, ch = st['sc'], st['ch']
        out = values.copy()
        kind = SignalFault(self.spec.kind)
        if kind is SignalFault.NOISE:
            out += rng.normal(0.0, 1.0, c) * (1.5 * s) * sc
        elif kind is SignalFault.BIAS:
            out[ch] += st['sign'] * (0.5 + 2.5 * s) * sc[ch]
        elif kind is SignalFault.DRIFT:
            out[ch] += st['sign'] * s * sc[ch] * (t_s - self.spec.start_s)
        elif kind is SignalFault.SPIKE:
            if rng.random() < 0.02 + 0.2 * s:
                k = int(rng.integers(0, c))
                out[k] += rng.choice([-1.0, 1.0]) * (3.0 + 7.0 * s) * sc[k]
        elif kind is SignalFault.GAIN:
            out[ch] *= st['gain']
        elif kind is SignalFault.STUCK:
            out[st['stuck_ch']] = st['held'][st['stuck_ch']]
        elif kind is SignalFault.SATURATION:
            limit = (0.1 + 2.4 * (1 - s)) * sc
            out = np.clip(out, st['v0'] - limit, st['v0'] + limit)
        elif kind is SignalFault.DROPOUT:
            if rng.random() < 0.3 + 0.7 * s:
                return None
        elif kind is SignalFault.SIGN_FLIP:
            out[ch] *= -1.0
        else:  # CUTOUT
            out[:] = 0.0
        return out


# ------------------------------------------------------------------------------------------ CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('modality', nargs='?', choices=[m.value for m in MODALITIES],
                        help='list only this modality')


def main(args: argparse.Namespace) -> int:
    """Print the registry: every fault per modality with a one-line description."""
    chosen = [Modality(args.modality)] if getattr(args, 'modality', None) else list(MODALITIES)
    for modality in chosen:
        table = DESCRIPTIONS['image' if modality is Modality.CAMERA else 'signal']
        print(f'{modality.value}:')
        for name in FAULTS[modality]:
            print(f'  {name:<16} {table[name]}')
    print('\nSeverity is in (0, 1]. Inject with --fault modality:type:severity:start_s:duration_s')
    return 0
