"""The black box's folder on disk: writing one mcap bag, and the bound on what the folder holds.

Bags are written into ``<directory>/.writing/<name>`` and renamed to ``<directory>/<name>`` once
closed, so a bag in the folder is always complete (a crash leaves only the staging folder, which
the next :meth:`BagStore.open` empties). The disk bound counts and deletes only directories
named like a black-box bag (:data:`~lipfault_ros.blackbox.config.BAG_NAME`); anything else in
the folder is left alone.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

from lipfault_ros.blackbox.config import BAG_NAME, Record
from lipfault_ros.errors import BlackBoxError

__all__ = ['BagStore']

_log = logging.getLogger(__name__)
_STAGING = '.writing'


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob('*') if f.is_file())


class BagStore:
    """The bags of one black-box folder, oldest first; not thread-safe (the writer thread owns
    it). Acquire with :meth:`open`: it creates the folder and raises OSError or BlackBoxError
    when it cannot be written."""

    def __init__(self, directory: Path, *, max_bytes: int, max_bags: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.max_bags = int(max_bags)
        self.deleted = 0
        self._ts: Any = None

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.directory.is_dir():
            raise BlackBoxError(f'black box directory {self.directory} is not a directory')
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise PermissionError(f'black box directory {self.directory} is not writable')
        staging = self.directory / _STAGING
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)  # bags a crash left half-written

    def bags(self) -> list[Path]:
        """The black-box bags in the folder, oldest (by modification time) first."""
        try:
            entries = [p for p in self.directory.iterdir()
                       if BAG_NAME.match(p.name) and p.is_dir()]
        except OSError:
            return []
        return sorted(entries, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def usage(self) -> tuple[int, int]:
        """(bags, bytes) in the folder."""
        bags = self.bags()
        return len(bags), sum(_size(p) for p in bags)

    def prune(self, reserve_bytes: int = 0, *, reserve_bags: int = 0,
              keep: Sequence[Path] = ()) -> list[Path]:
        """Delete the oldest bags until ``reserve_bags`` more bags of ``reserve_bytes`` more
        bytes fit the bounds; bags in ``keep`` are never deleted. Returns those deleted."""
        bags = [(p, _size(p)) for p in self.bags()]
        total = sum(s for _, s in bags)
        deleted = []
        for path, size in bags:
            if (len(bags) - len(deleted) + reserve_bags <= self.max_bags
                    and total + reserve_bytes <= self.max_bytes):
                break
            if path in keep:
                continue
            shutil.rmtree(path, ignore_errors=True)
            total -= size
            deleted.append(path)
            _log.info('black box: deleted %s (disk bound)', path)
        self.deleted += len(deleted)
        return deleted

    def unique(self, name: str) -> Path:
        """``<directory>/<name>``, or ``<name>_<n>`` with the first n free (never overwrite)."""
        path = self.directory / name
        n = 1
        while path.exists() or (self.directory / _STAGING / path.name).exists():
            n += 1
            path = self.directory / f'{name}_{n}'
        return path

    def write(self, name: str, records: Sequence[Record]) -> Path:
        """Write ``records`` (in order; bag time = receive time) as the mcap bag ``name``, after
        making room for it; returns its path. A bag that alone exceeds the disk bound is refused
        (BlackBoxError); disk and permission failures stay OSError (the partial bag is
        removed)."""
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        estimate = sum(len(r.data) for r in records) + 4096 * (1 + len(records) // 1000)
        if estimate > self.max_bytes:
            raise BlackBoxError(f'black box bag {name} needs ~{estimate / 2**20:.1f} MB, over '
                                f'the disk bound of {self.max_bytes / 2**20:.1f} MB: raise '
                                f'blackbox_max_disk_mb or shorten the windows')
        self.prune(estimate, reserve_bags=1)
        final = self.unique(name)
        staging = self.directory / _STAGING / final.name
        staging.parent.mkdir(exist_ok=True)
        try:
            writer = Writer(staging, version=9, storage_plugin=StoragePlugin.MCAP)
            writer.open()
            try:
                conns: dict[tuple[str, str], Any] = {}
                for r in records:
                    conn = conns.get((r.topic, r.msgtype))
                    if conn is None:
                        conn = conns[r.topic, r.msgtype] = writer.add_connection(
                            r.topic, r.msgtype, typestore=self._typestore())
                    writer.write(conn, r.receive_ns, r.data)
            finally:
                writer.close()
            staging.rename(final)
        except (WriterError, KeyError) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise BlackBoxError(f'black box bag {final} cannot be written: {exc}') from None
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.prune(keep=[final])  # the index and metadata may have pushed it over
        return final

    def _typestore(self) -> Any:
        """The message definitions written into each mcap (loaded once, on first use)."""
        if self._ts is None:
            from rosbags.typesys import Stores, get_typestore

            self._ts = get_typestore(getattr(Stores, 'ROS2_KILTED', None) or Stores.LATEST)
        return self._ts
