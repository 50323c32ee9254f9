"""Settings, records and status of the black box (no ROS, no disk)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from lipfault_ros.errors import ConfigError
from lipfault_ros.settings import check_declared, param
from lipfault_ros.tuples import Modality

__all__ = ['BAG_NAME', 'BlackBoxConfig', 'BlackBoxStatus', 'Record', 'bag_name']

#: What a black-box bag directory is called: ``<modality>_<onset stamp ns>``, with ``_<n>``
#: added when a bag of that name already exists (a looped bag or a restarted simulation repeats
#: stamps); only directories named like this are ever deleted by the disk bound.
BAG_NAME = re.compile(r'^(?P<modality>camera|wrench|joints)_(?P<onset>\d+)(?:_(?P<n>\d+))?$')

_MB = 1024 * 1024


def bag_name(modality: Modality, onset_ns: int) -> str:
    """The bag name of a fault of ``modality`` raised on the tuple stamped ``onset_ns`` (the
    ``alarm_onset_ns`` of ``~/fault_status``, so a status and its bag are found from each
    other)."""
    return f'{Modality(modality).value}_{int(onset_ns)}'


class Record(NamedTuple):
    """One message as it will be written: already serialised, so holding it costs its bytes.

    A NamedTuple rather than a dataclass: one is made per message on the executor thread.
    """

    topic: str          # absolute topic name
    msgtype: str        # rosbag2 type name, e.g. 'sensor_msgs/msg/Image'
    receive_ns: int     # system clock (ns since the epoch) at reception or publication: bag time
    data: bytes         # CDR, as rclpy.serialization.serialize_message gives it


@dataclass(frozen=True)
class BlackBoxConfig:
    """What to keep around a fault and how much of it (the node's ``blackbox_*`` parameters).

    The windows are on the receive clock (the system clock), not on header stamps: a capture
    must end even when the sensors or ``/clock`` stop, which is when it matters most.
    """

    #: folder the bags are written into (created when absent)
    directory: Path
    before_s: float = param(5.0, 'black box: seconds kept before the raise', low=0.0,
                            high=3600.0)
    after_s: float = param(5.0, 'black box: seconds recorded after the raise', low=0.0,
                           high=3600.0)
    #: the ring buffer and the bags waiting for the disk together
    max_memory_mb: float = param(256.0, 'black box: bound on the serialised messages held in '
                                        'memory (MB)', low=0.1, high=1e6)
    max_disk_mb: float = param(1024.0, 'black box: bound on its bags in the folder together '
                                       '(MB); the oldest are deleted first', low=0.1, high=1e9)
    max_bags: int = param(20, 'black box: bound on the number of its bags in the folder; the '
                              'oldest are deleted first', low=1, high=1_000_000)

    def __post_init__(self) -> None:
        object.__setattr__(self, 'directory', Path(self.directory).expanduser())
        if not str(self.directory) or str(self.directory) == '.':
            raise ConfigError('black box directory is empty: give the folder for the bags')
        check_declared(self)

    @property
    def before_ns(self) -> int:
        return int(self.before_s * 1e9)

    @property
    def after_ns(self) -> int:
        return int(self.after_s * 1e9)

    @property
    def max_memory_bytes(self) -> int:
        return int(self.max_memory_mb * _MB)

    @property
    def max_disk_bytes(self) -> int:
        return int(self.max_disk_mb * _MB)


@dataclass(frozen=True)
class BlackBoxStatus:
    """Where the black box stands (what ``/diagnostics`` reports).

    ``error`` is the last failure (empty when the last write succeeded); ``errors`` counts
    failed or refused bags since start.
    """

    directory: str = ''
    bags_written: int = 0
    last_bag: str = ''
    bytes_held: int = 0         # serialised bytes in memory: ring buffer + bags waiting
    messages_held: int = 0      # messages in the ring buffer
    capturing: int = 0          # captures still recording their after-window
    pending: int = 0            # captures waiting for the disk
    truncated: int = 0          # bags that lost the start of their window to the memory bound
    deleted: int = 0            # old bags deleted by the disk bound
    disk_bytes: int = 0         # bytes of the black-box bags in the directory
    errors: int = 0
    error: str = ''
