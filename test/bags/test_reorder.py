"""The reorder buffer on its own: stamp order within the window, late items dropped, a backwards
jump flushes, equal stamps keep their arrival order, the buffer stays bounded."""

from __future__ import annotations

import numpy as np

from lipfault_ros.bags.reader.reorder import StampReorder


def _stats() -> dict[str, int]:
    return {'dropped_late': 0, 'time_jumps': 0}


def _run(reorder: StampReorder, stamps) -> list:
    out = []
    for i, s in enumerate(stamps):
        out += reorder.push(s, (s, i))
    return out + reorder.flush()


def test_shuffled_within_the_window_comes_out_sorted_and_complete():
    rng = np.random.default_rng(0)
    stamps = np.arange(0, 5000, 10) + rng.integers(0, 40, 500)  # jitter < window of 50
    out = _run(StampReorder(50, 10_000, 1000, _stats()), [int(s) for s in stamps])
    assert [s for s, _ in out] == sorted(int(s) for s in stamps)


def test_late_items_are_dropped_and_a_jump_back_flushes():
    stats = _stats()
    reorder = StampReorder(10, 1000, 100, stats)
    out = _run(reorder, [0, 20, 40, 5, 60, 50, 1000, 1010, 30, 1020])
    stamps = [s for s, _ in out]
    assert 5 not in stamps and stats['dropped_late'] == 1  # 5 came after 20 was released
    assert stats['time_jumps'] == 1  # 30 after 1010: more than 100 back
    assert stamps == [0, 20, 40, 50, 60, 1000, 1010, 30, 1020]


def test_equal_stamps_keep_arrival_order_and_the_buffer_is_bounded():
    stats = _stats()
    reorder = StampReorder(10**12, 3, 10**15, stats)  # the window never releases: the bound does
    released = [reorder.push(7, i) for i in range(6)]
    assert [len(r) for r in released] == [0, 0, 0, 1, 1, 1]
    assert [x for r in released for x in r] + reorder.flush() == list(range(6))
