"""`lipfault record`: 20 s of simulated data into mcap and sqlite3 bags, read back with rosbags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from lipfault_ros.bags.writer import SensorBagWriter
from lipfault_ros.cli import main as cli_main
from lipfault_ros.errors import BagError, ConfigError
from lipfault_ros.faults import FaultSpec
from lipfault_ros.sim import ARM_JOINTS, SimConfig
from lipfault_ros.sim.record import record
from lipfault_ros.truth import intervals_from_statuses
from lipfault_ros.tuples import Modality, WrenchSample

DURATION_S = 20.0
RATES = {'/camera/image_raw': 30.0, '/wrench': 500.0, '/joint_states': 250.0,
         '/lipfault_sim/fault_truth': 10.0}
FAULT = 'joints:bias:0.5:12:3'


@pytest.fixture(scope='module', params=['mcap', 'sqlite3'])
def bag(request, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp(request.param) / 'sim_bag'
    config = SimConfig(seed=5, faults=(FaultSpec.parse(FAULT),))
    stats = record(out, DURATION_S, config, storage=request.param, progress=False,
                   origin_ns=1_700_000_000 * 10**9)
    assert stats.speed > 0
    return out


def _read(bag: Path) -> dict[str, list]:
    topics: dict[str, list] = {}
    with AnyReader([bag], default_typestore=get_typestore(Stores.LATEST)) as reader:
        for conn, t_ns, raw in reader.messages():
            topics.setdefault(conn.topic, []).append((t_ns, reader.deserialize(raw, conn.msgtype)))
    return topics


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def test_recorded_bag_matches_the_configured_rates_and_types(bag):
    assert (bag / 'metadata.yaml').is_file()
    topics = _read(bag)
    assert set(topics) == set(RATES)
    for topic, rate in RATES.items():
        expected = rate * DURATION_S
        assert abs(len(topics[topic]) - expected) <= 0.05 * expected, topic
        stamps = np.array([_stamp(m) for _, m in topics[topic]])
        assert np.all(np.diff(stamps) > 0), f'{topic} stamps not increasing'

    image = topics['/camera/image_raw'][0][1]
    assert (image.height, image.width, image.encoding, image.step) == (128, 128, 'rgb8', 384)
    assert image.header.frame_id == 'sim_camera'
    frames = np.stack([m.data.reshape(128, 128, 3) for _, m in topics['/camera/image_raw'][::30]])
    assert frames.std(axis=0).mean() > 1.0, 'the camera should see motion'

    joints = topics['/joint_states'][0][1]
    assert tuple(joints.name[:7]) == ARM_JOINTS
    assert len(joints.position) == len(joints.velocity) == len(joints.effort) == len(joints.name)

    forces = np.array([[m.wrench.force.x, m.wrench.force.y, m.wrench.force.z]
                       for _, m in topics['/wrench']])
    magnitude = np.linalg.norm(forces, axis=1)
    assert topics['/wrench'][0][1].header.frame_id == 'panda_hand'
    assert (magnitude > 3.0).mean() > 0.03, 'contacts should show as force'
    assert magnitude.max() > 5.0


def test_recorded_truth_holds_the_injected_fault(bag):
    topics = _read(bag)
    messages = [(_stamp(m), [(s.name, s.level, s.message,
                              {kv.key: kv.value for kv in s.values}) for s in m.status])
                for _, m in topics['/lipfault_sim/fault_truth']]
    (interval,) = intervals_from_statuses(messages)
    origin = 1_700_000_000 * 10**9
    assert interval.modality is Modality.JOINTS and interval.kind == 'bias'
    assert (interval.start_ns, interval.end_ns) == (origin + 12 * 10**9, origin + 15 * 10**9)


def test_recorder_cli_refuses_to_overwrite_and_reports_speed(tmp_path, capsys):
    out = tmp_path / 'short'
    args = ['record', '--out', str(out), '--duration', '0.5', '--storage', 'sqlite3',
            '--no-progress', '--image-size', '32']
    assert cli_main(args) == 0
    assert 'sim-seconds per wall-second' in capsys.readouterr().out
    assert cli_main(args) == 2
    assert 'already exists' in capsys.readouterr().err
    assert cli_main(args + ['--overwrite']) == 0
    assert cli_main(['record', '--out', str(tmp_path / 'x'), '--duration', '1',
                     '--fault', 'wrench:melt:0.5:0:1']) == 2
    assert "unknown wrench fault 'melt'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # a usage error, as argparse gives it
        cli_main(['record', '--out', str(tmp_path / 'y'), '--duration', '1',
                  '--wrench-rate', '-3'])
    assert usage.value.code == 2
    assert 'wrench_rate_hz must be in [1, 5000]' in capsys.readouterr().err
    assert not (tmp_path / 'y').exists()
    assert cli_main(['record', '--out', str(tmp_path / 'z'), '--duration', '1',
                     '--image-size', '2']) == 2
    assert 'image_width must be in' in capsys.readouterr().err


def test_recorder_and_writer_errors(tmp_path):
    with pytest.raises(ConfigError, match='duration must be a positive number'):
        record(tmp_path / 'a', -1.0)
    with pytest.raises(ConfigError, match="storage 'zip' is not one of mcap, sqlite3"):
        SensorBagWriter(tmp_path / 'b', storage='zip')
    (tmp_path / 'notes').mkdir()
    (tmp_path / 'notes' / 'thesis.tex').write_text('precious')
    with pytest.raises(BagError, match='is not a rosbag2 directory; refusing to delete it'):
        SensorBagWriter(tmp_path / 'notes', overwrite=True).open()
    assert (tmp_path / 'notes' / 'thesis.tex').exists()
    with SensorBagWriter(tmp_path / 'new' / 'folders' / 'bag'):  # parents are made
        pass
    assert (tmp_path / 'new' / 'folders' / 'bag' / 'metadata.yaml').is_file()
    with SensorBagWriter(tmp_path / 'c', storage='mcap') as writer:
        with pytest.raises(BagError, match='image must be'):
            from lipfault_ros.tuples import ImageSample
            writer.write_sample(ImageSample(1, 'cam', np.zeros((4, 4), np.uint8)))
        writer.write_sample(WrenchSample(5, 'panda_hand', np.arange(6.0)))
    assert writer.counts['/wrench'] == 1
