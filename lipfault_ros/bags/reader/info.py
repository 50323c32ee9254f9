"""What a bag holds, from its index and metadata alone (no message is read): :class:`BagInfo`,
the storage and the ROS distribution it was recorded on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

__all__ = ['DISTROS', 'BagInfo', 'distro_of', 'storage_of']


DISTROS = {'humble': 'ROS2_HUMBLE', 'jazzy': 'ROS2_JAZZY', 'kilted': 'ROS2_KILTED'}


@dataclass(frozen=True)
class BagInfo:
    """What a bag holds, from its index (no message is read).

    ``start_ns``/``end_ns`` are receive (bag) times of the first and last message; per-topic
    ``counts`` and ``types`` come from the bag's metadata.
    """

    path: Path
    storage: str
    ros_distro: str | None
    start_ns: int
    end_ns: int
    counts: Mapping[str, int] = field(default_factory=dict)
    types: Mapping[str, str] = field(default_factory=dict)

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)


def storage_of(path: Path) -> str:
    if path.is_file():
        return {'.mcap': 'mcap', '.db3': 'sqlite3'}.get(path.suffix, path.suffix.lstrip('.'))
    meta = path / 'metadata.yaml'
    if meta.is_file():
        for line in meta.read_text(errors='replace').splitlines():
            if line.strip().startswith('storage_identifier:'):
                return line.split(':', 1)[1].strip().strip('\'"')
    return 'unknown'


def distro_of(path: Path) -> str | None:
    meta = path / 'metadata.yaml' if path.is_dir() else None
    if meta is not None and meta.is_file():
        for line in meta.read_text(errors='replace').splitlines():
            if line.strip().startswith('ros_distro:'):
                value = line.split(':', 1)[1].strip().strip('\'"')
                return value or None
    return None
