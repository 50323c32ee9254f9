"""``lipfault demo --duration``: the simulated robot and the pipeline start, status lines come,
and everything stops cleanly."""

from __future__ import annotations

import json
import os
import re
import shutil
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


def test_demo_with_view_serves_the_pipeline_to_a_foxglove_client(tiny_artifact):
    import threading

    from view.wsclient import FoxgloveClient

    proc = subprocess.Popen(
        [sys.executable, '-m', 'lipfault_ros.cli', 'demo', '--model', str(tiny_artifact),
         '--duration', '16', '--device', 'cpu', '--fault', 'wrench:bias:0.8:2:4', '--view',
         '--view-port', '0'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    url = threading.Event()
    found: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            hit = re.search(r'live view on (ws://127\.0\.0\.1:\d+)', line)
            if hit and not found:
                found.append(hit.group(1))
                url.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert url.wait(60), ''.join(lines)[-3000:]
        with FoxgloveClient(found[0]) as client:
            # the pipeline's verdicts and its corrected wrench reach the view while it runs
            assert client.wait_for(lambda: {'/fault_status', '/wrench/corrected'}
                                   <= set(client.messages), 15.0), sorted(client.messages)
            status = client.last('/fault_status')
            assert {'camera', 'wrench', 'joints'} <= set(status), status
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
    text = ''.join(lines)
    assert code == 0 and 'Traceback' not in text, text[-3000:]
    assert 'alarms raised: camera' in text


def test_ctrl_c_stops_the_demo_and_its_view_cleanly(tiny_artifact, ctrl_c):
    code, text = ctrl_c(['demo', '--model', str(tiny_artifact), '--device', 'cpu', '--view',
                         '--view-port', '0'], 'live view on ws://127.0.0.1:')
    assert code == 0 and 'Traceback' not in text, text[-3000:]
    assert 'lipfault demo: stopped' in text and 'alarms raised: camera' in text, text[-3000:]


def test_a_cached_default_model_of_another_recipe_is_made_again(tiny_artifact, tmp_path,
                                                                 monkeypatch, capsys):
    from lipfault_ros.nodes import demo

    cached = tmp_path / 'default'
    shutil.copytree(tiny_artifact, cached)
    assert not demo.is_current(cached)  # no recipe beside it: made before recipes were kept
    (cached / demo.RECIPE_FILE).write_text(json.dumps(demo.recipe()))
    assert demo.is_current(cached)
    # the simulator's data changed since: the cache is stale
    monkeypatch.setattr('lipfault_ros.sim.config.SIM_REVISION',
                        demo.recipe()['sim_revision'] + 1)
    assert not demo.is_current(cached)
    assert 'made by another recipe' in capsys.readouterr().out
