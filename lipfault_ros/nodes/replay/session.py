"""One live replay from start to report: the replay node (and, when asked, the pipeline) on one
executor, the play, the drain of the last answers, and the scoring.

The scoring is the offline evaluation's own code (:func:`lipfault_ros.evaluation.live.score_live`),
so a live report and an offline one on the same bag differ only by what the transport did.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any, Callable

from rclpy.executors import ExternalShutdownException

from lipfault_ros.errors import ConfigError, LipfaultError
from lipfault_ros.evaluation.live import score_live
from lipfault_ros.nodes.replay.replay_params import ReplayParams
from lipfault_ros.nodes.replay.player import ReplayNode
from lipfault_ros.tuples import Modality

__all__ = ['replay']


def replay(settings: ReplayParams, *, context: Any = None, plots: bool = True,
           timeout_s: float | None = None, check: Callable[[], None] | None = None
           ) -> dict[str, Any]:
    """Play ``settings.bag`` into the pipeline (started here when ``start_pipeline``), record its
    answers and score them; returns the report (written to ``settings.out`` when set).

    ``context`` is an initialised rclpy Context (None: the default one, which must be
    initialised). ``timeout_s`` bounds the whole play (None: the bag's length / rate + margin).
    ``check`` runs at every poll of the wait, the play and the drain, in this (the main)
    thread; what it raises (:class:`~lipfault_ros.ros.shutdown.StopRequested` on a Ctrl-C)
    ends the replay with its nodes and spin thread cleaned up and no report.
    """
    from rclpy.parameter import Parameter

    if settings.loops == 0 and timeout_s is None:
        raise ConfigError('loops=0 plays forever; scoring needs a finite replay (give loops or '
                          'a timeout)')
    if not settings.model:
        raise ConfigError('model is empty: scoring needs the artifact (the pipeline\'s model)')
    if settings.out and Path(settings.out).exists() and not settings.overwrite:
        raise FileExistsError(f'output folder {settings.out} exists; pass --overwrite')
    overrides = [Parameter(f.name, value=getattr(settings, f.name))
                 for f in dataclasses.fields(ReplayParams)]
    node = ReplayNode(parameter_overrides=overrides, context=context)
    nodes: list[Any] = [node]
    from lipfault_ros.nodes.pipeline import pipeline_executor
    try:
        if settings.start_pipeline:
            nodes.append(_pipeline_node(settings, node, context))
        executor = pipeline_executor(context)
        for n in nodes:
            executor.add_node(n)
        stop_spin = threading.Event()
        spinner = threading.Thread(target=_spin, args=(executor, stop_spin), daemon=True)
        spinner.start()
        try:
            _play(node, settings, timeout_s, check if check is not None else (lambda: None))
        finally:
            node.stop()  # the play thread (when a check ended the play) publishes no more
            # the spin thread ends first: rclpy's shutdown destroys the executor's guard
            # conditions, and a wait still running on them in another thread crashed the
            # process (a segmentation fault on Ctrl-C, 2 of 3 runs of the Ctrl-C test)
            stop_spin.set()
            executor.wake()
            spinner.join(timeout=10.0)
            if not spinner.is_alive():
                executor.shutdown(timeout_sec=5.0)
        pipeline = nodes[1] if len(nodes) > 1 else None  # its settings, when it runs here
        return score_live(node, model=settings.model,
                          clean_bag=settings.clean_bag or None, out_dir=settings.out or None,
                          overwrite=settings.overwrite, plots=plots,
                          alarm=getattr(getattr(pipeline, 'alarms', None), 'config', None),
                          threshold_offsets=getattr(getattr(pipeline, 'p', None),
                                                    'threshold_offsets', None),
                          scene=getattr(getattr(getattr(pipeline, 'decisions', None), 'scene',
                                                None), 'config', None))
    finally:
        for n in nodes:
            n.destroy_node()


def _play(node: Any, settings: ReplayParams, timeout_s: float | None,
          poll: Callable[[], None]) -> None:
    """Wait for the pipeline, play the bag (until done or the time limit) and drain: until the
    answers stop coming for 0.5 s or ``settings.drain`` is up. ``poll`` runs at every step."""
    node.wait_for_pipeline(settings.wait_for_pipeline, poll)
    node.start()
    span = node.bag_duration_s - settings.start_offset if settings.duration <= 0 else \
        settings.duration
    limit = timeout_s if timeout_s is not None else \
        max(1, settings.loops) * span / settings.rate + 30.0
    deadline = time.monotonic() + limit
    while not node.done() and time.monotonic() < deadline:
        poll()
        time.sleep(0.05)
    node.stop()
    if node.error is not None:
        raise node.error
    end = time.monotonic() + settings.drain
    seen, changed = -1, time.monotonic()
    while time.monotonic() < end:
        poll()
        n = node.answers()
        if n != seen:
            seen, changed = n, time.monotonic()
        elif time.monotonic() - changed > 0.5:
            break
        time.sleep(0.05)


def _spin(executor: Any, stop: threading.Event) -> None:
    """Spin until ``stop`` is set or the context closes (SIGTERM closes it; a wait under the
    closing context then raises, which is that ending, not a failure)."""
    try:
        while not stop.is_set() and executor.context.ok():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if executor.context.ok():
            raise


def _pipeline_node(settings: ReplayParams, replay_node: ReplayNode, context: Any) -> Any:
    """The pipeline node in this process, on the played topics, with the bag's rates."""
    from rclpy.parameter import Parameter

    from lipfault_ros.bags.reader import BagReader
    from lipfault_ros.nodes.pipeline import PipelineNode

    remap = settings.remaps()
    topics = replay_node.sensor_topics
    with BagReader(replay_node.bag, topics=topics) as reader:
        info = reader.check()
    span = max(info.duration_ns / 1e9, 1e-3)
    # a deep input history: on a loaded machine a shallow one loses wrench samples, and the
    # windows (so the scores) then differ from offline for reasons of this machine, not the model
    overrides = [Parameter('model', value=str(settings.model)),
                 Parameter('device', value='cpu'),
                 Parameter('input_depth', value=1000),
                 Parameter('output_qos', value='reliable')]
    for m, key in ((Modality.CAMERA, 'camera'), (Modality.WRENCH, 'wrench'),
                   (Modality.JOINTS, 'joints')):
        overrides.append(Parameter(f'{key}_topic', value=remap.get(topics.of(m), topics.of(m))))
        n = info.counts.get(topics.of(m), 0)
        if n > 1:
            overrides.append(Parameter(f'{key}_rate', value=float(n - 1) / span))
    node = PipelineNode(parameter_overrides=overrides, context=context)
    if node.lifecycle_state != 'active':
        error = node.last_error or 'the pipeline did not activate'
        node.destroy_node()
        raise LipfaultError(f'pipeline with artifact {settings.model}: {error}')
    return node
