"""The live pipeline node (console script ``pipeline_node``, node ``lipfault_pipeline``).

Camera, wrench and joint states are synchronised into tuples; each tuple is judged and corrected
by the model; the node publishes the corrected streams with the input headers, a per-tuple
``~/fault_status`` and a ~1 Hz ``/diagnostics`` summary.

It is a lifecycle node: *configure* reads the parameters and loads the artifact (a bad artifact
is a logged FAILURE, never a crash), *activate* puts the model on its device, warms it up and
only then subscribes, *deactivate* unsubscribes and frees the model. With ``autostart`` (the
default) it configures and activates itself, so no lifecycle manager is needed.

Threads: subscriptions and the watchdog share one callback group (the synchroniser is not
thread-safe); a subscription callback only converts, synchronises and hands the newest tuple to
the inference callback group (latest-only: a tuple not yet taken is replaced and counted as
dropped), so inference never blocks reception and lag cannot grow. Spin it with
:func:`pipeline_executor` (a SingleThreadedExecutor): inference takes a few ms per tuple and runs
between the input callbacks, timers (watchdog, diagnostics) fire between tuples. Measured on a
2-core CPU, a 4-thread MultiThreadedExecutor spent ~2.6x the CPU per message, lost about half of a
500 Hz wrench stream and dropped a third of the tuples; the single thread kept every tuple
(e2e p50 7-8 ms, p99 23-24 ms against 12-14 / 259-304 ms). With ``inference_thread`` the
executor only receives and a :class:`~lipfault_ros.worker.LatestWorker` thread of its own
judges and publishes the newest tuple (torch releases the GIL in its kernels); ``lipfault bench
--only pipeline`` measures both.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import WrenchStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock as RosClock
from rclpy.clock import ClockType
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from lipfault_ros.decisions import FaultDecisions
from lipfault_ros.errors import LipfaultError
from lipfault_ros.nodes.pipeline_blackbox import BlackBoxTap, blackbox_diagnostic
from lipfault_ros.nodes.pipeline_diagnostics import Counters, pipeline_stats, pipeline_statuses
from lipfault_ros.nodes.pipeline_inputs import INPUT_TYPES, decode, warm_up
from lipfault_ros.nodes.pipeline_mf import MessageFiltersInputs
from lipfault_ros.nodes import pipeline_services as services
from lipfault_ros.nodes.pipeline_params import PipelineParams
from lipfault_ros.ros import convert, markers, params, statuses
from lipfault_ros.ros.logbridge import RosLogBridge
from lipfault_ros.ros.qos import qos_profile
from lipfault_ros.ros.shutdown import run_node
from lipfault_ros.sample_loss import short_queues
from lipfault_ros.sync import Headerless, TupleAssembler
from lipfault_ros.topics import PIPELINE_OUTPUTS
from lipfault_ros.tuples import MODALITIES, Modality, SensorTuple
from lipfault_ros.worker import LatestWorker

__all__ = ['NODE_NAME', 'PipelineNode', 'PipelineParams', 'main']

NODE_NAME = 'lipfault_pipeline'
_TYPES = INPUT_TYPES


class PipelineNode(LifecycleNode):
    """See the module docstring."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        params.declare(self, PipelineParams)
        self._log_bridge = RosLogBridge(self.get_logger()).attach()
        # State shared with the node's companion modules (pipeline_inputs, pipeline_mf,
        # pipeline_diagnostics, pipeline_services) and the benchmark, hence public:
        self.lock = threading.Lock()  # guards counters and the latest-only slot
        # the fault decisions are used by inference and changed by services and parameters
        self.decide_lock = threading.Lock()
        self.counters = Counters()
        self.input_group = MutuallyExclusiveCallbackGroup()  # every input subscription
        self.input_topics: dict[Modality, str] = {}  # resolved names, while active
        self.input_frames: dict[Modality, str] = {}  # last frame_id seen per input
        self.input_encoding = 'rgb8'  # of the last camera image (outputs keep it)
        self.mf_inputs: MessageFiltersInputs | None = None  # sync_backend message_filters
        self.blackbox_tap: BlackBoxTap | None = None  # the black box while active (blackbox_dir)
        # the previous /diagnostics snapshot (rates are per period) and the activation time
        self.diag_snapshot: tuple[int, int, int, dict[Modality, int], int] | None = None
        self.activated_mono = time.monotonic_ns()
        self.p: PipelineParams | None = None
        self._infer_group = MutuallyExclusiveCallbackGroup()
        self._diag_group = MutuallyExclusiveCallbackGroup()
        self._artifact = None
        self._engine = None
        self._asm: TupleAssembler | None = None
        self._subs: list[Any] = []
        self._watchdog = None
        self._pubs: dict[str, Any] = {}
        self._slot: tuple[SensorTuple, int] | None = None
        self._marker_gate = markers.MarkerGate()
        # inference_thread: the worker that runs _infer_one; None: the executor runs it
        self._worker: LatestWorker[tuple[SensorTuple, int]] | None = None
        self._said: set[str] = set()
        self._error = ''
        self._state = 'unconfigured'
        self._gc = self.create_guard_condition(self._on_tuple, self._infer_group)
        self.decisions = FaultDecisions()
        self._trigger_services = [  # the fault lifecycle's services (pipeline_services)
            self.create_service(Trigger, f'~/{name}', functools.partial(handler, self),
                                callback_group=self._diag_group)
            for name, handler in (('reset_faults', services.reset_faults),
                                  ('relearn_scene', services.relearn_scene))]
        self.add_on_set_parameters_callback(functools.partial(services.set_parameters, self))
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics',
                                               qos_profile('reliable', 10))
        period = float(self.get_parameter('diagnostics_period').value)
        # watchdog and diagnostics run on a steady clock: they must report "no tuples" while no
        # /clock arrives under use_sim_time, and never stall on a paused or looping bag
        self._steady = RosClock(clock_type=ClockType.STEADY_TIME)
        self._diag_timer = self.create_timer(period, self._publish_diagnostics,
                                             callback_group=self._diag_group, clock=self._steady)
        if self.get_parameter('autostart').value:
            self.trigger_configure()
            if self._state == 'inactive':
                self.trigger_activate()

    # -- lifecycle --
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        from lipfault_ros.artifact import load_artifact

        try:
            p = params.read(self, PipelineParams)
            if not p.model:
                raise LipfaultError('parameter model is empty: give the path of a model '
                                    'artifact (lipfault train ... --out PATH)')
            artifact = load_artifact(Path(p.model).expanduser())
            if p.sync_backend == 'message_filters':
                import message_filters  # noqa: F401  (checked here, used on activate)
            p.sync_config(artifact.config.wrench_window, artifact.config.joints_window)
        except (LipfaultError, OSError, ImportError, ValueError) as exc:
            self._error = f'configure failed: {exc}'
            self._state = 'unconfigured'
            self.get_logger().error(self._error)
            return TransitionCallbackReturn.FAILURE
        self.p, self._artifact, self._error = p, artifact, ''
        out = qos_profile(p.output_qos, 10)
        self._pubs = {
            'image': self.create_lifecycle_publisher(
                Image, f'~/{PIPELINE_OUTPUTS["camera"]}', out),
            'wrench': self.create_lifecycle_publisher(
                WrenchStamped, f'~/{PIPELINE_OUTPUTS["wrench"]}', out),
            'joints': self.create_lifecycle_publisher(
                JointState, f'~/{PIPELINE_OUTPUTS["joints"]}', out),
            'status': self.create_lifecycle_publisher(
                DiagnosticArray, f'~/{PIPELINE_OUTPUTS["status"]}', out),
            'markers': self.create_lifecycle_publisher(MarkerArray, '~/fault_markers', out),
        }
        self._state = 'inactive'
        self.get_logger().info(f'configured with artifact {p.model} (joints '
                               f'{list(artifact.config.joint_names)})')
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        from lipfault_ros.inference import Engine

        try:
            p = self.p = params.read(self, PipelineParams)  # live settings changed since
            if p.num_threads:
                import torch
                torch.set_num_threads(p.num_threads)
            engine = Engine(self._artifact, device=p.device, half=p.half, runtime=p.runtime)
            engine.set_threshold_offsets(p.threshold_offsets)
            warm_up(engine, p.warmup)
            bb = p.blackbox_config()
            scene = p.scene_config()
        except (LipfaultError, RuntimeError) as exc:
            self._error = f'activate failed: {exc}'
            self.get_logger().error(self._error)
            return TransitionCallbackReturn.FAILURE
        self._engine = engine
        self.decisions = FaultDecisions(p.alarm_config(), p.anchor_tau_s, scene,
                                        engine.artifact.clean_levels)
        sync = p.sync_config(engine.wrench_window, engine.joints_window)
        self._asm = TupleAssembler(sync, engine.joint_names)
        if warning := short_queues(p.input_depth, sync, scene.sample_loss_config()):
            self.get_logger().warning(warning)
        self._slot = None
        self.blackbox_tap = BlackBoxTap(bb).open() if bb is not None else None
        qos = qos_profile(p.input_qos, p.input_depth)
        if p.sync_backend == 'message_filters':
            self.mf_inputs = MessageFiltersInputs(self, qos)
            self._subs = self.mf_inputs.subscriptions
        else:
            self._subs = [self.create_subscription(
                _TYPES[m], p.topic(m), lambda msg, m=m: self._on_input(m, msg), qos,
                callback_group=self.input_group) for m in MODALITIES]
        self.input_topics = {m: sub.topic_name for m, sub in zip(MODALITIES, self._subs)}
        self._watchdog = self.create_timer(p.watchdog_period, self._on_watchdog,
                                           callback_group=self.input_group, clock=self._steady)
        if p.inference_thread:
            self._worker = LatestWorker(self._infer_one, name='lipfault-infer')
            self._worker.start()
        self.activated_mono = time.monotonic_ns()
        self._state = 'active'
        self._error = ''
        self.get_logger().info(f'active on {engine.device} ({p.sync_backend} sync); inputs '
                               f'{[p.topic(m) for m in MODALITIES]}')
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        self._stop_worker()
        self._close_blackbox()
        with self.lock:
            self._slot = None
        self._engine = None
        self._state = 'inactive'
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        self._pubs = {}
        self._engine = self._artifact = None
        self._state = 'unconfigured'
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        self._stop_worker()
        self._close_blackbox()
        self._engine = None
        self._state = 'finalized'
        return super().on_shutdown(state)

    def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None and not worker.stop():
            self.get_logger().warning('inference thread did not stop within 5 s')

    def _close_blackbox(self) -> None:
        """Write the captures still recording and stop the black box's writer."""
        bb, self.blackbox_tap = self.blackbox_tap, None
        if bb is not None:
            bb.close()

    def destroy_node(self) -> None:
        self._stop_worker()  # nothing may publish once the node is gone
        self._close_blackbox()
        self._log_bridge.detach()
        super().destroy_node()

    def _unsubscribe(self) -> None:
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        self.mf_inputs = None
        if self._watchdog is not None:
            self.destroy_timer(self._watchdog)
            self._watchdog = None

    # -- input --
    def say_once(self, key: str, text: str) -> None:
        if key not in self._said:
            self._said.add(key)
            self.get_logger().warning(text)

    def _on_input(self, modality: Modality, msg: Any) -> None:
        """A subscription's message: into the black box (when on), then :meth:`_on_msg`."""
        bb = self.blackbox_tap
        if bb is not None:
            bb.input(self.input_topics[modality], msg)
        self._on_msg(modality, msg)

    def _on_msg(self, modality: Modality, msg: Any) -> None:
        arrival = time.monotonic_ns()
        sample = decode(self, modality, msg)
        if sample is None or self._asm is None:
            return
        if sample.stamp_ns <= 0 and self.p.headerless == Headerless.ARRIVAL.value:
            # stamped with the node's clock (ROS time), not the monotonic arrival clock
            sample = dataclasses.replace(sample, stamp_ns=self.get_clock().now().nanoseconds)
        try:
            tuples = self._asm.push(sample, arrival_ns=arrival)
        except LipfaultError as exc:  # headerless=refuse
            with self.lock:
                self.counters.bad_input[modality] += 1
                self.counters.problems[modality] = str(exc)
            return
        if tuples:
            self.hand_over(tuples, arrival)

    def _on_watchdog(self) -> None:
        if self._asm is None:
            return
        now = time.monotonic_ns()
        tuples = self._asm.poll(now)
        if tuples:
            self.hand_over(tuples, now)

    def hand_over(self, tuples: list[SensorTuple], arrival: int) -> None:
        """Latest-only: the newest tuple waits for inference, older ones are dropped (counted)."""
        worker = self._worker
        with self.lock:
            c = self.counters
            c.tuples_in += len(tuples)
            c.dropped += len(tuples) - 1
            if worker is None:
                c.dropped += self._slot is not None
                self._slot = (tuples[-1], arrival)
        if worker is None:
            self._gc.trigger()
        elif not worker.offer((tuples[-1], arrival)):
            with self.lock:
                c.dropped += 1

    # -- inference and output --
    def _on_tuple(self) -> None:
        """The executor's turn (``inference_thread`` off): the tuple waiting in the slot."""
        with self.lock:
            item, self._slot = self._slot, None
        if item is not None:
            self._infer_one(item)

    def _infer_one(self, item: tuple[SensorTuple, int]) -> None:
        engine = self._engine
        if engine is None:
            return
        t, arrival = item
        start = time.monotonic_ns()
        with self.decide_lock:
            try:
                result, alarms = self.decisions.infer(engine, t)
            except LipfaultError as exc:
                with self.lock:
                    self.counters.infer_errors += 1
                    self.counters.model_problem = (f'model refused the tuple at {t.stamp_ns}: '
                                                   f'{exc}')
                self.say_once(f'infer:{str(exc)[:40]}',
                               f'tuple at {t.stamp_ns} not inferred: {exc}')
                return
            self._publish(t, result, alarms)
            if (bb := self.blackbox_tap) is not None:
                bb.alarms(alarms)
        done = time.monotonic_ns()
        with self.lock:
            c = self.counters
            c.tuples_out += 1
            c.latency_ms.append((done - arrival) / 1e6)
            c.model_ms_total += result.latency_ms
            c.worker_ms_total += (done - start) / 1e6
            c.last_tuple_mono = done
            c.last_results = dict(result.results)
            for m in MODALITIES:
                c.flagged[m] += bool(result.results[m].fault)

    def _hdr(self, t: SensorTuple, m: Modality) -> Any:
        return convert.header(t.stamps_ns.get(m, t.stamp_ns),
                              t.frame_ids.get(m, self.input_frames.get(m, '')))

    def _publish(self, t: SensorTuple, r: Any, alarms: Any) -> None:
        names = self._engine.joint_names if self._engine is not None else t.joint_names
        bb = self.blackbox_tap
        out = (bb.publish if bb is not None else lambda pub, msg: pub.publish(msg))
        out(self._pubs['image'], convert.image_msg(r.image, self._hdr(t, Modality.CAMERA),
                                                   self.input_encoding))
        out(self._pubs['wrench'], convert.wrench_msg(r.wrench, self._hdr(t, Modality.WRENCH)))
        out(self._pubs['joints'], convert.joint_state_msg(
            names, r.joint_position, r.joint_velocity, r.joint_effort,
            self._hdr(t, Modality.JOINTS)))
        out(self._pubs['status'], convert.diagnostic_array(
            t.stamp_ns, statuses.tuple_statuses(r, alarms, self.p.hardware_id, t.backlogs_ns)))
        self._publish_markers(t, r, alarms)

    def _publish_markers(self, t: SensorTuple, r: Any, alarms: Any) -> None:
        """``~/fault_markers`` when :class:`~lipfault_ros.ros.markers.MarkerGate` says so."""
        missing = {m: r.results[m].missing for m in MODALITIES}
        states = tuple(markers.marker_state(alarms[m], missing[m]) for m in MODALITIES)
        if not self._marker_gate.due(states, time.monotonic_ns()):
            return
        frame = (self.p.marker_frame or self.input_frames.get(Modality.WRENCH)
                 or self.input_frames.get(Modality.JOINTS, ''))
        self._pubs['markers'].publish(markers.fault_markers(t.stamp_ns, frame, alarms, missing))

    @property
    def alarms(self) -> Any:
        """The per-modality fault alarms (:class:`~lipfault_ros.alarm.FaultAlarms`)."""
        return self.decisions.alarms

    # -- diagnostics --
    @property
    def lifecycle_state(self) -> str:
        """'unconfigured', 'inactive', 'active' or 'finalized'."""
        return self._state

    @property
    def last_error(self) -> str:
        """Why the last transition failed ('' when none did)."""
        return self._error

    @property
    def engine(self) -> Any:
        """The loaded :class:`~lipfault_ros.inference.Engine` (None until configured)."""
        return self._engine

    def set_slop(self, slop: float) -> None:
        """The synchroniser's tolerance (s) from the next arrival on (live ``slop``); before
        activation there is nothing to change, activate reads the parameter."""
        if self._asm is not None:
            self._asm.set_slop(slop)
        if self.mf_inputs is not None:
            self.mf_inputs.set_slop(slop)

    def set_diagnostics_period(self, period: float) -> None:
        """The /diagnostics summary every ``period`` s from now on (live
        ``diagnostics_period``): the timer's period changes and its count starts again."""
        self._diag_timer.timer_period_ns = int(round(period * 1e9))
        self._diag_timer.reset()

    @property
    def assembler(self) -> Any:
        """The tuple assembler of the configured streams (its ``stats``: what arrived where)."""
        return self._asm

    def stats(self) -> dict[str, Any]:
        """See :func:`~lipfault_ros.nodes.pipeline_diagnostics.pipeline_stats`."""
        return pipeline_stats(self)

    def _publish_diagnostics(self) -> None:
        out = pipeline_statuses(self, time.monotonic_ns())
        if (bb := self.blackbox_tap) is not None:
            out.append(blackbox_diagnostic(f'{self.get_name()}: blackbox', bb.box.status,
                                           hardware_id=self.get_parameter('hardware_id').value))
        self._diag_pub.publish(convert.diagnostic_array(self.get_clock().now().nanoseconds, out))


def pipeline_executor(context: Any = None) -> SingleThreadedExecutor:
    """The executor the pipeline node is spun on (see the module doc for why one thread)."""
    return SingleThreadedExecutor(context=context)


def main(args: list[str] | None = None) -> int:
    """Console script ``pipeline_node``: spin the node on :func:`pipeline_executor`."""
    return run_node(PipelineNode, pipeline_executor, args, name=NODE_NAME)

if __name__ == '__main__':
    raise SystemExit(main())
