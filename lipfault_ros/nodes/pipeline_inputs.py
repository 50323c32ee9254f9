"""The pipeline's input side, out of the node class: decoding a message (bad input counted
and said once) and the model warm-up (the message_filters backend is in
:mod:`~lipfault_ros.nodes.pipeline_mf`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from geometry_msgs.msg import WrenchStamped
from sensor_msgs.msg import Image, JointState

from lipfault_ros.errors import LipfaultError
from lipfault_ros.ros import convert
from lipfault_ros.tuples import Modality, SensorTuple

__all__ = ['INPUT_TYPES', 'decode', 'warm_up']

#: the message class of each input
INPUT_TYPES = {Modality.CAMERA: Image, Modality.WRENCH: WrenchStamped,
               Modality.JOINTS: JointState}


def decode(node: Any, modality: Modality, msg: Any) -> Any:
    """The sample of ``msg``, or None when it is refused (counted in the node's counters)."""
    try:
        sample = convert.sample_from_msg(modality, msg)
    except LipfaultError as exc:
        with node.lock:
            node.counters.bad_input[modality] += 1
            node.counters.problems[modality] = str(exc)
        node.say_once(f'bad:{modality}:{type(exc).__name__}:{str(exc)[:40]}',
                       f'{modality} input on {node.p.topic(modality)} refused: {exc}')
        return None
    node.input_frames[modality] = sample.frame_id
    if modality is Modality.CAMERA:
        node.input_encoding = msg.encoding
        s = node.engine.image_size if node.engine is not None else None
        if s is not None and sample.image.shape[:2] != (s, s):
            node.say_once(f'size:{sample.image.shape[:2]}',
                           f'camera images are {sample.image.shape[1]}x'
                           f'{sample.image.shape[0]}, the model works at {s}x{s}: resizing '
                           f'(outputs keep the input size)')
    return sample


def warm_up(engine: Any, count: int) -> None:
    """``count`` inferences on a blank tuple, so the first real one is not the slow one."""
    s = engine.image_size
    names = engine.joint_names
    blank = SensorTuple(0, np.zeros((s, s, 3), np.uint8),
                        np.zeros((engine.wrench_window, 6), np.float32),
                        np.zeros((engine.joints_window, len(names), 3), np.float32), names)
    for _ in range(count):
        engine.infer(blank)
    engine.forget_history()  # the first real frame has no predecessor

