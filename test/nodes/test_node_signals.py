"""The node processes end cleanly on every stop signal a robot's tools send: SIGTERM (systemd,
``docker stop``, launch's escalation), SIGINT (Ctrl-C), and a second signal while the first
shutdown is still under way (Ctrl-C under ``ros2 launch`` arrives twice; an impatient operator
presses it again). Exit code 0, no traceback, within a few seconds, with the pipeline busy
(active, sensors streaming) when the signal comes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lipfault_ros.training.tiny import train_synthetic_model

NODE = ('import sys; from lipfault_ros.nodes.{0} import main; sys.exit(main(sys.argv))')
STOP_S = 15.0  # the node's own clean-up (executor, worker, publishers) on two busy cores


@pytest.fixture(scope='module')
def model(tmp_path_factory) -> Path:
    return train_synthetic_model(tmp_path_factory.getbasetemp() / 'tiny_pipeline_model')


def _start(module: str, *params: str) -> subprocess.Popen:
    cmd = [sys.executable, '-c', NODE.format(module), '--ros-args']
    for p in params:
        cmd += ['-p', p]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONFAULTHANDLER='1'))


def _wait_for(proc: subprocess.Popen, text: str, timeout_s: float = 60.0) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout_s
    for line in proc.stdout:
        lines.append(line)
        if text in line or time.monotonic() > deadline:
            break
    assert any(text in line for line in lines), ''.join(lines)
    return lines


def _end(proc: subprocess.Popen, lines: list[str]) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
        out, _ = proc.communicate(timeout=10)
        raise AssertionError('the node did not end:\n' + ''.join(lines) + out) from None
    return proc.returncode, ''.join(lines) + out


@pytest.mark.parametrize('signals', [(signal.SIGTERM,), (signal.SIGINT, signal.SIGINT),
                                     (signal.SIGINT, signal.SIGTERM)],
                         ids=['sigterm', 'sigint-twice', 'sigint-then-sigterm'])
def test_the_busy_pipeline_ends_cleanly_on_every_stop_signal(model, signals):
    sim = _start('sim', 'image_width:=32', 'image_height:=32')
    node = _start('pipeline', f'model:={model}', 'device:=cpu')
    try:
        lines = _wait_for(node, 'active on cpu')
        time.sleep(2.0)  # tuples flowing: the signal lands in the middle of the work
        for i, sig in enumerate(signals):
            if i:
                time.sleep(0.05)  # the first shutdown is under way
            node.send_signal(sig)
        code, out = _end(node, lines)
    finally:
        for proc in (node, sim):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    assert code == 0, out[-3000:]
    assert 'Traceback' not in out and 'Failed to publish' not in out, out[-3000:]


def test_the_simulator_ends_cleanly_on_sigterm():
    sim = _start('sim', 'image_width:=32', 'image_height:=32')
    lines = _wait_for(sim, 'camera 30 Hz')
    time.sleep(1.0)
    sim.send_signal(signal.SIGTERM)
    code, out = _end(sim, lines)
    assert code == 0 and 'Traceback' not in out, out[-3000:]
