"""Camera faults on one (H, W, 3) uint8 RGB frame: :func:`corrupt_image` and the noise, spot and
blend helpers it draws with."""

from __future__ import annotations

import math
from typing import Any, Callable

import cv2
import numpy as np

from lipfault_ros.errors import InputError
from lipfault_ros.faults.registry import ImageFault, check_fault, check_severity
from lipfault_ros.tuples import Modality

__all__ = ['corrupt_image']


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
    if kind is ImageFault.BLUR:
        return cv2.GaussianBlur(image, (0, 0), (0.6 + 3.4 * s) * min(image.shape[:2]) / 128)
    if kind is ImageFault.FROZEN_FRAME:
        if previous is None:
            return image.copy()
        previous = np.asarray(previous)
        if previous.shape != image.shape:
            raise InputError(f'frozen_frame: previous frame {previous.shape} does not match '
                             f'{image.shape}')
        return previous.astype(np.uint8, copy=True)
    out = np.asarray(_DRAW[kind](image, image.astype(np.float32), s, rng), np.float32)
    np.clip(out + np.float32(0.5), 0, 255, out=out)
    return out.astype(np.uint8)


# Each kind below: (uint8 frame, the same as float32, severity, rng) -> float32 frame before
# rounding and clipping to uint8.

def _noise(image: np.ndarray, img: np.ndarray, s: float, rng: np.random.Generator) -> Any:
    return img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(8.0 + 60.0 * s)


def _occlusion(image: np.ndarray, img: np.ndarray, s: float, rng: np.random.Generator) -> Any:
    h, w = img.shape[:2]
    frac = 0.05 + 0.45 * s
    aspect = rng.uniform(0.5, 2.0)
    rh = int(np.clip(round(math.sqrt(frac * h * w / aspect)), 1, h))
    rw = int(np.clip(round(frac * h * w / rh), 1, w))
    y0, x0 = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
    out = img.copy()
    out[y0:y0 + rh, x0:x0 + rw] = rng.uniform(0, 80, 3)
    return out


def _brightness(image: np.ndarray, img: np.ndarray, s: float, rng: np.random.Generator) -> Any:
    return img + rng.choice([-1.0, 1.0]) * (25.0 + 100.0 * s)


def _contrast(image: np.ndarray, img: np.ndarray, s: float, rng: np.random.Generator) -> Any:
    factor = 1 - (0.3 + 0.6 * s) if rng.random() < 0.5 else 1 + (0.5 + 1.5 * s)
    mean = img.mean(axis=(0, 1), keepdims=True)
    return (img - mean) * factor + mean


def _colour_shift(image: np.ndarray, img: np.ndarray, s: float, rng: np.random.Generator
                  ) -> Any:
    direction = rng.normal(size=3)
    direction -= direction.mean()
    direction /= np.linalg.norm(direction) + 1e-9
    gains = 1.0 + direction * (0.2 + 0.6 * s)
    return img * gains + direction * (15.0 + 50.0 * s)


def _dust(image: np.ndarray, img: np.ndarray, s: float, rng: np.random.Generator) -> Any:
    h, w = img.shape[:2]
    side = min(h, w)
    n = int(15 + 100 * s)
    centres = rng.uniform(0, 1, (n, 2)) * (w, h)
    radii = rng.uniform(0.5, 1.5 + 4.0 * s, n) * side / 128
    alphas = rng.uniform(0.3, 0.6 + 0.4 * s, n)
    mask = _soft_spots(h, w, centres, radii, alphas, 0.8 * side / 128)
    haze = 0.15 * s
    return _blend(img, (70.0, 62.0, 55.0), mask) * (1 - haze) + haze * 128.0


def _perlin_overlay(image: np.ndarray, img: np.ndarray, s: float, rng: np.random.Generator
                    ) -> Any:
    field = _perlin(img.shape[0], img.shape[1], rng)
    amp = (0.25 + 0.75 * s) * 255.0
    tint = rng.uniform(0.7, 1.0, 3)
    return img + (field * np.float32(amp))[..., None] * tint.astype(np.float32)


def _flare(image: np.ndarray, img: np.ndarray, s: float, rng: np.random.Generator) -> Any:
    h, w = img.shape[:2]
    side = min(h, w)
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
    return img + light[..., None].astype(np.float32) * colour


def _water_drops(image: np.ndarray, img: np.ndarray, s: float, rng: np.random.Generator
                 ) -> Any:
    h, w = img.shape[:2]
    side = min(h, w)
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
    return np.where(inside[..., None], refracted * 0.85 + 30.0, img)


def _scratches(image: np.ndarray, img: np.ndarray, s: float, rng: np.random.Generator) -> Any:
    h, w = img.shape[:2]
    side = min(h, w)
    n = int(2 + 14 * s)
    mask = np.zeros((h, w), np.float32)
    for _ in range(n):
        p0 = rng.uniform(0, 1, 2) * (w, h)
        angle, length = rng.uniform(0, np.pi), rng.uniform(0.2, 0.9) * side
        p1 = p0 + length * np.array([math.cos(angle), math.sin(angle)])
        cv2.line(mask, tuple(int(v) for v in p0), tuple(int(v) for v in p1),
                 float(rng.uniform(0.5, 1.0)), 1 + int(rng.random() < s), cv2.LINE_AA)
    return _blend(img, 230.0, mask)


def _noise_frame(image: np.ndarray, img: np.ndarray, s: float, rng: np.random.Generator
                 ) -> Any:
    alpha = 0.6 + 0.4 * s
    return img * np.float32(1 - alpha) + rng.random(img.shape, dtype=np.float32) * \
        np.float32(255 * alpha)


def _black_frame(image: np.ndarray, img: np.ndarray, s: float, rng: np.random.Generator
                 ) -> Any:
    return img * (0.25 * (1 - s))


def _saturated_frame(image: np.ndarray, img: np.ndarray, s: float, rng: np.random.Generator
                     ) -> Any:
    return img + (255.0 - img) * (0.75 + 0.25 * s)


_DRAW: dict[ImageFault, Callable[..., Any]] = {
    ImageFault.NOISE: _noise, ImageFault.OCCLUSION: _occlusion,
    ImageFault.BRIGHTNESS: _brightness, ImageFault.CONTRAST: _contrast,
    ImageFault.COLOUR_SHIFT: _colour_shift, ImageFault.DUST: _dust,
    ImageFault.PERLIN: _perlin_overlay, ImageFault.FLARE: _flare,
    ImageFault.WATER_DROPS: _water_drops, ImageFault.SCRATCHES: _scratches,
    ImageFault.NOISE_FRAME: _noise_frame, ImageFault.BLACK_FRAME: _black_frame,
    ImageFault.SATURATED_FRAME: _saturated_frame}
