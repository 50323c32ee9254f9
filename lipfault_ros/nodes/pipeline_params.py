"""Every parameter of the pipeline node, declared once (``config/pipeline.yaml`` mirrors it).

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
from lipfault_ros.scene_thresholds import SceneConfig
from lipfault_ros.sync import Headerless, SyncConfig
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
    slop: float = param(SyncConfig.slop,
                        'largest stamp difference (s) between a camera frame and the '
                              'nearest wrench/joint message (live)', low=0.0, high=1.0)
    queue_span: float = param(SyncConfig.queue_span,
                              'time (s) each input queue covers; queue sizes follow the '
                                   'rates', low=0.01, high=10.0)
    camera_rate: float = param(SyncConfig.camera_rate,
                               'nominal camera rate (Hz)', low=0.1, high=10000.0)
    wrench_rate: float = param(SyncConfig.wrench_rate,
                               'nominal wrench rate (Hz)', low=0.1, high=100000.0)
    joints_rate: float = param(SyncConfig.joints_rate,
                               'nominal joint_states rate (Hz)', low=0.1, high=100000.0)
    settle: float = param(SyncConfig.settle,
                          'extra wait (s) past a frame stamp for out-of-order messages',
                          low=0.0, high=1.0)
    silent_periods: float = param(SyncConfig.silent_periods,
                                  'a modality silent for this many of its periods is '
                                        'marked missing', low=1.0, high=100000.0)
    silent_min: float = param(SyncConfig.silent_min,
                              'but never before this many seconds (executor hiccups are '
                                   'not a dead sensor)', low=0.0, high=3600.0)
    jump_back: float = param(SyncConfig.jump_back,
                             'a stamp this far (s) behind its input resets the '
                                  'synchroniser (bag loop, sim restart)', low=0.001, high=1e6)
    headerless: str = param(SyncConfig.headerless.value,
                            'messages with a zero stamp: drop (counted), arrival '
                                    '(stamp with arrival time) or refuse',
                            choices=tuple(h.value for h in Headerless))
    watchdog_period: float = param(0.05, 'watchdog tick (s)', low=0.001, high=10.0)
    diagnostics_period: float = param(1.0, '/diagnostics summary period (s; live)', low=0.05,
                                      high=60.0)
    no_tuple_timeout: float = param(2.0, 'no tuple for this long (s) while active is an ERROR',
                                    low=0.1, high=3600.0)
    hardware_id: str = param('lipfault', 'hardware_id of the diagnostic statuses')
    marker_frame: str = param('', 'frame of the ~/fault_markers texts for rviz (empty: the '
                                  'wrench\'s frame, where rviz draws the wrench too)')
    alarm_raise_k: int = param(AlarmConfig.raise_k, 'a fault alarm is raised when this many of '
                               'the last alarm_raise_n tuples are over threshold (live)',
                               low=1, high=1000)
    alarm_raise_n: int = param(AlarmConfig.raise_n, 'length of the raise window in tuples '
                               '(live)', low=1, high=1000)
    alarm_clear_n: int = param(AlarmConfig.clear_n, 'consecutive tuples under the hold level '
                               'that clear a raised alarm (live)', low=1, high=100000)
    alarm_latch: bool = param(AlarmConfig.latch, 'keep a cleared alarm up until the '
                              '~/reset_faults service is called (live)')
    alarm_hold: bool = param(AlarmConfig.hold, 'a raised alarm holds while the score stays '
                             'over the stored hold level, which only 0.1 % of clean '
                             'calibration tuples exceed (false: it clears under the '
                             'threshold; live)')
    threshold_offset_camera: float = param(0.0, 'added to the stored camera threshold (logit '
                                           'units; > 0: fewer alarms; live)', low=-100.0,
                                           high=100.0)
    threshold_offset_wrench: float = param(0.0, 'added to the stored wrench threshold (live)',
                                           low=-100.0, high=100.0)
    threshold_offset_joints: float = param(0.0, 'added to the stored joints threshold (live)',
                                           low=-100.0, high=100.0)
    scene_modalities: str = param(','.join(SceneConfig.modalities), 'modalities whose threshold '
                                  'follows the scene\'s own clean level (comma-separated; '
                                  'empty: the calibrated thresholds only)')
    scene_window: int = param(SceneConfig.window, 'trusted tuples whose median score is the '
                              'scene\'s clean level', low=1, high=100000)
    scene_warmup: int = param(SceneConfig.warmup, 'tuples after activation all taken as the '
                              'scene (at most scene_window)', low=0, high=100000)
    scene_max_offset: float = param(SceneConfig.max_offset, 'the most a threshold rises to '
                                    'follow the scene (logit units)', low=0.0, high=100.0)
    scene_background: bool = param(SceneConfig.background, 'judge camera frames against the '
                                   'scene\'s own background too (lens faults; a fixed camera '
                                   'only: false for a camera that moves with the arm)')
    scene_background_z: float = param(SceneConfig.background_z, 'the background statistic '
                                      '(robust spreads of a quarter of the image blocks) at '
                                      'which the camera is faulty', low=0.1, high=1000.0)
    sample_loss_ratio: float = param(SceneConfig.sample_loss_ratio, 'a wrench or joints '
                                     'window spanning this many times its stream\'s usual span '
                                     '(messages lost on the way) makes that modality faulty, '
                                     'and one whose messages the pipeline lost itself holds '
                                     'its alarm; 0: off, neither', low=0.0, high=1000.0)
    anchor_tau_s: float = param(DEFAULT_TAU_S, 'a corrected wrench/joint output starts at the last '
                                'trusted value and follows the model estimate, the offset '
                                'decaying with this time constant (s; 0: the bare estimate)',
                                low=0.0, high=3600.0)
    blackbox_dir: str = param('', 'black box: folder for a bag of the inputs and outputs around '
                                  'each raised fault (empty: off)')
    blackbox_before_s: float = param(BlackBoxConfig.before_s, 'black box: seconds kept before '
                                     'the raise', low=0.0, high=3600.0)
    blackbox_after_s: float = param(BlackBoxConfig.after_s, 'black box: seconds recorded after '
                                    'the raise', low=0.0, high=3600.0)
    blackbox_max_memory_mb: float = param(BlackBoxConfig.max_memory_mb, 'black box: bound on '
                                          'the serialised messages held in memory (MB)',
                                          low=0.1, high=1e6)
    blackbox_max_disk_mb: float = param(BlackBoxConfig.max_disk_mb, 'black box: bound on its '
                                        'bags in blackbox_dir (MB); the oldest are deleted '
                                        'first', low=0.1, high=1e9)
    blackbox_max_bags: int = param(BlackBoxConfig.max_bags, 'black box: bound on the number of '
                                   'its bags in blackbox_dir; the oldest are deleted first',
                                   low=1, high=1000000)

    def blackbox_config(self) -> BlackBoxConfig | None:
        """The black box settings, None when it is off (``blackbox_dir`` empty)."""
        if not self.blackbox_dir.strip():
            return None
        return BlackBoxConfig(directory=self.blackbox_dir, before_s=self.blackbox_before_s,
                              after_s=self.blackbox_after_s,
                              max_memory_mb=self.blackbox_max_memory_mb,
                              max_disk_mb=self.blackbox_max_disk_mb,
                              max_bags=self.blackbox_max_bags)

    def alarm_config(self) -> AlarmConfig:
        return AlarmConfig(raise_k=self.alarm_raise_k, raise_n=self.alarm_raise_n,
                           clear_n=self.alarm_clear_n, latch=self.alarm_latch,
                           hold=self.alarm_hold)

    def scene_config(self) -> SceneConfig:
        """The scene reference's settings (ConfigError when they do not fit together)."""
        mods = tuple(m.strip() for m in self.scene_modalities.split(',') if m.strip())
        return SceneConfig(modalities=mods, window=self.scene_window, warmup=self.scene_warmup,
                           max_offset=self.scene_max_offset, background=self.scene_background,
                           background_z=self.scene_background_z,
                           sample_loss_ratio=self.sample_loss_ratio)

    @property
    def threshold_offsets(self) -> tuple[float, float, float]:
        return (self.threshold_offset_camera, self.threshold_offset_wrench,
                self.threshold_offset_joints)

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
