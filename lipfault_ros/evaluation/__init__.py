"""Evaluation: fault-injected bags, offline and live scoring, baselines and reports.

``inject`` writes a fault-injected copy of a clean bag with the ground truth recorded in it,
``offline.evaluate`` scores a model artifact on such a bag (with the same synchroniser and model
as the live node), ``metrics`` holds the detection and correction measures and ``report`` writes
``report.json``, a Markdown summary and PNG plots. Importing this package is cheap; the heavy
modules load when used.
"""

from __future__ import annotations

__all__ = ['baselines', 'inject', 'metrics', 'offline', 'plots', 'report', 'scenario']
