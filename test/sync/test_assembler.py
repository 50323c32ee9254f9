"""The synchroniser: message_filters semantics plus the fixes the design asks for."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lipfault_ros.errors import ConfigError, SyncError
from lipfault_ros.sync import (ApproximateTimeSync, Headerless, SyncConfig, TupleAssembler,
                               assemble)
from lipfault_ros.tuples import ImageSample, JointSample, Modality, WrenchSample

NAMES = tuple(f'panda_joint{i}' for i in range(1, 8))
WIRE_NAMES = NAMES + ('panda_finger_joint1', 'panda_finger_joint2')
RATES = {'c': 30.0, 'w': 500.0, 'j': 250.0}
LATENCY = {'c': 0.02, 'w': 0.001, 'j': 0.002}
IMAGE = np.zeros((4, 4, 3), np.uint8)


def make_stream(duration: float = 1.0, *, seed: int = 0, start: float = 1.0,
                names: tuple[str, ...] = WIRE_NAMES, stop: dict[str, tuple[float, float]] = {}
                ) -> list[tuple[float, object]]:
    """(arrival_s, sample) pairs in arrival order: jittered stamps, per-stream latencies.

    Sample values encode their own stamp (wrench fx = stamp in s, joint positions = stamp + joint
    index) so windows can be checked exactly. ``stop`` silences a stream between two times.
    """
    rng = np.random.default_rng(seed)
    events = []
    for kind, rate in RATES.items():
        n = int(duration * rate)
        stamps = start + np.arange(n) / rate + rng.normal(0, 0.0002, n)
        for s in stamps:
            if kind in stop and stop[kind][0] <= s - start < stop[kind][1]:
                continue
            ns = int(round(s * 1e9))
            if kind == 'c':
                sample = ImageSample(ns, 'cam', IMAGE)
            elif kind == 'w':
                sample = WrenchSample(ns, 'hand', np.array([s, 0, 0, 0, 0, 0], float))
            else:
                base = np.array([s + WIRE_NAMES.index(nm) for nm in names])
                sample = JointSample(ns, 'base', names, base, base * 2, base * 3)
            events.append((s + LATENCY[kind] + rng.uniform(0, 0.001), sample))
    events.sort(key=lambda e: e[0])
    return events


def samples(events):
    return [e[1] for e in events]


def same(a, b) -> bool:
    return (a.stamp_ns == b.stamp_ns and a.missing == b.missing
            and dict(a.stamps_ns) == dict(b.stamps_ns)
            and np.array_equal(a.wrench, b.wrench) and np.array_equal(a.joints, b.joints))


def test_clean_stream_gives_one_tuple_per_camera_frame_with_increasing_stamps():
    events = make_stream(1.0)
    cams = [s for s in samples(events) if isinstance(s, ImageSample)]
    out = list(assemble(samples(events), SyncConfig(), NAMES))
    assert [t.stamp_ns for t in out] == sorted(c.stamp_ns for c in cams)
    assert np.all(np.diff([t.stamp_ns for t in out]) > 0)
    assert all(not t.missing for t in out)
    t = out[10]
    assert t.wrench.shape == (32, 6) and t.wrench.dtype == np.float32
    assert t.joints.shape == (32, 7, 3) and t.joints.dtype == np.float32
    assert t.frame_ids == {Modality.CAMERA: 'cam', Modality.WRENCH: 'hand',
                           Modality.JOINTS: 'base'}


def test_windows_end_at_the_nearest_message_and_hold_consecutive_samples():
    events = make_stream(1.0)
    wrench = sorted((s.stamp_ns for s in samples(events) if isinstance(s, WrenchSample)))
    out = list(assemble(samples(events), SyncConfig(), NAMES))
    for t in out[5:]:
        nearest = min(wrench, key=lambda w: (abs(w - t.stamp_ns), w))
        assert t.stamps_ns[Modality.WRENCH] == nearest
        k = wrench.index(nearest)
        expected = np.array(wrench[k - 31:k + 1], float) / 1e9
        np.testing.assert_allclose(t.wrench[:, 0], expected, rtol=0, atol=1e-6)
        # joints: last row at the joints stamp, channel = pos, vel = 2 pos, effort = 3 pos
        js = t.stamps_ns[Modality.JOINTS] / 1e9
        np.testing.assert_allclose(t.joints[-1, :, 0], js + np.arange(7), atol=1e-5)
        np.testing.assert_allclose(t.joints[-1, :, 2], 3 * (js + np.arange(7)), atol=1e-4)
        assert abs(t.stamps_ns[Modality.JOINTS] - t.stamp_ns) <= 0.02e9


def test_start_of_stream_window_repeats_the_oldest_sample():
    out = list(assemble(samples(make_stream(0.2)), SyncConfig(), NAMES))
    first = out[0].wrench[:, 0]
    assert first[0] == first[-1] or np.all(first[:-1] <= first[1:])
    assert np.all(np.diff(first) >= 0)


def test_window_spans_are_the_stamps_covered_and_lengthen_where_messages_were_lost():
    rng = np.random.default_rng(4)
    # 80 % of the wrench messages lost from 0.5 s to 0.8 s after the start
    events = [(a, s) for a, s in make_stream(1.0)
              if not (isinstance(s, WrenchSample) and 1.5e9 <= s.stamp_ns < 1.8e9
                      and rng.random() < 0.8)]
    out = list(assemble(samples(events), SyncConfig(), NAMES))
    gone = [t for t in out if Modality.WRENCH in t.missing]  # no message within the slop
    assert all(Modality.WRENCH not in t.spans_ns for t in gone)
    out = [t for t in out if Modality.WRENCH not in t.missing]
    for t in out[3:]:
        # wrench fx and joint 1's position encode the sample's own stamp (s)
        np.testing.assert_allclose(t.spans_ns[Modality.WRENCH] / 1e9,
                                   t.wrench[-1, 0] - t.wrench[0, 0], atol=1e-5)
        np.testing.assert_allclose(t.spans_ns[Modality.JOINTS] / 1e9,
                                   t.joints[-1, 0, 0] - t.joints[0, 0, 0], atol=1e-5)
    period = 31 / RATES['w'] * 1e9
    lossy = [t.spans_ns[Modality.WRENCH] / period for t in out
             if 1.65e9 <= t.stamp_ns < 1.8e9]
    clean = [t.spans_ns[Modality.WRENCH] / period for t in out[3:]
             if not 1.5e9 <= t.stamp_ns < 1.9e9]
    assert lossy and min(lossy) > 2.5, lossy
    assert max(clean) < 1.05 and min(clean) > 0.95, clean
    # the first tuple's window is padded with its oldest sample: it spans less, never more
    assert out[0].spans_ns[Modality.WRENCH] < period


def test_interleaving_shuffled_across_inputs_gives_the_same_tuples():
    events = make_stream(1.0)
    rng = np.random.default_rng(1)
    # reorder arrivals across inputs (each input keeps its own order), up to 30 ms late
    delayed = {}
    for arrival, s in events:  # each input delayed by up to 30 ms, keeping its own order
        prev = delayed.get(type(s), [(0.0, None)])[-1][0]
        delayed.setdefault(type(s), []).append((max(prev, arrival + rng.uniform(0, 0.03)), s))
    jittered = sorted((e for v in delayed.values() for e in v), key=lambda e: e[0])
    per_input = {}
    for _, s in jittered:
        per_input.setdefault(type(s), []).append(s.stamp_ns)
    assert all(v == sorted(v) for v in per_input.values())
    assert samples(jittered) != samples(events)
    a = list(assemble(samples(events), SyncConfig(), NAMES))
    b = list(assemble(samples(jittered), SyncConfig(), NAMES))
    assert len(a) == len(b) == 30
    assert all(same(x, y) for x, y in zip(a, b))


def test_fully_shuffled_input_within_the_settle_time_gives_the_same_tuples():
    events = make_stream(1.0)
    rng = np.random.default_rng(2)
    shuffled = sorted(events, key=lambda e: e[0] + rng.uniform(0, 0.008))  # any order, 8 ms
    config = SyncConfig(settle=0.01)
    a = list(assemble(samples(events), config, NAMES))
    b = list(assemble(samples(shuffled), config, NAMES))
    assert len(a) == len(b) == 30
    assert all(same(x, y) for x, y in zip(a, b))


def test_backwards_time_jump_resets_and_resumes():
    first = samples(make_stream(0.5, start=5.0))
    second = samples(make_stream(0.5, start=1.0, seed=3))  # bag loop / sim restart
    asm = TupleAssembler(SyncConfig(), NAMES)
    out = [t for s in first + second for t in asm.push(s)] + asm.flush()
    before = [t for t in out if t.stamp_ns >= 5e9]
    after = [t for t in out if t.stamp_ns < 5e9]
    assert len(before) == 15 and len(after) >= 13
    assert asm.stats.resets >= 1
    for part in (before, after):
        assert np.all(np.diff([t.stamp_ns for t in part]) > 0)
        assert all(not t.missing for t in part)


def test_late_camera_frame_is_dropped_so_output_stays_increasing():
    events = samples(make_stream(0.5))
    cams = [s for s in events if isinstance(s, ImageSample)]
    late = cams[3]
    events.remove(late)
    events.insert(events.index(cams[8]) + 1, late)  # arrives after newer frames were used
    asm = TupleAssembler(SyncConfig(), NAMES)
    out = [t for s in events for t in asm.push(s)] + asm.flush()
    assert np.all(np.diff([t.stamp_ns for t in out]) > 0)
    assert len(out) == 14 and asm.stats.late[Modality.CAMERA] == 1


def test_per_input_queue_sizes_follow_the_rates_and_count_overflow():
    config = SyncConfig(queue_span=0.5)
    assert [config.queue_size(m) for m in Modality] == [16, 251, 126]
    assert SyncConfig(queue_sizes=(2, 3, 4)).queue_size(Modality.JOINTS) == 4
    # camera frames whose partners never come: the camera queue overflows and counts it
    asm = TupleAssembler(SyncConfig(queue_sizes=(2, 10, 10), silent_periods=1e6), NAMES)
    for k in range(5):
        asm.push(ImageSample(10**9 + k * 33_000_000, 'cam', IMAGE))
    assert asm.stats.dropped[Modality.CAMERA] == 3
    assert asm.stats.received[Modality.CAMERA] == 5


def test_headerless_messages_follow_the_explicit_policy():
    msg = WrenchSample(0, 'hand', np.zeros(6))
    asm = TupleAssembler(SyncConfig(), NAMES)
    assert asm.push(msg) == []
    assert asm.stats.headerless[Modality.WRENCH] == 1
    assert 'header stamp' in asm.stats.problems[Modality.WRENCH]
    refuse = TupleAssembler(SyncConfig(headerless='refuse'), NAMES)
    with pytest.raises(SyncError, match="wrench message \\(frame 'hand'\\) has no header"):
        refuse.push(msg)
    arrival = TupleAssembler(SyncConfig(headerless=Headerless.ARRIVAL), NAMES)
    arrival.push(msg, arrival_ns=7_000_000_000)
    assert arrival.stats.headerless[Modality.WRENCH] == 0
    assert arrival.buffered_stamps(Modality.WRENCH) == [7_000_000_000]


def test_joint_states_are_matched_by_name_not_index():
    reordered = tuple(reversed(WIRE_NAMES))
    a = list(assemble(samples(make_stream(0.5)), SyncConfig(), NAMES))
    b = list(assemble(samples(make_stream(0.5, names=reordered)), SyncConfig(), NAMES))
    assert len(a) == len(b) == 15
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.joints, y.joints)
        assert y.joint_names == NAMES


def test_missing_joint_name_flags_joints_missing_and_counts_it():
    short = WIRE_NAMES[:2] + WIRE_NAMES[3:]  # panda_joint3 absent
    asm = TupleAssembler(SyncConfig(), NAMES)
    out = [t for s in samples(make_stream(0.5, names=short)) for t in asm.push(s)] + asm.flush()
    assert len(out) == 15
    assert all(t.missing == {Modality.JOINTS} and t.joints is None for t in out)
    assert all(t.wrench is not None for t in out)
    stats = asm.stats
    assert stats.rejected[Modality.JOINTS] == 125
    assert "lacks joints ['panda_joint3']" in stats.problems[Modality.JOINTS]
    assert stats.missing[Modality.JOINTS] == 15


def test_non_finite_values_pass_through():
    events = samples(make_stream(0.3))
    k = next(i for i, s in enumerate(events) if isinstance(s, WrenchSample) and i > 200)
    bad = events[k]
    events[k] = WrenchSample(bad.stamp_ns, bad.frame_id, np.array([math.nan, math.inf, 0, 0, 0,
                                                                   0]))
    out = list(assemble(events, SyncConfig(), NAMES))
    assert len(out) == 9
    assert any(np.isnan(t.wrench).any() and np.isinf(t.wrench).any() for t in out)


def test_silent_wrench_becomes_missing_while_tuples_continue_and_returns():
    events = make_stream(2.0, stop={'w': (0.5, 1.2)})
    out = list(assemble(samples(events), SyncConfig(), NAMES))
    assert len(out) == 60
    assert np.all(np.diff([t.stamp_ns for t in out]) > 0)
    rel = np.array([t.stamp_ns / 1e9 - 1.0 for t in out])
    missing = np.array([Modality.WRENCH in t.missing for t in out])
    assert not missing[rel < 0.49].any()
    assert missing[(rel > 0.55) & (rel < 1.15)].all()
    assert not missing[rel > 1.25].any()


def test_silent_camera_keeps_tuples_flowing_at_camera_rate():
    events = make_stream(2.0, stop={'c': (0.5, 1.5)})
    out = list(assemble(samples(events), SyncConfig(), NAMES))
    no_cam = [t for t in out if Modality.CAMERA in t.missing]
    assert 20 <= len(no_cam) <= 30
    assert all(t.image is None and t.wrench is not None for t in no_cam)
    assert np.all(np.diff([t.stamp_ns for t in out]) > 0)
    # the returning camera's first frame may be older than the last tuple made without it
    assert 29 <= sum(Modality.CAMERA not in t.missing for t in out) <= 30


def test_live_watchdog_marks_a_silent_modality_missing_on_poll():
    asm = TupleAssembler(SyncConfig(), NAMES)
    events = make_stream(0.5, stop={'j': (0.2, 1.0)})
    out = []
    for arrival, s in events:
        out += asm.push(s, arrival_ns=int(arrival * 1e9))
        out += asm.poll(int(arrival * 1e9))
    out += asm.poll(int((events[-1][0] + 1.0) * 1e9))
    assert Modality.JOINTS in asm.stats.silent
    assert len(out) == 15
    assert not out[3].missing
    assert all(t.missing == {Modality.JOINTS} for t in out[8:])


def test_generic_sync_emits_first_combination_within_slop_and_counts_unmatched():
    sync = ApproximateTimeSync([5, 5], slop_ns=10, reference=0, jump_back_ns=150)
    assert sync.add(0, 100, 'a') == []
    assert sync.add(1, 95, 'x') == []   # not yet past the reference stamp
    (match,) = sync.add(1, 103, 'y')    # past it: the nearest partner (103) wins
    assert match.stamp_ns == 100 and match.messages == ('a', 'y')
    assert sync.add(0, 200, 'b') == []
    assert sync.add(1, 250, 'z') == []  # past 200 but 50 away: no partner within slop
    assert sync.unmatched == 1 and sync.pending(0) == 0
    assert sync.add(0, 190, 'c') == [] and sync.unmatched == 2  # only 250 left, too far
    assert sync.add(0, 99, 'late') == []  # older than an emitted combination
    assert sync.late == [1, 0]
    assert sync.add(0, 10, 'jump') == [] and sync.resets == 1
    assert [m.stamp_ns for m in sync.add(1, 12, 'w')] == [10]  # syncing resumed


def test_invalid_configuration_is_refused():
    with pytest.raises(ConfigError, match=r'slop must be in \[0, 1\]'):
        SyncConfig(slop=-1)
    with pytest.raises(ConfigError, match=r'wrench_rate must be in \[0.1, '):
        SyncConfig(wrench_rate=0)
    with pytest.raises(ConfigError, match='queue_sizes must be three sizes'):
        SyncConfig(queue_sizes=(1, 2))
    with pytest.raises(ConfigError, match='headerless must be one of'):
        SyncConfig(headerless='guess')
    with pytest.raises(ConfigError, match='joint_names has duplicates'):
        TupleAssembler(SyncConfig(), ('a', 'a'))
    with pytest.raises(SyncError, match='at least two inputs'):
        ApproximateTimeSync([3], slop_ns=1)


def test_frame_without_a_partner_within_slop_makes_a_tuple_with_that_modality_missing():
    # no wrench within 8 ms of any frame (gaps shorter than the watchdog's limit)
    stream = samples(make_stream(1.0))
    cams = [s.stamp_ns for s in stream if isinstance(s, ImageSample)]
    events = [s for s in stream if not (isinstance(s, WrenchSample) and min(
        abs(s.stamp_ns - c) for c in cams) < 8_000_000)]
    out = list(assemble(events, SyncConfig(slop=0.005), NAMES))
    assert len(out) == 30
    assert all(t.missing == {Modality.WRENCH} for t in out)
    asm = TupleAssembler(SyncConfig(slop=0.005), NAMES)
    assert len([t for s in events for t in asm.push(s)] + asm.flush()) == 30
    assert asm.stats.unpaired[Modality.WRENCH] == 30 and asm.stats.unmatched == 0
    strict = TupleAssembler(SyncConfig(slop=0.005, partial=False), NAMES)
    kept = [t for s in events for t in strict.push(s)] + strict.flush()
    assert kept == [] and strict.stats.unmatched == 30  # message_filters: frames dropped


def test_a_live_slop_change_applies_from_the_next_pairing():
    # no wrench within 8 ms of any frame: unpaired at 5 ms, paired once the slop is 20 ms
    stream = samples(make_stream(2.0))
    cams = [s.stamp_ns for s in stream if isinstance(s, ImageSample)]
    events = [s for s in stream if not (isinstance(s, WrenchSample) and min(
        abs(s.stamp_ns - c) for c in cams) < 8_000_000)]
    half = next(i for i, s in enumerate(events) if s.stamp_ns > cams[30])
    asm = TupleAssembler(SyncConfig(slop=0.005), NAMES)
    first = [t for s in events[:half] for t in asm.push(s)]
    asm.set_slop(0.02)
    second = [t for s in events[half:] for t in asm.push(s)] + asm.flush()
    assert first and all(Modality.WRENCH in t.missing for t in first)
    assert len(second) >= 25 and all(not t.missing for t in second[1:])
    assert asm.config.slop == 0.02
    with pytest.raises(ConfigError, match='slop'):
        asm.set_slop(-1.0)


def test_one_sensor_jumping_back_alone_does_not_stall_the_live_stream():
    asm = TupleAssembler(SyncConfig(), NAMES)
    out = []
    for arrival, s in make_stream(2.0, start=200.0):
        if isinstance(s, WrenchSample) and s.stamp_ns > 201e9:
            s = WrenchSample(s.stamp_ns - 100 * 10**9, s.frame_id, s.values)  # 100 s back
        out += asm.push(s, arrival_ns=int(arrival * 1e9))
    late = [t for t in out if t.stamp_ns > 201.1e9]
    assert asm.stats.resets >= 1
    assert len(late) >= 20
    assert all(Modality.WRENCH in t.missing and t.joints is not None for t in late)


def test_build_from_partners_chosen_elsewhere_equals_the_tuple_push_makes():
    """The message_filters backend's conversion: partners and windows given, same arrays."""
    cfg = SyncConfig(wrench_window=8, joints_window=4)
    events = samples(make_stream(0.5))
    built = list(assemble(events, cfg, NAMES))
    asm = TupleAssembler(cfg, NAMES)
    by_stamp = {k: [s for s in events if isinstance(s, k)]
                for k in (ImageSample, WrenchSample, JointSample)}
    frames = {s.stamp_ns: s for s in by_stamp[ImageSample]}
    for t in built[5:]:
        windows = [[s for s in by_stamp[k] if s.stamp_ns <= t.stamps_ns[m]][-n:]
                   for k, m, n in ((WrenchSample, Modality.WRENCH, 8),
                                   (JointSample, Modality.JOINTS, 4))]
        assert same(asm.build(frames[t.stamp_ns], *windows), t)
    # a short window is padded with its oldest sample; an empty one is a missing modality
    first = asm.build(by_stamp[ImageSample][0], by_stamp[WrenchSample][:2], [])
    assert first.wrench.shape == (8, 6) and np.all(first.wrench[:7] == first.wrench[0])
    assert first.missing == {Modality.JOINTS}
    # a window with a joint state that lacks a configured joint: joints missing, counted
    short = JointSample(1, 'base', NAMES[:6], np.zeros(6), np.zeros(6), np.zeros(6))
    t = asm.build(None, by_stamp[WrenchSample][:8], [short])
    assert t.missing == {Modality.CAMERA, Modality.JOINTS}
    assert asm.stats.rejected[Modality.JOINTS] == 1 and 'panda_joint7' in \
        asm.stats.problems[Modality.JOINTS]
    assert t.stamp_ns == by_stamp[WrenchSample][7].stamp_ns


