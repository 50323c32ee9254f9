"""The model artifact: one directory with the weights and everything needed to use them.

Layout::

    ARTIFACT/
      model.safetensors   weights and buffers (incl. power-iteration state and thresholds)
      config.json         format_version, model config, joint names, image size, windows,
                          thresholds, clean levels, normalisation stats, training summary,
                          sha256 of the weights

Loading never executes code from the files: JSON and safetensors only. The network is built from
the config first and the weights are loaded into it after every key, shape and dtype was checked.
Writing goes to a temporary directory beside the target that is renamed into place, so a crash
never leaves a partial artifact. ``thresholds`` in ``config.json`` may be edited by hand (e.g. to
trade false alarms for misses); they override the copy in the weights. ``clean_levels`` (the
calibration episodes' median clean score per modality, see :mod:`lipfault_ros.scene_thresholds`) is
optional: an artifact without it runs with calibrated thresholds only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from lipfault_ros.errors import ArtifactError, ConfigError
from lipfault_ros.fsutil import replace_dir
from lipfault_ros.jsonable import jsonable
from lipfault_ros.model.config import ModelConfig
from lipfault_ros.model.network import LipfaultNet
from lipfault_ros.normalise import NormStats
from lipfault_ros.tuples import MODALITIES

__all__ = ['FORMAT_VERSION', 'MIN_FORMAT_VERSION', 'WEIGHTS_FILE', 'CONFIG_FILE', 'Artifact', 'load_artifact',
           'save_artifact', 'sha256_file']

log = logging.getLogger(__name__)

#: Version of the artifact layout written by this package; newer ones are refused.
FORMAT_VERSION = 8
#: Oldest layout this package still reads. Version 2 added the per-channel error scales of the
#: detection head, version 3 the cross-modal residual features and their scales, version 4 the
#: camera's frame-to-frame change and spatial detail (``frame_scale_camera``,
#: ``space_scale_camera``, ``camera_history_s``) and the joints' position-velocity consistency
#: (``motion_fit_joints``, ``motion_scale_joints``); an older network cannot be rebuilt from its
#: weights, so it is retrained. Version 5 added the camera's detail ceiling
#: (``space_ceiling_camera``); a version-4 network reads with that feature off (its head never
#: saw it, so it scores exactly as before), version 6 the signals' roughness ceilings
#: (``rough_ceiling_wrench``, ``rough_ceiling_joints``), off likewise in older networks,
#: version 7 the ``clean_levels`` the scene reference compares a scene with (an older
#: artifact runs with calibrated thresholds only); the optional ``hold_levels`` a raised alarm
#: holds over came later within version 7 (an artifact without them holds at the threshold).
#: Version 8 takes the signals' reconstruction errors without the other signal
#: (``ModelConfig.isolated_signal_residuals``); an older network reads with it off, the
#: features its head was trained on.
MIN_FORMAT_VERSION = 4
WEIGHTS_FILE = 'model.safetensors'
CONFIG_FILE = 'config.json'


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Artifact:
    """A loaded artifact. ``model`` is in eval mode on the CPU; ``thresholds`` is (3,) in
    ``MODALITIES`` order, ``clean_levels`` and ``hold_levels`` too (NaN where the artifact has
    none)."""

    path: Path
    config: ModelConfig
    model: LipfaultNet
    stats: NormStats
    thresholds: np.ndarray
    summary: Mapping[str, Any] = field(default_factory=dict)
    clean_levels: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))
    hold_levels: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.config.joint_names

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def wrench_window(self) -> int:
        return self.config.wrench_window

    @property
    def joints_window(self) -> int:
        return self.config.joints_window


def save_artifact(path: Path | str, model: LipfaultNet, *, stats: NormStats,
                  summary: Mapping[str, Any] | None = None, overwrite: bool = False,
                  clean_levels: Mapping[str, float] | None = None,
                  hold_levels: Mapping[str, float] | None = None) -> Path:
    """Write ``model`` (its config, weights and thresholds buffer), ``stats``, a training
    ``summary`` and, when given, the ``clean_levels`` and ``hold_levels`` (per modality name)
    to the directory ``path``. Refuses an existing path unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f'artifact {path} exists (pass overwrite=True to replace it)')
    cfg = model.cfg
    if stats.n_joints != len(cfg.joint_names):
        raise ArtifactError(f'NormStats has {stats.n_joints} joints, model config has '
                            f'{len(cfg.joint_names)}')
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f'.{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}'
    tmp.mkdir()
    try:
        state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        weights = tmp / WEIGHTS_FILE
        save_file(state, str(weights), metadata={'format': 'lipfault_ros',
                                                 'format_version': str(FORMAT_VERSION)})
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(weights, 0o666 & ~umask)  # safetensors writes 0600; make it readable like json
        os.chmod(tmp, 0o777 & ~umask)
        thresholds = model.thresholds.detach().cpu().numpy().astype(np.float64)
        doc = {
            'format_version': FORMAT_VERSION,
            'model': cfg.to_dict(),
            'joint_names': list(cfg.joint_names),
            'image_size': cfg.image_size,
            'wrench_window': cfg.wrench_window,
            'joints_window': cfg.joints_window,
            'modalities': [m.value for m in MODALITIES],
            'thresholds': {m.value: float(t) for m, t in zip(MODALITIES, thresholds)},
            **{key: {m.value: jsonable(float(value[m.value])) for m in MODALITIES}
               for key, value in (('clean_levels', clean_levels), ('hold_levels', hold_levels))
               if value is not None},
            'norm_stats': stats.to_dict(),
            'training': jsonable(dict(summary or {}), non_finite='text'),
            'weights_file': WEIGHTS_FILE,
            'weights_sha256': sha256_file(weights),
            'weights_bytes': weights.stat().st_size,
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(jsonable(doc, non_finite='text'), indent=2) + '\n')
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info('wrote model artifact %s', path)
    return path


