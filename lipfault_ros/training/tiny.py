"""Tiny models trained on synthetic data (:mod:`lipfault_ros.synthetic`): working artifacts for
tests, examples and smoke runs without a robot or a bag (the model itself is in
:mod:`lipfault_ros.model`, which never imports training).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from lipfault_ros.model.config import ModelConfig
from lipfault_ros.synthetic import synthetic_arrays, synthetic_tuples
from lipfault_ros.training.config import TrainConfig, TrainResult
from lipfault_ros.training.loop import fit

__all__ = ['train_synthetic_model', 'train_tiny_model']

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


def train_synthetic_model(out: Path, *, seconds: float = 6.0, epochs: int = 2,
                          seed: int = 0) -> Path:
    """Train the tiny model preset on ``seconds`` of the synthetic stream into ``out`` (a few
    seconds on one CPU core): a stand-in artifact for tests and smoke runs of the live path.
    Returns ``out``; an existing artifact there is reused."""
    out = Path(out)
    if (out / 'config.json').is_file():
        return out
    train = synthetic_tuples(seconds, seed=seed)
    val = synthetic_tuples(max(seconds / 2, 2.0), seed=seed + 1, start_ns=500 * 10**9)
    fit(train, val, TrainConfig.tiny(stage1_epochs=epochs, stage2_epochs=epochs, seed=seed),
        ModelConfig.tiny(), out=out, progress=False)
    return out
