"""Evaluation: fault-injected bags, offline and live scoring, baselines and reports.

``inject`` writes a fault-injected copy of a clean bag with the ground truth recorded in it,
``offline.evaluate`` scores a model artifact on such a bag (with the same synchroniser and model
as the live node; ``collect`` is its per-tuple pass, ``scoring`` the numbers, ``labels`` the
interval and effective fault labels, ``comparison`` the baselines under the same fault lifecycle,
``live`` the scoring of a live replay), ``metrics`` / ``error_metrics`` hold the detection and
correction measures and ``report`` writes ``report.json``, a Markdown summary and PNG plots.
Importing this package is cheap; the heavy modules load when used.
"""

from __future__ import annotations

__all__ = ['baselines', 'collect', 'comparison', 'corrections', 'error_metrics', 'inject',
           'labels', 'live', 'metrics', 'offline', 'plots', 'report', 'scenario', 'scoring']