def _threshold(value: Any, name: str, path: Path) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f'{path}: threshold of {name} is not a number: {value!r}') from exc


def load_artifact(path: Path | str) -> Artifact:
    """Load and validate an artifact directory (see module doc). Raises ArtifactError naming the
    file and the problem; FileNotFoundError when ``path`` does not exist."""
    path = Path(path)
    cfg_path, doc, version = _read_config(path)
    try:
        model_doc = dict(doc['model'])
        if version < 8:  # see FORMAT_VERSION: the all-modality residuals its head learned
            model_doc.setdefault('isolated_signal_residuals', False)
        cfg = ModelConfig.from_dict(model_doc)
        stats = NormStats.from_dict(doc['norm_stats'])
    except ConfigError as exc:
        raise ArtifactError(f'{cfg_path}: {exc}') from exc
    _check_consistent(cfg_path, doc, cfg, stats)
    model = LipfaultNet(cfg)
    model.load_state_dict(_read_weights(path, doc, version, model), strict=True)
    thr = doc['thresholds']
    if not isinstance(thr, Mapping) or set(thr) != {m.value for m in MODALITIES}:
        raise ArtifactError(f'{cfg_path}: thresholds must name camera, wrench and joints')
    thresholds = np.array([_threshold(thr[m.value], m.value, cfg_path) for m in MODALITIES])
    if np.any(np.isnan(thresholds)):
        raise ArtifactError(f'{cfg_path}: thresholds must not be NaN')
    with torch.no_grad():
        model.thresholds.copy_(torch.from_numpy(thresholds).to(model.thresholds.dtype))
    model.eval()
    return Artifact(path, cfg, model, stats, thresholds, dict(doc.get('training') or {}),
                    _levels(doc.get('clean_levels'), 'clean_levels', cfg_path),
                    _levels(doc.get('hold_levels'), 'hold_levels', cfg_path))


def _read_config(path: Path) -> tuple[Path, dict[str, Any], int]:
    """``config.json`` of the artifact at ``path``, checked for the keys every version has and
    for a format version this package reads: (its path, the document, the version)."""
    if not path.exists():
        raise FileNotFoundError(f'artifact {path} does not exist')
    if not path.is_dir():
        raise ArtifactError(f'artifact {path} is not a directory (expected {CONFIG_FILE} and '
                            f'{WEIGHTS_FILE} inside)')
    cfg_path = path / CONFIG_FILE
    if not cfg_path.is_file():
        raise ArtifactError(f'artifact {path} has no {CONFIG_FILE}')
    try:
        doc = json.loads(cfg_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f'{cfg_path} is not valid JSON (truncated or corrupt): {exc}') from exc
    if not isinstance(doc, dict):
        raise ArtifactError(f'{cfg_path} must hold a JSON object')
    version = doc.get('format_version')
    if not isinstance(version, int) or version < 1:
        raise ArtifactError(f'{cfg_path}: invalid format_version {version!r}')
    if version > FORMAT_VERSION:
        raise ArtifactError(f'{cfg_path}: format_version {version} is newer than this package '
                            f'supports ({FORMAT_VERSION}); upgrade lipfault_ros')
    if version < MIN_FORMAT_VERSION:
        raise ArtifactError(f'{cfg_path}: format_version {version} is older than this package '
                            f'reads ({MIN_FORMAT_VERSION}..{FORMAT_VERSION}); train the model '
                            f'again with lipfault train')
    for key in ('model', 'norm_stats', 'weights_sha256', 'thresholds'):
        if key not in doc:
            raise ArtifactError(f'{cfg_path} is missing "{key}"')
    return cfg_path, doc, version


