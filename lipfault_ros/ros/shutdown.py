"""Clean start and stop of a node process: Ctrl-C ends it with exit code 0 and no traceback.

A Ctrl-C under ``ros2 launch`` arrives twice (from the terminal and again from launch). Raised
as ``KeyboardInterrupt`` it can land inside rclpy's C++ code (and come out as a RuntimeError) or
in the middle of the clean-up. So SIGINT only asks the spin loop to stop and later ones are
ignored; rclpy keeps SIGTERM, and the context stays valid until the executor has stopped and
the node is destroyed.
"""

from __future__ import annotations

import signal
from typing import Any

import rclpy
from rclpy.signals import SignalHandlerOptions

__all__ = ['GracefulStop']


class GracefulStop:
    """``init`` instead of ``rclpy.init``, ``spin`` or ``spinning`` for the loop, ``close`` in
    the ``finally``."""

    def __init__(self) -> None:
        self.requested = False
        self._executor: Any = None

    def init(self, args: list[str] | None = None) -> None:
        signal.signal(signal.SIGINT, self._on_sigint)
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.SIGTERM)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.requested = True
        if self._executor is not None:
            self._executor.wake()  # return from the wait now

    def spinning(self, executor: Any = None) -> bool:
        """Whether the loop should go on (and, given, the executor to wake on Ctrl-C)."""
        if executor is not None:
            self._executor = executor
        return rclpy.ok() and not self.requested

    def spin(self, executor: Any, timeout_sec: float | None = None) -> None:
        while self.spinning(executor):
            executor.spin_once(timeout_sec=timeout_sec)

    @staticmethod
    def context_closed() -> bool:
        """True when SIGTERM shut the context down under a running wait (rclpy then raises an
        RCLError from the wait, which is the normal end, not a failure)."""
        return not rclpy.ok()

    def close(self, executor: Any, node: Any) -> None:
        """Stop the executor (its queued callbacks first), destroy the node, shut rclpy down."""
        if executor is not None:
            # rclpy's MultiThreadedExecutor.shutdown destroys its guard condition before it
            # joins its worker threads, and a callback still queued then fails on it ("cannot
            # use Destroyable"): let the queued callbacks finish first
            pool = getattr(executor, '_executor', None)
            if pool is not None:
                pool.shutdown(wait=True)
            executor.shutdown()  # no callback may still publish once the context is gone
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
