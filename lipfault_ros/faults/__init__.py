"""The fault library: every sensor corruption the model trains on, the sim injects and evaluation
scores, behind one registry of names.

Three entry points share one implementation per fault, so what the model saw in training is what
the simulated robot produces live:

- :func:`corrupt_image` and :func:`corrupt_window` corrupt one frame or one (T, C) history window
  (NumPy), the latter returning the ground-truth mask of affected samples;
- :func:`corrupt_batch` corrupts a model-ready torch batch of one modality, per-sample kinds;
- :class:`StreamFault` is the stateful injector of the sim and the recorder: one
  :class:`FaultSpec` (modality, kind, severity, start, duration) applied sample by sample.

Every fault takes a severity in (0, 1] and a seeded ``numpy.random.Generator``; the same seed
gives the same corruption. Signal magnitudes are multiples of ``scale`` (per-channel standard
deviation, 1.0 for normalised data) so that severity 0.5 is clearly visible but not absurd
whatever the units. The names (``FAULTS``) are enums (:class:`ImageFault`, :class:`SignalFault`)
whose values are the strings used on the command line, in parameters and in bags.

Modules: :mod:`~.registry` (the names, :func:`check_fault`, :func:`check_severity`),
:mod:`~.images` (:func:`corrupt_image`), :mod:`~.signals` (:func:`corrupt_window`),
:mod:`~.batch` (:func:`corrupt_batch`), :mod:`~.streams` (:class:`FaultSpec`,
:class:`StreamFault`), :mod:`~.cli` (``lipfault faults``).
"""

from lipfault_ros.faults.batch import corrupt_batch
from lipfault_ros.faults.cli import add_arguments, main
from lipfault_ros.faults.images import corrupt_image
from lipfault_ros.faults.registry import (DESCRIPTIONS, FAULTS, PERSISTENT_IMAGE_FAULTS,
                                          ImageFault, SignalFault, check_fault, check_severity)
from lipfault_ros.faults.signals import corrupt_window
from lipfault_ros.faults.streams import FaultSpec, StreamFault

__all__ = [
    'DESCRIPTIONS',
    'FAULTS',
    'FaultSpec',
    'ImageFault',
    'PERSISTENT_IMAGE_FAULTS',
    'SignalFault',
    'StreamFault',
    'add_arguments',
    'check_fault',
    'check_severity',
    'corrupt_batch',
    'corrupt_image',
    'corrupt_window',
    'main',
]
