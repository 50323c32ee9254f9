"""The live view: the pipeline's raw and corrected streams and its fault status in Foxglove.

:mod:`~lipfault_ros.view.payloads` turns messages into what Foxglove draws (no ROS, no
Foxglove), :mod:`~lipfault_ros.view.server` serves it (the Foxglove SDK, imported on
``open``); the node that subscribes is :mod:`lipfault_ros.nodes.view`.
"""

from __future__ import annotations

from lipfault_ros.view.payloads import (ALARM_LEVELS, FOXGLOVE_ENCODINGS, SCHEMAS, Channel,
                                        ImageFrame, Kind, RateGate, image_frame,
                                        joints_payload, status_payload, wrench_payload)
from lipfault_ros.view.server import LiveView

__all__ = ['ALARM_LEVELS', 'Channel', 'FOXGLOVE_ENCODINGS', 'ImageFrame', 'Kind', 'LiveView',
           'RateGate', 'SCHEMAS', 'image_frame', 'joints_payload', 'status_payload',
           'wrench_payload']
