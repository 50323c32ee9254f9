"""The black box: a ring buffer of recent messages and, when a fault is raised, a bag of them.

Every message the node receives or publishes goes through :meth:`BlackBox.record` (already
serialised). The ring keeps ``before_s`` seconds of them. :meth:`BlackBox.trigger` (a fault
alarm was raised) starts a capture whose window is ``[raise - before_s, raise + after_s]`` on
the receive clock; while a capture is open the ring keeps everything from its start, and once
the window has passed the capture's records are handed to a writer thread, which writes them as
one mcap bag, so the executor never waits for the disk.

Each raise gets a capture and a bag of its own, even while another capture is still recording
(a second modality failing, or the same one raised again after it cleared): every bag is then
centred on its own fault and named by it, whatever else happened around it. Overlapping
captures share the ring's records, so memory does not grow with their number; the disk bound
(``max_bags``, ``max_disk_mb``) limits what a flapping alarm can cost.

Bounds: the bytes held (ring plus bags waiting for the disk) stay under ``max_memory_mb``;
over it the ring drops its oldest records, and a capture that loses the start of its window is
counted as truncated. A bag that would not fit the memory bound while the writer is behind is
refused and counted as an error. Disk and permission failures become :attr:`BlackBox.status`
errors, never exceptions: a black box must not take the node down with it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lipfault_ros.alarm import AlarmState, AlarmStatus
from lipfault_ros.blackbox.config import BlackBoxConfig, BlackBoxStatus, Record, bag_name
from lipfault_ros.blackbox.ring import RingBuffer
from lipfault_ros.blackbox.store import BagStore
from lipfault_ros.errors import LipfaultError
from lipfault_ros.tuples import Modality

__all__ = ['BlackBox', 'RaiseDetector']

_log = logging.getLogger(__name__)


@dataclass
class _Capture:
    name: str
    start_ns: int       # receive clock
    end_ns: int


@dataclass(frozen=True)
class _Job:
    name: str
    records: list[Record]
    nbytes: int


class RaiseDetector:
    """Which alarms were newly raised by a tuple: a raise is a RAISED status with an onset and
    count not seen before (LATCHED -> RAISED is the same alarm, not a new fault)."""

    def __init__(self) -> None:
        self._seen: dict[Modality, tuple[int, int]] = {}

    def new_raises(self, alarms: dict[Modality, AlarmStatus]) -> list[tuple[Modality, int]]:
        """(modality, onset stamp ns) of each alarm raised since the last call."""
        out = []
        for m, s in alarms.items():
            key = (s.onset_ns, s.count)
            if s.state is AlarmState.RAISED and self._seen.get(m) != key:
                out.append((m, s.onset_ns))
            if s.state is AlarmState.RAISED:
                self._seen[m] = key
        return out


class BlackBox:
    """See the module docstring. Thread-safe: :meth:`record` and :meth:`trigger` may be called
    from any thread. ``clock`` gives the receive time (ns) when a caller gives none; tests pass
    their own. Use :meth:`open` / :meth:`close` or a context manager."""

    def __init__(self, config: BlackBoxConfig, *, clock: Callable[[], int] = time.time_ns,
                 poll_s: float = 0.1) -> None:
        self.config = config
        self.clock = clock
        self.poll_s = float(poll_s)
        self._ring = RingBuffer()
        self._captures: list[_Capture] = []
        self._lock = threading.Lock()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._queued_bytes = 0
        self._store = BagStore(config.directory, max_bytes=config.max_disk_bytes,
                               max_bags=config.max_bags)
        self._thread: threading.Thread | None = None
        self._written = 0
        self._last_bag = ''
        self._truncated = 0
        self._errors = 0
        self._error = ''
        self._disk_bytes = 0

    # -- lifecycle --
    def open(self) -> None:
        """Prepare the folder (a failure is an error state, not an exception) and start the
        writer thread."""
        try:
            self._store.open()
            self._disk_bytes = self._store.usage()[1]
        except (OSError, LipfaultError) as exc:
            self._fail(f'black box directory {self.config.directory} unusable: {exc}')
        self._thread = threading.Thread(target=self._run, name='lipfault-blackbox', daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> bool:
        """End every open capture now (its bag holds what was recorded so far), wait up to
        ``timeout_s`` for the writer, and stop it; False when it did not finish in time."""
        with self._lock:
            self._finish(lambda c: True)
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        self._jobs.put(None)
        thread.join(timeout_s)
        return not thread.is_alive()

    def __enter__(self) -> BlackBox:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- feeding --
    def record(self, topic: str, msgtype: str, data: bytes, receive_ns: int | None = None
               ) -> None:
        """Keep one serialised message (``receive_ns``: system clock, default now)."""
        rec = Record(topic, msgtype, self.clock() if receive_ns is None else int(receive_ns),
                     data)
        with self._lock:
            self._ring.append(rec)
            if self._captures and rec.receive_ns > self._captures[0].end_ns:
                self._finish(lambda c: rec.receive_ns > c.end_ns)
            self._trim(rec.receive_ns)

    def trigger(self, modality: Modality, onset_ns: int, now_ns: int | None = None) -> str:
        """A fault of ``modality`` was raised on the tuple stamped ``onset_ns``: capture from
        ``before_s`` before now to ``after_s`` after. Returns the bag name."""
        now = self.clock() if now_ns is None else int(now_ns)
        name = bag_name(modality, onset_ns)
        with self._lock:
            self._captures.append(_Capture(name, now - self.config.before_ns,
                                           now + self.config.after_ns))
            self._captures.sort(key=lambda c: c.end_ns)
        _log.info('black box: %s raised, capturing %s', modality.value, name)
        return name

    def poll(self, now_ns: int | None = None) -> None:
        """End the captures whose window has passed (the writer thread calls this every
        ``poll_s``, so a capture ends even when no message arrives)."""
        now = self.clock() if now_ns is None else int(now_ns)
        with self._lock:
            if self._captures and now > self._captures[0].end_ns:
                self._finish(lambda c: now > c.end_ns)
                self._trim(now)

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until no capture is open or waiting for the disk (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll()
            with self._lock:
                if not self._captures and self._queued_bytes == 0:
                    return True
            time.sleep(0.02)
        return False

    @property
    def status(self) -> BlackBoxStatus:
        with self._lock:
            return BlackBoxStatus(
                directory=str(self.config.directory), bags_written=self._written,
                last_bag=self._last_bag, bytes_held=self._ring.nbytes + self._queued_bytes,
                messages_held=len(self._ring), capturing=len(self._captures),
                pending=self._jobs.qsize(), truncated=self._truncated,
                deleted=self._store.deleted, disk_bytes=self._disk_bytes,
                errors=self._errors, error=self._error)

    # -- inside (the caller holds the lock) --
    def _trim(self, now_ns: int) -> None:
        keep_from = now_ns - self.config.before_ns
        if self._captures:
            keep_from = min(keep_from, min(c.start_ns for c in self._captures))
        self._ring.trim(keep_from, max(0, self.config.max_memory_bytes - self._queued_bytes))

    def _finish(self, done: Callable[[_Capture], bool]) -> None:
        finished = [c for c in self._captures if done(c)]
        self._captures = [c for c in self._captures if not done(c)]
        for c in finished:
            records = self._ring.between(c.start_ns, c.end_ns)
            nbytes = sum(len(r.data) for r in records)
            if self._ring.dropped_until_ns >= c.start_ns:
                self._truncated += 1
            if self._queued_bytes + nbytes > self.config.max_memory_bytes:
                self._fail(f'black box bag {c.name} refused: {nbytes / 2**20:.1f} MB would '
                           f'exceed blackbox_max_memory_mb while earlier bags are written')
                continue
            self._queued_bytes += nbytes
            self._jobs.put(_Job(c.name, records, nbytes))

    def _fail(self, text: str) -> None:
        self._errors += 1
        self._error = text
        _log.error(text)

    # -- the writer thread --
    def _run(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self.poll_s)
            except queue.Empty:
                self.poll()
                continue
            if job is None:
                return
            self._write(job)

    def _write(self, job: _Job) -> None:
        try:
            path: Path | None = self._store.write(job.name, job.records)
            disk = self._store.usage()[1]
        except (OSError, LipfaultError) as exc:
            path, disk = None, self._disk_bytes
            text = f'black box bag {job.name} not written: {exc}'
        with self._lock:
            self._queued_bytes -= job.nbytes
            self._disk_bytes = disk
            if path is None:
                self._fail(text)
            else:
                self._written += 1
                self._last_bag = str(path)
                self._error = ''
        if path is not None:
            _log.info('black box: wrote %s (%d messages)', path, len(job.records))
