"""The bag reader: real rosbag2 files (mcap and sqlite3) written into tmp_path."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lipfault_ros.bags.reader import BagReader, check_bags, read_samples, read_truth
from lipfault_ros.errors import BagError, ConfigError
from lipfault_ros.topics import TopicConfig
from lipfault_ros.tuples import ImageSample, JointSample, Modality, WrenchSample

from synthetic import JOINTS, write_bag


@pytest.mark.parametrize('storage,distro', [('mcap', 'ROS2_KILTED'), ('sqlite3', 'ROS2_HUMBLE'),
                                            ('mcap', 'ROS2_JAZZY')])
def test_samples_come_out_decoded_in_header_stamp_order(tmp_path, storage, distro):
    bag = write_bag(tmp_path / 'bag', storage=storage, distro=distro, duration_s=2.0)
    with BagReader(bag) as reader:
        info = reader.check()
        samples = list(reader.samples())
    assert info.storage == storage
    stamps = [s.stamp_ns for s in samples]
    assert stamps == sorted(stamps)
    kinds = {type(s) for s in samples}
    assert kinds == {ImageSample, WrenchSample, JointSample}
    assert sum(isinstance(s, ImageSample) for s in samples) == 20
    image = next(s for s in samples if isinstance(s, ImageSample))
    assert image.image.shape == (24, 32, 3) and image.image.dtype == np.uint8
    joint = next(s for s in samples if isinstance(s, JointSample))
    assert joint.names == JOINTS
    assert reader.stats['dropped_late'] == 0


def test_bag_order_differs_from_stamp_order_and_the_reader_reorders(tmp_path):
    bag = write_bag(tmp_path / 'bag', duration_s=1.0)
    with BagReader(bag) as reader:
        raw = [(t, topic) for topic, t, _ in reader.raw_messages()]
        samples = list(reader.samples())
    # bag (receive) times are ordered; the camera's 30 ms delay puts its stamps out of order
    raw_topics = [topic for _, topic in raw]
    sample_topics = ['/camera/image_raw' if isinstance(s, ImageSample) else
                     '/wrench' if isinstance(s, WrenchSample) else '/joint_states'
                     for s in samples]
    assert raw_topics != sample_topics
    assert [s.stamp_ns for s in samples] == sorted(s.stamp_ns for s in samples)


def test_read_samples_chains_bags_and_names_each(tmp_path):
    a = write_bag(tmp_path / 'a', duration_s=1.0)
    b = write_bag(tmp_path / 'b', storage='sqlite3', duration_s=1.0, start_s=50.0)
    out = list(read_samples([a, b], progress=True))
    assert {name for name, _ in out} == {str(a), str(b)}
    names = [name for name, _ in out]
    assert names.index(str(b)) == names.count(str(a))  # all of a, then all of b


def test_read_truth_rebuilds_fault_intervals(tmp_path):
    bag = write_bag(tmp_path / 'bag', duration_s=3.0, truth=[('wrench', 'spike', 1.0, 2.0)])
    intervals = read_truth(bag)
    assert len(intervals) == 1
    iv = intervals[0]
    assert iv.modality is Modality.WRENCH and iv.kind == 'spike'
    assert iv.start_ns == int(101e9) and iv.end_ns == int(102e9)
    assert read_truth(write_bag(tmp_path / 'clean', duration_s=1.0)) == []


def test_topics_are_selected_by_name(tmp_path):
    bag = write_bag(tmp_path / 'bag', duration_s=1.0, wrench_topic='/ft_sensor/wrench')
    with pytest.raises(BagError, match=r'has no topic /wrench .*it has .*/ft_sensor/wrench'):
        check_bags(bag)
    topics = TopicConfig(wrench='ft_sensor/wrench')
    assert topics.wrench == '/ft_sensor/wrench'
    infos, names = check_bags(bag, topics=topics)
    assert names == JOINTS and infos[0].counts['/ft_sensor/wrench'] == 100


def test_missing_topic_is_refused_naming_bag_and_topic(tmp_path):
    bag = write_bag(tmp_path / 'nowrench', duration_s=1.0, skip=['wrench'])
    with pytest.raises(BagError, match=r'nowrench has no topic /wrench'):
        list(read_samples(bag))


def test_wrong_message_type_is_refused(tmp_path):
    bag = write_bag(tmp_path / 'bag', duration_s=1.0, wrench_type='geometry_msgs/msg/Wrench')
    with pytest.raises(BagError, match=r'topic /wrench has type geometry_msgs/msg/Wrench, '
                                       r'expected geometry_msgs/msg/WrenchStamped'):
        check_bags(bag)


def test_truncated_mcap_is_refused(tmp_path):
    bag = write_bag(tmp_path / 'bag', duration_s=1.0)
    (mcap,) = bag.glob('*.mcap')
    size = mcap.stat().st_size
    with mcap.open('r+b') as fh:
        fh.truncate(size // 2)
    with pytest.raises(BagError, match=r'bag .*bag cannot be read .*truncated or corrupt'):
        with BagReader(bag):
            pass


def test_corrupt_sqlite3_is_refused(tmp_path):
    bag = write_bag(tmp_path / 'bag', storage='sqlite3', duration_s=1.0)
    (db,) = bag.glob('*.db3')
    data = bytearray(db.read_bytes())
    data[:100] = os.urandom(100)
    db.write_bytes(bytes(data))
    with pytest.raises(BagError, match=r'truncated or corrupt'):
        with BagReader(bag) as reader:
            list(reader.samples())


def test_mcap_damaged_in_the_middle_is_refused(tmp_path):
    bag = write_bag(tmp_path / 'bag', duration_s=3.0)
    (mcap,) = bag.glob('*.mcap')
    data = mcap.read_bytes()
    mid = len(data) // 2
    mcap.write_bytes(data[:mid] + bytes(20000) + data[mid + 20000:])
    with pytest.raises(BagError, match=r'is damaged: its index lists 480 messages .* only '):
        list(read_samples(bag))


def test_joint_names_differing_between_bags_are_refused(tmp_path):
    a = write_bag(tmp_path / 'a', duration_s=0.5)
    b = write_bag(tmp_path / 'b', duration_s=0.5, joints=JOINTS[:6] + ('gripper',))
    with pytest.raises(BagError, match=r"extra here: \['gripper'\], missing here: "
                                       r"\['panda_joint7'\]"):
        check_bags([a, b])


def test_short_bag_is_refused(tmp_path):
    bag = write_bag(tmp_path / 'bag', duration_s=0.5)
    with pytest.raises(BagError, match=r'shorter than the 2.000 s'):
        check_bags(bag, min_duration_ns=2_000_000_000)


def test_paths_that_are_not_bags(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        BagReader(tmp_path / 'nothing')
    with pytest.raises(BagError, match='without metadata.yaml'):
        BagReader(tmp_path)
    with pytest.raises(BagError, match='no bag given'):
        check_bags([])


def test_topic_config_from_yaml(tmp_path):
    path = tmp_path / 'pipeline.yaml'
    path.write_text('lipfault_pipeline:\n  ros__parameters:\n    camera_topic: cam/image\n'
                    '    wrench_topic: /ft\n')
    topics = TopicConfig.from_yaml(path)
    assert topics == TopicConfig(camera='/cam/image', wrench='/ft')
    assert TopicConfig.from_yaml().joints == '/joint_states'
    with pytest.raises(ConfigError, match='must differ'):
        TopicConfig(camera='/x', wrench='/x')
    with pytest.raises(ConfigError, match=r"unknown topic keys \['imu'\]"):
        TopicConfig.from_mapping({'imu': '/imu'})
    with pytest.raises(FileNotFoundError):
        TopicConfig.from_yaml(tmp_path / 'missing.yaml')
