"""``lipfault demo``: the simulated robot, the pipeline and a live status line, one command.

The simulated robot (``sim_node``) runs as a child process with a fault scheduled a few seconds
in; the pipeline node runs in this process; once a second a line shows, per modality, whether
the model sees a fault and corrects it, with latency and tuples/s. Ctrl-C (or ``--duration``)
stops everything cleanly.

Model: ``--model PATH``, else the cached quick model at ``models/default`` of the source tree
(``~/.cache/lipfault_ros/models/default`` for an installed package). When there is none yet, the
demo first records about a minute of simulated data into a temporary bag and trains the quick
preset on it (a few minutes on a laptop CPU, once), then caches it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lipfault_ros import settings
from lipfault_ros.nodes.pipeline_params import PipelineParams
from lipfault_ros.nodes.sim import SimNodeParams
from lipfault_ros.ros.shutdown import GracefulStop
from lipfault_ros.topics import PIPELINE_OUTPUTS, TRUTH_TOPIC

__all__ = ['RECIPE_FILE', 'add_arguments', 'default_model_path', 'is_current', 'main',
           'prepare_model', 'recipe']

DEFAULT_FAULT = 'wrench:bias:0.8:5:6'
#: The default model learns from several short episodes (seeds other than the live demo's, so
#: the demo always runs on an episode the model never saw); the last one is held out for
#: validation and threshold calibration (split by bag)
#: (six short episodes rather than three long ones: each seed is another scene, lighting and
#: camera pose, and variety is what keeps the camera from crying wolf on a new one)
TRAIN_SEEDS: tuple[int, ...] = (101, 102, 103, 104, 105, 106)
RECORD_SECONDS = 15.0
#: what the cached default model was made from, written beside it (see :func:`recipe`)
RECIPE_FILE = 'demo_recipe.json'


def recipe() -> dict[str, Any]:
    """How :func:`prepare_model` makes the default model: its episodes and the simulator's
    revision. A cache made by another recipe is made again, so a change to the simulator or to
    the episodes reaches a checkout that already holds a default model."""
    from lipfault_ros.sim.config import SIM_REVISION

    return {'sim_revision': SIM_REVISION, 'train_seeds': list(TRAIN_SEEDS),
            'record_seconds': RECORD_SECONDS}


def default_model_path() -> Path:
    """Where the quick default model is cached."""
    root = Path(__file__).resolve().parents[2]
    if (root / 'setup.py').is_file() and os.access(root, os.W_OK):
        return root / 'models' / 'default'
    return Path.home() / '.cache' / 'lipfault_ros' / 'models' / 'default'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--model', type=Path, metavar='ARTIFACT',
                        help='model artifact (default: the cached quick model, trained on first '
                             'use)')
    parser.add_argument('--duration', type=float, metavar='SECONDS',
                        help='stop after this many seconds (default: run until Ctrl-C)')
    parser.add_argument('--fault', default=DEFAULT_FAULT, metavar='SPEC',
                        help='fault the robot gets, modality:type:severity:start_s:duration_s '
                             f'(default {DEFAULT_FAULT}; see lipfault faults), or none: a '
                             'clean run, whose closing line counts the false alarms')
    # the pipeline's device and the simulator's seed, as the nodes declare them
    settings.add_options(parser, PipelineParams, only=('device',))
    settings.add_options(parser, SimNodeParams, only=('seed',))
    parser.add_argument('--view', action='store_true',
                        help='also serve the live view to Foxglove (lipfault view: raw next to '
                             'corrected, scores, thresholds, alarms; ws://127.0.0.1:PORT)')
    parser.add_argument('--view-port', type=int, default=None, metavar='PORT',
                        help='port of the live view (default 8765; 0: any free port)')


def prepare_model(path: Path) -> Path:
    """Record :data:`TRAIN_SEEDS` episodes and train the quick preset into ``path``, calibrated
    on the last episode (prints progress)."""
    from lipfault_ros.sim.config import SimConfig
    from lipfault_ros.sim.record import record
    from lipfault_ros.train_cli import load_settings, train_from_bags

    print(f'lipfault demo: no model at {path}; one-time set-up: record {len(TRAIN_SEEDS)} '
          f'episodes of {RECORD_SECONDS:.0f} s of simulated data and train the quick model',
          flush=True)
    with tempfile.TemporaryDirectory(prefix='lipfault_demo_') as tmp:
        bags = []
        for seed in TRAIN_SEEDS:
            bags.append(Path(tmp) / f'sim_{seed}')
            record(bags[-1], RECORD_SECONDS, SimConfig(seed=seed), progress=True)
        print('lipfault demo: training (quick preset)...', flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        settings = load_settings(quick=True, data_changes={'split': 'bag'})
        train_from_bags(bags, path, settings=settings, progress=True,
                        cache_dir=Path(tmp) / 'cache')
    (path / RECIPE_FILE).write_text(json.dumps(recipe(), indent=1))
    print(f'lipfault demo: model cached at {path}', flush=True)
    return path


def is_current(path: Path) -> bool:
    """Whether the cached default model at ``path`` loads with this version of the package, is
    of its current artifact format (an older format may still load, without the newer
    features, which the demo's own cache should have) and was made by the current
    :func:`recipe`; says why not."""
    from lipfault_ros.artifact import CONFIG_FILE, FORMAT_VERSION, load_artifact
    from lipfault_ros.errors import LipfaultError
    try:
        load_artifact(path)
        version = json.loads((path / CONFIG_FILE).read_text()).get('format_version')
        if version != FORMAT_VERSION:
            raise LipfaultError(f'format {version}, this package writes {FORMAT_VERSION}')
        marker = path / RECIPE_FILE
        made = json.loads(marker.read_text()) if marker.is_file() else None
        if made != recipe():
            raise LipfaultError(f'made by another recipe ({made}), this package makes '
                                f'{recipe()}')
    except (LipfaultError, ValueError) as exc:
        print(f'lipfault demo: cached model {path} is unusable ({exc}); training it again',
              flush=True)
        return False
    return True


def _finite_or_zero(value: float) -> float:
    return float(value) if math.isfinite(value) else 0.0


def _sim_command(spec: Any, seed: int) -> list[str]:
    """The simulated robot's command line; ``spec`` None: no fault."""
    cmd = [sys.executable, '-c',
           'import sys; from lipfault_ros.nodes.sim import main; sys.exit(main(sys.argv))',
           '--ros-args', '-p', f'seed:={seed}']
    if spec is None:
        return cmd
    return cmd + ['-p', f'fault_modality:={spec.modality.value}', '-p', f'fault_type:={spec.kind}',
                  '-p', f'fault_severity:={float(spec.severity)}',
                  '-p', f'fault_start_s:={float(spec.start_s)}',
                  # the node reads a duration of 0 as "until changed"
                  '-p', f'fault_duration_s:={_finite_or_zero(spec.duration_s)}']


def _view_command(port: int | None) -> list[str]:
    """The live view's command line (``lipfault view``, its own process: the Foxglove server
    and its conversions stay off the pipeline's executor)."""
    cmd = [sys.executable, '-m', 'lipfault_ros.cli', 'view']
    return cmd if port is None else cmd + ['--port', str(port)]


def _stop(proc: subprocess.Popen | None) -> None:
    """Ctrl-C to a child node, then a kill if it does not end within 10 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _View:
    """Collects the per-tuple fault status and formats one line per second; counts the alarms
    raised per modality (``raised``, a clear-to-active change each) for the closing line."""

    def __init__(self) -> None:
        self.tuples = 0
        self.last: dict[str, dict[str, str]] = {}
        self.faults: dict[str, int] = {}
        self.raised: dict[str, int] = {name: 0 for name in ('camera', 'wrench', 'joints')}
        self.truth = 'none'

    def on_status(self, msg: Any) -> None:
        self.tuples += 1
        for s in msg.status:
            values = {kv.key: kv.value for kv in s.values}
            was = self.last.get(s.name, {}).get('active') == 'true'
            self.last[s.name] = values
            if values.get('active') == 'true':  # the fault lifecycle's alarm, not one tuple
                self.faults[s.name] = self.faults.get(s.name, 0) + 1
                if not was:
                    self.raised[s.name] = self.raised.get(s.name, 0) + 1

    def summary(self, seconds: float) -> str:
        """The closing line: tuples and alarms raised per modality, and per hour."""
        hours = max(seconds, 1e-9) / 3600.0
        alarms = ', '.join(f'{name} {n} ({n / hours:.1f}/h)' for name, n in self.raised.items())
        return (f'lipfault demo: {seconds:.0f} s, {self.tuples} tuples; alarms raised: '
                f'{alarms}')

    def on_truth(self, msg: Any) -> None:
        active = [f'{s.name} {s.message}' for s in msg.status if s.level != b'\x00']
        self.truth = ', '.join(active) or 'none'

    def line(self, t: float, rate: float, latency_ms: float) -> str:
        parts = []
        for name in ('camera', 'wrench', 'joints'):
            v = self.last.get(name)
            if v is None:
                parts.append(f'{name:6s} --')
            elif v.get('missing') == 'true':
                parts.append(f'{name:6s} MISSING (reconstructed)')
            elif v.get('active') == 'true':
                # a stream judged faulty for lost messages alone passes its reading through
                out = 'corrected' if v.get('corrected') == 'true' else 'reading passed'
                parts.append(f'{name:6s} FAULT {v.get("alarm", "")} -> {out} '
                             f'({self.faults.get(name, 0)})')
            else:
                parts.append(f'{name:6s} ok')
        self.faults.clear()
        return (f't={t:5.1f}s | ' + ' | '.join(parts) + f' | {rate:4.1f} tuples/s, '
                f'latency {latency_ms:5.1f} ms | injected: {self.truth}')


def main(args: argparse.Namespace) -> int:
    from lipfault_ros.faults import FaultSpec

    spec = None if args.fault.strip().lower() == 'none' else FaultSpec.parse(args.fault)
    # the status line shows missing modalities; the watchdog's own log lines would repeat it
    logging.getLogger('lipfault_ros.sync').setLevel(logging.ERROR)
    model = _resolve_model(args.model)

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from lipfault_ros.errors import LipfaultError
    from lipfault_ros.nodes.pipeline import PipelineNode, pipeline_executor

    stop = GracefulStop(Context())  # Ctrl-C asks the loop to end; the clean-up always runs
    stop.init()
    context = stop.context
    node = monitor = executor = sim = view = live_view = start = None
    try:
        # the model is loaded and warm before the robot starts, so the fault's start time
        # counts from when the status lines begin
        node = PipelineNode(context=context, parameter_overrides=[
            Parameter('model', value=str(model)), Parameter('device', value=args.device)])
        if node.lifecycle_state != 'active':
            raise LipfaultError(f'the pipeline did not start: {node.last_error}')
        sim = subprocess.Popen(_sim_command(spec, args.seed))
        if args.view:
            live_view = subprocess.Popen(_view_command(args.view_port))
        view = _View()
        monitor = rclpy.create_node('lipfault_demo_view', context=context)
        monitor.create_subscription(DiagnosticArray,
                                    f'/{node.get_name()}/{PIPELINE_OUTPUTS["status"]}',
                                    view.on_status, 50)
        monitor.create_subscription(DiagnosticArray, TRUTH_TOPIC, view.on_truth, 10)
        executor = pipeline_executor(context)
        executor.add_node(node)
        executor.add_node(monitor)
        print(f'lipfault demo: model {model}, fault {args.fault} (modality:type:severity:'
              f'start_s:duration_s); Ctrl-C to stop', flush=True)
        start = time.monotonic()
        _status_lines(stop, executor, node, sim, view, start, args.duration)
    except Exception:
        if not stop.context_closed():  # SIGTERM closed the context under a running wait
            raise
    finally:
        if stop.requested:
            print('\nlipfault demo: stopped', flush=True)
        if view is not None and start is not None:
            print(view.summary(time.monotonic() - start), flush=True)
        _stop(live_view)
        _stop(sim)
        stop.close(executor, monitor, node)
    return 0


def _resolve_model(model: str | Path | None) -> Path:
    """The artifact to run: ``model`` (FileNotFoundError when it does not exist), or the
    demo's own default, trained on first run and again when an older version left it."""
    if model is None:
        path = default_model_path()
        if path.exists() and not is_current(path):
            shutil.rmtree(path)  # our own cache, from an older version: make it anew
        if not path.exists():
            prepare_model(path)
        return path
    if not Path(model).exists():
        raise FileNotFoundError(f'model artifact {model} does not exist')
    return Path(model)


def _status_lines(stop: GracefulStop, executor: Any, node: Any, sim: subprocess.Popen,
                  view: _View, start: float, duration: float | None) -> None:
    """Spin the pipeline and the view, one status line a second, until ``duration`` has passed
    or Ctrl-C (``stop``); LipfaultError when the simulated robot exits."""
    from lipfault_ros.errors import LipfaultError

    next_line, seen = start + 1.0, 0
    while stop.spinning(executor) and (duration is None or time.monotonic() - start < duration):
        executor.spin_once(timeout_sec=0.05)
        if sim.poll() is not None:
            raise LipfaultError(f'the simulated robot exited with code {sim.returncode}')
        now = time.monotonic()
        if now >= next_line:
            latency = node.stats()['latency_p50_ms']
            print(view.line(now - start, view.tuples - seen, latency), flush=True)
            seen = view.tuples
            next_line += 1.0
