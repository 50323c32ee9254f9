"""The pipeline's black box over real DDS: a raised fault leaves a bag of what the node saw and
sent around it, which the bag reader reads and the replay plays."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from rclpy.parameter import Parameter

from lipfault_ros.bags.reader import BagReader
from lipfault_ros.training.tiny import train_synthetic_model
from lipfault_ros.nodes.replay import ReplayNode
from lipfault_ros.tuples import ImageSample, JointSample, WrenchSample

from test_pipeline_node import NS, Harness, values


@pytest.fixture(scope='session')
def tiny_artifact(tmp_path_factory) -> Path:
    """The tiny synthetic model, shared with the other node tests through the base temp dir."""
    torch.set_num_threads(1)
    return train_synthetic_model(tmp_path_factory.getbasetemp() / 'tiny_pipeline_model')


def test_a_raised_fault_leaves_a_bag_from_before_its_onset_that_replay_plays(
        ros_context, tiny_artifact, tmp_path):
    folder = tmp_path / 'bb'
    h = Harness(ros_context, tiny_artifact, blackbox_dir=str(folder), blackbox_before_s=1.0,
                blackbox_after_s=0.5)
    try:
        h.sensors.start()
        assert h.spin_until(lambda: len(h.got['status']) >= 45, 20.0)  # > 1 s of history
        # a loaded machine may raise an alarm while the streams start: count from here
        earlier = set(folder.glob('wrench_*'))
        written = int(values(h.diag('blackbox'))['bags_written'])
        h.sensors.mode['wrench'] = 'nan'
        assert h.spin_until(lambda: set(folder.glob('wrench_*')) - earlier, 20.0)
        assert h.spin_until(
            lambda: int(values(h.diag('blackbox'))['bags_written']) >= written + 1, 5.0)
        diag = values(h.diag('blackbox'))
        assert diag['error'] == '' and diag['directory'] == str(folder)
    finally:
        h.close()
    bag = sorted(set(folder.glob('wrench_*')) - earlier)[0]
    onset = int(bag.name.split('_')[1])
    with BagReader(bag) as reader:
        info = reader.check()
        samples = list(reader.samples())
    # inputs and outputs are both in it
    assert {'/camera/image_raw', '/wrench', '/joint_states', f'{NS}/fault_status',
            f'{NS}/wrench_corrected', f'{NS}/camera/image_corrected',
            f'{NS}/joint_states_corrected'} <= set(info.counts)
    # with the stream from before the onset: at least half a second of every sensor
    for kind in (ImageSample, WrenchSample, JointSample):
        before = [s.stamp_ns for s in samples if isinstance(s, kind) and s.stamp_ns < onset]
        assert before and onset - min(before) >= 500_000_000, kind
    # the replay takes it: it finds the sensor topics and plays every message of them
    node = ReplayNode(context=ros_context, parameter_overrides=[
        Parameter('bag', value=str(bag)), Parameter('rate', value=4.0)])
    try:
        node.start()
        deadline = time.monotonic() + 30.0
        while not node.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert node.done() and node.error is None
        for topic in ('/camera/image_raw', '/wrench', '/joint_states'):
            assert node.played.published[topic] == info.counts[topic]
    finally:
        node.destroy_node()
