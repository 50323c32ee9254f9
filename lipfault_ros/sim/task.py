"""The scripted, randomised task the simulated Panda repeats: free reaches and contact work.

A real cell that a wrist sensor watches spends much of its time touching things (inserting,
wiping, pressing, pushing), so the plan is weighted towards contact: about 40 % of an episode is
spent touching the table or the cube (measured over 120 s episodes; see ``SimRobot.in_contact``).
Each cycle is one primitive:

- ``reach``: free moves through one to three points above the table with the hand tilted (the
  tool weight turns in the wrist sensor frame), then a pause with a new finger opening;
- ``press``: down onto the table, hold, slide a few cm, lift;
- ``wipe``: down onto the table and a zigzag of 3 to 5 strokes across a patch, then lift;
- ``insert``: a slow approach, a firmer press and a small spiral search, as when seating a peg;
- ``push``: the closed fingers push the cube along the table.

The mix of primitives, the speed, the hand tilt and how often the arm moves between contacts at a
low hover height (rather than lifting high) are drawn once per seed (:class:`TaskStyle`); sizes,
places and durations are drawn per cycle. Positions are of the fingertip point
(``panda_grasptarget``) in the world frame (m); segments run on minimum-jerk paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ['PRIMITIVES', 'Segment', 'TABLE_TOP_Z', 'TIP_CLEARANCE', 'Task', 'TaskStyle',
           'WORKSPACE', 'min_jerk']

#: Height of the table surface in the world frame (m); the arm's base stands on it.
TABLE_TOP_Z = 0.0
#: x, y range of task targets (m)
WORKSPACE = ((0.35, 0.68), (-0.28, 0.28))
#: how far the fingertips reach below the tip point (m): a press to penetration p commands the
#: tip point to ``top + TIP_CLEARANCE - p``
TIP_CLEARANCE = 0.0075
#: the task primitives and their mean share of cycles (each seed varies the mix around it)
PRIMITIVES: tuple[str, ...] = ('reach', 'press', 'wipe', 'insert', 'push')
_MEAN_WEIGHTS = (0.24, 0.22, 0.18, 0.14, 0.22)


def min_jerk(tau: float) -> float:
    tau = min(max(tau, 0.0), 1.0)
    return tau ** 3 * (10 - 15 * tau + 6 * tau * tau)


@dataclass(frozen=True)
class Segment:
    """Move the fingertip point to ``pos`` (m) with hand yaw ``yaw`` (rad), hand tilt ``tilt``
    (roll, pitch away from pointing straight down, rad) and finger opening ``grip`` (m) over
    ``duration`` seconds, on a minimum-jerk path."""

    duration: float
    pos: tuple[float, float, float]
    yaw: float
    grip: float
    tilt: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class TaskStyle:
    """The motion pattern of one seed: which primitives it favours, how fast it moves, how far
    it tilts the hand in free space and how often it hovers low between contacts. Drawn once
    per episode so that episodes differ in character, not only in detail."""

    weights: tuple[float, ...] = _MEAN_WEIGHTS
    #: mean tip speed of free moves (m/s)
    speed_m_s: float = 0.3
    #: durations of contact moves are divided by this
    tempo: float = 1.0
    #: largest free-space hand tilt (rad)
    max_tilt: float = 0.4
    #: probability that a contact cycle approaches and leaves at hover height (7-10 cm)
    hover: float = 0.5

    @classmethod
    def draw(cls, rng: np.random.Generator) -> TaskStyle:
        weights = rng.dirichlet(np.asarray(_MEAN_WEIGHTS) * 25.0)
        return cls(tuple(float(w) for w in weights / weights.sum()),
                   float(rng.uniform(0.22, 0.38)), float(rng.uniform(0.85, 1.2)),
                   float(rng.uniform(0.25, 0.5)), float(rng.uniform(0.2, 0.6)))


class Task:
    """An endless series of cycles (see the module docstring), drawn from ``rng`` as they are
    needed; ``cube_position`` tells where the cube is now (it moves when pushed)."""

    def __init__(self, rng: np.random.Generator, start: tuple[float, float, float],
                 cube_position: Callable[[], tuple[float, float, float]],
                 style: TaskStyle | None = None) -> None:
        self._rng = rng
        self._cube = cube_position
        self.style = style or TaskStyle()
        self._queue: list[Segment] = []
        self._from = Segment(0.0, tuple(start), 0.0, 0.04)
        self._t0 = 0.0
        self.cycles = 0

    # ------------------------------------------------------------------------- helpers
    def _u(self, lo: float, hi: float) -> float:
        return float(self._rng.uniform(lo, hi))

    def _slow(self, lo: float, hi: float) -> float:
        """A contact-move duration (s), at this seed's tempo."""
        return self._u(lo, hi) / self.style.tempo

    def _travel(self, a: tuple[float, ...], b: tuple[float, ...]) -> float:
        """Duration (s) of a free move from ``a`` to ``b`` at this seed's speed (+-20 %)."""
        distance = float(np.linalg.norm(np.subtract(b, a)))
        return max(0.5, distance / self.style.speed_m_s * self._u(0.8, 1.2))

    def _spot(self, margin: float = 0.0) -> tuple[float, float]:
        (x0, x1), (y0, y1) = WORKSPACE
        return self._u(x0 + margin, x1 - margin), self._u(y0 + margin, y1 - margin)

    @staticmethod
    def _clip(x: float, y: float) -> tuple[float, float]:
        (x0, x1), (y0, y1) = WORKSPACE
        return float(np.clip(x, x0, x1)), float(np.clip(y, y0, y1))

    def _height(self) -> float:
        """Approach and leave height of a contact cycle: hovering low or lifting high."""
        return TABLE_TOP_Z + (self._u(0.07, 0.1) if self._rng.random() < self.style.hover
                              else self._u(0.15, 0.28))

    def _contact_tilt(self, limit: float = 0.12) -> tuple[float, float]:
        return self._u(-limit, limit), self._u(-limit, limit)

    def _approach(self, xy: tuple[float, float], z: float, yaw: float,
                  tilt: tuple[float, float]) -> Segment:
        pos = (*xy, z)
        return Segment(self._travel(self._from.pos, pos), pos, yaw, 0.0, tilt)

    # ------------------------------------------------------------------------- primitives
    def _reach(self, yaw: float) -> list[Segment]:
        m, out = self.style.max_tilt, []
        for _ in range(int(self._rng.integers(1, 4))):  # one to three waypoints, then a pause
            start = out[-1].pos if out else self._from.pos
            p = (*self._spot(), TABLE_TOP_Z + self._u(0.15, 0.3))
            tilt = (self._u(-m, m), self._u(-m, m))
            yaw = float(np.clip(yaw + self._u(-0.4, 0.4), -1.0, 1.0))
            out.append(Segment(self._travel(start, p), p, yaw, self._u(0, 0.04), tilt))
        last = out[-1]
        return out + [Segment(self._u(0.2, 0.6), last.pos, last.yaw, self._u(0, 0.04), last.tilt)]

    def _press(self, yaw: float) -> list[Segment]:
        top, tilt = self._height(), self._contact_tilt()
        x, y = self._spot()
        z = TABLE_TOP_Z + TIP_CLEARANCE - self._u(0.002, 0.005)
        angle, length = self._u(0, 2 * math.pi), self._u(0.05, 0.15)
        x2, y2 = self._clip(x + length * math.cos(angle), y + length * math.sin(angle))
        return [self._approach((x, y), top, yaw, tilt),
                Segment(self._slow(0.6, 1.0), (x, y, z), yaw, 0.0, tilt),
                Segment(self._slow(0.3, 0.8), (x, y, z), yaw, 0.0, tilt),
                Segment(self._slow(0.8, 1.4), (x2, y2, z), yaw, 0.0, tilt),
                Segment(self._slow(0.5, 0.8), (x2, y2, top), yaw, 0.0, tilt)]

    def _wipe(self, yaw: float) -> list[Segment]:
        top, tilt = self._height(), self._contact_tilt()
        x, y = self._spot(0.04)
        z = TABLE_TOP_Z + TIP_CLEARANCE - self._u(0.002, 0.004)
        angle, half = self._u(0, 2 * math.pi), self._u(0.03, 0.07)
        along = np.array([math.cos(angle), math.sin(angle)])
        across = np.array([-along[1], along[0]]) * self._u(0.015, 0.035)
        strokes = int(self._rng.integers(3, 6))
        points = [self._clip(*(np.array([x, y]) + (half if k % 2 else -half) * along
                               + (k - strokes / 2) * across)) for k in range(strokes + 1)]
        out = [self._approach(points[0], top, yaw, tilt),
               Segment(self._slow(0.5, 0.9), (*points[0], z), yaw, 0.0, tilt)]
        out += [Segment(self._slow(0.5, 0.9), (*p, z), yaw, 0.0, tilt) for p in points[1:]]
        return out + [Segment(self._slow(0.4, 0.7), (*points[-1], top), yaw, 0.0, tilt)]

    def _insert(self, yaw: float) -> list[Segment]:
        top, tilt = self._height(), self._contact_tilt(0.06)
        x, y = self._spot(0.02)
        near = TABLE_TOP_Z + TIP_CLEARANCE + 0.015
        touch = TABLE_TOP_Z + TIP_CLEARANCE - 0.002
        seat = TABLE_TOP_Z + TIP_CLEARANCE - self._u(0.004, 0.006)
        out = [self._approach((x, y), top, yaw, tilt),
               Segment(self._slow(0.4, 0.7), (x, y, near), yaw, 0.0, tilt),
               Segment(self._slow(0.5, 0.8), (x, y, touch), yaw, 0.0, tilt),
               Segment(self._slow(0.3, 0.5), (x, y, seat), yaw, 0.0, tilt)]
        radius, turns, n = self._u(0.004, 0.008), self._u(1.0, 2.0), int(self._rng.integers(6, 11))
        phase = self._u(0, 2 * math.pi)
        for k in range(1, n + 1):
            a, r = phase + 2 * math.pi * turns * k / n, radius * k / n
            out.append(Segment(self._slow(0.2, 0.35), (*self._clip(x + r * math.cos(a),
                                                                   y + r * math.sin(a)), seat),
                               yaw + 0.05 * math.sin(a), 0.0, tilt))
        end = out[-1].pos
        return out + [Segment(self._slow(0.4, 0.8), end, yaw, 0.0, tilt),
                      Segment(self._slow(0.5, 0.8), (end[0], end[1], top), yaw, 0.0, tilt)]

    def _push(self, yaw: float) -> list[Segment]:
        del yaw  # the push direction sets the yaw
        (x0, x1), (y0, y1) = WORKSPACE
        top, tilt = self._height(), self._contact_tilt(0.1)
        cx, cy, _ = self._cube()
        angle = self._u(0, 2 * math.pi)
        d = np.array([math.cos(angle), math.sin(angle)])
        start = np.clip(np.array([cx, cy]) - 0.12 * d, (x0, y0), (x1, y1))
        end = np.clip(np.array([cx, cy]) + self._u(0.05, 0.12) * d, (x0, y0), (x1, y1))
        z = TABLE_TOP_Z + 0.03
        push_yaw = angle % math.pi - math.pi / 2  # the fingers' broad side faces the cube
        return [self._approach(tuple(start), top, push_yaw, tilt),
                Segment(self._slow(0.6, 1.0), (*start, z), push_yaw, 0.0, tilt),
                Segment(self._slow(1.0, 1.6), (*end, z), push_yaw, 0.0, tilt),
                Segment(self._slow(0.5, 0.8), (*end, top), push_yaw, 0.0, tilt)]

    def _plan(self) -> list[Segment]:
        yaw = self._u(-0.6, 0.6)
        # the first cycle is always a press, so even a short recording holds a contact
        choice = 'press' if self.cycles == 0 else \
            PRIMITIVES[int(self._rng.choice(len(PRIMITIVES), p=self.style.weights))]
        self.cycles += 1
        return getattr(self, f'_{choice}')(yaw)

    def target(self, t_s: float) -> tuple[np.ndarray, tuple[float, float, float], float]:
        """Fingertip position, hand orientation (roll, pitch, yaw: pointing down is
        ``(pi, 0, yaw)``) and finger opening commanded at ``t_s``."""
        while not self._queue or t_s >= self._t0 + self._queue[0].duration:
            if self._queue:
                self._t0 += self._queue[0].duration
                self._from = self._queue.pop(0)
            if not self._queue:
                self._queue = self._plan()
        seg, prev = self._queue[0], self._from
        s = min_jerk((t_s - self._t0) / seg.duration)

        def lerp(a, b):
            return np.asarray(a, np.float64) + s * (np.asarray(b, np.float64)
                                                    - np.asarray(a, np.float64))

        roll, pitch = lerp(prev.tilt, seg.tilt)
        return (lerp(prev.pos, seg.pos), (math.pi + float(roll), float(pitch),
                                         float(lerp(prev.yaw, seg.yaw))),
                float(lerp(prev.grip, seg.grip)))
