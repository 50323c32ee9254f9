"""``lipfault train``: rosbags in, model artifact out.

The work is :func:`train_from_bags`, which the command and the ``training_node`` both call:

1. refuse an existing ``--out`` (unless ``--overwrite``) before anything slow runs;
2. validate every bag (topics, types, joint names, length) and build the training tuples with the
   live synchroniser (:mod:`lipfault_ros.bags.dataset`), cached on disk;
3. split train/validation by time block or by bag, keeping clean rows (fault truth, when the bags
   carry it, excludes faulty tuples);
4. :func:`lipfault_ros.training.fit`: stage 1, stage 2, thresholds calibrated on clean validation
   data, the artifact written atomically (never half-written);
5. print the summary table (per-modality reconstruction error, validation detection AUROC,
   thresholds).

Checkpoints go to ``--checkpoint-dir`` (default ``ARTIFACT.ckpt`` beside the artifact), atomically,
every ``checkpoint_every`` steps and at each epoch end; ``--resume`` continues from the last one and
ends with the weights an uninterrupted run gives (same seed, CPU). Ctrl-C writes a checkpoint and
exits with status 130.

Config file (``--config FILE``, YAML or JSON), every section optional, unknown keys refused::

    model: {image_size: 64, joint_names: [...], ...}      # lipfault_ros.model.config.ModelConfig
    train: {stage1_epochs: 10, seed: 1, ...}               # lipfault_ros.training.TrainConfig
    data:  {split: time, val_fraction: 0.2, block_s: 10,   # lipfault_ros.bags.dataset.DatasetConfig
            topics: {wrench: /ft_sensor/wrench}, sync: {slop: 0.02}}

``--quick`` starts from the quick presets (a small model, few epochs: one to two minutes on a 2-core
CPU for a few thousand tuples) and the file refines them. Model joint names default to the bags'.

Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank builds the same tuples (rank 0 fills the cache,
the others read it), :func:`~lipfault_ros.training.fit` gives each rank a disjoint shard of every
epoch and averages gradients with DDP (gloo on CPU, NCCL on GPUs); only rank 0 writes checkpoints,
logs and the artifact.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from lipfault_ros import settings as options
from lipfault_ros.errors import ConfigError
from lipfault_ros.settings import param

if TYPE_CHECKING:  # torch loads only when training runs
    from lipfault_ros.bags.dataset import DatasetConfig
    from lipfault_ros.model.config import ModelConfig
    from lipfault_ros.training import TrainConfig, TrainResult

__all__ = ['TrainRun', 'TrainSettings', 'add_arguments', 'load_settings', 'main',
           'train_from_bags']

_log = logging.getLogger(__name__)

#: Called with (event, fields): 'phase' {'phase': ...}, 'dataset' {...}, 'step' {'stage', 'step',
#: 'total'}, 'done' {'artifact', 'summary'}.
EventCallback = Callable[[str, Mapping[str, Any]], None]


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """The three configs of one training run, resolved from presets and a config file."""

    train: TrainConfig
    model: ModelConfig
    data: DatasetConfig
    model_joints_given: bool = False


@dataclasses.dataclass(frozen=True)
class TrainRun:
    """What a user says about one training run: the options of ``lipfault train`` and the
    parameters of ``training_node`` (:class:`~lipfault_ros.nodes.training.TrainingParams` adds
    the node's own), declared once. Empty strings and -1 leave a value to the config file and
    the presets."""

    out: str = param('', 'model artifact directory to write (refused if it exists, unless '
                         'overwrite)', metavar='ARTIFACT')
    config_file: str = param('', 'YAML/JSON with model/train/data sections, see lipfault_ros.'
                                 'train_cli (empty: defaults)', aliases=('--config',),
                             metavar='FILE')
    quick: bool = param(False, 'small model and few epochs: one to two minutes on a 2-core CPU')
    resume: bool = param(False, 'continue from the last checkpoint of an interrupted run')
    overwrite: bool = param(False, 'replace an existing artifact at out')
    cache_dir: str = param('', 'tuple cache directory reused across runs (empty: no cache, or '
                               '~/.cache/lipfault_ros/tuples under torchrun)',
                           aliases=('--cache',), metavar='DIR')
    log_dir: str = param('', 'TensorBoard log directory (empty: no logs)', metavar='DIR')
    checkpoint_dir: str = param('', 'checkpoint directory (empty: <out>.ckpt beside the '
                                    'artifact)', metavar='DIR')
    seed: int = param(-1, 'random seed (-1: the config file\'s or the preset\'s)', low=-1,
                      high=2**31 - 1)
    device: str = param('', "'cpu', 'cuda', 'cuda:1' or 'auto' (empty: the config file's or "
                            "the preset's)")
    split: str = param('', 'validation by time block of each bag or by whole bags (empty: the '
                           'config file\'s, else time)', choices=('', 'time', 'bag'))
    camera_topic: str = param('', 'camera topic in the bags (empty: the pipeline\'s '
                                  'camera_topic)')
    wrench_topic: str = param('', 'wrench topic in the bags (empty: the pipeline\'s '
                                  'wrench_topic)')
    joints_topic: str = param('', 'joint states topic in the bags (empty: the pipeline\'s '
                                  'joints_topic)')

    def settings(self) -> TrainSettings:
        """The run's configs: presets < config file < what this record sets."""
        train = {k: v for k, v in (('seed', self.seed), ('device', self.device))
                 if v not in (-1, '')}
        data: dict[str, Any] = {'split': self.split} if self.split else {}
        topics = {k: v for k, v in (('camera', self.camera_topic),
                                    ('wrench', self.wrench_topic),
                                    ('joints', self.joints_topic)) if v}
        if topics:
            data['topics'] = topics
        return load_settings(self.config_file or None, quick=self.quick, train_changes=train,
                             data_changes=data)

    def paths(self) -> dict[str, Path | None]:
        """The directories of :func:`train_from_bags` (None where empty)."""
        return {name: Path(v).expanduser() if (v := getattr(self, name)) else None
                for name in ('cache_dir', 'log_dir', 'checkpoint_dir')}


def _read_config_file(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'config file {path} does not exist')
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f'config file {path} is not valid YAML/JSON: {exc}') from None
    if not isinstance(doc, dict):
        raise ConfigError(f'config file {path} must hold a mapping with model/train/data sections')
    unknown = sorted(set(doc) - {'model', 'train', 'data'})
    if unknown:
        raise ConfigError(f'config file {path}: unknown sections {unknown}; use model, train, '
                          f'data')
    for key in ('model', 'train', 'data'):
        if not isinstance(doc.get(key, {}) or {}, dict):
            raise ConfigError(f'config file {path}: section {key} must be a mapping')
    return {k: dict(doc.get(k) or {}) for k in ('model', 'train', 'data')}


