"""A node that publishes the synthetic sensor stream in real time, with switchable faults.

Used by the pipeline's DDS tests and the benchmark: camera, wrench and joint states at their
rates (30/500/250 Hz by default), header stamps from the wall clock plus jitter, published from a
background thread on a fixed schedule (so a busy executor cannot bend the rates). Faults and
bad input are switched at run time through :attr:`SyntheticSensors.mode`, one entry per
modality, e.g. ``{'wrench': 'nan'}``:

- any modality: ``stop`` (publish nothing), ``zero_stamp``, ``backwards`` (stamps 100 s back),
- camera: ``bad_encoding`` (yuv422), ``big`` (images twice the size), ``black``,
- wrench / joints: ``nan``, ``inf``, ``bias`` (a large offset),
- joints: ``reordered`` (names reversed), ``missing_name`` (panda_joint3 left out).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from geometry_msgs.msg import WrenchStamped
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState

from lipfault_ros.synthetic import synthetic_samples
from lipfault_ros.ros import convert
from lipfault_ros.ros.qos import qos_profile
from lipfault_ros.topics import INPUT_NAMES
from lipfault_ros.tuples import ImageSample, Modality, WrenchSample

__all__ = ['SyntheticSensors']


class SyntheticSensors(Node):
    """Publishes ``camera/image_raw``, ``wrench`` and ``joint_states`` (see module doc)."""

    def __init__(self, *, node_name: str = 'synthetic_sensors', image_size: int = 32,
                 encoding: str = 'rgb8', seed: int = 0, qos: str = 'reliable',
                 chunk_s: float = 1.0, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        profile = qos_profile(qos, 50)
        self.pubs = {m: self.create_publisher(kind, INPUT_NAMES[m], profile) for m, kind in
                     ((Modality.CAMERA, Image), (Modality.WRENCH, WrenchStamped),
                      (Modality.JOINTS, JointState))}
        self.image_size = image_size
        self.encoding = encoding
        self.seed = seed
        self.chunk_s = chunk_s
        self.mode: dict[str, str] = {}
        self.published = {m: 0 for m in Modality}
        #: (stamp_ns, frame_id) of every camera frame published, in order
        self.camera_stamps: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start publishing from a background thread."""
        self._thread = threading.Thread(target=self._run, name='synthetic_sensors', daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        t0 = time.monotonic_ns()
        start_ns = time.time_ns()
        chunk = 0
        big = None
        while not self._stop.is_set():
            offset = int(chunk * self.chunk_s * 1e9)
            events = synthetic_samples(self.chunk_s, start_ns=start_ns + offset,
                                       seed=self.seed + chunk, image_size=self.image_size)
            if 'big' in self.mode.values() or big is None:
                big = next(s.image for _, s in synthetic_samples(
                    0.1, start_ns=start_ns, seed=1, image_size=2 * self.image_size)
                    if isinstance(s, ImageSample))
            for arrival, sample in events:
                due = t0 + offset + arrival
                delay = (due - time.monotonic_ns()) / 1e9
                if delay > 0 and self._stop.wait(delay):
                    return
                self._publish(sample, big)
            chunk += 1

    def _publish(self, sample: Any, big: np.ndarray) -> None:
        m = sample.modality
        mode = self.mode.get(m.value, '')
        if mode == 'stop':
            return
        stamp = sample.stamp_ns
        if mode == 'zero_stamp':
            stamp = 0
        elif mode == 'backwards':
            stamp -= 100_000_000_000
        hdr = convert.header(stamp, sample.frame_id)
        if isinstance(sample, ImageSample):
            image = sample.image
            if mode == 'big':
                image = big
            elif mode == 'black':
                image = np.zeros_like(image)
            msg = convert.image_msg(image, hdr, self.encoding)
            if mode == 'bad_encoding':
                msg.encoding = 'yuv422'
            self.camera_stamps.append((stamp, sample.frame_id))
        elif isinstance(sample, WrenchSample):
            values = sample.values
            if mode in ('nan', 'inf'):
                values = values.copy()
                values[2] = np.nan if mode == 'nan' else np.inf
            elif mode == 'bias':
                values = values + 200.0
            msg = convert.wrench_msg(values, hdr)
        else:
            names, p, v, e = list(sample.names), sample.position, sample.velocity, sample.effort
            if mode in ('nan', 'inf'):
                p = p.copy()
                p[0] = np.nan if mode == 'nan' else np.inf
            elif mode == 'bias':
                p = p + 3.0
            elif mode == 'reordered':
                names, p, v, e = names[::-1], p[::-1], v[::-1], e[::-1]
            elif mode == 'missing_name':
                keep = [i for i, n in enumerate(names) if n != 'panda_joint3']
                names = [names[i] for i in keep]
                p, v, e = p[keep], v[keep], e[keep]
            msg = convert.joint_state_msg(names, p, v, e, hdr)
        self.pubs[m].publish(msg)
        self.published[m] += 1
