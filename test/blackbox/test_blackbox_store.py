"""The black box's folder: the disk bound deletes the oldest of its own bags, and only those."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lipfault_ros.bags.reader import BagReader
from lipfault_ros.blackbox import BagStore, Record
from lipfault_ros.errors import BlackBoxError

WRENCH = 'geometry_msgs/msg/WrenchStamped'


def records(n: int, size: int = 0) -> list[Record]:
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    T = ts.types
    out = []
    for i in range(n):
        stamp = 10**18 + i * 10**7
        msg = T[WRENCH](
            header=T['std_msgs/msg/Header'](
                stamp=T['builtin_interfaces/msg/Time'](sec=stamp // 10**9, nanosec=stamp % 10**9),
                frame_id='x' * max(1, size)),
            wrench=T['geometry_msgs/msg/Wrench'](
                force=T['geometry_msgs/msg/Vector3'](x=0.0, y=0.0, z=0.0),
                torque=T['geometry_msgs/msg/Vector3'](x=0.0, y=0.0, z=0.0)))
        out.append(Record('/wrench', WRENCH, stamp, bytes(ts.serialize_cdr(msg, WRENCH))))
    return out


def age(paths: list[Path]) -> None:
    """Give the bags distinct modification times in list order (oldest first)."""
    for i, p in enumerate(paths):
        os.utime(p, ns=(10**18 + i * 10**9, 10**18 + i * 10**9))


def test_a_written_bag_is_complete_and_readable(tmp_path):
    store = BagStore(tmp_path, max_bytes=10**8, max_bags=5)
    store.open()
    path = store.write('wrench_5', records(20))
    assert path == tmp_path / 'wrench_5' and (path / 'metadata.yaml').is_file()
    assert list(path.glob('*.mcap'))
    with BagReader(path) as reader:
        assert reader.info.counts == {'/wrench': 20}


def test_the_bag_count_bound_deletes_the_oldest_first(tmp_path):
    store = BagStore(tmp_path, max_bytes=10**8, max_bags=2)
    store.open()
    a = store.write('wrench_1', records(5))
    b = store.write('camera_2', records(5))
    age([a, b])
    c = store.write('joints_3', records(5))
    assert {p.name for p in store.bags()} == {'camera_2', 'joints_3'} and c.exists()
    assert not a.exists() and store.deleted == 1


def test_the_disk_bound_makes_room_and_leaves_other_files_alone(tmp_path):
    (tmp_path / 'notes').mkdir()
    (tmp_path / 'notes' / 'big.bin').write_bytes(b'0' * 300_000)
    store = BagStore(tmp_path, max_bytes=250_000, max_bags=100)
    store.open()
    bags = [store.write(f'wrench_{i}', records(10, size=10_000)) for i in range(2)]
    age(bags)
    store.write('wrench_9', records(10, size=10_000))
    count, used = store.usage()
    assert used <= 250_000 and count == 2
    assert not bags[0].exists() and bags[1].exists()
    assert (tmp_path / 'notes' / 'big.bin').is_file()  # not a black-box bag: never counted


def test_a_bag_larger_than_the_disk_bound_is_refused(tmp_path):
    store = BagStore(tmp_path, max_bytes=50_000, max_bags=5)
    store.open()
    keep = store.write('wrench_1', records(2))
    with pytest.raises(BlackBoxError, match=r'wrench_2 needs ~.* over the disk bound'):
        store.write('wrench_2', records(10, size=10_000))
    assert keep.exists() and not (tmp_path / 'wrench_2').exists()


def test_opening_clears_what_a_crash_left_half_written(tmp_path):
    (tmp_path / '.writing' / 'wrench_1').mkdir(parents=True)
    (tmp_path / '.writing' / 'wrench_1' / 'wrench_1.mcap').write_bytes(b'\x89MCAP0\r\n')
    BagStore(tmp_path, max_bytes=10**6, max_bags=5).open()
    assert not (tmp_path / '.writing').exists()


def test_a_directory_that_is_a_file_is_refused_at_open(tmp_path):
    (tmp_path / 'bb').write_text('')
    with pytest.raises(OSError):
        BagStore(tmp_path / 'bb', max_bytes=10**6, max_bags=5).open()
