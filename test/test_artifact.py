"""Model artifacts: bit-identical round trip, and refusal of anything tampered or mismatched."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from lipfault_ros.artifact import (CONFIG_FILE, FORMAT_VERSION, MIN_FORMAT_VERSION,
                                   WEIGHTS_FILE, load_artifact,
                                   save_artifact, sha256_file)
from lipfault_ros.errors import ArtifactError
from lipfault_ros.model import LipfaultNet, ModelConfig
from lipfault_ros.training.tiny import train_tiny_model
from lipfault_ros.normalise import NormStats


@pytest.fixture
def artifact_dir(tmp_path):
    src = train_tiny_model().artifact
    dst = tmp_path / 'model'
    shutil.copytree(src, dst)
    return dst


def _inputs(cfg: ModelConfig):
    gen = torch.Generator().manual_seed(3)
    return (torch.rand((5, 3, cfg.image_size, cfg.image_size), generator=gen),
            torch.randn((5, 6, cfg.wrench_window), generator=gen),
            torch.randn((5, cfg.joints_channels, cfg.joints_window), generator=gen))


def test_saved_then_loaded_model_gives_bit_identical_outputs(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig.tiny()
    net = LipfaultNet(cfg)
    net.train()
    net(*_inputs(cfg))  # move the power-iteration state away from its initial value
    net.eval()
    with torch.no_grad():
        net.thresholds.copy_(torch.tensor([0.5, -1.0, float('inf')]))
        want = net(*_inputs(cfg), always_correct=True)
    path = save_artifact(tmp_path / 'a', net, stats=NormStats.identity(7),
                         summary={'auroc': {'camera': 0.9}})
    art = load_artifact(path)
    with torch.no_grad():
        got = art.model(*_inputs(cfg), always_correct=True)
    for a, b in zip(want.corrected + (want.scores,), got.corrected + (got.scores,)):
        assert torch.equal(a, b)
    assert art.thresholds.tolist() == [0.5, -1.0, float('inf')]
    assert art.summary['auroc']['camera'] == 0.9
    assert art.joint_names == cfg.joint_names and art.image_size == 32 and art.wrench_window == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a']  # no temporary leftovers


def test_existing_path_is_refused_unless_overwrite(artifact_dir):
    art = load_artifact(artifact_dir)
    with pytest.raises(FileExistsError, match='exists'):
        save_artifact(artifact_dir, art.model, stats=art.stats)
    save_artifact(artifact_dir, art.model, stats=art.stats, overwrite=True)
    assert load_artifact(artifact_dir).config == art.config


def test_tampered_weights_are_refused(artifact_dir):
    weights = artifact_dir / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match='sha256 hash mismatch'):
        load_artifact(artifact_dir)


def test_truncated_weights_are_refused(artifact_dir):
    weights = artifact_dir / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ArtifactError, match='truncated'):
        load_artifact(artifact_dir)


def test_truncated_config_is_refused(artifact_dir):
    cfg = artifact_dir / CONFIG_FILE
    cfg.write_text(cfg.read_text()[:200])
    with pytest.raises(ArtifactError, match='not valid JSON'):
        load_artifact(artifact_dir)


def test_newer_format_version_is_refused(artifact_dir):
    cfg = artifact_dir / CONFIG_FILE
    doc = json.loads(cfg.read_text())
    doc['format_version'] = FORMAT_VERSION + 1
    cfg.write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match='newer than this package supports'):
        load_artifact(artifact_dir)


def test_older_format_version_asks_for_retraining(artifact_dir):
    cfg = artifact_dir / CONFIG_FILE
    doc = json.loads(cfg.read_text())
    doc['format_version'] = MIN_FORMAT_VERSION - 1
    cfg.write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match='older than this package reads.*lipfault train'):
        load_artifact(artifact_dir)


def test_format_4_reads_with_the_camera_detail_ceiling_off(artifact_dir):
    from safetensors.torch import load_file, save_file
    fresh = load_artifact(artifact_dir)
    weights, cfg = artifact_dir / WEIGHTS_FILE, artifact_dir / CONFIG_FILE
    state = load_file(str(weights))
    assert float(state.pop('residuals.space_ceiling_camera')) > 0
    save_file(state, str(weights))
    doc = json.loads(cfg.read_text())
    doc.update(format_version=4, weights_sha256=sha256_file(weights),
               weights_bytes=weights.stat().st_size)
    cfg.write_text(json.dumps(doc))
    old = load_artifact(artifact_dir)
    assert float(old.model.residuals.space_ceiling_camera) == 0.0
    assert torch.equal(old.model.residuals.space_scale_camera,
                       fresh.model.residuals.space_scale_camera)


def test_format_7_reads_with_the_all_modality_residuals_its_head_was_trained_on(artifact_dir):
    cfg = artifact_dir / CONFIG_FILE
    doc = json.loads(cfg.read_text())
    assert doc['model'].pop('isolated_signal_residuals') is True
    doc['format_version'] = 7
    cfg.write_text(json.dumps(doc))
    assert load_artifact(artifact_dir).config.isolated_signal_residuals is False
    doc['format_version'] = 8  # a version-8 config without the key takes today's default
    cfg.write_text(json.dumps(doc))
    assert load_artifact(artifact_dir).config.isolated_signal_residuals is True


def test_config_that_does_not_fit_the_weights_is_refused(artifact_dir):
    cfg = artifact_dir / CONFIG_FILE
    doc = json.loads(cfg.read_text())
    doc['model']['latent'] = 40
    cfg.write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match='shape mismatch for .*fusion'):
        load_artifact(artifact_dir)


def test_weights_from_another_file_are_refused_even_with_a_matching_hash(artifact_dir, tmp_path):
    torch.manual_seed(0)
    other = save_artifact(tmp_path / 'other', LipfaultNet(ModelConfig.tiny(latent=40)),
                          stats=NormStats.identity(7))
    shutil.copy(other / WEIGHTS_FILE, artifact_dir / WEIGHTS_FILE)
    cfg = artifact_dir / CONFIG_FILE
    doc = json.loads(cfg.read_text())
    doc['weights_sha256'] = sha256_file(artifact_dir / WEIGHTS_FILE)
    doc['weights_bytes'] = (artifact_dir / WEIGHTS_FILE).stat().st_size
    cfg.write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match='shape mismatch'):
        load_artifact(artifact_dir)


def test_missing_parts_are_named(artifact_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_artifact(tmp_path / 'nowhere')
    (artifact_dir / WEIGHTS_FILE).unlink()
    with pytest.raises(ArtifactError, match='has no weights file model.safetensors'):
        load_artifact(artifact_dir)
    (artifact_dir / CONFIG_FILE).unlink()
    with pytest.raises(ArtifactError, match='has no config.json'):
        load_artifact(artifact_dir)
    f = tmp_path / 'file'
    f.write_text('x')
    with pytest.raises(ArtifactError, match='is not a directory'):
        load_artifact(f)


def test_unknown_model_keys_in_config_are_refused(artifact_dir):
    cfg = artifact_dir / CONFIG_FILE
    doc = json.loads(cfg.read_text())
    doc['model']['exec'] = '__import__("os")'
    cfg.write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match='unknown ModelConfig keys: exec'):
        load_artifact(artifact_dir)


def test_format_5_reads_with_the_signal_roughness_ceilings_off(artifact_dir):
    from safetensors.torch import load_file, save_file
    fresh = load_artifact(artifact_dir)
    weights, cfg = artifact_dir / WEIGHTS_FILE, artifact_dir / CONFIG_FILE
    state = load_file(str(weights))
    for name in ('rough_ceiling_wrench', 'rough_ceiling_joints'):
        assert float(state.pop(f'residuals.{name}').max()) > 0
    save_file(state, str(weights))
    doc = json.loads(cfg.read_text())
    doc.update(format_version=5, weights_sha256=sha256_file(weights),
               weights_bytes=weights.stat().st_size)
    cfg.write_text(json.dumps(doc))
    old = load_artifact(artifact_dir).model.residuals
    assert float(old.rough_ceiling_wrench.abs().sum() + old.rough_ceiling_joints.abs().sum()) == 0
    assert torch.equal(old.space_ceiling_camera, fresh.model.residuals.space_ceiling_camera)


@pytest.mark.parametrize('key', ['clean_levels', 'hold_levels'])
def test_clean_and_hold_levels_are_stored_beside_the_thresholds_and_optional(artifact_dir,
                                                                            key):
    import numpy as np

    art = load_artifact(artifact_dir)
    levels = getattr(art, key)
    assert levels.shape == (3,) and np.isfinite(levels).all()
    # the median clean validation score sits below the calibrated threshold, the hold level
    # between it and the threshold
    assert (art.clean_levels < art.thresholds).all()
    assert (art.clean_levels <= art.hold_levels).all()
    assert (art.hold_levels <= art.thresholds).all()
    cfg = artifact_dir / CONFIG_FILE
    doc = json.loads(cfg.read_text())
    doc.pop(key)
    cfg.write_text(json.dumps(doc))
    assert np.isnan(getattr(load_artifact(artifact_dir), key)).all()  # older artifacts: off
    doc[key] = {'camera': None, 'wrench': 0.5, 'joints': -1}
    cfg.write_text(json.dumps(doc))
    assert np.array_equal(getattr(load_artifact(artifact_dir), key), [np.nan, 0.5, -1.0],
                          equal_nan=True)
    for bad in ({'camera': 'high', 'wrench': 0.5, 'joints': 0}, {'camera': 0.0},
                [0.0, 0.0, 0.0]):
        doc[key] = bad
        cfg.write_text(json.dumps(doc))
        with pytest.raises(ArtifactError, match=key):
            load_artifact(artifact_dir)
