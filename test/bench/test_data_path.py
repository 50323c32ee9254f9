"""The data benchmarks run and report their figures (values are not asserted: timings vary)."""

from __future__ import annotations

from lipfault_ros.bench.data_path import (bench_bag_to_tuples, bench_streaming_memory,
                                          write_synthetic_bag)
from lipfault_ros.bags.reader import BagReader


def test_bag_to_tuples_and_streaming_memory_report_their_figures(tmp_path):
    bag = write_synthetic_bag(tmp_path / 'bag', 2.0, image_size=48)
    with BagReader(bag) as reader:
        assert reader.check().counts['/camera/image_raw'] == 60
    result = bench_bag_to_tuples(bag, image_size=16, window=8)
    assert result['tuples'] == 60 and result['messages'] == 60 + 1000 + 500
    assert result['build_tuples_per_s'] > 0 and result['build_over_bare'] > 0
    memory = bench_streaming_memory(bag=bag, budget_mb=2000.0, image_size=16, window=8)
    assert memory['tuples'] == 60 and memory['peak_rss_mb'] > memory['import_rss_mb'] > 0
    assert memory['bag_larger_than_budget'] is False
