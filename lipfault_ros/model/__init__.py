"""The fault-tolerant multimodal model (ROS-free).

``ModelConfig`` sizes it, ``LipfaultNet`` is the network, ``apply_lipschitz`` the layer-specific
Lipschitz modulation; :mod:`lipfault_ros.model.analysis` holds the sensitivity analysis.
Names are imported lazily, so reading a ``ModelConfig`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ['PANDA_JOINTS', 'LipfaultNet', 'LipfaultOutput', 'LipschitzScale', 'ModelConfig',
           'apply_lipschitz']

_WHERE = {
    'PANDA_JOINTS': 'config', 'ModelConfig': 'config',
    'LipschitzScale': 'lipschitz', 'apply_lipschitz': 'lipschitz',
    'LipfaultNet': 'network', 'LipfaultOutput': 'network',
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f'{__name__}.{_WHERE[name]}'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
