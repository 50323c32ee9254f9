"""``lipfault demo --duration``: the simulated robot and the pipeline start, status lines come,
and everything stops cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lipfault_ros.bench.pipeline import train_synthetic_model


@pytest.fixture(scope='session')
def tiny_artifact(tmp_path_factory) -> Path:
    return train_synthetic_model(tmp_path_factory.getbasetemp() / 'tiny_pipeline_model')


def test_demo_runs_for_its_duration_and_prints_status_lines(tiny_artifact):
    proc = subprocess.run(
        [sys.executable, '-m', 'lipfault_ros.cli', 'demo', '--model', str(tiny_artifact),
         '--duration', '8', '--device', 'cpu', '--fault', 'wrench:bias:0.8:2:4'],
        capture_output=True, text=True, timeout=90, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith('t=')]
    assert len(lines) >= 5, proc.stdout + proc.stderr[-3000:]
    assert any('wrench' in line and 'tuples/s' in line for line in lines)
    assert any(' ok' in line or 'FAULT' in line for line in lines[2:])


def test_demo_refuses_an_unknown_fault(tiny_artifact):
    proc = subprocess.run(
        [sys.executable, '-m', 'lipfault_ros.cli', 'demo', '--model', str(tiny_artifact),
         '--fault', 'wrench:melt:0.5:1:1'], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert 'melt' in proc.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_demo_view_serves_the_live_pipeline_to_a_foxglove_client(tiny_artifact):
    import time

    from view.wsclient import FoxgloveClient

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, '-m', 'lipfault_ros.cli', 'demo', '--model', str(tiny_artifact),
         '--duration', '30', '--device', 'cpu', '--view', '--view-port', str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    try:
        client, deadline = None, time.monotonic() + 30.0
        while client is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                client = FoxgloveClient(f'ws://127.0.0.1:{port}', timeout_s=2.0)
            except OSError:
                time.sleep(0.3)
        assert client is not None, 'the live view never accepted a connection'
        with client:
            wanted = {'/fault_status', '/camera/raw', '/camera/corrected', '/wrench/raw'}
            assert client.wait_for(lambda: wanted <= set(client.messages), 40.0), \
                sorted(client.messages)
            status = client.last('/fault_status')
            assert {'camera', 'wrench', 'joints'} <= set(status)
            assert isinstance(status['wrench']['threshold'], (int, float))
            assert client.last('/camera/raw').width == client.last('/camera/corrected').width
    finally:
        proc.send_signal(2)
        out, _ = proc.communicate(timeout=60)
    assert f'live view on ws://127.0.0.1:{port}' in out, out[-3000:]
    assert proc.returncode == 0, out[-3000:]
