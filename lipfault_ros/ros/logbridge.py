"""The core's Python log records in a node's ROS log (console, log file and /rosout).

The core (synchroniser, engine, evaluation) is ROS-free and logs through :mod:`logging`; a node
that runs it attaches :class:`RosLogBridge` so that "joints silent for more than 0.300 s" shows
up where a robot engineer looks (``ros2 topic echo /rosout``, rqt_console) with the node's name,
once per state change as the core logs it, and not a second time on stderr.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ['RosLogBridge']

#: the package logger every core module's logger is a child of
CORE_LOGGER = 'lipfault_ros'


class RosLogBridge(logging.Handler):
    """Forwards records of the ``lipfault_ros`` loggers to an rclpy logger while attached."""

    def __init__(self, ros_logger: Any, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._ros = ros_logger
        self._saved: tuple[int, bool] | None = None
        self.setFormatter(logging.Formatter('%(name)s: %(message)s'))

    def attach(self) -> RosLogBridge:
        core = logging.getLogger(CORE_LOGGER)
        if self._saved is None:
            self._saved = (core.level, core.propagate)
            if core.level == logging.NOTSET or core.level > self.level:
                core.setLevel(self.level)
            core.propagate = False  # shown once, by ROS
            core.addHandler(self)
        return self

    def detach(self) -> None:
        core = logging.getLogger(CORE_LOGGER)
        if self._saved is not None:
            core.removeHandler(self)
            core.setLevel(self._saved[0])
            core.propagate = self._saved[1]
            self._saved = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if record.levelno >= logging.ERROR:
                self._ros.error(text)
            elif record.levelno >= logging.WARNING:
                self._ros.warning(text)
            elif record.levelno >= logging.INFO:
                self._ros.info(text)
            else:
                self._ros.debug(text)
        except Exception:  # noqa: BLE001 - a log line must never take the node down
            self.handleError(record)
