"""One exception family for the whole package.

Callers catch ``LipfaultError`` to handle anything this package refuses; each subsystem raises
its own subclass with a message that names the file, topic, joint or parameter at fault.
Standard conditions keep their standard types (``FileNotFoundError``, ``FileExistsError``).
"""

from __future__ import annotations

__all__ = [
    'ArtifactError',
    'BagError',
    'BlackBoxError',
    'ConfigError',
    'FaultError',
    'InputError',
    'LipfaultError',
    'SimError',
    'SyncError',
    'ViewError',
]


class LipfaultError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(LipfaultError):
    """A configuration value or parameter is invalid; the message names it."""


class InputError(LipfaultError):
    """A tensor, array or message does not have the shape, dtype or content expected."""


class ArtifactError(LipfaultError):
    """A model artifact is missing parts, corrupt, tampered with or does not fit."""


class BagError(LipfaultError):
    """A rosbag2 recording cannot be read or written as asked."""


class BlackBoxError(LipfaultError):
    """A black-box capture cannot be configured or written (the node reports it, never raises)."""


class SyncError(LipfaultError):
    """The synchroniser was misconfigured or fed something it cannot place."""


class FaultError(LipfaultError):
    """An unknown fault kind or an invalid fault specification."""


class SimError(LipfaultError):
    """The simulated robot cannot be built or stepped as configured."""


class ViewError(LipfaultError):
    """The live view cannot serve as configured (address taken, Foxglove SDK missing)."""
