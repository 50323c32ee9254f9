"""Write sensor samples and fault truth into a rosbag2 recording, without a ROS runtime.

The messages are the real ROS types, serialised with a ``rosbags`` typestore: camera frames as
``sensor_msgs/msg/Image`` (rgb8), force/torque as ``geometry_msgs/msg/WrenchStamped``, joint
states as ``sensor_msgs/msg/JointState`` and the fault truth as
``diagnostic_msgs/msg/DiagnosticArray`` (see :mod:`lipfault_ros.truth`). The bags open with the
``rosbags`` reader and with ``ros2 bag info``; storage is ``mcap`` or ``sqlite3``.

Header stamps come from the samples; the bag's own per-message time is the receive time, which
callers may give (``receive_ns``) and which defaults to the header stamp. All times are integer
nanoseconds.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lipfault_ros.errors import BagError, ConfigError
from lipfault_ros.topics import MESSAGE_TYPES, TRUTH_TYPE, TopicConfig
from lipfault_ros.truth import FaultInterval, truth_status_fields
from lipfault_ros.tuples import ImageSample, JointSample, Modality, Sample, WrenchSample

__all__ = ['STORAGES', 'SensorBagWriter']

_log = logging.getLogger(__name__)

#: Storage plugins a bag can be written with.
STORAGES: tuple[str, ...] = ('mcap', 'sqlite3')

#: Hardware id written into the truth statuses.
_HARDWARE_ID = 'lipfault_sim'


def _typestore() -> Any:
    from rosbags.typesys import Stores, get_typestore

    store = getattr(Stores, 'ROS2_KILTED', None) or Stores.LATEST
    return get_typestore(store)


def _is_bag_dir(path: Path) -> bool:
    """True when ``path`` holds nothing but rosbag2 files (safe to replace on overwrite)."""
    allowed = {'.mcap', '.db3', '.yaml', '.db3-shm', '.db3-wal', '.zstd'}
    entries = list(path.iterdir())
    return all(e.is_file() and (e.suffix in allowed or e.name.endswith(('-shm', '-wal')))
               for e in entries)


class SensorBagWriter:
    """A rosbag2 writer for simulated sensor data.

    ``path`` is the bag directory to create. An existing path is refused with
    ``FileExistsError`` unless ``overwrite`` is set, and even then only a directory that holds
    nothing but bag files is replaced. Use as a context manager, or call :meth:`open` and
    :meth:`close`.
    """

    def __init__(self, path: str | Path, *, storage: str = 'mcap', overwrite: bool = False,
                 topics: TopicConfig | None = None) -> None:
        self.path = Path(path)
        if storage not in STORAGES:
            raise ConfigError(f'storage {storage!r} is not one of {", ".join(STORAGES)}')
        self.storage = storage
        self.overwrite = overwrite
        self.topics = topics or TopicConfig()
        self.counts: dict[str, int] = {}
        self._writer: Any = None
        self._ts: Any = None
        self._conns: dict[str, Any] = {}
        self._types: dict[str, Any] = {}

    # ------------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Create the bag directory and its topics."""
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        if self.path.exists() or self.path.is_symlink():
            if not self.overwrite:
                raise FileExistsError(f'bag {self.path} already exists (pass overwrite to '
                                      f'replace it)')
            if self.path.is_dir() and _is_bag_dir(self.path):
                shutil.rmtree(self.path)
            else:
                raise BagError(f'{self.path} exists and is not a rosbag2 directory; refusing to '
                               f'delete it')
        self.path.parent.mkdir(parents=True, exist_ok=True)  # like `ros2 bag record -o a/b`
        self._ts = _typestore()
        plugin = StoragePlugin.MCAP if self.storage == 'mcap' else StoragePlugin.SQLITE3
        try:
            self._writer = Writer(self.path, version=9, storage_plugin=plugin)
            self._writer.open()
        except WriterError as exc:
            raise BagError(f'cannot create bag {self.path}: {exc}') from None
        topics = {self.topics.camera: MESSAGE_TYPES[Modality.CAMERA],
                  self.topics.wrench: MESSAGE_TYPES[Modality.WRENCH],
                  self.topics.joints: MESSAGE_TYPES[Modality.JOINTS],
                  self.topics.truth: TRUTH_TYPE}
        for topic, msgtype in topics.items():
            self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=self._ts)
            self.counts[topic] = 0
        t = self._ts.types
        self._types = {name: t[name] for name in (
            'sensor_msgs/msg/Image', 'geometry_msgs/msg/WrenchStamped',
            'geometry_msgs/msg/Wrench', 'geometry_msgs/msg/Vector3', 'sensor_msgs/msg/JointState',
            'std_msgs/msg/Header', 'builtin_interfaces/msg/Time',
            'diagnostic_msgs/msg/DiagnosticArray', 'diagnostic_msgs/msg/DiagnosticStatus',
            'diagnostic_msgs/msg/KeyValue')}
        _log.debug('writing %s bag %s', self.storage, self.path)

    def close(self) -> None:
        """Finish the bag (writes metadata.yaml)."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def __enter__(self) -> SensorBagWriter:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------ messages
    def _header(self, stamp_ns: int, frame_id: str) -> Any:
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return self._types['std_msgs/msg/Header'](
            stamp=self._types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec),
            frame_id=frame_id)

    def _write(self, topic: str, msgtype: str, msg: Any, t_ns: int) -> None:
        if self._writer is None:
            raise BagError(f'bag {self.path} is not open')
        self._writer.write(self._conns[topic], int(t_ns), self._ts.serialize_cdr(msg, msgtype))
        self.counts[topic] += 1

    def write_sample(self, sample: Sample, *, receive_ns: int | None = None) -> None:
        """Write one camera, wrench or joint sample on its topic; ``receive_ns`` is the bag time
        (defaults to the header stamp)."""
        t_ns = sample.stamp_ns if receive_ns is None else receive_ns
        header = self._header(sample.stamp_ns, sample.frame_id)
        ty = self._types
        if isinstance(sample, ImageSample):
            img = np.ascontiguousarray(sample.image, dtype=np.uint8)
            if img.ndim != 3 or img.shape[2] != 3:
                raise BagError(f'{self.topics.camera}: image must be (H, W, 3), got {img.shape}')
            h, w = img.shape[:2]
            msg = ty['sensor_msgs/msg/Image'](header=header, height=h, width=w, encoding='rgb8',
                                              is_bigendian=0, step=w * 3, data=img.reshape(-1))
            self._write(self.topics.camera, MESSAGE_TYPES[Modality.CAMERA], msg, t_ns)
        elif isinstance(sample, WrenchSample):
            v = np.asarray(sample.values, np.float64)
            vec = ty['geometry_msgs/msg/Vector3']
            wrench = ty['geometry_msgs/msg/Wrench'](force=vec(x=v[0], y=v[1], z=v[2]),
                                                    torque=vec(x=v[3], y=v[4], z=v[5]))
            msg = ty['geometry_msgs/msg/WrenchStamped'](header=header, wrench=wrench)
            self._write(self.topics.wrench, MESSAGE_TYPES[Modality.WRENCH], msg, t_ns)
        elif isinstance(sample, JointSample):
            msg = ty['sensor_msgs/msg/JointState'](
                header=header, name=list(sample.names),
                position=np.asarray(sample.position, np.float64),
                velocity=np.asarray(sample.velocity, np.float64),
                effort=np.asarray(sample.effort, np.float64))
            self._write(self.topics.joints, MESSAGE_TYPES[Modality.JOINTS], msg, t_ns)
        else:
            raise BagError(f'cannot write {type(sample).__name__} into bag {self.path}')

    def write_truth(self, stamp_ns: int, intervals: Sequence[FaultInterval], *,
                    receive_ns: int | None = None) -> None:
        """Write the fault truth at ``stamp_ns``: one status per modality (see
        :func:`lipfault_ros.truth.truth_status_fields`)."""
        ty = self._types
        kv, status = ty['diagnostic_msgs/msg/KeyValue'], ty['diagnostic_msgs/msg/DiagnosticStatus']
        statuses = [status(level=int(f['level']), name=f['name'], message=f['message'],
                           hardware_id=_HARDWARE_ID,
                           values=[kv(key=k, value=v) for k, v in f['values'].items()])
                    for f in truth_status_fields(intervals, stamp_ns)]
        msg = ty['diagnostic_msgs/msg/DiagnosticArray'](header=self._header(stamp_ns, ''),
                                                         status=statuses)
        self._write(self.topics.truth, TRUTH_TYPE, msg,
                    stamp_ns if receive_ns is None else receive_ns)