def load_settings(config_file: str | Path | None = None, *, quick: bool = False,
                  train_changes: Mapping[str, Any] | None = None,
                  data_changes: Mapping[str, Any] | None = None) -> TrainSettings:
    """Presets (default or ``quick``) < config file < explicit changes (command-line flags)."""
    from lipfault_ros.bags.dataset import DatasetConfig
    from lipfault_ros.model.config import ModelConfig
    from lipfault_ros.topics import TopicConfig
    from lipfault_ros.training import TrainConfig

    doc = _read_config_file(config_file) if config_file else {'model': {}, 'train': {},
                                                               'data': {}}
    model_dict = (ModelConfig.quick() if quick else ModelConfig()).to_dict()
    model_dict.update(doc['model'])
    model = ModelConfig.from_dict(model_dict)
    train_dict = (TrainConfig.quick() if quick else TrainConfig()).to_dict()
    train_dict.update(doc['train'])
    train_dict.update(train_changes or {})
    train = TrainConfig.from_dict(train_dict)
    data_dict = dict(doc['data'])
    data_dict.update(data_changes or {})
    topics = TopicConfig.from_yaml()  # the pipeline's topic parameters, when the file exists
    if 'topics' in data_dict:
        topics = _merge_topics(topics, data_dict.pop('topics'))
    joints_given = 'joint_names' in doc['model']
    data = DatasetConfig.from_dict(
        data_dict, image_size=model.image_size, wrench_window=model.wrench_window,
        joints_window=model.joints_window,
        joint_names=model.joint_names if joints_given else None, topics=topics)
    return TrainSettings(train, model, data, joints_given)


def _merge_topics(base: Any, changes: Mapping[str, Any]) -> Any:
    from lipfault_ros.topics import TopicConfig

    if not isinstance(changes, Mapping):
        raise ConfigError(f'data.topics must be a mapping of camera/wrench/joints/truth, got '
                          f'{changes!r}')
    TopicConfig.from_mapping(changes)  # unknown keys refused by name
    return dataclasses.replace(base, **{k: str(v) for k, v in changes.items()})


def _world() -> tuple[int, int]:
    return int(os.environ.get('WORLD_SIZE', '1')), int(os.environ.get('RANK', '0'))


