"""The pipeline node's fault-lifecycle services and live parameters.

``~/reset_faults`` and ``~/relearn_scene`` (std_srvs/Trigger) and the parameter callback, each
taking the node first (bound with ``functools.partial``). They change the node's
:class:`~lipfault_ros.decisions.FaultDecisions` under its decide lock, so a tuple is never judged
half before and half after a change.
"""

from __future__ import annotations

from typing import Any

from lipfault_ros.errors import LipfaultError
from lipfault_ros.nodes.pipeline_params import PipelineParams, apply_changes
from lipfault_ros.ros import params

__all__ = ['relearn_scene', 'reset_faults', 'set_parameters']


def reset_faults(node: Any, request: Any, response: Any) -> Any:
    """``~/reset_faults``: drop every alarm (latched or raised) and its evidence; a fault that
    persists is raised again after alarm_raise_k tuples."""
    with node.decide_lock:
        was = node.alarms.reset()
    response.success = True
    response.message = (f'reset {", ".join(m.value for m in was)}' if was
                        else 'no alarm was up')
    node.get_logger().info(f'~/reset_faults: {response.message}')
    return response


def relearn_scene(node: Any, request: Any, response: Any) -> Any:
    """``~/relearn_scene``: forget the scene the thresholds follow and the camera background
    (the robot moved, the light changed); the next tuples are a warm-up again
    (:mod:`lipfault_ros.scene_thresholds`, :mod:`lipfault_ros.background`)."""
    with node.decide_lock:
        response.message = node.decisions.relearn_scene()
    response.success = True
    node.get_logger().info(f'~/relearn_scene: {response.message}')
    return response


def set_parameters(node: Any, changes: list[Any]) -> Any:
    """Validated changes; lifecycle, threshold, slop and diagnostics-period settings apply at
    once (see :func:`~lipfault_ros.nodes.pipeline_params.apply_changes`)."""
    from rcl_interfaces.msg import SetParametersResult

    try:
        current = node.p or params.read(node, PipelineParams)
        new = apply_changes(current, {c.name: c.value for c in changes},
                            active=node.lifecycle_state == 'active')
    except LipfaultError as exc:
        return SetParametersResult(successful=False, reason=str(exc))
    with node.decide_lock:
        node.alarms.reconfigure(new.alarm_config())
        if node.engine is not None:
            node.engine.set_threshold_offsets(new.threshold_offsets)
        if new.slop != current.slop:
            node.set_slop(new.slop)
    if new.diagnostics_period != current.diagnostics_period:
        node.set_diagnostics_period(new.diagnostics_period)
    if node.p is not None:
        node.p = new
    return SetParametersResult(successful=True)
