"""A worker thread that always handles the newest item and drops the ones it never reached.

The live node must never fall behind its sensors: when the model is slower than the tuples
arrive for a moment, the stale tuple is worth nothing and the newest one is what the robot
needs. :class:`LatestWorker` holds one slot; :meth:`LatestWorker.offer` replaces whatever waits
there (and counts it as dropped), and the thread takes the slot whenever it is free. The thread
is where inference runs, so the executor that feeds it keeps receiving messages meanwhile
(torch releases the GIL inside its kernels, so the two overlap on a multi-core CPU).

ROS-free on purpose: the node owns one, tests drive one directly.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Generic, TypeVar

__all__ = ['LatestWorker']

log = logging.getLogger(__name__)

T = TypeVar('T')


class LatestWorker(Generic[T]):
    """Runs ``handle(item)`` on a thread of its own, newest item first, one at a time.

    ``handle`` must not raise for an expected bad input (turn it into a diagnostic); anything it
    raises is logged with its traceback and the worker carries on with the next item, so one bad
    tuple cannot stop the node's output for good.
    """

    def __init__(self, handle: Callable[[T], None], *, name: str = 'lipfault-worker') -> None:
        self._handle = handle
        self._name = name
        self._cond = threading.Condition()
        self._slot: T | None = None
        self._busy = False
        self._stop = False
        self._thread: threading.Thread | None = None
        #: items replaced in the slot before the thread took them
        self.dropped = 0
        #: items handed to ``handle``
        self.handled = 0
        #: exceptions ``handle`` raised (logged)
        self.failed = 0

    def start(self) -> None:
        """Start the thread (a no-op while it runs)."""
        with self._cond:
            if self._thread is not None:
                return
            self._stop = False
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def offer(self, item: T) -> bool:
        """Put ``item`` in the slot; returns False when it replaced one still waiting (that one
        is dropped and counted)."""
        with self._cond:
            replaced = self._slot is not None
            if replaced:
                self.dropped += 1
            self._slot = item
            self._cond.notify()
        return not replaced

    def clear(self) -> None:
        """Forget the item waiting in the slot, if any (not counted as dropped)."""
        with self._cond:
            self._slot = None

    def idle(self, timeout: float | None = None) -> bool:
        """Wait until the slot is empty and ``handle`` is not running; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._slot is None and not self._busy, timeout)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread after the item in hand (the slot is dropped); False if it did not
        end within ``timeout`` s (``handle`` is stuck)."""
        with self._cond:
            thread = self._thread
            self._stop = True
            self._slot = None
            self._cond.notify_all()
        if thread is None:
            return True
        if thread is not threading.current_thread():
            thread.join(timeout)
        alive = thread.is_alive() and thread is not threading.current_thread()
        with self._cond:
            if not alive:
                self._thread = None
        return not alive

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stop or self._slot is not None)
                if self._stop:
                    self._cond.notify_all()
                    return
                item, self._slot = self._slot, None
                self._busy = True
            try:
                self._handle(item)
                self.handled += 1
            except Exception:  # noqa: BLE001 - logged; the next item must still be handled
                self.failed += 1
                log.exception('%s: handling an item failed', self._name)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
