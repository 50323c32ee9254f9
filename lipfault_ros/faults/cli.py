"""``lipfault faults``: the registry printed, one line per fault."""

from __future__ import annotations

import argparse

from lipfault_ros.faults.registry import DESCRIPTIONS, FAULTS
from lipfault_ros.tuples import MODALITIES, Modality

__all__ = ['add_arguments', 'main']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('modality', nargs='?', choices=[m.value for m in MODALITIES],
                        help='list only this modality')


def main(args: argparse.Namespace) -> int:
    """Print the registry: every fault per modality with a one-line description."""
    chosen = [Modality(args.modality)] if getattr(args, 'modality', None) else list(MODALITIES)
    for modality in chosen:
        table = DESCRIPTIONS['image' if modality is Modality.CAMERA else 'signal']
        print(f'{modality.value}:')
        for name in FAULTS[modality]:
            print(f'  {name:<16} {table[name]}')
    print('\nSeverity is in (0, 1]. Inject with --fault modality:type:severity:start_s:duration_s')
    return 0
