"""``lipfault demo --duration``: the simulated robot and the pipeline start, status lines come,
and everything stops cleanly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lipfault_ros.training.tiny import train_synthetic_model


@pytest.fixture(scope='session')
def tiny_artifact(tmp_path_factory) -> Path:
    return train_synthetic_model(tmp_path_factory.getbasetemp() / 'tiny_pipeline_model')


def _run_demo(artifact: Path, duration: float, fault: str) -> tuple[str, list[str]]:
    """``lipfault demo`` for ``duration`` s with ``fault``: its stdout and status lines."""
    proc = subprocess.run(
        [sys.executable, '-m', 'lipfault_ros.cli', 'demo', '--model', str(artifact),
         '--duration', str(duration), '--device', 'cpu', '--fault', fault],
        capture_output=True, text=True, timeout=90, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, [line for line in proc.stdout.splitlines() if line.startswith('t=')]


def test_demo_runs_for_its_duration_and_prints_status_lines(tiny_artifact):
    stdout, lines = _run_demo(tiny_artifact, 8, 'wrench:bias:0.8:2:4')
    assert len(lines) >= 5, stdout
    assert any('wrench' in line and 'tuples/s' in line for line in lines)
    assert any(' ok' in line or 'FAULT' in line for line in lines[2:])
    # the closing line counts the alarms raised, consistent with the status lines
    summary = re.search(r'alarms raised: camera (\d+) \([\d.]+/h\), wrench (\d+) '
                        r'\([\d.]+/h\), joints (\d+) \([\d.]+/h\)', stdout)
    assert summary, stdout[-2000:]
    for name, count in zip(('camera', 'wrench', 'joints'), summary.groups()):
        if any(f'{name} FAULT' in line for line in lines):  # a line saw the alarm up
            assert int(count) > 0, (name, stdout[-3000:])


def test_demo_refuses_an_unknown_fault(tiny_artifact):
    proc = subprocess.run(
        [sys.executable, '-m', 'lipfault_ros.cli', 'demo', '--model', str(tiny_artifact),
         '--fault', 'wrench:melt:0.5:1:1'], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert 'melt' in proc.stderr


def test_a_clean_demo_run_injects_nothing(tiny_artifact):
    stdout, lines = _run_demo(tiny_artifact, 6, 'none')
    assert len(lines) >= 3 and all(line.endswith('injected: none') for line in lines), \
        stdout[-2000:]
    assert 'alarms raised: camera' in stdout
