"""``ros2 param`` and ``ros2 lifecycle`` on the running pipeline, as an operator would use them.

The colcon-built package runs under ``ros2 launch ... sim:=true``; every change goes through
the real ``ros2`` command line (../shared/ros2py) over DDS, and its effect is read back from
what the node publishes: a bad value is refused with the reason and leaves the value as it
was, a live threshold offset moves the threshold in ``~/fault_status``, a live
``diagnostics_period`` changes how often ``/diagnostics`` arrives, a configure-time setting is
refused while active and accepted while inactive, and the lifecycle transitions stop and
restart the outputs. Skips without ../shared/ros2py, fails on CI without it (conftest).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from procs import processes_under

NODE = '/lipfault_pipeline'
START_TIMEOUT_S = 60.0  # torch and pybullet start on two busy cores
CLI_TIMEOUT_S = 30.0  # one try; a hung one is tried again (see _ros2)


@pytest.fixture(scope='module')
def model(tmp_path_factory) -> Path:
    """The pipeline tests' tiny model (the same path: trained once per session)."""
    import torch

    from lipfault_ros.training.tiny import train_synthetic_model

    torch.set_num_threads(1)
    return train_synthetic_model(tmp_path_factory.getbasetemp() / 'tiny_pipeline_model')


class _Listener:
    """``~/fault_status`` and the node's ``/diagnostics`` summaries, received on a thread."""

    def __init__(self, context) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        from lipfault_ros.ros.qos import qos_profile

        self.statuses: list[tuple[float, object]] = []
        self.summaries: list[float] = []
        self.node = Node('ros_cli_test_listener', context=context)
        qos = qos_profile('reliable', 10)
        self.node.create_subscription(DiagnosticArray, f'{NODE}/fault_status',
                                      lambda m: self.statuses.append((time.monotonic(), m)),
                                      qos)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._summary, qos)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._stop = False
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _summary(self, msg) -> None:
        if any(s.name.startswith('lipfault_pipeline') for s in msg.status):
            self.summaries.append(time.monotonic())

    def _spin(self) -> None:
        while not self._stop:
            self.executor.spin_once(timeout_sec=0.1)

    def close(self) -> None:
        self._stop = True
        self.thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()

    def threshold(self, modality: str, after: float, timeout_s: float = 20.0,
                  expect: float | None = None) -> float:
        """The threshold of ``modality`` in the first status received after ``after``; with
        ``expect``, in the first one that carries it (a status the node sent before a change
        applied can still arrive after the change returned), else the last one received."""
        deadline = time.monotonic() + timeout_s
        seen = None
        while time.monotonic() < deadline:
            for stamp, msg in list(self.statuses):
                if stamp <= after:
                    continue
                for status in msg.status:
                    if status.name == modality:
                        values = {kv.key: kv.value for kv in status.values}
                        seen = float(values['threshold'])
                        if expect is None or abs(seen - expect) <= 1e-4:
                            return seen
            time.sleep(0.1)
        if seen is None:
            raise AssertionError(f'no {NODE}/fault_status after the change')
        return seen

    def summaries_between(self, start: float, end: float) -> int:
        return sum(start <= t < end for t in self.summaries)


def _ros2(env, verb: str, command: str, *args: str) -> tuple[int, str]:
    """``ros2 VERB COMMAND ARGS`` without the ros2 daemon (no process outlives the test),
    given time to discover the node on two busy cores.

    Tried up to three times: when discovery misses a busy node ("Node not found"), and when
    the command hangs. ``ros2 lifecycle`` and ``ros2 param`` wait for a service response with
    no time limit, and a response is lost when the server has not yet matched the reader of a
    client that discovered it a moment before. Only idempotent commands retry on a hang; a
    transition is checked through ``_transition``.
    """
    # ``ros2 param`` waits for the node itself (``--timeout``), so its fixed discovery spin
    # can be short; ``ros2 lifecycle`` has only the spin to find it, longer on each retry (a
    # fresh-clone CI run once missed the node in three 2 s spins)
    idempotent = not (verb == 'lifecycle' and command == 'set')
    code, text = -1, 'timed out three times'
    for attempt in range(1, 4):
        wait = ['--spin-time', '0.5', '--timeout', '10'] if verb == 'param' else [
            '--spin-time', str(2 * attempt)]
        try:
            result = subprocess.run(['ros2', verb, command, '--no-daemon', *wait, *args],
                                    env=env, capture_output=True, text=True,
                                    timeout=CLI_TIMEOUT_S)
        except subprocess.TimeoutExpired as hung:
            if not idempotent:
                return -1, f'timed out: {hung}'
            continue
        code, text = result.returncode, result.stdout + result.stderr
        if 'Node not found' not in text:
            break
    return code, text


