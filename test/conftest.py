"""Shared test set-up.

DDS must stay on this machine: discovery is limited to localhost and every test session gets its
own ROS_DOMAIN_ID (unless the caller chose one), so parallel runs never see each other's topics.
This runs before any test module imports rclpy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('ROS_DOMAIN_ID', str(100 + os.getpid() % 100))
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
# Two cores: keep torch from oversubscribing them when several processes run.
os.environ.setdefault('OMP_NUM_THREADS', '1')

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: The upstream ROS 2 Python tools without wheels (launch, launch_testing, ros2cli): beside the
#: checkout, on CI as here.
ROS2PY = ROOT.parent / 'shared' / 'ros2py'


@pytest.fixture
def ros_context():
    """A fresh rclpy Context, initialised for one test and shut down after it."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        context.try_shutdown()


def _need_ros2py(path: Path, why: str) -> None:
    """Skip when ``path`` of ../shared/ros2py is absent (a plain clone: the upstream packages
    that have no wheel are not there), saying what is missing; fail on CI (``CI=true``),
    which has the folder, so no test there skips."""
    if path.is_file():
        return
    reason = f'{path} is absent: {why} (see {ROS2PY}/README.md)'
    if os.environ.get('CI', '').lower() in ('true', '1'):
        pytest.fail(f'{reason}; CI must provide it')
    pytest.skip(reason)


@pytest.fixture(scope='session')
def ros2py_env() -> dict[str, str]:
    """The environment that ../shared/ros2py/env.sh gives: its ``ros2``/``launch_test`` first on
    PATH, then this interpreter's bin (their ``python3``), its packages on PYTHONPATH; DDS stays
    local as above. Skips when the folder is absent, but fails on CI (``CI=true``), which has it.
    """
    _need_ros2py(ROS2PY / 'bin' / 'ros2', 'launch, launch_testing and ros2cli have no wheels')
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    env['PATH'] = os.pathsep.join([str(ROS2PY / 'bin'), str(Path(sys.executable).parent),
                                   env.get('PATH', '')])
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (str(ROS2PY / 'lib'), str(ROS2PY / 'stubs'), env.get('PYTHONPATH')) if p)
    return env


@pytest.fixture
def ros2py_import(monkeypatch) -> Path:
    """../shared/ros2py's packages importable in this process (message_filters for the
    pipeline's ``sync_backend: message_filters``): its ``lib`` first on sys.path for one test.
    Skips when the folder is absent, but fails on CI (``CI=true``), which has it."""
    lib = ROS2PY / 'lib'
    _need_ros2py(lib / 'message_filters' / '__init__.py', 'message_filters has no wheel')
    monkeypatch.syspath_prepend(str(lib))
    return lib


@pytest.fixture(scope='session')
def colcon_install(tmp_path_factory) -> Path:
    """This package built by ``colcon build`` in a fresh workspace (once per session, shared by
    the tests that start it): the install prefix ``install/lipfault_ros``."""
    colcon = (shutil.which('colcon', path=str(Path(sys.executable).parent))
              or shutil.which('colcon'))
    assert colcon, 'colcon is part of the test requirements'
    workspace = tmp_path_factory.mktemp('colcon_ws')
    src = workspace / 'src' / 'lipfault_ros'
    src.mkdir(parents=True)
    for name in ('package.xml', 'setup.py', 'setup.cfg', 'LICENSE'):
        shutil.copy(ROOT / name, src / name)
    for name in ('resource', 'lipfault_ros', 'launch', 'config'):
        shutil.copytree(ROOT / name, src / name,
                        ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
    result = subprocess.run([colcon, 'build', '--event-handlers', 'console_direct-'],
                            cwd=workspace, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return workspace / 'install' / 'lipfault_ros'


@pytest.fixture(scope='session')
def launch_env(ros2py_env, colcon_install, tmp_path_factory) -> dict[str, str]:
    """:func:`ros2py_env` plus what ``source install/setup.bash`` adds for the colcon-built
    package, so that ``ros2 launch lipfault_ros ...`` and ``launch_test`` find it; ROS logs go to
    a temporary directory."""
    site = next(colcon_install.glob('lib/python3*/site-packages'))
    env = dict(ros2py_env, PYTHONUNBUFFERED='1',
               ROS_LOG_DIR=str(tmp_path_factory.mktemp('ros_log')))
    env['AMENT_PREFIX_PATH'] = os.pathsep.join(
        p for p in (str(colcon_install), env.get('AMENT_PREFIX_PATH')) if p)
    env['PYTHONPATH'] = os.pathsep.join((str(site), env['PYTHONPATH']))
    return env


@pytest.fixture(scope='session')
def rviz2_installed(launch_env) -> bool:
    """Whether rviz2 is on :func:`launch_env`'s ament index (tests pass ``rviz:=true`` only
    where it is not, to see the launch go on without it)."""
    return any((Path(p) / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'rviz2')
               .is_file() for p in launch_env['AMENT_PREFIX_PATH'].split(os.pathsep) if p)


@pytest.fixture
def ctrl_c():
    """``ctrl_c(args, ready, signals=1)``: run ``python -m lipfault_ros.cli *args``, send SIGINT
    once a line of its output contains ``ready`` (``signals`` times, 50 ms apart: ``ros2 launch``
    forwards the terminal's Ctrl-C as a second one), and return (exit code, everything it
    printed). A process
    still running 30 s after the signal fails the test with every thread's stack (faulthandler).

    The command runs in a process group of its own, and whatever is left of that group when the
    test ends is killed: a command that hangs must not leave its child nodes (a simulator, a
    view) publishing into the DDS domain of the tests that follow."""
    import os
    import signal
    import subprocess
    import sys
    import time

    def kill_group(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # the group is gone already

    def group_alive(pgid: int) -> list[str]:
        """The command lines of the group's processes still running (zombies do not count)."""
        import psutil
        alive = []
        for p in psutil.process_iter(['cmdline', 'status']):
            try:
                if os.getpgid(p.pid) == pgid and p.info['status'] != psutil.STATUS_ZOMBIE:
                    alive.append(' '.join(p.info['cmdline'] or [])[:120])
            except (ProcessLookupError, psutil.Error):
                pass
        return alive

    def run(args: list[str], ready: str, signals: int = 1) -> tuple[int, str]:
        proc = subprocess.Popen([sys.executable, '-m', 'lipfault_ros.cli', *args],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ, PYTHONFAULTHANDLER='1'),
                                start_new_session=True,
                                # as from a terminal: an in-process node test can leave this
                                # process ignoring SIGINT, and a child would inherit that
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        lines = []
        try:
            for line in proc.stdout:
                lines.append(line)
                if ready in line:
                    break
            for i in range(signals):
                if i:
                    time.sleep(0.05)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
                kill_group(proc)  # its children hold the output pipe open
                out, _ = proc.communicate(timeout=30)
                raise AssertionError(f'lipfault {args[0]} did not end 30 s after Ctrl-C; its '
                                     'threads:\n' + ''.join(lines) + out) from None
            left = group_alive(proc.pid)
            kill_group(proc)  # a child left behind would hold the output pipe open
            out, _ = proc.communicate(timeout=30)
            assert not left, f'lipfault {args[0]} ended but left {left} running'
        finally:
            kill_group(proc)
        return proc.returncode, ''.join(lines) + out

    return run
