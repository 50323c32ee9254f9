"""The ``lipfault`` command: one entry point with subcommands, a thin shell over the core.

Each subcommand lives in the module that owns its work and exposes two functions,
``add_arguments(parser)`` and ``main(args) -> int``. Modules are imported only when their
subcommand runs, so ``lipfault faults`` does not pay for torch or rclpy start-up.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from lipfault_ros.errors import LipfaultError

__all__ = ['COMMANDS', 'main', 'parser_for']

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    'demo': ('lipfault_ros.nodes.demo', 'run the live pipeline against the simulated robot'),
    'record': ('lipfault_ros.sim.record', 'record simulated sensor data into a rosbag2'),
    'inject': ('lipfault_ros.evaluation.inject', 'write a fault-injected copy of a bag'),
    'train': ('lipfault_ros.train_cli', 'train a model artifact from rosbags'),
    'eval': ('lipfault_ros.evaluation.cli', 'score a model artifact on a bag, offline'),
    'view': ('lipfault_ros.nodes.view', 'serve the pipeline live to Foxglove (raw and corrected '
             'streams, fault status)'),
    'replay': ('lipfault_ros.nodes.replay', 'play a bag into the running pipeline and score it'),
    'bench': ('lipfault_ros.bench.cli', 'measure latency, throughput and memory'),
    'quality': ('lipfault_ros.bench.quality', 'detection quality on held-out episodes: train, '
                'inject, score, leave-family-out'),
    'offsets': ('lipfault_ros.bench.offsets', 'what a threshold offset buys: false-alarm '
                'events against detections, from eval reports'),
    'export': ('lipfault_ros.export', 'export a model artifact to ONNX, TorchScript or a .pt2 '
               'program'),
    'analyze': ('lipfault_ros.model.analysis', 'Lipschitz/Jacobian sensitivity of an artifact'),
    'faults': ('lipfault_ros.faults', 'list the fault library'),
}


def parser_for(argv: list[str]) -> argparse.ArgumentParser:
    """The ``lipfault`` parser with the options of the subcommand ``argv`` names (only that
    module is imported)."""
    parser = argparse.ArgumentParser(prog='lipfault', description=__doc__.splitlines()[0])
    parser.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    chosen = next((a for a in argv if not a.startswith('-')), None)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(command_module=module)
        if name == chosen:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser_for(argv).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format='%(levelname)s %(name)s: %(message)s')
    try:
        return int(importlib.import_module(args.command_module).main(args) or 0)
    except LipfaultError as exc:
        print(f'lipfault {args.command}: error: {exc}', file=sys.stderr)
        return 2
    except (FileNotFoundError, FileExistsError) as exc:
        print(f'lipfault {args.command}: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
