"""``ros2 launch lipfault_ros pipeline.launch.py`` for real, as on a robot.

The package is colcon-built once into a temporary workspace; each test starts ``ros2 launch`` with
the simulated robot (``sim:=true``) and a tiny model, waits for ``~/fault_status`` over DDS, sends
SIGINT to the launch process and requires a clean end: exit code 0, no traceback, no node died,
no node process left behind.

The tools (launch, launch_ros, ros2cli) come from ../shared/ros2py; without it the tests skip,
except on CI (``CI=true``), where they fail. DDS stays local (conftest: LOCALHOST discovery, this
session's ROS_DOMAIN_ID, inherited by every process started here).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from procs import processes_under

LAUNCH_TIMEOUT_S = 45.0  # torch and pybullet start on two busy cores
HARDWARE_ID = 'from_params_file'


@pytest.fixture(scope='module')
def model(tmp_path_factory) -> Path:
    """The tiny model of the pipeline node tests (same path: trained once per session). It knows
    the Panda's seven arm joints the sim publishes; camera frames are resized to its size."""
    import torch

    from lipfault_ros.training.tiny import train_synthetic_model

    torch.set_num_threads(1)
    return train_synthetic_model(tmp_path_factory.getbasetemp() / 'tiny_pipeline_model')


@pytest.fixture
def params_file(tmp_path, model) -> Path:
    """A robot's own parameter file: names the model, marks its statuses, shrinks the camera."""
    path = tmp_path / 'robot.yaml'
    path.write_text(f"""/**/lipfault_pipeline:
  ros__parameters:
    model: '{model}'
    hardware_id: '{HARDWARE_ID}'
/**/lipfault_sim:
  ros__parameters:
    image_width: 32
    image_height: 32
""")
    return path


def _first_status(context, topic: str, timeout_s: float):
    """The first DiagnosticArray on ``topic`` within ``timeout_s``, or None."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from lipfault_ros.ros.qos import qos_profile

    got = []
    node = Node('launch_test_listener', context=context)
    node.create_subscription(DiagnosticArray, topic, got.append, qos_profile('reliable', 10))
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + timeout_s
        while not got and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.2)
    finally:
        executor.shutdown()
        node.destroy_node()
    return got[0] if got else None


def _launch(env, prefix, log: Path, context, topic: str, *args: str):
    """Run ``ros2 launch`` with ``args`` until ``topic`` has a status, then SIGINT it.

    Returns (first status or None, exit code, output, node processes seen, processes left)."""
    cmd = ['ros2', 'launch', 'lipfault_ros', 'pipeline.launch.py', *args]
    with log.open('w') as out:
        # SIGINT back to its default in the child: a suite started as a background job
        # (nohup, &) has it ignored, and an ignored SIGINT would be inherited by launch
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        status = _first_status(context, topic, LAUNCH_TIMEOUT_S)
        nodes = [p for p in processes_under(prefix)
                 if any(n in ' '.join(p.info['cmdline']) for n in ('pipeline_node', 'sim_node'))]
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _, left = psutil.wait_procs(processes_under(prefix), timeout=5)
    for p in left:  # do not leave them to the next test
        p.kill()
    return status, code, log.read_text(), nodes, left


def _assert_clean_end(code: int, output: str, nodes, left) -> None:
    assert len(nodes) == 2, f'expected pipeline_node and sim_node, saw {nodes}\n{output}'
    assert code == 0, output
    assert 'Traceback' not in output, output
    assert 'process has died' not in output, output  # a node that exited non-zero
    assert "sending signal 'SIGTERM'" not in output, output  # SIGINT alone stopped them
    assert not left, f'orphaned node processes: {left}\n{output}'


def test_model_argument_and_sim_give_fault_status_and_sigint_ends_cleanly(
        launch_env, colcon_install, rviz2_installed, model, ros_context, tmp_path):
    args = ['sim:=true', f'model:={model}']
    if not rviz2_installed:  # rviz:=true without rviz2: a warning, the rest starts
        args.append('rviz:=true')
    status, code, output, nodes, left = _launch(
        launch_env, colcon_install, tmp_path / 'launch.log', ros_context,
        '/lipfault_pipeline/fault_status', *args)
    assert status is not None, f'no /lipfault_pipeline/fault_status\n{output}'
    assert {s.name for s in status.status} == {'camera', 'wrench', 'joints'}
    if not rviz2_installed:
        assert 'rviz2 is not installed' in output, output
    _assert_clean_end(code, output, nodes, left)


def test_params_file_model_is_used_when_no_model_argument_is_given(
        launch_env, colcon_install, params_file, ros_context, tmp_path):
    status, code, output, nodes, left = _launch(
        launch_env, colcon_install, tmp_path / 'launch.log', ros_context,
        '/lipfault_pipeline/fault_status', 'sim:=true', f'params_file:={params_file}')
    assert status is not None, f'the params file model was not loaded\n{output}'
    assert {s.hardware_id for s in status.status} == {HARDWARE_ID}
    _assert_clean_end(code, output, nodes, left)


def test_namespace_applies_the_params_file(
        launch_env, colcon_install, params_file, ros_context, tmp_path):
    status, code, output, nodes, left = _launch(
        launch_env, colcon_install, tmp_path / 'launch.log', ros_context,
        '/arm1/lipfault_pipeline/fault_status', 'sim:=true', 'namespace:=arm1',
        f'params_file:={params_file}', 'view:=true', 'view_port:=0')
    assert status is not None, f'no /arm1/lipfault_pipeline/fault_status\n{output}'
    assert {s.hardware_id for s in status.status} == {HARDWARE_ID}
    assert 'camera 30 Hz 32x32' in output  # the sim section applied under /arm1 too
    # the live view started with view.yaml's defaults, its topics in the namespace
    assert 'live view on ws://127.0.0.1:' in output, output
    assert '/fault_status <- /arm1/lipfault_pipeline/fault_status' in output, output
    _assert_clean_end(code, output, nodes, left)


def test_use_sim_time_with_the_sim_runs_on_the_clock_the_sim_publishes(
        launch_env, colcon_install, model, ros_context, tmp_path):
    status, code, output, nodes, left = _launch(
        launch_env, colcon_install, tmp_path / 'launch.log', ros_context,
        '/lipfault_pipeline/fault_status', 'sim:=true', 'use_sim_time:=true', f'model:={model}')
    assert status is not None, f'no fault_status under use_sim_time\n{output}'
    assert 'this simulator is the clock source' in output, output
    _assert_clean_end(code, output, nodes, left)
