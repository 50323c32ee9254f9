"""The worker pool of the quality run: results by key, progress per step, errors raised."""

import operator
import os
import re

import pytest

from lipfault_ros.bench.steps import Step, Steps
from lipfault_ros.errors import ConfigError


def test_steps_run_in_worker_processes_and_each_is_said_as_it_finishes():
    said = []
    steps_in = [Step(('sum', k), f'sum {k}', operator.add, (k, 10)) for k in range(2)]
    with Steps(2, said.append) as steps:
        got = steps.run('adding', [*steps_in, Step('pid', 'process id', os.getpid)])
        assert [got['sum', k] for k in range(2)] == [10, 11]
        assert got['pid'] != os.getpid()  # it ran in a worker
        assert said[0] == 'adding: 3 steps on 2 processes'
        assert len(said) == 4 and all(line.endswith(' done') for line in said[1:])
        assert {line.split(': ', 1)[1][:-len(' done')] for line in said[1:]} == \
            {'sum 0', 'sum 1', 'process id'}
        assert set(steps.seconds) == set(got) and min(steps.seconds.values()) >= 0.0
        with pytest.raises(ZeroDivisionError):  # a failing step raises its own error
            steps.run('dividing', [Step('bad', 'by zero', operator.truediv, (1, 0))])


def test_one_job_runs_the_steps_in_order_each_in_a_fresh_process():
    said = []
    with Steps(1, said.append) as steps:
        got = steps.run('one by one', [Step(('pid', k), f'pid {k}', os.getpid) for k in range(3)])
        assert steps.run('nothing', []) == {}
        with pytest.raises(ZeroDivisionError):
            steps.run('dividing', [Step('bad', 'by zero', operator.truediv, (1, 0))])
    assert said[0] == 'one by one: 3 steps on 1 process'
    assert [re.sub(r'\d+ s\)', 'T s)', line) for line in said[1:4]] == \
        [f'one by one ({k + 1} of 3, T s): pid {k} done' for k in range(3)]
    pids = [got['pid', k] for k in range(3)]
    assert len(set(pids)) == 3 and os.getpid() not in pids  # a process per step


def test_no_workers_is_a_config_error_and_run_needs_the_with_block():
    with pytest.raises(ConfigError, match='jobs must be >= 1'):
        Steps(0, print)
    with pytest.raises(RuntimeError, match='with-block'):
        Steps(1, print).run('x', [Step('k', 'k', os.getpid)])
