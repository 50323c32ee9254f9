"""Read sensor samples and fault truth out of rosbag2 recordings, without a ROS runtime.

A bag is a rosbag2 directory (``metadata.yaml`` plus sqlite3 ``.db3`` or ``.mcap`` files) or a
bare ``.mcap``/``.db3`` file, recorded on Humble, Jazzy or Kilted. Messages are deserialised with
``rosbags``: with the definitions the bag carries when it has them, otherwise with the typestore
of the ROS distribution named in its metadata (the newest one when it names none).

Every stamp is integer nanoseconds. Every refusal is a :class:`~lipfault_ros.errors.BagError`
naming the bag and the topic, and saying what to do; a path that does not exist stays a
``FileNotFoundError``.

Modules: :mod:`~.info` (:class:`BagInfo`, what a bag's index says), :mod:`~.bag`
(:class:`BagReader`, one bag in header-stamp order), :mod:`~.multi` (:func:`read_samples`,
:func:`read_truth`, :func:`check_bags` over several bags).
"""

from lipfault_ros.bags.reader.bag import BagReader
from lipfault_ros.bags.reader.info import BagInfo
from lipfault_ros.bags.reader.multi import check_bags, read_samples, read_truth

__all__ = [
    'BagInfo',
    'BagReader',
    'check_bags',
    'read_samples',
    'read_truth',
]