def _check_consistent(cfg_path: Path, doc: Mapping[str, Any], cfg: ModelConfig,
                      stats: NormStats) -> None:
    """The copies ``config.json`` keeps beside the model config (joint names, sizes) agree."""
    if tuple(doc.get('joint_names', cfg.joint_names)) != cfg.joint_names:
        raise ArtifactError(f'{cfg_path}: joint_names {doc.get("joint_names")} differ from the '
                            f'model config {list(cfg.joint_names)}')
    if stats.n_joints != len(cfg.joint_names):
        raise ArtifactError(f'{cfg_path}: norm_stats has {stats.n_joints} joints, model has '
                            f'{len(cfg.joint_names)}')
    for key in ('image_size', 'wrench_window', 'joints_window'):
        if key in doc and doc[key] != getattr(cfg, key):
            raise ArtifactError(f'{cfg_path}: {key}={doc[key]} differs from the model config '
                                f'({getattr(cfg, key)})')


def _read_weights(path: Path, doc: Mapping[str, Any], version: int, model: LipfaultNet
                  ) -> dict[str, torch.Tensor]:
    """The weights file, checked against its recorded size and hash and, key by key, against
    the network ``model`` built from the config (features newer than ``version`` off)."""
    weights = path / str(doc.get('weights_file', WEIGHTS_FILE))
    if not weights.is_file():
        raise ArtifactError(f'artifact {path} has no weights file {weights.name}')
    size = weights.stat().st_size
    if 'weights_bytes' in doc and size != doc['weights_bytes']:
        raise ArtifactError(f'{weights} has {size} bytes, config.json records '
                            f'{doc["weights_bytes"]} (truncated or replaced)')
    digest = sha256_file(weights)
    if digest != doc['weights_sha256']:
        raise ArtifactError(f'{weights}: sha256 hash mismatch (tampered or corrupt): '
                            f'{digest} != {doc["weights_sha256"]}')
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f'{weights} cannot be read as safetensors: {exc}') from exc
    if version < 5:  # see FORMAT_VERSION: the detail ceiling, off
        state.setdefault('residuals.space_ceiling_camera', torch.zeros(1))
    if version < 6:  # the roughness ceilings, off
        for name in ('rough_ceiling_wrench', 'rough_ceiling_joints'):
            state.setdefault(f'residuals.{name}', torch.zeros_like(getattr(model.residuals, name)))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ArtifactError(f'{weights} does not fit the config: missing {missing[:5]}, '
                            f'unexpected {unexpected[:5]}')
    for key, tensor in expected.items():
        got = state[key]
        if tuple(got.shape) != tuple(tensor.shape):
            raise ArtifactError(f'{weights}: shape mismatch for {key}: file has '
                                f'{tuple(got.shape)}, config expects {tuple(tensor.shape)}')
        if got.dtype != tensor.dtype:
            raise ArtifactError(f'{weights}: dtype mismatch for {key}: file has {got.dtype}, '
                                f'config expects {tensor.dtype}')
    return state


def _levels(value: Any, key: str, cfg_path: Path) -> np.ndarray:
    """(3,) per-modality levels ``key`` from ``config.json`` (null or absent: NaN, the feature
    that reads them off: the scene reference for ``clean_levels``, the hold for
    ``hold_levels``)."""
    if value is None:
        return np.full(3, np.nan)
    if not isinstance(value, Mapping) or set(value) != {m.value for m in MODALITIES}:
        raise ArtifactError(f'{cfg_path}: {key} must name camera, wrench and joints')
    out = []
    for m in MODALITIES:
        v = value[m.value]
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ArtifactError(f'{cfg_path}: {key}.{m.value} must be a number or null, '
                                f'got {v!r}')
        out.append(float('nan') if v is None else float(v))
    levels = np.array(out)
    if np.isinf(levels).any():
        raise ArtifactError(f'{cfg_path}: {key} must be finite')
    return levels
