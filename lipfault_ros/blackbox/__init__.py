"""A black-box bag per fault: the node's inputs and outputs around each raised alarm.

ROS-free: messages come in already serialised (:class:`Record`), bags go out through
``rosbags`` as mcap. Modules: :mod:`~.config` (settings, records, status, bag names),
:mod:`~.ring` (the bounded ring buffer), :mod:`~.store` (the folder: writing, disk bound),
:mod:`~.recorder` (:class:`BlackBox`: captures and the writer thread).
"""

from lipfault_ros.blackbox.config import (BAG_NAME, BlackBoxConfig, BlackBoxStatus, Record,
                                          bag_name)
from lipfault_ros.blackbox.recorder import BlackBox, RaiseDetector
from lipfault_ros.blackbox.ring import RingBuffer
from lipfault_ros.blackbox.store import BagStore

__all__ = [
    'BAG_NAME',
    'BagStore',
    'BlackBox',
    'BlackBoxConfig',
    'BlackBoxStatus',
    'RaiseDetector',
    'Record',
    'RingBuffer',
    'bag_name',
]
