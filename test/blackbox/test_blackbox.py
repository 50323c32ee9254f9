"""The black box core: windows, memory bound, naming, raise detection (real mcap bags in
tmp_path, messages serialised with rosbags, a test clock instead of the system clock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lipfault_ros.alarm import AlarmConfig, AlarmState, FaultAlarms
from lipfault_ros.bags.reader import BagReader
from lipfault_ros.blackbox import (BAG_NAME, BlackBox, BlackBoxConfig, RaiseDetector, Record,
                                   RingBuffer, bag_name)
from lipfault_ros.errors import ConfigError
from lipfault_ros.tuples import MODALITIES, Modality, WrenchSample

S = 1_000_000_000
T0 = 1_700_000_000 * S
WRENCH = 'geometry_msgs/msg/WrenchStamped'


class Clock:
    """The receive clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def wrench_bytes(stamp_ns: int, pad: int = 0) -> bytes:
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    T = ts.types
    msg = T[WRENCH](
        header=T['std_msgs/msg/Header'](
            stamp=T['builtin_interfaces/msg/Time'](sec=stamp_ns // S, nanosec=stamp_ns % S),
            frame_id='f' * pad or 'ft'),
        wrench=T['geometry_msgs/msg/Wrench'](
            force=T['geometry_msgs/msg/Vector3'](x=1.0, y=2.0, z=3.0),
            torque=T['geometry_msgs/msg/Vector3'](x=0.0, y=0.0, z=0.0)))
    return bytes(ts.serialize_cdr(msg, WRENCH))


def feed(box: BlackBox, clock: Clock, until_ns: int, step_ns: int = 10_000_000,
         pad: int = 0) -> None:
    """Wrench messages every ``step_ns``, stamped with their receive time, up to ``until_ns``."""
    while clock.now < until_ns:
        clock.now += step_ns
        box.record('/wrench', WRENCH, wrench_bytes(clock.now, pad))


def config(tmp_path: Path, **kw) -> BlackBoxConfig:
    return BlackBoxConfig(directory=tmp_path / 'bb', **{'before_s': 0.5, 'after_s': 0.5, **kw})


def wrench_stamps(bag: Path) -> list[int]:
    with BagReader(bag) as reader:
        reader.check([Modality.WRENCH])
        return [s.stamp_ns for s in reader.samples([Modality.WRENCH])
                if isinstance(s, WrenchSample)]


def test_a_bag_holds_the_window_before_and_after_the_raise_and_is_named_by_the_fault(tmp_path):
    clock = Clock()
    with BlackBox(config(tmp_path), clock=clock) as box:
        feed(box, clock, T0 + 2 * S)
        raise_at = clock.now
        name = box.trigger(Modality.WRENCH, onset_ns=raise_at - 5_000_000)
        feed(box, clock, T0 + 3 * S)
        assert box.wait_idle(20.0)
    assert name == f'wrench_{raise_at - 5_000_000}' and BAG_NAME.match(name)
    bag = tmp_path / 'bb' / name
    assert box.status.bags_written == 1 and box.status.last_bag == str(bag)
    stamps = wrench_stamps(bag)
    # every message of [raise - 0.5 s, raise + 0.5 s] (10 ms apart), and nothing else
    assert min(stamps) == raise_at - S // 2 and max(stamps) == raise_at + S // 2
    assert len(stamps) == 101
    assert not (tmp_path / 'bb' / '.writing').exists() or \
        not any((tmp_path / 'bb' / '.writing').iterdir())


def test_a_capture_ends_when_no_message_comes_after_the_raise(tmp_path):
    clock = Clock()
    with BlackBox(config(tmp_path, after_s=0.2), clock=clock, poll_s=0.01) as box:
        feed(box, clock, T0 + S)
        box.trigger(Modality.CAMERA, onset_ns=clock.now)
        clock.now += S  # the sensors died: only time passes
        assert box.wait_idle(20.0)
        assert box.status.bags_written == 1
    assert len(wrench_stamps(Path(box.status.last_bag))) == 51


def test_a_second_raise_during_a_capture_gets_a_bag_of_its_own(tmp_path):
    clock = Clock()
    with BlackBox(config(tmp_path), clock=clock) as box:
        feed(box, clock, T0 + S)
        first = clock.now
        a = box.trigger(Modality.WRENCH, onset_ns=first)
        feed(box, clock, T0 + S + 300_000_000)
        second = clock.now
        b = box.trigger(Modality.JOINTS, onset_ns=second)
        feed(box, clock, T0 + 3 * S)
        assert box.wait_idle(20.0)
    sa, sb = wrench_stamps(tmp_path / 'bb' / a), wrench_stamps(tmp_path / 'bb' / b)
    assert (min(sa), max(sa)) == (first - S // 2, first + S // 2)
    assert (min(sb), max(sb)) == (second - S // 2, second + S // 2)
    assert a.startswith('wrench_') and b.startswith('joints_')


def test_the_same_onset_twice_never_overwrites_a_bag(tmp_path):
    clock = Clock()
    with BlackBox(config(tmp_path, after_s=0.0), clock=clock) as box:
        for _ in range(2):
            feed(box, clock, clock.now + S)
            box.trigger(Modality.WRENCH, onset_ns=123)
            feed(box, clock, clock.now + 100_000_000)
            assert box.wait_idle(20.0)
    assert sorted(p.name for p in (tmp_path / 'bb').iterdir() if BAG_NAME.match(p.name)) == [
        'wrench_123', 'wrench_123_2']


def test_memory_stays_bounded_and_a_window_cut_by_it_is_counted_as_truncated(tmp_path):
    clock = Clock()
    # ~20 kB messages every 10 ms: 0.5 s before the raise is ~1 MB, over a 0.5 MB bound
    with BlackBox(config(tmp_path, max_memory_mb=0.5), clock=clock) as box:
        held = []
        for _ in range(150):
            feed(box, clock, clock.now + 10_000_000, pad=20_000)
            held.append(box.status.bytes_held)
        assert max(held) <= 0.5 * 2**20
        box.trigger(Modality.CAMERA, onset_ns=clock.now)
        feed(box, clock, clock.now + S, pad=20_000)
        assert box.wait_idle(20.0)
        st = box.status
    assert st.bags_written == 1 and st.truncated == 1
    # what the bag kept is the newest part of the window, up to its end
    stamps = wrench_stamps(Path(st.last_bag))
    assert 0 < len(stamps) < 101


def test_an_unwritable_directory_is_an_error_state_not_an_exception(tmp_path):
    (tmp_path / 'file').write_text('not a folder')
    clock = Clock()
    box = BlackBox(BlackBoxConfig(directory=tmp_path / 'file' / 'bb', before_s=0.1,
                                  after_s=0.0), clock=clock)
    box.open()
    assert box.status.errors == 1 and 'unusable' in box.status.error
    feed(box, clock, T0 + S)
    box.trigger(Modality.WRENCH, onset_ns=1)
    feed(box, clock, T0 + 2 * S)
    assert box.wait_idle(20.0)
    assert box.close()
    st = box.status
    assert st.bags_written == 0 and st.errors == 2 and 'wrench_1 not written' in st.error


def test_closing_writes_a_capture_still_recording(tmp_path):
    clock = Clock()
    box = BlackBox(config(tmp_path, after_s=60.0), clock=clock)
    box.open()
    feed(box, clock, T0 + S)
    box.trigger(Modality.JOINTS, onset_ns=clock.now)
    feed(box, clock, T0 + S + 200_000_000)
    assert box.close()
    assert box.status.bags_written == 1
    assert len(wrench_stamps(Path(box.status.last_bag))) == 71


def test_the_ring_drops_by_age_then_by_bytes_and_remembers_what_it_lost():
    ring = RingBuffer()
    for i in range(10):
        ring.append(Record('/t', WRENCH, i * 10, b'x' * 100))
    ring.trim(keep_from_ns=30, max_bytes=10_000)
    assert [r.receive_ns for r in ring] == list(range(30, 100, 10))
    assert ring.dropped == 0 and ring.dropped_until_ns == 0  # age is not a loss
    ring.trim(keep_from_ns=0, max_bytes=350)
    assert [r.receive_ns for r in ring] == [70, 80, 90] and ring.nbytes == 300
    assert ring.dropped == 4 and ring.dropped_until_ns == 60
    assert [r.receive_ns for r in ring.between(75, 90)] == [80, 90]


def test_only_a_new_raise_is_reported_not_a_latched_alarm_raised_again():
    alarms = FaultAlarms(AlarmConfig(raise_k=1, raise_n=1, clear_n=1, latch=True))
    detect = RaiseDetector()
    ok, bad = [False] * 3, [False, True, False]
    assert detect.new_raises(alarms.update(ok, ok, 1)) == []
    assert detect.new_raises(alarms.update(bad, ok, 2)) == [(Modality.WRENCH, 2)]
    assert detect.new_raises(alarms.update(bad, ok, 3)) == []        # still the same alarm
    assert alarms.update(ok, ok, 4)[Modality.WRENCH].state is AlarmState.LATCHED
    assert detect.new_raises(alarms.update(bad, ok, 5)) == []        # latched -> raised
    alarms.reset()
    assert detect.new_raises(alarms.update(bad, ok, 6)) == [(Modality.WRENCH, 6)]


@pytest.mark.parametrize('kw,match', [
    (dict(before_s=-1.0), r'before_s must be in \[0, 3600\]'),
    (dict(after_s=4000.0), r'after_s must be in'),
    (dict(max_memory_mb=0.0), r'max_memory_mb must be in \[0.1, '),
    (dict(max_bags=0), r'max_bags must be in'),
])
def test_settings_out_of_range_are_refused_by_name(tmp_path, kw, match):
    with pytest.raises(ConfigError, match=match):
        BlackBoxConfig(directory=tmp_path, **kw)


def test_an_empty_directory_is_refused():
    with pytest.raises(ConfigError, match='directory is empty'):
        BlackBoxConfig(directory='')


def test_bag_names_carry_the_modality_and_the_onset_stamp():
    assert [bag_name(m, 1_700_000_000_123_456_789) for m in MODALITIES] == [
        'camera_1700000000123456789', 'wrench_1700000000123456789',
        'joints_1700000000123456789']
