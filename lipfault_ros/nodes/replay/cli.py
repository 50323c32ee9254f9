"""The two ways in: ``lipfault replay BAG --model ARTIFACT`` (settings as options) and the
``replay_node`` console script (settings as ROS parameters); both build a
:class:`~lipfault_ros.nodes.replay.replay_params.ReplayParams` and run
:func:`~lipfault_ros.nodes.replay.session.replay`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from lipfault_ros import settings
from lipfault_ros.errors import LipfaultError
from lipfault_ros.nodes.replay.replay_params import ReplayParams
from lipfault_ros.nodes.replay.player import NODE_NAME
from lipfault_ros.nodes.replay.session import replay
from lipfault_ros.ros.shutdown import GracefulStop, StopRequested

__all__ = ['add_arguments', 'main']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every :class:`ReplayParams` field as an option (``bag`` positional, ``--model``
    required), plus ``--no-plots``, which only the command line has."""
    settings.add_options(parser, ReplayParams, positional=('bag',), required=('model',))
    parser.add_argument('--no-plots', action='store_true', help='skip the PNG plots')


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    """``lipfault replay`` (given a Namespace) or the ``replay_node`` console script."""
    if not isinstance(args, argparse.Namespace):
        return _node_main(args)
    given = settings.option_values(args, ReplayParams)
    stop = GracefulStop()
    stop.init()
    interrupted = False
    try:
        report = replay(given, plots=not args.no_plots, check=stop.check)
    except StopRequested:
        interrupted = True
    except Exception as exc:
        if not isinstance(exc, ExternalShutdownException) and not stop.context_closed():
            raise
        interrupted = True  # SIGTERM closed the context, perhaps under a running call
    finally:
        stop.close(None)
    if interrupted:
        # a stopped replay has no report to print; 130 (128 + SIGINT), as a shell reports an
        # interrupted command, so a script can tell it from a finished one
        print(f'replay of {args.bag} interrupted: no report written', file=sys.stderr)
        return 130
    live = report['live']
    print(f'replayed {args.bag}: {live["tuples_received"]}/{live["tuples_expected"]} tuples '
          f'answered ({live["tuples_dropped"]} dropped), end-to-end p50 '
          f'{live["end_to_end_ms_p50"]} ms')
    for row in ('camera', 'wrench', 'joints', 'overall'):
        b = report.get(row) or {}
        print(f'  {row:<8} auroc {b.get("auroc")}  f1 {b.get("f1")}  fa/1000 '
              f'{b.get("false_alarms_per_1000")}')
    if given.out:
        print(f'report: {Path(given.out) / "report.md"}')
    return 0


def _node_main(argv: list[str] | None) -> int:
    """Console script ``replay_node``: settings from ROS parameters (``--ros-args -p bag:=...``)."""
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    stop = GracefulStop()
    stop.init(argv)
    try:
        probe = Node('lipfault_replay_settings', allow_undeclared_parameters=True,
                     automatically_declare_parameters_from_overrides=True)
        values = {f.name: probe.get_parameter(f.name).value
                  for f in dataclasses.fields(ReplayParams) if probe.has_parameter(f.name)}
        probe.destroy_node()
        given = ReplayParams(**values)
        report = replay(given, timeout_s=None if given.loops else 3600.0, check=stop.check)
        live = report['live']
        logging.getLogger(NODE_NAME).info(
            'answered %d/%d tuples (%d dropped); overall auroc %s', live['tuples_received'],
            live['tuples_expected'], live['tuples_dropped'], report['overall'].get('auroc'))
    except (StopRequested, ExternalShutdownException):
        pass  # a node stopped by Ctrl-C or SIGTERM ends with 0, as run_node's nodes do
    except (LipfaultError, FileNotFoundError, FileExistsError) as exc:
        logging.getLogger(NODE_NAME).error(str(exc))
        return 2
    except Exception:
        if not stop.context_closed():
            raise  # a real failure; otherwise SIGTERM closed the context under a call
    finally:
        stop.close(None)
    return 0
