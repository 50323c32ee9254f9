"""Every parameter of the pipeline node (``config/pipeline.yaml`` mirrors it).

The settings of the synchroniser, the fault lifecycle, the scene reference and the black box
are declared on their core configs and mirrored here (:func:`lipfault_ros.settings.mirror`):
default, description and range are written once, and the core config checks them the same
way whoever builds it.

The ``alarm_*`` and ``threshold_offset_*`` settings, ``slop`` and ``diagnostics_period`` apply
live (``ros2 param set``); every other one is read on configure, and a change to one of those
is refused while the node is active.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from lipfault_ros.alarm import AlarmConfig
from lipfault_ros.anchor import DEFAULT_TAU_S
from lipfault_ros.blackbox import BlackBoxConfig
from lipfault_ros.errors import LipfaultError
from lipfault_ros.ros.params import check, param, parameter_names, shared_values
from lipfault_ros.ros.qos import QOS_NAMES
from lipfault_ros.scene_thresholds import (MODALITIES_TEXT_HELP, SceneConfig, ThresholdOffsets,
                                           modalities_from_text)
from lipfault_ros.settings import mirror
from lipfault_ros.sync import SyncConfig
from lipfault_ros.topics import INPUT_NAMES
from lipfault_ros.tuples import Modality

__all__ = ['LIVE_NAMES', 'LIVE_PREFIXES', 'PipelineParams', 'apply_changes', 'is_live']

#: parameters whose name starts with one of these apply while the node is active
LIVE_PREFIXES = ('alarm_', 'threshold_offset_')
#: and these, by their full name: the synchroniser's tolerance (the next pairing uses it) and
#: the /diagnostics period (its timer is made again)
LIVE_NAMES = ('slop', 'diagnostics_period')


def is_live(name: str) -> bool:
    """Whether parameter ``name`` takes effect while the node is active."""
    return name.startswith(LIVE_PREFIXES) or name in LIVE_NAMES


@dataclass(frozen=True)
class PipelineParams:
    """Every parameter of the pipeline node (``config/pipeline.yaml`` mirrors this)."""

    model: str = param('', 'path of the model artifact directory written by lipfault train')
    device: str = param('auto', 'where the model runs; auto picks cuda when available',
                        choices=('auto', 'cpu', 'cuda'))
    half: bool = param(False, 'run the model in float16 (CUDA only; ignored on CPU)')
    runtime: str = param('torch', 'what runs the model: torch, or onnxruntime (CPU, the same '
                                  'two stages exported to ONNX at activation)',
                         choices=('torch', 'onnxruntime'))
    autostart: bool = param(True, 'configure and activate at start-up, without a lifecycle '
                                  'manager')
    num_threads: int = param(1, 'torch CPU threads for inference (0: torch default; more '
                                'threads than free cores slows small models down)',
                             low=0, high=256)
    warmup: int = param(3, 'inferences on a blank tuple during activation, before subscribing',
                        low=0, high=100)
    inference_thread: bool = param(False, 'run inference on a thread of its own (latest tuple '
                                          'first) instead of between the executor callbacks')
    camera_topic: str = param(INPUT_NAMES[Modality.CAMERA], 'input sensor_msgs/Image topic')
    wrench_topic: str = param(INPUT_NAMES[Modality.WRENCH],
                              'input geometry_msgs/WrenchStamped topic')
    joints_topic: str = param(INPUT_NAMES[Modality.JOINTS],
                              'input sensor_msgs/JointState topic')
    input_qos: str = param('sensor_data', 'QoS of the input subscriptions', choices=QOS_NAMES)
    input_depth: int = param(50, 'history depth of each input subscription', low=1, high=10000)
    output_qos: str = param('reliable', 'QoS of the corrected outputs and fault status',
                            choices=QOS_NAMES)
    sync_backend: str = param('auto', 'synchroniser: builtin (reset on time jumps, ordered '
                                      'output, counters), message_filters (when installed), or '
                                      'auto (= builtin)',
                              choices=('auto', 'builtin', 'message_filters'))
    # the synchroniser's settings, declared on SyncConfig
    slop: float = mirror(SyncConfig, 'slop', note='(live)')
    queue_span: float = mirror(SyncConfig, 'queue_span')
    camera_rate: float = mirror(SyncConfig, 'camera_rate')
    wrench_rate: float = mirror(SyncConfig, 'wrench_rate')
    joints_rate: float = mirror(SyncConfig, 'joints_rate')
    settle: float = mirror(SyncConfig, 'settle')
    silent_periods: float = mirror(SyncConfig, 'silent_periods')
    silent_min: float = mirror(SyncConfig, 'silent_min')
    jump_back: float = mirror(SyncConfig, 'jump_back')
    headerless: str = mirror(SyncConfig, 'headerless')
    watchdog_period: float = param(0.05, 'watchdog tick (s)', low=0.001, high=10.0)
    diagnostics_period: float = param(1.0, '/diagnostics summary period (s; live)', low=0.05,
                                      high=60.0)
    no_tuple_timeout: float = param(2.0, 'no tuple for this long (s) while active is an ERROR',
                                    low=0.1, high=3600.0)
    hardware_id: str = param('lipfault', 'hardware_id of the diagnostic statuses')
    marker_frame: str = param('', 'frame of the ~/fault_markers texts for rviz (empty: the '
                                  'wrench\'s frame, where rviz draws the wrench too)')
    # the fault lifecycle, declared on AlarmConfig (all live)
    alarm_raise_k: int = mirror(AlarmConfig, 'raise_k', note='(live)')
    alarm_raise_n: int = mirror(AlarmConfig, 'raise_n', note='(live)')
    alarm_clear_n: int = mirror(AlarmConfig, 'clear_n', note='(live)')
    alarm_latch: bool = mirror(AlarmConfig, 'latch', note='(live)')
    alarm_hold: bool = mirror(AlarmConfig, 'hold', note='(live)')
    # per-modality threshold shifts, declared on ThresholdOffsets (all live)
    threshold_offset_camera: float = mirror(ThresholdOffsets, 'camera', note='(live)')
    threshold_offset_wrench: float = mirror(ThresholdOffsets, 'wrench', note='(live)')
    threshold_offset_joints: float = mirror(ThresholdOffsets, 'joints', note='(live)')
    scene_modalities: str = param(','.join(SceneConfig.modalities), MODALITIES_TEXT_HELP)
    # the scene reference and the evidence beside the network, declared on SceneConfig
    scene_window: int = mirror(SceneConfig, 'window')
    scene_warmup: int = mirror(SceneConfig, 'warmup')
    scene_max_offset: float = mirror(SceneConfig, 'max_offset')
    scene_background: bool = mirror(SceneConfig, 'background')
    scene_background_z: float = mirror(SceneConfig, 'background_z')
    sample_loss_ratio: float = mirror(SceneConfig, 'sample_loss_ratio')
    anchor_tau_s: float = param(DEFAULT_TAU_S, 'a corrected wrench/joint output starts at the last '
                                'trusted value and follows the model estimate, the offset '
                                'decaying with this time constant (s; 0: the bare estimate)',
                                low=0.0, high=3600.0)
    blackbox_dir: str = param('', 'black box: folder for a bag of the inputs and outputs around '
                                  'each raised fault (empty: off)')
    # the black box's bounds, declared on BlackBoxConfig
    blackbox_before_s: float = mirror(BlackBoxConfig, 'before_s')
    blackbox_after_s: float = mirror(BlackBoxConfig, 'after_s')
    blackbox_max_memory_mb: float = mirror(BlackBoxConfig, 'max_memory_mb')
    blackbox_max_disk_mb: float = mirror(BlackBoxConfig, 'max_disk_mb')
    blackbox_max_bags: int = mirror(BlackBoxConfig, 'max_bags')

    def blackbox_config(self) -> BlackBoxConfig | None:
        """The black box settings, None when it is off (``blackbox_dir`` empty)."""
        if not self.blackbox_dir.strip():
            return None
        return BlackBoxConfig(directory=self.blackbox_dir,
                              **shared_values(self, BlackBoxConfig, 'blackbox_'))

    def alarm_config(self) -> AlarmConfig:
        return AlarmConfig(**shared_values(self, AlarmConfig, 'alarm_'))

    def scene_config(self) -> SceneConfig:
        """The scene reference's settings (ConfigError when they do not fit together)."""
        values = {**shared_values(self, SceneConfig, 'scene_'),
                  'modalities': modalities_from_text(self.scene_modalities)}
        return SceneConfig(sample_loss_ratio=self.sample_loss_ratio, **values)

    @property
    def threshold_offsets(self) -> tuple[float, float, float]:
        return ThresholdOffsets(**shared_values(self, ThresholdOffsets,
                                                'threshold_offset_')).as_tuple()

    def sync_config(self, wrench_window: int, joints_window: int) -> SyncConfig:
        """The synchroniser's settings: every parameter named like a ``SyncConfig`` field, and
        the model's windows."""
        return SyncConfig(**shared_values(self, SyncConfig), wrench_window=wrench_window,
                          joints_window=joints_window)

    def topic(self, modality: Modality) -> str:
        return {Modality.CAMERA: self.camera_topic, Modality.WRENCH: self.wrench_topic,
                Modality.JOINTS: self.joints_topic}[modality]


def apply_changes(current: PipelineParams, changes: Mapping[str, Any], *, active: bool
                  ) -> PipelineParams:
    """``current`` with ``changes`` (parameter name -> value) applied, each validated against
    its declared range or choices. A change to a setting that is only read on configure is
    refused while the node is active (LipfaultError with the reason); names this node does not
    declare (``use_sim_time``) are left to rclpy."""
    names = set(parameter_names(PipelineParams))
    values = {}
    for name, value in changes.items():
        if name not in names:
            continue
        values[name] = check(PipelineParams, name, value)
        if active and not is_live(name):
            raise LipfaultError(f'{name} cannot change while active: deactivate, cleanup and '
                                f'configure again (ros2 lifecycle set)')
    new = dataclasses.replace(current, **values)
    new.alarm_config()  # raise_k <= raise_n and friends
    new.scene_config()  # known modalities, warm-up within the window
    return new