def train_from_bags(bags: Sequence[str | Path], out: str | Path, *,
                    config_file: str | Path | None = None, quick: bool = False,
                    resume: bool = False, overwrite: bool = False,
                    cache_dir: str | Path | None = None, log_dir: str | Path | None = None,
                    checkpoint_dir: str | Path | None = None,
                    settings: TrainSettings | None = None, progress: bool = True,
                    on_event: EventCallback | None = None,
                    stop: threading.Event | None = None) -> TrainResult:
    """Train a model artifact at ``out`` from rosbag2 recordings; see the module docstring.

    ``settings`` (from :func:`load_settings`) replaces ``config_file``/``quick`` when given.
    ``stop`` set from another thread interrupts like Ctrl-C: a checkpoint is written and
    KeyboardInterrupt is raised. Raises FileExistsError for an existing ``out`` unless
    ``overwrite``; BagError/ConfigError naming the bag, topic, joint or setting at fault.
    """
    from lipfault_ros.bags.dataset import default_cache_dir
    from lipfault_ros.training import CHECKPOINT_FILE, fit, join_process_group

    out = Path(out)
    emit = on_event or (lambda event, fields: None)
    if out.exists() and not overwrite:
        raise FileExistsError(f'artifact {out} exists; pass --overwrite (parameter overwrite) to '
                              f'replace it, or choose another --out')
    bags = [Path(b) for b in bags]
    if not bags:
        raise ConfigError('no bag given: pass one or more rosbag2 directories or files')
    for bag in bags:
        if not bag.exists():
            raise FileNotFoundError(f'bag {bag} does not exist')
    settings = settings or load_settings(config_file, quick=quick)
    ckpt = Path(checkpoint_dir) if checkpoint_dir else out.parent / f'{out.name}.ckpt'
    if resume and not (ckpt / CHECKPOINT_FILE).is_file():
        raise FileNotFoundError(f'no checkpoint {ckpt / CHECKPOINT_FILE} to resume from; run '
                                f'without --resume first (or give the --checkpoint-dir it used)')
    world, rank, own_group = join_process_group(settings.train.device)
    if world > 1:
        cache_dir = default_cache_dir() if cache_dir is None else cache_dir
        if rank != 0:
            progress, log_dir = False, None
    try:
        emit('phase', {'phase': 'reading', 'bags': [str(b) for b in bags]})
        split, model = _read_split(bags, settings, cache_dir, progress, world, rank, emit)
        emit('phase', {'phase': 'training'})
        result = fit(split.train, split.val, settings.train, model, out=out,
                     checkpoint_dir=ckpt, resume=resume, progress=progress,
                     log_dir=Path(log_dir) if log_dir else None, overwrite=overwrite,
                     on_step=_step_hook(emit, stop, world))
        if log_dir and rank == 0:
            _log_reconstructions(out, split.val, Path(log_dir))
        emit('done', {'artifact': str(out), 'summary': dict(result.summary)})
        return result
    finally:
        if own_group:
            import torch.distributed as dist
            dist.destroy_process_group()


def _read_split(bags: Sequence[Path], settings: TrainSettings, cache_dir: str | Path | None,
                progress: bool, world: int, rank: int, emit: EventCallback) -> tuple[Any, Any]:
    """The bags' tuples split for training and validation, and the model config with the
    recorded joint names unless the settings name them; emits the ``dataset`` event."""
    from lipfault_ros.bags.dataset import build_dataset, split_dataset

    t0 = time.perf_counter()
    if world > 1:
        import torch.distributed as dist
        # rank 0 decodes into the cache; the others then read the same rows from it
        if rank == 0:
            dataset = build_dataset(bags, settings.data, cache_dir=cache_dir, progress=progress)
        dist.barrier()
        if rank != 0:
            dataset = build_dataset(bags, settings.data, cache_dir=cache_dir, progress=False)
    else:
        dataset = build_dataset(bags, settings.data, cache_dir=cache_dir, progress=progress)
    data = settings.data
    split = split_dataset(dataset, mode=data.split, val_fraction=data.val_fraction,
                          block_s=data.block_s, gap_s=data.gap_s)
    model = settings.model
    if not settings.model_joints_given:
        model = model.replace(joint_names=dataset.joint_names)
    info = {'tuples': len(dataset), 'train': len(split.train), 'val': len(split.val),
            'faulty': int(dataset.labels.any(axis=1).sum()),
            'cache': str(dataset.cache_dir) if cache_dir is not None else None,
            'joint_names': list(dataset.joint_names), 'split': str(data.split),
            'seconds': round(time.perf_counter() - t0, 2)}
    _log.info('%d tuples from %d bag(s): %d train, %d validation (split by %s)',
              info['tuples'], len(bags), info['train'], info['val'], info['split'])
    emit('dataset', info)
    return split, model


