"""Parameter files as ROS reads them, without ROS: which ``ros__parameters`` sections of a
``--params-file`` YAML apply to a node, so that the core (topic names, the CLI) reads
``config/pipeline.yaml`` exactly as a launched node does.
"""

from __future__ import annotations

import fnmatch
from typing import Any

__all__ = ['file_parameters']


def file_parameters(doc: Any, node_name: str, namespace: str = '/') -> dict[str, Any]:
    """The ``ros__parameters`` a parameter file (``doc``, as ``yaml.safe_load`` returns it) gives
    the node ``node_name`` in ``namespace``, matched as ROS matches section keys.

    A key is a node name, absolute or not (a relative one is taken from the root, so a bare
    ``lipfault_pipeline`` only matches in the root namespace); ``*`` matches within one name
    token and ``**`` any number of tokens, none included (``/**/lipfault_pipeline`` matches the
    node in every namespace, ``/**`` every node). Nested mappings above ``ros__parameters`` add
    their keys as namespaces. Every matching section counts, later ones overriding earlier ones.
    """
    target = [t for t in f'{namespace}/{node_name}'.split('/') if t]
    merged: dict[str, Any] = {}
    for key, values in _sections(doc, ''):
        if _matches([t for t in key.split('/') if t], target):
            merged.update(values)
    return merged


def _sections(doc: Any, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if not isinstance(doc, dict):
        return out
    for key, value in doc.items():
        if not isinstance(value, dict):
            continue
        name = f'{prefix}/{key}'
        if isinstance(value.get('ros__parameters'), dict):
            out.append((name, value['ros__parameters']))
        out.extend(_sections({k: v for k, v in value.items() if k != 'ros__parameters'}, name))
    return out


def _matches(pattern: list[str], name: list[str]) -> bool:
    if not pattern:
        return not name
    head, rest = pattern[0], pattern[1:]
    if head == '**':
        return any(_matches(rest, name[i:]) for i in range(len(name) + 1))
    return bool(name) and fnmatch.fnmatchcase(name[0], head) and _matches(rest, name[1:])
