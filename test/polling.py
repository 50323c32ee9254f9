"""Waiting in a test for something the executors do in their own threads."""

from __future__ import annotations

import time
from typing import Callable

__all__ = ['wait_until']


def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``condition`` every 20 ms, up to ``timeout_s``; its last value (a test asserts on
    it, so a slow machine fails with the state reached, not a hang)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())