def _step_hook(emit: EventCallback, stop: threading.Event | None, world: int
               ) -> Callable[[int, int], None]:
    """``fit``'s ``on_step``: phase and step events, and KeyboardInterrupt once ``stop`` is set
    (on every rank at the same step under DDP)."""
    steps = {'stage': 0}

    def on_step(stage: int, step: int) -> None:
        import torch

        if stage != steps['stage']:
            steps['stage'] = stage
            emit('phase', {'phase': f'stage{stage}'})
        emit('step', {'stage': stage, 'step': step})
        stopping = stop is not None and stop.is_set()
        if world > 1:
            # every rank must leave at the same step, or the others wait in DDP forever
            import torch.distributed as dist
            on = (torch.device('cuda', torch.cuda.current_device())
                  if dist.get_backend() == 'nccl' else torch.device('cpu'))
            flag = torch.tensor([1.0 if stopping else 0.0], device=on)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stopping = bool(flag.item())
        if stopping:
            raise KeyboardInterrupt('training stopped on request')
    return on_step


def _log_reconstructions(artifact: Path, val: Any, log_dir: Path, count: int = 8) -> None:
    """TensorBoard: a few validation frames beside the trained model's reconstructions, and
    their wrench windows (input and reconstruction, first force axis) as scalars."""
    import numpy as np
    from torch.utils.tensorboard import SummaryWriter

    from lipfault_ros.inference import Engine

    engine = Engine.from_artifact(artifact, device='cpu')
    rows = val.subset(np.linspace(0, len(val) - 1, min(count, len(val))).astype(np.int64))
    out = engine.infer_arrays(rows)
    writer = SummaryWriter(str(log_dir))
    try:
        writer.add_images('val/camera_input', np.asarray(rows.images), dataformats='NHWC')
        writer.add_images('val/camera_reconstruction', out.recon_images, dataformats='NHWC')
        for t in range(out.wrench.shape[1]):
            writer.add_scalars('val/wrench_fx_tuple0', {
                'input': float(rows.wrench[0][t, 0]),
                'reconstruction': float(out.recon_wrench[0, t, 0])}, t)
    finally:
        writer.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bags, every :class:`TrainRun` field as an option (``--out`` required), and what only
    the command line has: ``--summary-json`` and ``--no-progress``."""
    parser.add_argument('bags', nargs='+', type=Path, metavar='BAG',
                        help='rosbag2 recordings (directories, or .mcap/.db3 files)')
    options.add_options(parser, TrainRun, required=('out',))
    parser.add_argument('--summary-json', type=Path, metavar='FILE',
                        help='also write the training summary as JSON')
    parser.add_argument('--no-progress', action='store_true', help='no progress bars')


def main(args: argparse.Namespace) -> int:
    run = options.option_values(args, TrainRun)
    settings, paths = run.settings(), run.paths()
    out = Path(run.out).expanduser()
    _, rank = _world()
    stop = threading.Event()
    phase = {'phase': ''}

    def on_event(event: str, fields: Mapping[str, Any]) -> None:
        if event == 'phase':
            phase['phase'] = str(fields.get('phase', ''))

    def on_sigint(signum: int, frame: Any) -> None:
        # While training, the first Ctrl-C stops at the end of the current step, so the
        # checkpoint holds a consistent state; a second one (or one at any other time) aborts.
        if phase['phase'] not in ('training', 'stage1', 'stage2') or stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        _log.warning('stopping after this step (checkpoint follows); Ctrl-C again to abort')

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = train_from_bags(args.bags, out, settings=settings, resume=run.resume,
                                 overwrite=run.overwrite, **paths,
                                 progress=not args.no_progress, on_event=on_event, stop=stop)
    except KeyboardInterrupt:
        ckpt = paths['checkpoint_dir'] or out.parent / f'{out.name}.ckpt'
        if int(os.environ.get('RANK', '0')) == 0:
            print(f'lipfault train: interrupted; checkpoint in {ckpt}. Continue with the same '
                  f'command plus --resume.', flush=True)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if rank == 0 and result.summary:
        print(f'artifact: {result.artifact}')
        print(result.format())
        if args.summary_json:
            args.summary_json.write_text(json.dumps(result.summary, indent=2, default=str))
    return 0
