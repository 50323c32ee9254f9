"""The fault-tolerant multimodal model (ROS-free).

``ModelConfig`` sizes it, ``LipfaultNet`` is the network, ``apply_lipschitz`` the layer-specific
Lipschitz modulation; :mod:`lipfault_ros.model.analysis` holds the sensitivity analysis.
"""

from __future__ import annotations

from lipfault_ros.model.config import PANDA_JOINTS, ModelConfig
from lipfault_ros.model.lipschitz import LipschitzScale, apply_lipschitz
from lipfault_ros.model.network import LipfaultNet, LipfaultOutput

__all__ = ['PANDA_JOINTS', 'LipfaultNet', 'LipfaultOutput', 'LipschitzScale', 'ModelConfig',
           'apply_lipschitz']
