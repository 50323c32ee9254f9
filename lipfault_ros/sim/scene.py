"""What of the simulated cell's appearance varies per seed: where the camera sits, how the scene is
lit and where the static clutter stands.

Why: a detector trained on one fixed view learns that view. Real recordings differ from day to
day (the camera was bumped by a centimetre, the sun moved, a box was put back elsewhere), so each
seed draws a slightly different cell, deterministically. The cube's start position is drawn per
seed by the robot itself (it also moves when pushed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ['CAMERA_EYE', 'CAMERA_TARGET', 'CLUTTER', 'SceneVariation']

#: nominal camera pose (world frame, m): in front of the robot, looking at the workspace
CAMERA_EYE = (1.45, 0.75, 0.8)
CAMERA_TARGET = (0.4, 0.0, 0.1)
#: nominal static clutter beside the workspace: (x, y, height) in m, and colour
CLUTTER: tuple[tuple[tuple[float, float, float], tuple[float, ...]], ...] = (
    ((0.78, 0.32, 0.08), (0.1, 0.3, 0.8, 1.0)),
    ((0.8, -0.35, 0.06), (0.15, 0.65, 0.2, 1.0)),
)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


@dataclass(frozen=True)
class SceneVariation:
    """One seed's cell appearance. The defaults are the nominal cell (no variation)."""

    camera_eye: tuple[float, float, float] = CAMERA_EYE
    camera_target: tuple[float, float, float] = CAMERA_TARGET
    camera_up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    #: direction towards the light (TinyRenderer's ``lightDirection``), and its colour
    light_direction: tuple[float, float, float] = (0.3, 0.5, 0.8)
    light_color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    light_ambient: float = 0.6
    light_diffuse: float = 0.35
    light_specular: float = 0.05
    #: clutter boxes: (x, y, height) in m
    clutter: tuple[tuple[float, float, float], ...] = tuple(c[0] for c in CLUTTER)

    @classmethod
    def draw(cls, rng: np.random.Generator) -> SceneVariation:
        """A seed's cell: the camera moved by up to 1.5 cm per axis and turned by up to about
        2 degrees (its target moved by up to 3 cm per axis at 1.5 m) and rolled by up to 1 degree;
        light from anywhere 35 to 80 degrees above the horizon, white to slightly tinted, with
        some spread of ambient and diffuse strength; clutter moved by up to 2 cm (it stays out
        of the workspace)."""
        eye = np.asarray(CAMERA_EYE) + rng.uniform(-0.015, 0.015, 3)
        target = np.asarray(CAMERA_TARGET) + rng.uniform(-0.03, 0.03, 3)
        forward = _unit(target - eye)
        side = _unit(np.cross(forward, [0.0, 0.0, 1.0]))
        up0 = np.cross(side, forward)
        roll = math.radians(float(rng.uniform(-1.0, 1.0)))
        up = math.cos(roll) * up0 + math.sin(roll) * side
        azimuth = float(rng.uniform(0.0, 2 * math.pi))
        elevation = math.radians(float(rng.uniform(35.0, 80.0)))
        light = (math.cos(elevation) * math.cos(azimuth),
                 math.cos(elevation) * math.sin(azimuth), math.sin(elevation))
        color = tuple(float(c) for c in rng.uniform(0.85, 1.0, 3))
        ambient, diffuse = float(rng.uniform(0.5, 0.7)), float(rng.uniform(0.28, 0.45))
        clutter = tuple((x + float(dx), y + float(dy), h) for ((x, y, h), _), (dx, dy)
                        in zip(CLUTTER, rng.uniform(-0.02, 0.02, (len(CLUTTER), 2))))
        return cls(tuple(float(v) for v in eye), tuple(float(v) for v in target),
                   tuple(float(v) for v in up), light, color, ambient, diffuse, 0.05, clutter)

    def light_kwargs(self) -> dict:
        """Keyword arguments of ``pybullet.getCameraImage`` for this lighting. All are passed on
        every call: pybullet keeps light settings from one call to the next."""
        return dict(lightDirection=list(self.light_direction), lightColor=list(self.light_color),
                    lightAmbientCoeff=self.light_ambient, lightDiffuseCoeff=self.light_diffuse,
                    lightSpecularCoeff=self.light_specular)
