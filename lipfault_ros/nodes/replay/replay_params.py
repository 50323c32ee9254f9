"""Every setting of a live replay, declared once: the ROS parameters of ``replay_node`` and,
through the same dataclass, the options of ``lipfault replay``."""

from __future__ import annotations

from dataclasses import dataclass

from lipfault_ros.errors import ConfigError
from lipfault_ros.settings import param
from lipfault_ros.ros.qos import QOS_NAMES

__all__ = ['ReplayParams']


@dataclass(frozen=True)
class ReplayParams:
    """Every setting of a replay (ROS parameters of ``replay_node``, options of ``lipfault
    replay``)."""

    bag: str = param('', 'rosbag2 (directory or file) to play')
    model: str = param('', 'model artifact: gives the tuple windows and joints for scoring; '
                           'loaded into the pipeline when start_pipeline is set',
                       metavar='ARTIFACT')
    clean_bag: str = param('', 'the clean bag the played one was injected from (correction '
                               'errors); empty: none', aliases=('--clean',), metavar='BAG')
    out: str = param('', 'folder for the report; empty: no report written', metavar='DIR')
    overwrite: bool = param(False, 'replace an existing report folder')
    rate: float = param(1.0, 'playback speed factor', low=0.01, high=100.0)
    loops: int = param(1, 'times to play the bag (0: until shut down)', low=0, high=1000000)
    start_offset: float = param(0.0, 'seconds into the bag to start from', low=0.0, high=1e9,
                                metavar='S')
    duration: float = param(0.0, 'seconds of the bag to play (0: to the end)', low=0.0,
                            high=1e9, metavar='S')
    topics: str = param('', 'comma-separated bag topics to play (empty: the three sensor '
                            'topics; "all": every topic)')
    remap: str = param('', 'comma-separated old:=new topic remappings for playing')
    clock: bool = param(False, 'publish /clock with the bag time (for use_sim_time)')
    clock_rate: float = param(100.0, '/clock messages per second of wall time', low=1.0,
                              high=10000.0)
    restamp: bool = param(True, 'shift header stamps forward on every loop after the first')
    pipeline: str = param('/lipfault_pipeline', 'fully qualified name of the pipeline node '
                                                'whose outputs are recorded')
    start_pipeline: bool = param(False, 'start the pipeline node in this process with model')
    qos: str = param('reliable', 'QoS of the played topics', choices=QOS_NAMES)
    depth: int = param(100, 'history depth of the played topics', low=1, high=100000)
    wait_for_pipeline: float = param(15.0, 'seconds to wait for the pipeline to subscribe '
                                           'before playing', low=0.0, high=3600.0,
                                     aliases=('--wait',), metavar='S')
    drain: float = param(2.0, 'seconds to keep recording after the last message', low=0.0,
                         high=600.0)

    def remaps(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in filter(None, (s.strip() for s in self.remap.split(','))):
            if ':=' not in item:
                raise ConfigError(f'remap entry {item!r} must be old:=new')
            old, new = (s.strip() for s in item.split(':=', 1))
            if not old.startswith('/') or not new.startswith('/'):
                raise ConfigError(f'remap entry {item!r}: give absolute topic names')
            out[old] = new
        return out
