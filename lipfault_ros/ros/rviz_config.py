"""The rviz config for a pipeline under a namespace and with remapped input topics.

rviz2 display topics are absolute, so ``config/lipfault.rviz`` (written for the root namespace
and the default inputs) would show nothing for ``namespace:=arm1`` or a remapped camera. The
launch file passes rviz a copy with every display topic moved to where the launched nodes
publish: the pipeline's own outputs (``/lipfault_pipeline/...``) under the namespace, its
inputs (``/camera/image_raw``, ``/wrench``, ``/joint_states``) to the remapped topic, resolved
the way ROS resolves a name (absolute stays, relative lands under the namespace), and the fixed
frame set to the one given (the wrench and the fault texts are drawn in their own frame, so
without TF in the cell rviz must be fixed to that frame). ROS-free: plain YAML in, YAML out.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping

import yaml

from lipfault_ros import topics

__all__ = ['INPUT_NAMES', 'namespaced_rviz_config', 'resolve_topic', 'write_rviz_config']

#: The pipeline's input names (relative, before remapping) as the rviz file shows them.
INPUT_NAMES: tuple[str, ...] = tuple(topics.INPUT_NAMES.values())


def resolve_topic(name: str, namespace: str = '') -> str:
    """A topic name resolved in ``namespace``: absolute names stay, relative ones go under it."""
    if name.startswith('/'):
        return name
    ns = namespace.strip('/')
    return f'/{ns}/{name}' if ns else f'/{name}'


def _move(value: str, namespace: str, inputs: Mapping[str, str]) -> str:
    relative = value.lstrip('/')
    return resolve_topic(inputs.get(relative, relative), namespace)


def _walk(node: Any, namespace: str, inputs: Mapping[str, str]) -> None:
    if isinstance(node, dict):
        topic = node.get('Topic')
        if isinstance(topic, dict) and isinstance(topic.get('Value'), str):
            topic['Value'] = _move(topic['Value'], namespace, inputs)
        for value in node.values():
            _walk(value, namespace, inputs)
    elif isinstance(node, list):
        for value in node:
            _walk(value, namespace, inputs)


def namespaced_rviz_config(text: str, namespace: str = '',
                           inputs: Mapping[str, str] | None = None,
                           fixed_frame: str | None = None) -> str:
    """``text`` (an rviz config written for the root namespace) with every display topic
    moved under ``namespace``; ``inputs`` maps an input name of :data:`INPUT_NAMES` to the
    topic it is remapped to (relative or absolute); ``fixed_frame`` (None or empty: the file's)
    becomes the frame rviz draws in."""
    doc = yaml.safe_load(text)
    _walk(doc, namespace, dict(inputs or {}))
    if fixed_frame:
        doc['Visualization Manager']['Global Options']['Fixed Frame'] = fixed_frame
    return yaml.safe_dump(doc, sort_keys=False)


def write_rviz_config(source: Path | str, namespace: str = '',
                      inputs: Mapping[str, str] | None = None,
                      fixed_frame: str | None = None) -> Path:
    """:func:`namespaced_rviz_config` of the file ``source``, written to a new temporary file
    (rviz reads it once at start) whose path is returned."""
    text = namespaced_rviz_config(Path(source).read_text(), namespace, inputs, fixed_frame)
    fd, path = tempfile.mkstemp(prefix='lipfault_', suffix='.rviz')
    with open(fd, 'w') as f:
        f.write(text)
    return Path(path)
