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

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from lipfault_ros.errors import LipfaultError
from lipfault_ros.nodes.replay.replay_params import ReplayParams
from lipfault_ros.nodes.replay.player import NODE_NAME
from lipfault_ros.nodes.replay.session import replay

__all__ = ['add_arguments', 'main']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('bag', type=Path, help='the bag to play')
    parser.add_argument('--model', type=Path, required=True,
                        help='the artifact the pipeline runs (windows, joints, thresholds)')
    parser.add_argument('--out', type=Path, default=None, help='report folder')
    parser.add_argument('--overwrite', action='store_true', help='replace --out if it exists')
    parser.add_argument('--clean', type=Path, default=None,
                        help='the clean bag BAG was injected from (correction errors)')
    parser.add_argument('--rate', type=float, default=1.0, help='playback speed factor')
    parser.add_argument('--loops', type=int, default=1, help='times to play the bag')
    parser.add_argument('--start-offset', type=float, default=0.0, metavar='S',
                        help='seconds into the bag to start from')
    parser.add_argument('--duration', type=float, default=0.0, metavar='S',
                        help='seconds to play (0: to the end)')
    parser.add_argument('--topics', default='',
                        help='comma-separated topics to play (default: the sensor topics; all)')
    parser.add_argument('--remap', default='', help='old:=new[,old:=new...]')
    parser.add_argument('--clock', action='store_true', help='publish /clock (use_sim_time)')
    parser.add_argument('--no-restamp', action='store_true',
                        help='keep header stamps on loops (the synchroniser resets instead)')
    parser.add_argument('--pipeline', default='/lipfault_pipeline',
                        help='name of the pipeline node to record')
    parser.add_argument('--start-pipeline', action='store_true',
                        help='start the pipeline node in this process with --model')
    parser.add_argument('--wait', type=float, default=15.0,
                        help='seconds to wait for the pipeline to subscribe')
    parser.add_argument('--no-plots', action='store_true', help='skip the PNG plots')


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    """``lipfault replay`` (given a Namespace) or the ``replay_node`` console script."""
    if not isinstance(args, argparse.Namespace):
        return _node_main(args)
    settings = ReplayParams(
        bag=str(args.bag), model=str(args.model), clean_bag=str(args.clean or ''),
        out=str(args.out or ''), overwrite=args.overwrite, rate=args.rate, loops=args.loops,
        start_offset=args.start_offset, duration=args.duration, topics=args.topics,
        remap=args.remap, clock=args.clock, restamp=not args.no_restamp,
        pipeline=args.pipeline, start_pipeline=args.start_pipeline,
        wait_for_pipeline=args.wait)
    rclpy.init()
    try:
        report = replay(settings, plots=not args.no_plots)
    except Exception as exc:
        if not isinstance(exc, ExternalShutdownException) and rclpy.ok():
            raise
        # a stop signal: rclpy's handler closes the context, perhaps under a running call
        # (then that call fails with an RCLError before the KeyboardInterrupt arrives)
        interrupted = True
    except KeyboardInterrupt:
        interrupted = True
    else:
        interrupted = False
    finally:
        rclpy.try_shutdown()
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
    if args.out:
        print(f'report: {args.out / "report.md"}')
    return 0


def _node_main(argv: list[str] | None) -> int:
    """Console script ``replay_node``: settings from ROS parameters (``--ros-args -p bag:=...``)."""
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    rclpy.init(args=argv)
    try:
        probe = Node('lipfault_replay_settings', allow_undeclared_parameters=True,
                     automatically_declare_parameters_from_overrides=True)
        values = {f.name: probe.get_parameter(f.name).value
                  for f in dataclasses.fields(ReplayParams) if probe.has_parameter(f.name)}
        probe.destroy_node()
        settings = ReplayParams(**values)
        report = replay(settings, timeout_s=None if settings.loops else 3600.0)
        live = report['live']
        logging.getLogger(NODE_NAME).info(
            'answered %d/%d tuples (%d dropped); overall auroc %s', live['tuples_received'],
            live['tuples_expected'], live['tuples_dropped'], report['overall'].get('auroc'))
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (LipfaultError, FileNotFoundError, FileExistsError) as exc:
        logging.getLogger(NODE_NAME).error(str(exc))
        return 2
    except Exception:
        if rclpy.ok():
            raise  # a real failure; otherwise a stop signal closed the context under a call
    finally:
        rclpy.try_shutdown()
    return 0
