"""Independent steps of a long benchmark run, spread over worker processes.

The quality run is a few dozen steps that do not depend on each other within a phase:
recording an episode, training a model, scoring a bag. Each is single-threaded for the most
part (the quick preset trains on one torch thread, a bag is scored tuple by tuple), so on a
2-core machine running them one after the other leaves a core idle for the whole run.
:class:`Steps` runs a phase's steps on ``jobs`` processes and says each one as it finishes.

Every step gets a fresh process (started with ``spawn``) whose torch starts on one thread, so
no step inherits the state another left behind. Float results depend, in their last bits, on
how the process started torch: in a small check (two 30 s training episodes) the same steps
run one after the other in the command's own process gave the stage-1 baseline an overall
AUROC 0.013 away from the workers' figure. With a fresh process per step and every step
drawing from its own seeds, one and two workers gave bit-identical weights and the same
figures. Starting a process costs a few seconds a step.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

from lipfault_ros.errors import ConfigError

__all__ = ['Step', 'Steps', 'default_jobs']


def default_jobs() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Step:
    """``fn(*args, **kwargs)``, known by ``key`` in the results and by ``label`` in progress
    lines. ``fn`` and its arguments must pickle (a module-level function, plain values)."""

    key: Hashable
    label: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def _one_thread() -> None:
    """Keep torch (and the BLAS under numpy) to one thread in this worker: through the
    environment when torch is not imported yet (it reads it on import, and a step that never
    needs torch does not pay for importing it), else directly."""
    if 'torch' in sys.modules:
        sys.modules['torch'].set_num_threads(1)
    else:
        os.environ.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1')


def _timed(fn: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[Any, float]:
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - t0


class Steps:
    """Runs phases of :class:`Step` on ``jobs`` processes (see the module docstring); a context
    manager that owns the worker pool. ``seconds`` holds each finished step's own duration."""

    def __init__(self, jobs: int, say: Callable[[str], None]) -> None:
        if jobs < 1:
            raise ConfigError(f'jobs must be >= 1, got {jobs}')
        self.jobs, self._say = jobs, say
        self._pool: Executor | None = None
        self.seconds: dict[Hashable, float] = {}

    def __enter__(self) -> Steps:
        # one step per process where Python can say so (3.11 on); 3.10 reuses the workers
        fresh = {'max_tasks_per_child': 1} if sys.version_info >= (3, 11) else {}
        self._pool = ProcessPoolExecutor(self.jobs, initializer=_one_thread,
                                         mp_context=multiprocessing.get_context('spawn'),
                                         **fresh)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            # an error or an interrupt leaves queued steps unstarted rather than waited for
            self._pool.shutdown(wait=exc[0] is None, cancel_futures=True)
            self._pool = None

    def run(self, phase: str, steps: Sequence[Step]) -> dict[Hashable, Any]:
        """Each step's result by its key. The first failing step's error is raised as it comes
        (leaving the context then cancels the steps still queued)."""
        if not steps:
            return {}
        if self._pool is None:
            raise RuntimeError('Steps.run outside its with-block')
        self._say(f'{phase}: {len(steps)} steps on {self.jobs} '
                  f'process{"es" if self.jobs > 1 else ""}')
        t0 = time.perf_counter()
        futures = {self._pool.submit(_timed, step.fn, step.args, step.kwargs): step
                   for step in steps}
        results = {}
        for k, future in enumerate(as_completed(futures), 1):
            step = futures[future]
            results[step.key], self.seconds[step.key] = future.result()
            self._say(f'{phase} ({k} of {len(steps)}, {time.perf_counter() - t0:.0f} s): '
                      f'{step.label} done')
        return results
