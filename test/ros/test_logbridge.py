"""Core log records reach the node's ROS logger (and so /rosout), once, not also on stderr."""

from __future__ import annotations

import logging
import warnings

import numpy as np

from lipfault_ros.inference import Engine
from lipfault_ros.synthetic import synthetic_arrays
from lipfault_ros.training.tiny import train_tiny_model
from lipfault_ros.ros.logbridge import RosLogBridge
from lipfault_ros.tuples import Modality, SensorTuple


class _Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, level):
        return lambda text: self.lines.append((level, text))


def test_core_warnings_go_to_the_ros_logger_while_attached_and_not_to_stderr(capsys):
    ros = _Recorder()
    bridge = RosLogBridge(ros).attach()
    try:
        logging.getLogger('lipfault_ros.sync').warning('joints silent for more than %.3f s', 0.3)
        logging.getLogger('lipfault_ros.sync').info('joints is back')
        logging.getLogger('lipfault_ros.sync').debug('not shown')
    finally:
        bridge.detach()
    assert ros.lines == [('warning', 'lipfault_ros.sync: joints silent for more than 0.300 s'),
                         ('info', 'lipfault_ros.sync: joints is back')]
    assert 'silent' not in capsys.readouterr().err
    logging.getLogger('lipfault_ros.sync').warning('after detach')
    assert len(ros.lines) == 2 and logging.getLogger('lipfault_ros').propagate


def test_a_reading_beyond_float32_is_a_forced_fault_without_a_numpy_warning():
    engine = Engine.from_artifact(train_tiny_model().artifact, device='cpu')
    a = synthetic_arrays(2, image_size=32)
    wrench = np.array(a.wrench[0], np.float64)
    wrench[-1, 0] = 1e308
    t = SensorTuple(int(a.stamps_ns[0]), a.images[0], wrench, a.joints[0], a.joint_names)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # any RuntimeWarning fails the test
        result = engine.infer(t)
    assert result.results[Modality.WRENCH].fault and result.results[Modality.WRENCH].score == np.inf
    assert np.isfinite(result.wrench).all()