def _transition(env, transition: str, expected: str) -> None:
    """``ros2 lifecycle set NODE TRANSITION``, then the state through ``ros2 lifecycle get``:
    the state is what counts (the set's reply may be the thing that was lost)."""
    code, text = _ros2(env, 'lifecycle', 'set', NODE, transition)
    assert 'Transitioning successful' in text or text.startswith('timed out'), text
    code, state = _ros2(env, 'lifecycle', 'get', NODE)
    assert state.startswith(f'{expected} ['), (text, state)


def test_ros2_param_and_lifecycle_on_the_running_pipeline(
        launch_env, colcon_install, model, ros_context, tmp_path):
    log = tmp_path / 'launch.log'
    with log.open('w') as out:
        launch = subprocess.Popen(
            ['ros2', 'launch', 'lipfault_ros', 'pipeline.launch.py', 'sim:=true',
             f'model:={model}'], env=launch_env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    listener = _Listener(ros_context)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not listener.statuses and time.monotonic() < deadline:
            time.sleep(0.2)
        assert listener.statuses, f'no {NODE}/fault_status\n{log.read_text()}'

        # a value outside the declared choices is refused, with the reason, and not kept
        code, text = _ros2(launch_env, 'param', 'set', NODE, 'input_qos', 'bogus')
        assert 'Setting parameter failed' in text and 'input_qos' in text, text
        code, text = _ros2(launch_env, 'param', 'get', NODE, 'input_qos')
        assert 'sensor_data' in text, text

        # a live threshold offset: the published threshold moves by it
        before = listener.threshold('joints', after=time.monotonic())
        code, text = _ros2(launch_env, 'param', 'set', NODE, 'threshold_offset_joints', '2.5')
        assert code == 0 and 'Set parameter successful' in text, text
        after = listener.threshold('joints', after=time.monotonic(), expect=before + 2.5)
        assert after == pytest.approx(before + 2.5, abs=1e-4)

        # slop applies live; a configure-time setting is refused while active
        code, text = _ros2(launch_env, 'param', 'set', NODE, 'slop', '0.05')
        assert code == 0 and 'Set parameter successful' in text, text
        code, text = _ros2(launch_env, 'param', 'get', NODE, 'slop')
        assert '0.05' in text, text
        code, text = _ros2(launch_env, 'param', 'set', NODE, 'queue_span', '1.0')
        assert 'Setting parameter failed' in text and 'cannot change while active' in text, text

        # diagnostics_period applies live: the summaries come five times as often
        t0 = time.monotonic()
        time.sleep(2.0)
        slow = listener.summaries_between(t0, time.monotonic())
        code, text = _ros2(launch_env, 'param', 'set', NODE, 'diagnostics_period', '0.2')
        assert code == 0 and 'Set parameter successful' in text, text
        t1 = time.monotonic()
        time.sleep(2.0)
        fast = listener.summaries_between(t1, time.monotonic())
        assert slow <= 4 and fast >= 6, (slow, fast)  # 2 and 10 expected

        # lifecycle: deactivate stops the outputs, a configure-time setting is accepted then,
        # activate starts them again
        code, text = _ros2(launch_env, 'lifecycle', 'get', NODE)
        assert text.startswith('active'), text
        _transition(launch_env, 'deactivate', 'inactive')
        time.sleep(1.0)
        quiet = time.monotonic()
        time.sleep(2.0)
        assert not [s for s, _ in listener.statuses if s > quiet], 'inactive but publishing'
        code, text = _ros2(launch_env, 'param', 'set', NODE, 'queue_span', '1.0')
        assert code == 0 and 'Set parameter successful' in text, text
        _transition(launch_env, 'activate', 'active')
        again = time.monotonic()
        assert listener.threshold('joints', after=again, expect=after) == \
            pytest.approx(after, abs=1e-4)
    finally:
        listener.close()
        if launch.poll() is None:
            launch.send_signal(signal.SIGINT)
        try:
            code = launch.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(launch.pid, signal.SIGKILL)
            launch.wait()
            code = None
        _, left = psutil.wait_procs(processes_under(colcon_install), timeout=5)
        for p in left:
            p.kill()
    output = log.read_text()
    assert code == 0 and 'Traceback' not in output, output
    assert not left, f'orphaned node processes: {left}\n{output}'