def _live(events: list[tuple[float, object]]) -> list:
    """Push ``events`` with their arrival times, as the node does."""
    asm = TupleAssembler(SyncConfig(), NAMES)
    out = []
    for arrival, s in events:
        out += asm.push(s, arrival_ns=int(arrival * 1e9))
    return out + asm.flush()


def test_backlog_tells_the_pipelines_own_lost_messages_from_the_sensors():
    rng = np.random.default_rng(5)
    events = make_stream(2.0)
    # the sensor loses 80 % of its wrench messages from 0.5 s to 0.8 s: the rest come on time
    sensor = [(a, s) for a, s in events
              if not (isinstance(s, WrenchSample) and 1.5e9 <= s.stamp_ns < 1.8e9
                      and rng.random() < 0.8)]
    # the pipeline stalls for 0.25 s behind 50-message input queues: what arrived meanwhile
    # is received when it wakes up, and only the newest 50 of each input survive
    stalled, queued = [], {}
    for a, s in events:
        if 1.5 <= a < 1.75:
            queued.setdefault(type(s), []).append(s)
        else:
            if a >= 1.75 and queued:
                for kind, held in queued.items():
                    stalled += [(1.75 + 1e-6 * k, q) for k, q in enumerate(held[-50:])]
                queued = {}
            stalled.append((a, s))
    stalled.sort(key=lambda e: e[0])
    assert len(events) - len(stalled) > 80  # wrench (75) and joints (12) overflowed

    def backlogs(out, m, long):
        """The backlogs (ms) of the windows spanning over (or under) twice the usual."""
        usual = 31 / (RATES['w'] if m is Modality.WRENCH else RATES['j']) * 1e9
        return [t.backlogs_ns[m] / 1e6 for t in out[3:] if m not in t.missing
                and (t.spans_ns[m] > 2 * usual) == long]

    calm = _live(sensor)
    own = _live(stalled)
    for m in (Modality.WRENCH, Modality.JOINTS):
        assert max(backlogs(calm, m, False)) < 3.0  # arrival jitter only
        # the survivors waited up to 98 / 196 ms (their queue's span) ...
        assert max(t.backlogs_ns.get(m, 0) for t in own) > 90e6 * (1 + (m is Modality.JOINTS))
        # ... and once the queue is drained, the floor kept through the stall says so
        assert max(t.backlogs_ns[m] for t in own if t.stamp_ns > 2.2e9) < 3e6
    # a wrench window over the stall holds the first survivor
    late = backlogs(own, Modality.WRENCH, True)
    assert late and min(late) > 90.0, late
    # the sensor's loss: the long windows' messages came on time
    assert len(backlogs(calm, Modality.WRENCH, True)) > 5
    assert max(backlogs(calm, Modality.WRENCH, True)) < 3.0
    assert not backlogs(calm, Modality.JOINTS, True)
    # offline (no arrival times) there is no backlog
    assert all(not t.backlogs_ns for t in assemble(samples(sensor), SyncConfig(), NAMES))
    asm = TupleAssembler(SyncConfig(), NAMES)
    for a, s in stalled:
        asm.push(s, arrival_ns=int(a * 1e9))
    assert asm.stats.backlog[Modality.WRENCH] < 3e6


def test_the_lag_floor_follows_clocks_drifting_apart_by_up_to_1_ms_a_second():
    # the sensor's clock runs 0.2 ms/s slow against the node's: the lag grows 0.2 ms a second
    events = [(a + 2e-4 * a, s) for a, s in make_stream(3.0)]
    out = _live(events)
    assert max(t.backlogs_ns[Modality.WRENCH] for t in out[5:]) < 3e6
    # the node's clock ran 1 ms/s faster than that floor may rise: the lag floor is behind
    fast = [(a + 5e-3 * (a - 1.0), s) for a, s in make_stream(3.0)]
    assert max(t.backlogs_ns[Modality.WRENCH] for t in _live(fast)[-5:]) > 5e6
