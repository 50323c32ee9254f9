"""The training node (console script ``training_node``, node ``lipfault_training``).

A thin ROS shell over :func:`lipfault_ros.train_cli.train_from_bags`, the function behind
``lipfault train``: ROS parameters instead of flags, progress on ``~/progress`` (std_msgs/String
holding one JSON object) and a status on ``/diagnostics``, so a robot's tooling (rqt, a fleet
dashboard) can follow a training run like any other node.

Training runs in a worker thread; the node's timer publishes progress every
``progress_period`` seconds and the worker publishes at every phase change. Stopping the node
(Ctrl-C) asks the worker to stop at the end of the current step: a checkpoint is written and
``resume: true`` continues from it. ``~/progress`` JSON fields: ``state`` (idle, reading,
training, stage1, stage2, done, failed, stopped), ``stage``, ``step``, ``elapsed_s``, ``bags``,
``out``, and when known ``dataset`` (tuple counts), ``error`` and ``summary`` (the training
summary: per-modality reconstruction error, AUROC, thresholds).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String

from lipfault_ros.errors import ConfigError, LipfaultError
from lipfault_ros.jsonable import jsonable
from lipfault_ros.ros import convert, params
from lipfault_ros.ros.params import param
from lipfault_ros.ros.shutdown import run_node
from lipfault_ros.train_cli import TrainRun

__all__ = ['NODE_NAME', 'TrainingNode', 'TrainingParams', 'main']

NODE_NAME = 'lipfault_training'
_log = logging.getLogger(__name__)
#: The one array parameter (lipfault_ros.ros.params declares the scalar ones).
BAGS_PARAMETER = 'bags'


@dataclass(frozen=True)
class TrainingParams(TrainRun):
    """The scalar parameters of the training node: every :class:`TrainRun` setting (the options
    of ``lipfault train``, by the same names), then the node's own; ``bags`` is declared beside
    them."""

    autostart: bool = param(True, 'start training as soon as the node is up')
    shutdown_when_done: bool = param(False, 'exit the process when training ends (status 0 '
                                            'on success, 1 on failure)')
    progress_period: float = param(1.0, 'seconds between ~/progress and /diagnostics messages',
                                   low=0.05, high=60.0)
    hardware_id: str = param('lipfault', 'hardware_id of the diagnostic status')


class TrainingNode(Node):
    """Declares the parameters, starts the training worker, reports its progress."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        params.declare(self, TrainingParams)
        self.declare_parameter(BAGS_PARAMETER, [''], ParameterDescriptor(
            name=BAGS_PARAMETER, type=ParameterType.PARAMETER_STRING_ARRAY,
            description='rosbag2 recordings to train on (directories or .mcap/.db3 files); '
                        'empty entries are ignored'))
        self.p = params.read(self, TrainingParams)
        self.bags = [b for b in self.get_parameter(BAGS_PARAMETER).value if b]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state: dict[str, Any] = {'state': 'idle', 'stage': 0, 'step': 0,
                                       'bags': list(self.bags), 'out': self.p.out}
        self._started = time.monotonic()
        self.result: Any = None
        self._progress_pub = self.create_publisher(String, '~/progress', 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._timer = self.create_timer(self.p.progress_period, self.publish_progress)
        if self.p.autostart:
            self.start()

    # -- worker ----------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        with self._lock:
            return str(self._state['state'])

    @property
    def finished(self) -> bool:
        return self.state in ('done', 'failed', 'stopped')

    def start(self) -> None:
        """Start training in the worker thread (once)."""
        if self._thread is not None:
            raise ConfigError('training already started')
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name='lipfault-training', daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the worker to stop after its current step (a checkpoint follows) and wait."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _log(self, level: str, message: str) -> None:
        """The node logger while the context lives; Python logging once ROS has shut down
        (the worker may finish after Ctrl-C ended the context)."""
        if not self.context.ok():
            getattr(_log, level)(message)
        elif level == 'error':  # one call site per severity: rclpy requires it
            self.get_logger().error(message)
        elif level == 'warning':
            self.get_logger().warning(message)
        else:
            self.get_logger().info(message)

    def _update(self, **fields: Any) -> None:
        with self._lock:
            self._state.update(fields)

    def _on_event(self, event: str, fields: Mapping[str, Any]) -> None:
        if event == 'phase':
            self._update(state=fields['phase'])
            self._log('info', f'training: {fields["phase"]}')
            self.publish_progress()
        elif event == 'dataset':
            self._update(dataset=dict(fields))
            self._log('info', f'training tuples: {fields["train"]} train, {fields["val"]} '
                              f'validation')
        elif event == 'step':
            self._update(stage=int(fields['stage']), step=int(fields['step']))

    def _run(self) -> None:
        from lipfault_ros.train_cli import train_from_bags

        p = self.p
        try:
            if not self.bags:
                raise ConfigError(f'parameter {BAGS_PARAMETER} names no bag; set it to the '
                                  f'recordings to train on')
            if not p.out:
                raise ConfigError('parameter out is empty; set it to the artifact directory to '
                                  'write')
            result = train_from_bags(
                self.bags, p.out, settings=p.settings(), resume=p.resume, overwrite=p.overwrite,
                **p.paths(), progress=False, on_event=self._on_event, stop=self._stop)
            self.result = result
            self._update(state='done', summary=jsonable(dict(result.summary)),
                         artifact=str(result.artifact))
            self._log('info', f'wrote model artifact {result.artifact}\n{result.format()}')
        except KeyboardInterrupt:
            self._update(state='stopped')
            self._log('warning', 'training stopped; a checkpoint was written, set resume to '
                                 'continue')
        except (LipfaultError, FileNotFoundError, FileExistsError) as exc:
            self._update(state='failed', error=str(exc))
            self._log('error', f'training failed: {exc}')
        except Exception as exc:  # report anything else too, then let the log show the trace
            self._update(state='failed', error=f'{type(exc).__name__}: {exc}')
            self._log('error', f'training failed: {type(exc).__name__}: {exc}')
            raise
        finally:
            self.publish_progress()

    # -- reporting -------------------------------------------------------------------------------

    def progress(self) -> dict[str, Any]:
        """The current progress record (what ``~/progress`` carries)."""
        with self._lock:
            out = dict(self._state)
        out['elapsed_s'] = round(time.monotonic() - self._started, 2)
        return out

    def publish_progress(self) -> None:
        """Publish ``~/progress`` and the ``/diagnostics`` status now."""
        state = self.progress()
        try:
            self._progress_pub.publish(String(data=json.dumps(jsonable(state))))
            self._diag_pub.publish(self._diagnostics(state))
        except Exception as exc:  # the context may be shutting down under the worker thread
            if rclpy.ok(context=self.context):
                raise
            _log.debug('progress not published: %s', exc)

    def _diagnostics(self, state: Mapping[str, Any]) -> DiagnosticArray:
        name = state['state']
        level = {'failed': convert.ERROR, 'stopped': convert.WARN}.get(name, convert.OK)
        message = {'failed': f'failed: {state.get("error", "")}',
                   'stopped': 'stopped (checkpoint written; resume to continue)',
                   'done': f'artifact written to {state.get("artifact", self.p.out)}',
                   'idle': 'idle'}.get(name, f'{name} step {state.get("step", 0)}')
        values: dict[str, Any] = {'state': name, 'stage': state.get('stage', 0),
                                  'step': state.get('step', 0),
                                  'elapsed_s': state.get('elapsed_s', 0.0),
                                  'out': self.p.out, 'bags': ' '.join(self.bags)}
        summary = state.get('summary') or {}
        for key in ('auroc', 'thresholds', 'recon_error'):
            for modality, value in (summary.get(key) or {}).items():
                values[f'{key}_{modality}'] = value
        status = convert.diagnostic_status(f'{NODE_NAME}: training', level, message,
                                           hardware_id=self.p.hardware_id, values=values)
        return convert.diagnostic_array(self.get_clock().now().nanoseconds, [status])

    def destroy_node(self) -> None:
        self.stop(timeout=120.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console script ``training_node``; with ``shutdown_when_done`` it ends when training
    does (exit code 0 when it succeeded, 1 when it failed)."""
    def finished(node: TrainingNode) -> int | None:
        if node.p.shutdown_when_done and node.finished:
            return 0 if node.state == 'done' else 1
        return None

    return run_node(TrainingNode, SingleThreadedExecutor, args, name='training_node',
                    refused=(LipfaultError,), step=finished)

if __name__ == '__main__':
    raise SystemExit(main())
