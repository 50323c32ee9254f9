"""A tiny model trained on synthetic tuples: a working artifact for tests and examples without
a robot or a bag (the model itself is in :mod:`lipfault_ros.model`, which never imports training).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from lipfault_ros.model.config import ModelConfig
from lipfault_ros.model.synthetic import synthetic_arrays
from lipfault_ros.training.config import TrainConfig, TrainResult
from lipfault_ros.training.loop import fit

__all__ = ['train_tiny_model']

#: one training per (seed, n_train, n_val) and process
_TRAINED: dict[tuple[int, int, int], TrainResult] = {}


def train_tiny_model(*, seed: int = 0, n_train: int = 400, n_val: int = 160) -> TrainResult:
    """Train (once per process) a tiny model on synthetic tuples; return its TrainResult.

    The artifact lives in a temporary directory removed at interpreter exit. It serves tests and
    examples that need a working model without a robot or a bag.
    """
    key = (seed, n_train, n_val)
    if key not in _TRAINED:
        root = Path(tempfile.mkdtemp(prefix='lipfault-tiny-'))
        atexit.register(shutil.rmtree, root, True)
        mcfg = ModelConfig.tiny()
        train = synthetic_arrays(n_train, image_size=mcfg.image_size,
                                 window=mcfg.wrench_window, seed=seed + 1)
        val = synthetic_arrays(n_val, image_size=mcfg.image_size, window=mcfg.wrench_window,
                               seed=seed + 2)
        _TRAINED[key] = fit(train, val, TrainConfig.tiny(seed=seed), mcfg,
                            out=root / 'artifact', progress=False)
    return _TRAINED[key]
