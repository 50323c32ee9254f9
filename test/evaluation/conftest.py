"""Shared fixtures of the evaluation tests: small clean bags, a tiny trained model, a
fault-injected bag. Built once per session (training takes a few seconds)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthbag import JOINTS, SPECS, write_bag  # noqa: E402


@pytest.fixture(scope='session')
def eval_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp('evaluation')


@pytest.fixture(scope='session')
def train_bag(eval_dir) -> Path:
    return write_bag(eval_dir / 'train_clean', duration_s=12.0)


@pytest.fixture(scope='session')
def clean_bag(eval_dir) -> Path:
    return write_bag(eval_dir / 'eval_clean', duration_s=8.0)


@pytest.fixture(scope='session')
def tiny_artifact(eval_dir, train_bag) -> Path:
    """A tiny model trained on the clean training bag (a few seconds on one core)."""
    import torch

    from lipfault_ros.bags.dataset import DatasetConfig, build_dataset, split_dataset
    from lipfault_ros.model.config import ModelConfig
    from lipfault_ros.training import TrainConfig, fit

    torch.set_num_threads(1)
    mc = ModelConfig.tiny(joint_names=JOINTS)
    ds = build_dataset([train_bag], DatasetConfig.from_model(mc), progress=False)
    split = split_dataset(ds, block_s=2.0, gap_s=0.2)
    out = eval_dir / 'model'
    fit(split.train, split.val, TrainConfig.tiny(), mc, out=out, progress=False)
    return out


@pytest.fixture(scope='session')
def faulty_bag(eval_dir, clean_bag) -> Path:
    from lipfault_ros.evaluation.inject import inject
    from lipfault_ros.evaluation.scenario import Scenario

    out = eval_dir / 'eval_faulty'
    inject(clean_bag, Scenario.from_specs(SPECS, seed=3), out)
    return out
