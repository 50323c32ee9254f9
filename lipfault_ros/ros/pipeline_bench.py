"""The ROS side of :func:`lipfault_ros.bench.pipeline_latency.run_pipeline_bench`.

A separate process publishes the synthetic sensor stream; this process runs the pipeline node
on the executor ``pipeline_node`` uses, and measures it. Both inherit the
environment, so ``ROS_DOMAIN_ID`` and ``ROS_AUTOMATIC_DISCOVERY_RANGE`` apply to both.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from pathlib import Path
from typing import Any

__all__ = ['publish_stream', 'run']


def publish_stream(seconds: float, image_size: int, ready: Any) -> None:
    """The synthetic sensor stream for ``seconds`` once ``ready`` is set (a process of its own:
    the benchmark and scripts/hot_path.py run the pipeline beside it)."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    from lipfault_ros.ros.synthetic_sensors import SyntheticSensors

    context = Context()
    rclpy.init(context=context)
    node = SyntheticSensors(context=context, image_size=image_size, node_name='bench_sensors')
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    ready.wait(60.0)
    node.start()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
    finally:
        node.stop()
        node.destroy_node()
        context.try_shutdown()


def run(model: Path, duration_s: float, *, device: str = 'auto', image_size: int = 128,
        half: bool = False, warmup_s: float = 2.0, num_threads: int = 0,
        inference_thread: bool = False) -> dict[str, Any]:
    """See :func:`lipfault_ros.bench.pipeline_latency.run_pipeline_bench`."""
    import rclpy
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from lipfault_ros.errors import LipfaultError
    from lipfault_ros.nodes.pipeline import PipelineNode, pipeline_executor
    from lipfault_ros.nodes.pipeline_diagnostics import Counters

    context = Context()
    rclpy.init(context=context)
    node = None
    mp = multiprocessing.get_context('spawn')
    ready = mp.Event()
    publisher = mp.Process(target=publish_stream, args=(warmup_s + duration_s + 1.0, image_size,
                                                  ready), daemon=True)
    publisher.start()
    try:
        node = PipelineNode(context=context, parameter_overrides=[
            Parameter('model', value=str(model)), Parameter('device', value=device),
            Parameter('half', value=bool(half)), Parameter('num_threads', value=num_threads),
            Parameter('inference_thread', value=bool(inference_thread))])
        if node.lifecycle_state != 'active':
            raise LipfaultError(f'the pipeline did not start: {node.last_error}')
        executor = pipeline_executor(context)
        executor.add_node(node)
        ready.set()

        def spin(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)

        spin(warmup_s)
        with node.lock:
            node.counters = Counters()
        frames0 = node.assembler.stats.received
        start = time.monotonic()
        spin(duration_s)
        elapsed = time.monotonic() - start
        stats = node.stats()
        frames = node.assembler.stats.received
        executor.shutdown()
    finally:
        if node is not None:
            node.destroy_node()
        context.try_shutdown()
        publisher.join(timeout=10.0)
        if publisher.is_alive():
            publisher.terminate()
    from lipfault_ros.tuples import Modality
    return {
        'duration_s': elapsed,
        'camera_frames': frames[Modality.CAMERA] - frames0[Modality.CAMERA],
        'wrench_msgs': frames[Modality.WRENCH] - frames0[Modality.WRENCH],
        'joints_msgs': frames[Modality.JOINTS] - frames0[Modality.JOINTS],
        'tuples_out': stats['tuples_out'],
        'tuples_per_s': stats['tuples_out'] / elapsed if elapsed else 0.0,
        'dropped': stats['dropped'],
        'latency_p50_ms': stats['latency_p50_ms'],
        'latency_p99_ms': stats['latency_p99_ms'],
        'latency_max_ms': stats['latency_max_ms'],
        'model_fraction': stats['model_fraction'],
        'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
