"""Which package files one camera frame passes through, from its subscription to publication.

Runs the pipeline node in this process against the synthetic sensor stream of the latency
benchmark (a separate process), with a profiler that records, for every call into
``lipfault_ros``, whether it ran beneath the camera subscription's callback (decode, black box,
synchroniser, hand-over) or beneath the inference of a tuple (model, fault decision, outputs,
publication). Prints the files of each part and of both, with call counts; start-up, timers and
the other modalities' callbacks are not counted.

    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=42 python scripts/hot_path.py [SECONDS]
"""

from __future__ import annotations

import collections
import multiprocessing
import sys
import tempfile
import threading
import time
from pathlib import Path

import lipfault_ros
from lipfault_ros.tuples import Modality

PKG = str(Path(lipfault_ros.__file__).resolve().parent)
NODE_FILE = str(Path(PKG) / 'nodes' / 'pipeline.py')
counts: dict[str, collections.Counter] = {'camera input': collections.Counter(),
                                          'tuple to output': collections.Counter()}


def _part(frame) -> str | None:
    """The hot-path part a call belongs to (None: neither)."""
    while frame is not None:
        code = frame.f_code
        if code.co_filename == NODE_FILE:
            if code.co_name == '_infer_one':
                return 'tuple to output'
            if code.co_name == '_on_input' and frame.f_locals.get('modality') == Modality.CAMERA:
                return 'camera input'
        frame = frame.f_back
    return None


def _profile(frame, event, arg):
    if event == 'call' and frame.f_code.co_filename.startswith(PKG):
        part = _part(frame)
        if part is not None:
            counts[part][frame.f_code.co_filename] += 1


def main(seconds: float = 5.0) -> int:
    import rclpy
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from lipfault_ros.artifact import save_artifact
    from lipfault_ros.model.config import ModelConfig
    from lipfault_ros.model.network import LipfaultNet
    from lipfault_ros.nodes.pipeline import PipelineNode, pipeline_executor
    from lipfault_ros.normalise import NormStats
    from lipfault_ros.ros.pipeline_bench import publish_stream

    cfg = ModelConfig.tiny()
    model = Path(tempfile.mkdtemp()) / 'model'
    save_artifact(model, LipfaultNet(cfg), stats=NormStats.identity(len(cfg.joint_names)))
    context = Context()
    rclpy.init(context=context)
    ready = multiprocessing.get_context('spawn').Event()
    publisher = multiprocessing.get_context('spawn').Process(
        target=publish_stream, args=(seconds + 4.0, 64, ready), daemon=True)
    publisher.start()
    node = PipelineNode(context=context, parameter_overrides=[
        Parameter('model', value=str(model)), Parameter('device', value='cpu')])
    executor = pipeline_executor(context)
    executor.add_node(node)
    ready.set()
    try:
        end = time.monotonic() + 2.0  # warm-up, not traced
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        threading.setprofile(_profile)
        sys.setprofile(_profile)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        sys.setprofile(None)
        threading.setprofile(None)
        tuples = node.stats()
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
        publisher.join(timeout=10.0)
    both: collections.Counter = collections.Counter()
    for part, c in counts.items():
        both.update(c)
        print(f'{part}: {len(c)} files')
        for path, n in c.most_common():
            print(f'  {n:>8}  {Path(path).relative_to(PKG).as_posix()}')
    print(f'camera frame, subscription to publication: {len(both)} files of lipfault_ros '
          f'({tuples.get("tuples_out", "?")} tuples out in {seconds:g} s traced)')
    return 0


if __name__ == '__main__':
    sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0))
