"""Clean start and stop of a node process: Ctrl-C ends it with exit code 0 and no traceback.

A Ctrl-C under ``ros2 launch`` arrives twice (from the terminal and again from launch). Raised
as ``KeyboardInterrupt`` it can land inside rclpy's C++ code (and come out as a RuntimeError) or
in the middle of the clean-up. So SIGINT only asks the spin loop to stop and later ones are
ignored; rclpy keeps SIGTERM, and the context stays valid until the executor has stopped and
the node is destroyed.
"""

from __future__ import annotations

import signal
import sys
from typing import Any, Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.signals import SignalHandlerOptions

__all__ = ['GracefulStop', 'StopRequested', 'WAKE_S', 'run_node']

#: the longest a spin waits before it looks at a Ctrl-C again (s)
WAKE_S = 0.2


class StopRequested(Exception):
    """Raised by a long job that polls :attr:`GracefulStop.requested` (a replay waiting, playing
    or draining) once a Ctrl-C asked it to end: it leaves at a point of its own choosing, its
    clean-up runs, and the caller tells an interrupted job from a finished one."""


class GracefulStop:
    """``init`` instead of ``rclpy.init``, ``spin`` or ``spinning`` for the loop, ``close`` in
    the ``finally``. ``context``: a context of the process's own (None: rclpy's default)."""

    def __init__(self, context: Any = None) -> None:
        self.requested = False
        self.context = context
        self._executor: Any = None

    def init(self, args: list[str] | None = None) -> None:
        signal.signal(signal.SIGINT, self._on_sigint)
        rclpy.init(args=args, context=self.context,
                   signal_handler_options=SignalHandlerOptions.SIGTERM)

    def ok(self) -> bool:
        """Whether the context is still up (SIGTERM or a shutdown closes it)."""
        return rclpy.ok(context=self.context)

    def check(self) -> None:
        """StopRequested once a Ctrl-C came: for a job's own polling loop."""
        if self.requested:
            raise StopRequested('stop requested')

    def _on_sigint(self, signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.requested = True
        if self._executor is not None:
            self._executor.wake()  # return from the wait now

    def spinning(self, executor: Any = None) -> bool:
        """Whether the loop should go on (and, given, the executor to wake on Ctrl-C)."""
        if executor is not None:
            self._executor = executor
        return self.ok() and not self.requested

    def spin(self, executor: Any, timeout_sec: float = WAKE_S) -> None:
        """Spin until Ctrl-C or shutdown. Each wait is bounded: Python runs a signal handler
        only once the main thread is back from C, and rclpy's wait does not return for a
        signal it does not handle itself, so an unbounded wait on a quiet node (no timer, no
        traffic: a view started with nothing to show) would sit on a Ctrl-C for good; it did
        in 3 of 30 starts of ``lipfault view`` stopped right away."""
        while self.spinning(executor):
            executor.spin_once(timeout_sec=timeout_sec)

    def context_closed(self) -> bool:
        """True when SIGTERM shut the context down under a running wait (rclpy then raises an
        RCLError from the wait, which is the normal end, not a failure)."""
        return not self.ok()

    def close(self, executor: Any, *nodes: Any) -> None:
        """Stop the executor (its queued callbacks first), destroy the nodes (None: never
        made), shut rclpy down.

        From here on the process is ending, and a further SIGINT or SIGTERM (an operator's
        second Ctrl-C, launch's SIGTERM after its SIGINT) is ignored: Python resets a Python
        SIGINT handler to the default while it finalises and rclpy's shutdown gives SIGTERM
        back its default, so a late signal would otherwise kill the process (exit -2 or -15)
        after a clean stop. A clean-up that hangs is still ended by SIGKILL."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if executor is not None:
            # rclpy's MultiThreadedExecutor.shutdown destroys its guard condition before it
            # joins its worker threads, and a callback still queued then fails on it ("cannot
            # use Destroyable"): let the queued callbacks finish first
            pool = getattr(executor, '_executor', None)
            if pool is not None:
                pool.shutdown(wait=True)
            executor.shutdown()  # no callback may still publish once the context is gone
        for node in nodes:
            if node is not None:
                node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # after rclpy has given it back


def run_node(make_node: Callable[[], Any], make_executor: Callable[[], Any],
             args: list[str] | None = None, *, name: str,
             refused: tuple[type[BaseException], ...] = (),
             step: Callable[[Any], int | None] | None = None) -> int:
    """A node process's ``main``: spin ``make_node()`` on ``make_executor()`` until Ctrl-C or
    SIGTERM (exit code 0, no traceback). One of ``refused`` raised while the node starts or
    runs (a parameter it cannot take) is printed as ``name: error: ...`` with exit code 2.
    ``step(node)``, when given, runs after every spin of at most 0.2 s; a number it returns
    ends the process with that code (a node that finishes its job)."""
    stop = GracefulStop()
    stop.init(args)
    node = executor = None
    code = 0
    try:
        node = make_node()
        executor = make_executor()
        executor.add_node(node)
        if step is None:
            stop.spin(executor)
        while step is not None and stop.spinning(executor):
            executor.spin_once(timeout_sec=WAKE_S)
            done = step(node)
            if done is not None:
                code = done
                break
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except refused as exc:
        print(f'{name}: error: {exc}', file=sys.stderr)
        code = 2
    except Exception:
        if not stop.context_closed():
            raise
    finally:
        stop.close(executor, node)
    return code
