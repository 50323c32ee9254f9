"""The records that flow through the package: raw sensor samples and synchronised tuples.

Everything here is ROS-free. Timestamps are integer nanoseconds (``header.stamp`` converted with
``sec * 10**9 + nanosec``), never floats, so that stamps compare exactly across the live and the
bag path. Arrays are NumPy; shapes and units are given per field.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping, Sequence, Union

import numpy as np

from lipfault_ros.errors import InputError

__all__ = [
    'MODALITIES',
    'ImageSample',
    'JointSample',
    'Modality',
    'Sample',
    'SensorTuple',
    'TupleArrays',
    'WrenchSample',
    'stamp_to_ns',
]


class Modality(str, enum.Enum):
    """The three sensor streams the model fuses. The value is the name used in topics,
    diagnostics, configs and reports."""

    CAMERA = 'camera'
    WRENCH = 'wrench'
    JOINTS = 'joints'

    def __str__(self) -> str:
        return self.value


#: Canonical order of modalities: index i of every per-modality array refers to MODALITIES[i].
MODALITIES: tuple[Modality, ...] = (Modality.CAMERA, Modality.WRENCH, Modality.JOINTS)


def stamp_to_ns(sec: int, nanosec: int) -> int:
    """Convert a ``builtin_interfaces/Time`` pair to integer nanoseconds."""
    return int(sec) * 1_000_000_000 + int(nanosec)


@dataclass(frozen=True)
class ImageSample:
    """One camera frame.

    ``image`` is (H, W, 3) uint8 RGB, whatever the wire encoding was (mono images are
    replicated to three channels by the codec).
    """

    stamp_ns: int
    frame_id: str
    image: np.ndarray

    modality = Modality.CAMERA


@dataclass(frozen=True)
class WrenchSample:
    """One force/torque reading: ``values`` is (6,) float64, [fx, fy, fz, tx, ty, tz] in N and Nm."""

    stamp_ns: int
    frame_id: str
    values: np.ndarray

    modality = Modality.WRENCH


@dataclass(frozen=True)
class JointSample:
    """One joint_states message, still keyed by name (never by index).

    ``position`` (rad or m), ``velocity`` (rad/s or m/s) and ``effort`` (Nm or N) are (len(names),)
    float64; a field the driver left empty is all-NaN here so that it is visibly missing.
    """

    stamp_ns: int
    frame_id: str
    names: tuple[str, ...]
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray

    modality = Modality.JOINTS


Sample = Union[ImageSample, WrenchSample, JointSample]


@dataclass(frozen=True)
class SensorTuple:
    """One synchronised multimodal observation, the unit the model works on.

    ``stamp_ns`` is the pivot stamp (the camera frame's header stamp when the camera is present).
    ``wrench`` and ``joints`` are history windows that end at the tuple stamp, oldest first:
    ``wrench`` is (T_w, 6) float32 and ``joints`` is (T_j, J, 3) float32 with the last axis
    [position, velocity, effort] and J ordered as ``joint_names``. A modality in ``missing`` has
    ``None`` as its data (a silent topic, or a message that could not be decoded); the model
    reconstructs it from the others. ``stamps_ns`` and ``frame_ids`` hold the header of the newest
    message of each present modality, so outputs can be published with the input's header.
    ``spans_ns`` holds, for each present signal window, the header-stamp time from its oldest
    to its newest sample: a window of T samples at the stream's rate spans T - 1 periods, and
    one that lost messages on the way spans more (see :mod:`lipfault_ros.sample_loss`).
    ``backlogs_ns`` (live only) holds how much later than usual the pipeline received the
    latest-arriving sample of each window: a backlog of about its input queue's span means
    the pipeline itself lost messages (see :meth:`lipfault_ros.sync.TupleAssembler.push`).
    """

    stamp_ns: int
    image: np.ndarray | None
    wrench: np.ndarray | None
    joints: np.ndarray | None
    joint_names: tuple[str, ...]
    stamps_ns: Mapping[Modality, int] = field(default_factory=dict)
    frame_ids: Mapping[Modality, str] = field(default_factory=dict)
    missing: frozenset[Modality] = frozenset()
    spans_ns: Mapping[Modality, int] = field(default_factory=dict)
    backlogs_ns: Mapping[Modality, int] = field(default_factory=dict)

    def data(self, modality: Modality) -> np.ndarray | None:
        """The array of one modality, or None when it is missing."""
        return {Modality.CAMERA: self.image, Modality.WRENCH: self.wrench,
                Modality.JOINTS: self.joints}[Modality(modality)]


@dataclass(frozen=True)
class TupleArrays:
    """A set of N tuples stacked into arrays, the form training and evaluation consume.

    The arrays may be NumPy memmaps (see the bag cache), so large sets need not fit in memory.
    Missing modalities hold zeros and are flagged in ``missing``.

    - ``stamps_ns``: (N,) int64
    - ``images``: (N, H, W, 3) uint8, all at one size
    - ``wrench``: (N, T_w, 6) float32
    - ``joints``: (N, T_j, J, 3) float32
    - ``missing``: (N, 3) bool, columns in ``MODALITIES`` order
    """

    stamps_ns: np.ndarray
    images: np.ndarray
    wrench: np.ndarray
    joints: np.ndarray
    joint_names: tuple[str, ...]
    missing: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.stamps_ns)
        for name in ('images', 'wrench', 'joints', 'missing'):
            if len(getattr(self, name)) != n:
                raise InputError(f'TupleArrays.{name} has {len(getattr(self, name))} rows, '
                                 f'stamps_ns has {n}')
        if self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise InputError(f'TupleArrays.images must be (N, H, W, 3), got {self.images.shape}')
        if self.wrench.ndim != 3 or self.wrench.shape[-1] != 6:
            raise InputError(f'TupleArrays.wrench must be (N, T, 6), got {self.wrench.shape}')
        if self.joints.ndim != 4 or self.joints.shape[2:] != (len(self.joint_names), 3):
            raise InputError(f'TupleArrays.joints must be (N, T, {len(self.joint_names)}, 3), '
                             f'got {self.joints.shape}')

    def __len__(self) -> int:
        return len(self.stamps_ns)

    def subset(self, index: np.ndarray | slice | Sequence[int]) -> TupleArrays:
        """Rows selected by ``index`` (a slice keeps memmaps lazy)."""
        return TupleArrays(self.stamps_ns[index], self.images[index], self.wrench[index],
                           self.joints[index], self.joint_names, self.missing[index])

    @classmethod
    def from_tuples(cls, tuples: Sequence[SensorTuple], *, image_size: tuple[int, int] | None
                    = None) -> TupleArrays:
        """Stack tuples that share joint names and window lengths.

        Images must already share one size unless ``image_size`` (H, W) is given, in which case
        they are resized with area interpolation.
        """
        if not tuples:
            raise InputError('cannot stack an empty sequence of tuples')
        names = tuples[0].joint_names
        first = next((t for t in tuples if t.image is not None), None)
        if image_size is None:
            if first is None:
                raise InputError('no tuple has an image and no image_size was given')
            image_size = first.image.shape[:2]
        tw = next((t.wrench.shape[0] for t in tuples if t.wrench is not None), 1)
        tj = next((t.joints.shape[0] for t in tuples if t.joints is not None), 1)
        n = len(tuples)
        images = np.zeros((n, *image_size, 3), np.uint8)
        wrench = np.zeros((n, tw, 6), np.float32)
        joints = np.zeros((n, tj, len(names), 3), np.float32)
        missing = np.zeros((n, 3), bool)
        for i, t in enumerate(tuples):
            if t.joint_names != names:
                raise InputError(f'tuple {i} has joints {t.joint_names}, expected {names}')
            if t.image is not None:
                img = t.image
                if img.shape[:2] != tuple(image_size):
                    import cv2
                    img = cv2.resize(img, (image_size[1], image_size[0]),
                                     interpolation=cv2.INTER_AREA)
                images[i] = img
            if t.wrench is not None:
                wrench[i] = t.wrench
            if t.joints is not None:
                joints[i] = t.joints
            for m, modality in enumerate(MODALITIES):
                missing[i, m] = modality in t.missing or t.data(modality) is None
        stamps = np.array([t.stamp_ns for t in tuples], np.int64)
        return cls(stamps, images, wrench, joints, names, missing)
