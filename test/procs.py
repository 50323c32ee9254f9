"""Processes a test started through an installed package, to check none is left behind."""

from __future__ import annotations

from pathlib import Path

import psutil


def processes_under(prefix: Path) -> list[psutil.Process]:
    """Running processes whose command line names ``prefix`` (a colcon install: the nodes'
    scripts live there), zombies left out."""
    out = []
    for proc in psutil.process_iter(['cmdline', 'status']):
        try:
            if (proc.info['status'] != psutil.STATUS_ZOMBIE
                    and any(str(prefix) in part for part in proc.info['cmdline'] or ())):
                out.append(proc)
        except psutil.Error:
            continue
    return out
