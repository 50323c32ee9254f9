"""Which topics carry which sensor, shared by the bag reader, the trainer and the CLI.

The live pipeline reads its input topic names from ROS parameters (``config/pipeline.yaml``,
section ``/**/lipfault_pipeline``). Offline tools must read the *same* names from a recorded
bag, so :meth:`TopicConfig.from_yaml` takes them from that file when it exists; a bag recorded on
a robot whose topics differ is handled by passing other names, never by guessing from message
types.

Bags store absolute topic names. A node-relative name from the parameter file (``wrench``) is
made absolute (``/wrench``), which is what it resolves to for a node in the root namespace.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from lipfault_ros.errors import ConfigError
from lipfault_ros.tuples import Modality

__all__ = ['INPUT_NAMES', 'MESSAGE_TYPES', 'PIPELINE_OUTPUTS', 'SIM_NODE', 'TRUTH_NAME',
           'TRUTH_TOPIC', 'TRUTH_TYPE', 'TopicConfig', 'default_config_path']

#: Each sensor's node-relative topic name, before remapping: what the simulator publishes and
#: the pipeline, the view and rviz read (the launch file's ``*_topic:=`` remaps these).
INPUT_NAMES: dict[Modality, str] = {
    Modality.CAMERA: 'camera/image_raw',
    Modality.WRENCH: 'wrench',
    Modality.JOINTS: 'joint_states',
}
#: The simulator's node name, and the private topic it publishes the fault truth on.
SIM_NODE = 'lipfault_sim'
TRUTH_NAME = 'fault_truth'
#: Where the truth lands for a simulator in the root namespace, and so in its recordings.
TRUTH_TOPIC = f'/{SIM_NODE}/{TRUTH_NAME}'

#: The rosbag2 type name each modality's topic must carry.
MESSAGE_TYPES: dict[Modality, str] = {
    Modality.CAMERA: 'sensor_msgs/msg/Image',
    Modality.WRENCH: 'geometry_msgs/msg/WrenchStamped',
    Modality.JOINTS: 'sensor_msgs/msg/JointState',
}
#: The type of the simulator's fault-truth topic.
TRUTH_TYPE = 'diagnostic_msgs/msg/DiagnosticArray'
#: What the pipeline publishes under its node's private namespace (``~/<name>``, so
#: ``/lipfault_pipeline/fault_status``, ``/arm1/lipfault_pipeline/fault_status`` ...): the
#: corrected stream of each modality and the per-tuple fault status.
PIPELINE_OUTPUTS: dict[str, str] = {
    'camera': 'camera/image_corrected',
    'wrench': 'wrench_corrected',
    'joints': 'joint_states_corrected',
    'status': 'fault_status',
}

# Parameter names under which the pipeline section may hold each input topic, first match wins.
_PARAMETER_KEYS: dict[str, tuple[str, ...]] = {
    'camera': ('camera_topic', 'image_topic', 'topics.camera', 'topics.image'),
    'wrench': ('wrench_topic', 'topics.wrench'),
    'joints': ('joints_topic', 'joint_states_topic', 'topics.joints', 'topics.joint_states'),
    'truth': ('truth_topic', 'fault_truth_topic', 'topics.truth'),
}


def _absolute(name: str) -> str:
    name = name.strip()
    if not name:
        raise ConfigError('a topic name is empty')
    if name.startswith('~'):
        raise ConfigError(f'topic {name!r} is private to a node; give the absolute name as it '
                          f'appears in the bag (e.g. /lipfault_sim/fault_truth)')
    return name if name.startswith('/') else '/' + name


@dataclass(frozen=True)
class TopicConfig:
    """Absolute topic names of the three sensor streams and of the fault-truth stream.

    ``truth`` is optional in a bag (recordings from a real robot have none); the three sensor
    topics are required for training.
    """

    camera: str = '/' + INPUT_NAMES[Modality.CAMERA]
    wrench: str = '/' + INPUT_NAMES[Modality.WRENCH]
    joints: str = '/' + INPUT_NAMES[Modality.JOINTS]
    truth: str = TRUTH_TOPIC

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _absolute(str(getattr(self, f.name))))
        names = [self.camera, self.wrench, self.joints, self.truth]
        if len(set(names)) != len(names):
            raise ConfigError(f'topic names must differ, got {names}')

    def of(self, modality: Modality) -> str:
        """The topic of one sensor modality."""
        return {Modality.CAMERA: self.camera, Modality.WRENCH: self.wrench,
                Modality.JOINTS: self.joints}[Modality(modality)]

    def sensor_topics(self) -> dict[Modality, str]:
        """Modality -> topic for the three sensors."""
        return {m: self.of(m) for m in Modality}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TopicConfig:
        """Build from ``{'camera': ..., 'wrench': ..., 'joints': ..., 'truth': ...}``; unknown
        keys raise ConfigError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f'unknown topic keys {unknown}; expected some of {sorted(known)}')
        return cls(**{k: str(v) for k, v in values.items()})

    @classmethod
    def from_yaml(cls, path: str | Path | None = None) -> TopicConfig:
        """Topic names from the pipeline's parameters in a ``pipeline.yaml``.

        ``path`` None means the package's own ``config/pipeline.yaml`` (source tree or installed
        share directory); when no such file exists, or it names no topics, the defaults stand.
        A ``path`` given explicitly must exist.
        """
        import yaml

        from lipfault_ros.param_files import file_parameters

        if path is None:
            found = default_config_path()
            if found is None:
                return cls()
            path = found
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f'parameter file {path} does not exist')
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f'{path} is not valid YAML: {exc}') from None
        flat = _flatten(file_parameters(doc, 'lipfault_pipeline'))
        values = {}
        for field_name, keys in _PARAMETER_KEYS.items():
            for key in keys:
                if isinstance(flat.get(key), str) and flat[key]:
                    values[field_name] = flat[key]
                    break
        return cls(**values)


def _flatten(params: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            out.update(_flatten(value, name + '.'))
        else:
            out[name] = value
    return out


def default_config_path() -> Path | None:
    """``config/pipeline.yaml`` of this package: the source tree's, else the installed one."""
    here = Path(__file__).resolve().parent
    candidates = [here.parent / 'config' / 'pipeline.yaml',
                  Path(sys.prefix) / 'share' / 'lipfault_ros' / 'config' / 'pipeline.yaml']
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory('lipfault_ros')) / 'config'
                          / 'pipeline.yaml')
    except (ImportError, LookupError, ValueError, OSError):  # off-robot, or not colcon-installed
        pass
    return next((p for p in candidates if p.is_file()), None)
