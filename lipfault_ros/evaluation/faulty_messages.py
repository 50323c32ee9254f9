"""Faults applied to deserialised sensor messages (``lipfault inject``): a camera image, a
wrench or a joint state as the faulty sensor would have sent it at a given stamp.

The faults themselves are :class:`lipfault_ros.faults.StreamFault` (the injector the simulated
robot uses live); this module drives them by integer stamps and rebuilds the message around the
changed values.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from lipfault_ros.tuples import Modality

__all__ = ['TimedFault', 'apply_faults', 'joint_vector']


def joint_vector(msg: Any) -> tuple[np.ndarray, list[int]]:
    """[position, velocity, effort] of a JointState concatenated, and the field lengths."""
    parts = [np.asarray(getattr(msg, f), np.float64) for f in ('position', 'velocity', 'effort')]
    return np.concatenate(parts), [len(p) for p in parts]


class TimedFault:
    """A StreamFault driven by integer stamps, so that it is active exactly on the stamps its
    truth interval covers (seconds as floats would disagree at the boundaries)."""

    def __init__(self, fault: Any, interval: Any, origin_ns: int) -> None:
        self.fault = fault
        self.interval = interval
        self.origin_ns = origin_ns

    def _t(self, stamp_ns: int) -> float:
        t_s = (stamp_ns - self.origin_ns) / 1e9
        spec = self.fault.spec
        if self.interval.active(stamp_ns):
            return min(max(t_s, spec.start_s), np.nextafter(spec.end_s, -np.inf))
        if self.fault.active(t_s):  # float rounding put it inside: move it out
            return spec.end_s if stamp_ns >= self.interval.end_ns else \
                np.nextafter(spec.start_s, -np.inf)
        return t_s

    def active(self, stamp_ns: int) -> bool:
        return self.interval.active(stamp_ns)

    def apply_image(self, stamp_ns: int, image: np.ndarray) -> np.ndarray:
        return self.fault.apply_image(self._t(stamp_ns), image)

    def apply_values(self, stamp_ns: int, values: np.ndarray) -> np.ndarray | None:
        return self.fault.apply_values(self._t(stamp_ns), values)


def apply_faults(modality: Modality, msg: Any, t_s: int, faults: Sequence[TimedFault],
           codec: Any) -> Any:
    """The message as the faulty sensor sends it at stamp ``t_s`` (ns), the same object when
    untouched, or None when the message is lost."""
    if modality is Modality.CAMERA:
        image = codec.image_sample(msg).image
        out = image
        for f in faults:
            out = f.apply_image(t_s, out)
        if out is image or not any(f.active(t_s) for f in faults):
            return msg
        encoding = msg.encoding if msg.encoding in ('rgb8', 'bgr8', 'mono8') else 'rgb8'
        step, data = codec.encode_image(np.ascontiguousarray(out, np.uint8), encoding)
        return dataclasses.replace(msg, encoding=encoding, step=step,
                                   data=np.frombuffer(data, np.uint8).copy(), is_bigendian=0)
    if modality is Modality.WRENCH:
        w = msg.wrench
        values = np.array([w.force.x, w.force.y, w.force.z, w.torque.x, w.torque.y, w.torque.z])
        out = _apply_values(faults, t_s, values)
        if out is None:
            return None
        if out is values:
            return msg
        force = dataclasses.replace(w.force, x=float(out[0]), y=float(out[1]), z=float(out[2]))
        torque = dataclasses.replace(w.torque, x=float(out[3]), y=float(out[4]), z=float(out[5]))
        return dataclasses.replace(msg, wrench=dataclasses.replace(w, force=force, torque=torque))
    vec, lengths = joint_vector(msg)
    out = _apply_values(faults, t_s, vec)
    if out is None:
        return None
    if out is vec:
        return msg
    a, b = lengths[0], lengths[0] + lengths[1]
    return dataclasses.replace(msg, position=np.asarray(out[:a], np.float64),
                               velocity=np.asarray(out[a:b], np.float64),
                               effort=np.asarray(out[b:], np.float64))


def _apply_values(faults: Sequence[Any], t_s: float, values: np.ndarray
                  ) -> np.ndarray | None:
    """Run every fault over one signal sample: ``None`` drops the message, ``values`` itself
    (the same object) means no fault is active and the message goes out untouched."""
    out = values
    for f in faults:
        out = f.apply_values(t_s, out)
        if out is None:
            return None
    return out if any(f.active(t_s) for f in faults) else values
