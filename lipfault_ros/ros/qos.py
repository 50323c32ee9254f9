"""QoS profiles chosen by name, in one place, so parameters and launch files speak in words.

``sensor_data`` is best effort with a short history: a best-effort subscriber matches both
reliable and best-effort publishers, so it is the safe default for sensor inputs. ``reliable``
is for outputs that consumers must not miss. A reliable *subscriber* does not match a
best-effort publisher (silence, reported by the pipeline as "no tuples for N s").
"""

from __future__ import annotations

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy)

from lipfault_ros.errors import ConfigError

__all__ = ['QOS_NAMES', 'qos_profile']

#: The QoS names a parameter may hold.
QOS_NAMES: tuple[str, ...] = ('sensor_data', 'reliable', 'best_effort')


def qos_profile(name: str, depth: int = 10) -> QoSProfile:
    """The profile called ``name`` (see ``QOS_NAMES``) with a keep-last history of ``depth``."""
    if depth < 1:
        raise ConfigError(f'QoS depth must be >= 1, got {depth}')
    if name in ('sensor_data', 'best_effort'):
        reliability = ReliabilityPolicy.BEST_EFFORT
    elif name == 'reliable':
        reliability = ReliabilityPolicy.RELIABLE
    else:
        raise ConfigError(f'unknown QoS profile {name!r}; use one of {list(QOS_NAMES)}')
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(depth),
                      reliability=reliability, durability=DurabilityPolicy.VOLATILE)
