"""Two-stage training: losses fall, faults are detected, corrections help, resume is exact."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lipfault_ros.artifact import WEIGHTS_FILE, load_artifact
from lipfault_ros.errors import ConfigError, InputError
from lipfault_ros.model import ModelConfig
from lipfault_ros.synthetic import synthetic_arrays
from lipfault_ros.training.tiny import train_tiny_model
from lipfault_ros.training import (CHECKPOINT_FILE, TrainConfig, fit, lr_at,
                                   supervised_contrastive)


@pytest.fixture(scope='module')
def result():
    torch.set_num_threads(1)
    return train_tiny_model()


def test_stage1_reconstruction_loss_falls(result):
    s1 = result.history['stage1']
    assert len(s1) == TrainConfig.tiny().stage1_epochs
    assert s1[-1] < 0.3 * s1[0]
    assert result.history['stage2'][-1] < result.history['stage2'][0]


def test_stage2_detects_each_single_modality_fault_on_held_out_data(result):
    auroc = result.summary['auroc']
    print('held-out AUROC per modality:', {k: round(v, 3) for k, v in auroc.items()})
    for modality in ('camera', 'wrench', 'joints'):
        assert auroc[modality] > 0.8, (modality, auroc)


def test_correction_is_closer_to_clean_than_the_corrupted_input(result):
    ratio = result.summary['correction_ratio']
    print('corrected/corrupted error ratio:', {k: round(v, 3) for k, v in ratio.items()})
    for modality in ('camera', 'wrench', 'joints'):
        assert ratio[modality] < 1.0


def test_summary_holds_thresholds_recon_errors_and_throughput(result):
    s = result.summary
    art = load_artifact(result.artifact)
    assert np.allclose(art.thresholds, [s['thresholds'][m] for m in ('camera', 'wrench',
                                                                       'joints')])
    assert all(v > 0 for v in s['recon_error'].values())
    assert s['tuples_per_s']['stage1'] > 0 and s['tuples_per_s']['stage2'] > 0
    assert 'AUROC' in result.format()


def _small(n: int, seed: int):
    return synthetic_arrays(n, image_size=32, window=16, seed=seed)


def test_resume_after_interrupts_gives_bit_identical_weights(tmp_path):
    torch.set_num_threads(1)
    mc = ModelConfig.tiny()
    tc = TrainConfig.tiny(stage1_epochs=2, stage2_epochs=2, checkpoint_every=3)
    train, val = _small(96, 1), _small(32, 2)
    ref = fit(train, val, tc, mc, out=tmp_path / 'ref', progress=False)

    def interrupt_at(stage, step):
        def hook(s, k):
            if (s, k) == (stage, step):
                raise KeyboardInterrupt
        return hook

    ck = tmp_path / 'ck'
    with pytest.raises(KeyboardInterrupt):
        fit(train, val, tc, mc, out=tmp_path / 'run', checkpoint_dir=ck, progress=False,
            on_step=interrupt_at(1, 2))
    assert (ck / CHECKPOINT_FILE).is_file()
    saved = torch.load(ck / CHECKPOINT_FILE, weights_only=True)
    assert '"step": 2' in saved['state']
    with pytest.raises(KeyboardInterrupt):
        fit(train, val, tc, mc, out=tmp_path / 'run', checkpoint_dir=ck, resume=True,
            progress=False, on_step=interrupt_at(2, 4))
    run = fit(train, val, tc, mc, out=tmp_path / 'run', checkpoint_dir=ck, resume=True,
              progress=False)
    a = load_file(str(ref.artifact / WEIGHTS_FILE))
    b = load_file(str(run.artifact / WEIGHTS_FILE))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert ref.summary['thresholds'] == run.summary['thresholds']
    assert ref.history == run.history


def test_tensorboard_logs_are_written(tmp_path):
    tc = TrainConfig.tiny(stage1_epochs=1, stage2_epochs=1)
    fit(_small(40, 1), _small(16, 2), tc, ModelConfig.tiny(), out=tmp_path / 'm',
        progress=False, log_dir=tmp_path / 'tb')
    assert any(p.name.startswith('events.out.tfevents') for p in (tmp_path / 'tb').iterdir())


def test_refusals(tmp_path):
    train, val = _small(16, 1), _small(8, 2)
    (tmp_path / 'exists').mkdir()
    with pytest.raises(FileExistsError, match='exists'):
        fit(train, val, TrainConfig.tiny(), ModelConfig.tiny(), out=tmp_path / 'exists')
    with pytest.raises(ConfigError, match='resume=True needs a checkpoint_dir'):
        fit(train, val, TrainConfig.tiny(), ModelConfig.tiny(), out=tmp_path / 'x',
            resume=True)
    with pytest.raises(FileNotFoundError, match='no checkpoint'):
        fit(train, val, TrainConfig.tiny(), ModelConfig.tiny(), out=tmp_path / 'x',
            resume=True, checkpoint_dir=tmp_path / 'none')
    with pytest.raises(InputError, match='wrench window 16 differs'):
        fit(train, val, TrainConfig.tiny(), ModelConfig.tiny(wrench_window=32),
            out=tmp_path / 'x')
    with pytest.raises(ConfigError, match='severity_range'):
        TrainConfig(severity_range=(0.5, 0.2))
    with pytest.raises(ConfigError, match='unknown TrainConfig keys: epochs'):
        TrainConfig.from_dict({'epochs': 3})
    with pytest.raises(ConfigError, match='"modality:kind"'):
        TrainConfig(fault_kinds=('blur',))


def test_lr_schedule_is_a_pure_warmup_cosine():
    kw = dict(base=1.0, warmup=10, min_ratio=0.1)
    assert lr_at(0, 100, **kw) == pytest.approx(0.1)
    assert lr_at(9, 100, **kw) == pytest.approx(1.0)
    assert lr_at(100, 100, **kw) == pytest.approx(0.1)
    assert lr_at(55, 100, **kw) == pytest.approx(0.55)
    assert [lr_at(s, 100, **kw) for s in range(100)] == [lr_at(s, 100, **kw) for s in range(100)]


def test_supervised_contrastive_prefers_grouped_embeddings():
    classes = torch.tensor([0, 0, 1, 1])
    good = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [1, 0.1], [0, 1], [0.1, 1]]))
    bad = good[[0, 2, 1, 3]]
    assert supervised_contrastive(good, classes, 0.1) < supervised_contrastive(bad, classes, 0.1)
    assert math.isfinite(float(supervised_contrastive(good, torch.arange(4), 0.1)))


def test_presets_are_valid():
    assert TrainConfig.quick().stage1_epochs >= 1
    assert TrainConfig.from_dict(TrainConfig.quick().to_dict()) == TrainConfig.quick()


def test_fit_accepts_an_iterable_of_sensor_tuples(tmp_path):
    from lipfault_ros.tuples import SensorTuple

    arrays = synthetic_arrays(24, image_size=48, window=16, seed=3)
    tuples = (SensorTuple(int(arrays.stamps_ns[i]), arrays.images[i], arrays.wrench[i],
                          arrays.joints[i], arrays.joint_names) for i in range(24))
    res = fit(tuples, arrays.subset(slice(0, 8)), TrainConfig.tiny(stage1_epochs=1,
                                                                   stage2_epochs=1),
              ModelConfig.tiny(), out=tmp_path / 'm', progress=False)
    assert res.summary['train_tuples'] == 24
