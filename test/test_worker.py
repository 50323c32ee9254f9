"""The latest-only worker: newest item first, stale ones dropped and counted, never stuck."""

from __future__ import annotations

import threading
import time

from lipfault_ros.worker import LatestWorker


def test_a_slow_handler_sees_the_newest_item_and_the_skipped_ones_are_counted():
    gate = threading.Event()
    seen: list[int] = []

    def handle(item: int) -> None:
        gate.wait(5)
        seen.append(item)

    worker = LatestWorker(handle)
    worker.start()
    try:
        worker.offer(0)                 # taken at once, blocks on the gate
        time.sleep(0.05)
        assert worker.offer(1)          # waits in the slot
        assert not worker.offer(2)      # replaces 1
        assert not worker.offer(3)      # replaces 2
        gate.set()
        assert worker.idle(5)
        assert seen == [0, 3]
        assert worker.dropped == 2 and worker.handled == 2
    finally:
        assert worker.stop()
    assert not worker.running


def test_handling_runs_off_the_offering_thread_and_an_exception_does_not_stop_it():
    threads: list[str] = []

    def handle(item: int) -> None:
        threads.append(threading.current_thread().name)
        if item == 0:
            raise RuntimeError('bad tuple')

    worker = LatestWorker(handle, name='infer')
    worker.start()
    try:
        worker.offer(0)
        assert worker.idle(5)
        worker.offer(1)
        assert worker.idle(5)
        assert threads == ['infer', 'infer']
        assert worker.failed == 1 and worker.handled == 1
    finally:
        worker.stop()


def test_stop_drops_the_waiting_item_and_a_stopped_worker_can_start_again():
    seen: list[int] = []
    gate = threading.Event()
    worker = LatestWorker(lambda i: (gate.wait(5), seen.append(i)))
    worker.start()
    worker.offer(0)
    time.sleep(0.05)
    worker.offer(1)
    gate.set()
    assert worker.stop()
    assert seen == [0]
    worker.start()
    worker.offer(2)
    assert worker.idle(5)
    worker.stop()
    assert seen == [0, 2]
