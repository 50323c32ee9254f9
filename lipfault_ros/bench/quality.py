"""``lipfault quality``: detection and correction quality on episodes the model never saw.

One reproducible run from a seed, so a user can repeat it on their own machine:

1. record K training and M held-out episodes from the simulator, each with its own seed (the
   scene, the motion and the sensor bias vary with the seed; no episode is used twice);
2. train the model on the training episodes (validation and threshold calibration on a whole
   training episode, ``split: bag``), and the same recipe without Lipschitz modulation (the
   ablation baseline);
3. inject every fault of the library into each held-out episode (``config/fault_scenario.yaml``
   fitted to the episode) and score it with :func:`~lipfault_ros.evaluation.offline.evaluate`:
   the node's synchroniser, ``Engine.infer`` and fault lifecycle, effective and interval labels,
   PCA / IsolationForest / stage-1 autoencoder / no-modulation baselines under the same
   threshold rule and lifecycle;
4. **leave-family-out**: for each fault family of a chosen sample, retrain with that family
   left out of stage-2 training and score only that family's tuples against clean ones;
5. false-alarm *events* per hour: the clean held-out episodes, and ``clean_scenes`` more clean
   episodes of scenes seen nowhere else (a held-out pair can happen to look like the training
   scenes; more scenes make the count speak for a robot's new cell), through the same pipeline,
   counting alarms raised;
6. with ``repeats`` > 1, training variance: the model trained again on the same episodes with
   other training seeds (initial weights, batches, drawn faults) and scored the same way, so a
   change can be told from the spread of single trainings.

Everything is fixed before looking at any result: seeds, the fault list and schedule, the
families. The figures are what they are; :func:`verdicts` compares them with the targets.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from lipfault_ros.bench.quality_report import (FAMILIES, attribution, correction,
                                               detector_rows, events_per_hour,
                                               false_alarm_events, family_auroc,
                                               format_quality, mean_of, plot, verdicts)
from lipfault_ros.errors import ConfigError

__all__ = ['QualityConfig', 'add_arguments', 'main', 'run_quality']


@dataclass(frozen=True)
class QualityConfig:
    """One quality run. The CPU default fits about 20 minutes on 2 cores; ``full`` trains the
    default preset on longer episodes (meant for a GPU)."""

    seed: int = 1000
    train_episodes: int = 3
    heldout_episodes: int = 2
    episode_s: float = 90.0
    #: training preset: 'quick' (64 px, CPU) or 'default' (128 px)
    preset: str = 'quick'
    #: families retrained without (leave-family-out); () skips that part
    families: tuple[str, ...] = ('stale',)
    #: also train and score the no-modulation ablation
    ablation: bool = True
    device: str = 'cpu'
    #: trainings of the model with training seeds seed, seed + 1, ... (1: the model alone)
    repeats: int = 1
    #: clean episodes of further unseen scenes, for false-alarm events only
    clean_scenes: int = 3

    def __post_init__(self) -> None:
        if self.preset not in ('quick', 'default'):
            raise ConfigError(f"preset must be 'quick' or 'default', got {self.preset!r}")
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown:
            raise ConfigError(f'unknown fault families {unknown}; choose from {list(FAMILIES)}')
        if self.train_episodes < 2:
            raise ConfigError('train_episodes must be >= 2 (one is held back for calibration)')
        if self.heldout_episodes < 1 or self.episode_s < 30.0:
            raise ConfigError('need at least one held-out episode of at least 30 s')
        if self.repeats < 1:
            raise ConfigError(f'repeats must be >= 1, got {self.repeats}')
        if self.clean_scenes < 0:
            raise ConfigError(f'clean_scenes must be >= 0, got {self.clean_scenes}')

    @classmethod
    def full(cls, **changes: Any) -> QualityConfig:
        base = dict(train_episodes=6, heldout_episodes=3, episode_s=180.0, preset='default',
                    families=tuple(FAMILIES), device='auto')
        base.update(changes)
        return cls(**base)

    def train_seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.train_episodes)]

    def heldout_seeds(self) -> list[int]:
        return [self.seed + 500 + i for i in range(self.heldout_episodes)]

    def scene_seeds(self) -> list[int]:
        return [self.seed + 600 + i for i in range(self.clean_scenes)]


def _say(text: str) -> None:
    print(f'[quality {time.strftime("%H:%M:%S")}] {text}', flush=True)


def _record(out: Path, seed: int, cfg: QualityConfig) -> Path:
    from lipfault_ros.sim.config import SimConfig
    from lipfault_ros.sim.record import record

    if not out.exists():
        record(out, cfg.episode_s, SimConfig(seed=seed), progress=False)
    return out


def _train(out: Path, bags: Sequence[Path], cfg: QualityConfig, *, model: dict[str, Any],
           train: dict[str, Any]) -> Path:
    from lipfault_ros.train_cli import load_settings, train_from_bags

    if out.exists():
        return out
    settings = load_settings(quick=cfg.preset == 'quick',
                             train_changes={'seed': cfg.seed, 'device': cfg.device, **train},
                             data_changes={'split': 'bag'})
    if model:
        settings = dataclasses.replace(settings, model=settings.model.replace(**model))
    train_from_bags(bags, out, settings=settings, progress=False)
    return out


def _all_kinds() -> list[str]:
    from lipfault_ros.faults import FAULTS

    return [f'{m.value}:{k}' for m, kinds in FAULTS.items() for k in kinds]


def _inject(clean: Path, out: Path) -> Path:
    from lipfault_ros.evaluation.inject import inject
    from lipfault_ros.evaluation.scenario import default_scenario_path, load_scenario

    if not out.exists():
        inject(clean, load_scenario(default_scenario_path()), out, fit=True)
    return out


def _evaluate(bag: Path, model: Path, out: Path, *, clean: Path | None,
              train: Sequence[Path], baselines: bool, ablation: Path | None,
              cfg: QualityConfig) -> dict[str, Any]:
    from lipfault_ros.evaluation.offline import evaluate

    if (out / 'report.json').exists():
        return json.loads((out / 'report.json').read_text())
    return evaluate(bag, model, out_dir=out, clean_bag=clean, train_bags=list(train),
                    baselines=baselines, baseline_artifact=ablation, device='cpu',
                    plots=True, overwrite=True)


def _repeats(cfg: QualityConfig, out: Path, train: Sequence[Path], held: Sequence[tuple],
             reports: Sequence[dict[str, Any]], say: Callable[[str], None]
             ) -> list[dict[str, Any]]:
    """The model's rows (:func:`detector_rows`) for each training seed: the first is the model
    already scored, the others are trained on the same episodes with the next seeds."""
    rows = [{'train_seed': cfg.seed, **detector_rows(reports)['model']}]
    for seed in range(cfg.seed + 1, cfg.seed + cfg.repeats):
        say(f'training variance: the model again with training seed {seed}')
        model = _train(out / 'models' / f'model_seed{seed}', train, cfg, model={},
                       train={'seed': seed})
        again = [_evaluate(faulty, model, out / 'eval' / f'seed{seed}_{h}', clean=clean,
                           train=train, baselines=False, ablation=None, cfg=cfg)
                 for h, clean, faulty in held]
        rows.append({'train_seed': seed, **detector_rows(again)['model']})
    return rows


def _leave_family_out(cfg: QualityConfig, out: Path, train: Sequence[Path],
                      held: Sequence[tuple], reports: Sequence[dict[str, Any]],
                      timing: dict[str, float], say: Callable[[str], None]
                      ) -> dict[str, dict[str, Any]]:
    """Per family of ``cfg.families``: the model retrained without it, its AUROC on that
    family (``unseen``) beside the full model's (``trained_on``), per modality."""
    families = {}
    for family in cfg.families:
        say(f'leave-family-out: retraining without {family} ({len(FAMILIES[family])} kinds)')
        kinds = [k for k in _all_kinds() if k not in FAMILIES[family]]
        t0 = time.time()
        lfo = _train(out / 'models' / f'without_{family}', train, cfg, model={},
                     train={'fault_kinds': kinds})
        timing[f'train_without_{family}_s'] = time.time() - t0
        per = [family_auroc(_evaluate(faulty, lfo, out / 'eval' / f'without_{family}_{seed}',
                                       clean=clean, train=train, baselines=False,
                                       ablation=None, cfg=cfg), family)
               for seed, clean, faulty in held]
        seen = [family_auroc(r, family) for r in reports]
        families[family] = {m: {'unseen': mean_of([p.get(m) for p in per]),
                                'trained_on': mean_of([p.get(m) for p in seen])}
                            for m in per[0]}
    return families


def run_quality(cfg: QualityConfig, out: Path, *, say: Callable[[str], None] = _say
                ) -> dict[str, Any]:
    """The whole run (see the module docstring); every step's output is kept under ``out`` and
    reused when the run is repeated with the same settings (an interrupted run resumes)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = _settings(cfg, out)
    started = time.time()
    train, held = _episodes(cfg, out / 'data', say)
    timing = {'data_s': time.time() - started}
    model, ablation = _models(cfg, out, train, timing, say)
    reports, clean_reports = _score_heldout(cfg, out, train, held, model, ablation, say)
    repeats = _repeats(cfg, out, train, held, reports, say)
    families = _leave_family_out(cfg, out, train, held, reports, timing, say)
    timing['total_s'] = time.time() - started
    result = _result(cfg, settings, _kept_timing(out, timing), reports, clean_reports,
                     repeats, families)
    (out / 'quality.json').write_text(json.dumps(result, indent=1, default=str))
    plot(result, out / 'quality.png')
    (out / 'quality.md').write_text(format_quality(result))
    return result


def _settings(cfg: QualityConfig, out: Path) -> dict[str, Any]:
    """The run's settings as JSON, written to ``out``; ConfigError when ``out`` holds a run
    with other settings (its steps would not be this run's)."""
    settings_file = out / 'settings.json'
    settings = json.loads(json.dumps(dataclasses.asdict(cfg)))  # tuples as JSON lists
    if settings_file.exists():
        # a setting added since that run was written stands at its default there
        defaults = json.loads(json.dumps(dataclasses.asdict(QualityConfig())))
        stored = {**defaults, **json.loads(settings_file.read_text())}
        if stored != settings:
            raise ConfigError(f'{out} holds a run with other settings; choose another --out')
    settings_file.write_text(json.dumps(settings, indent=1))
    return settings


def _episodes(cfg: QualityConfig, data: Path, say: Callable[[str], None]
              ) -> tuple[list[Path], list[tuple[int, Path, Path]]]:
    """The training bags, and per held-out seed (seed, clean bag, faulty bag)."""
    train = []
    for seed in cfg.train_seeds():
        say(f'recording training episode seed {seed} ({cfg.episode_s:g} s)')
        train.append(_record(data / f'train_{seed}', seed, cfg))
    held = []
    for seed in cfg.heldout_seeds():
        say(f'recording held-out episode seed {seed} and injecting the fault library')
        clean = _record(data / f'heldout_{seed}', seed, cfg)
        held.append((seed, clean, _inject(clean, data / f'heldout_{seed}_faulty')))
    return train, held


def _models(cfg: QualityConfig, out: Path, train: Sequence[Path], timing: dict[str, float],
            say: Callable[[str], None]) -> tuple[Path, Path | None]:
    """The model and (with ``cfg.ablation``) the no-modulation ablation; their training times
    go into ``timing``."""
    say(f'training the {cfg.preset} preset on {len(train)} episodes')
    t0 = time.time()
    model = _train(out / 'models' / 'model', train, cfg, model={}, train={})
    timing['train_model_s'] = time.time() - t0
    ablation = None
    if cfg.ablation:
        say('training the no-modulation ablation')
        t0 = time.time()
        ablation = _train(out / 'models' / 'no_modulation', train, cfg,
                          model={'modulation': False}, train={})
        timing['train_ablation_s'] = time.time() - t0
    return model, ablation


def _score_heldout(cfg: QualityConfig, out: Path, train: Sequence[Path],
                   held: Sequence[tuple[int, Path, Path]], model: Path, ablation: Path | None,
                   say: Callable[[str], None]) -> tuple[list[dict], list[dict]]:
    """The reports of the faulty held-out episodes (model and baselines) and of the clean
    runs (held-out episodes, then the unseen scenes: false-alarm events)."""
    reports, clean_reports = [], []
    for seed, clean, faulty in held:
        say(f'scoring held-out episode {seed} (model and baselines)')
        reports.append(_evaluate(faulty, model, out / 'eval' / f'heldout_{seed}', clean=clean,
                                 train=train, baselines=True, ablation=ablation, cfg=cfg))
        say(f'clean run of held-out episode {seed} (false-alarm events)')
        clean_reports.append(_evaluate(clean, model, out / 'eval' / f'clean_{seed}',
                                       clean=None, train=(), baselines=False,
                                       ablation=None, cfg=cfg))
    for seed in cfg.scene_seeds():
        say(f'clean run of unseen scene {seed} (false-alarm events)')
        scene = _record(out / 'data' / f'scene_{seed}', seed, cfg)
        clean_reports.append(_evaluate(scene, model, out / 'eval' / f'scene_{seed}', clean=None,
                                       train=(), baselines=False, ablation=None, cfg=cfg))
    return reports, clean_reports


def _kept_timing(out: Path, timing: dict[str, float]) -> dict[str, float]:
    """``timing`` written to ``out``; a resumed run reuses finished steps, so the times they
    took when they ran are kept (the total is this run's)."""
    timing_file = out / 'timing.json'
    before = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    timing = {k: max(v, before.get(k, 0.0)) if k != 'total_s' else v for k, v in timing.items()}
    timing_file.write_text(json.dumps({**before, **timing}, indent=1))
    return timing


def _result(cfg: QualityConfig, settings: dict[str, Any], timing: dict[str, float],
            reports: Sequence[dict], clean_reports: Sequence[dict], repeats: Any,
            families: Any) -> dict[str, Any]:
    """quality.json: the figures of every step, and the verdicts on them."""
    pooled = false_alarm_events(clean_reports)
    result = {
        'settings': settings, 'timing': timing,
        'episodes': {'train': cfg.train_seeds(), 'heldout': cfg.heldout_seeds(),
                     'clean_scenes': cfg.scene_seeds()},
        'detectors': detector_rows(reports),
        'attribution': mean_of([attribution(r) for r in reports]),
        'leave_family_out': families,
        'repeats': repeats,
        'events_per_hour': {m: v['per_hour'] for m, v in pooled.items()},
        'false_alarm_events': pooled,
        'events_per_hour_by_episode': {
            seed: events_per_hour(r)
            for seed, r in zip(cfg.heldout_seeds() + cfg.scene_seeds(), clean_reports)},
        'correction': correction(reports),
        'lifecycle': reports[0].get('lifecycle'),
        'excluded_tuples': [r.get('tuples') for r in reports],
    }
    result['verdicts'] = verdicts(result)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = QualityConfig()
    parser.add_argument('--out', type=Path, required=True,
                        help='folder for the data, models, reports and quality.json/md/png '
                             '(an interrupted run with the same settings resumes)')
    parser.add_argument('--full', action='store_true',
                        help='default preset, 6+3 episodes of 180 s, every family (for a GPU)')
    parser.add_argument('--seed', type=int, default=d.seed)
    parser.add_argument('--train-episodes', type=int, default=None)
    parser.add_argument('--heldout-episodes', type=int, default=None)
    parser.add_argument('--episode-s', type=float, default=None)
    parser.add_argument('--families', default=None,
                        help=f'comma-separated leave-family-out sample of {",".join(FAMILIES)} '
                             f'(default {",".join(d.families)}; "none" skips)')
    parser.add_argument('--no-ablation', action='store_true',
                        help='skip the no-modulation baseline (one training fewer)')
    parser.add_argument('--clean-scenes', type=int, default=d.clean_scenes,
                        help='clean episodes of further unseen scenes, for false-alarm events '
                             '(default %(default)s)')
    parser.add_argument('--repeats', type=int, default=d.repeats,
                        help='train the model this many times (training seeds seed, seed+1, '
                             '...) on the same episodes and report the spread (default 1)')


def main(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {'seed': args.seed, 'repeats': args.repeats,
                               'clean_scenes': args.clean_scenes}
    for name in ('train_episodes', 'heldout_episodes', 'episode_s'):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.families is not None:
        changes['families'] = () if args.families == 'none' else tuple(
            f.strip() for f in args.families.split(',') if f.strip())
    if args.no_ablation:
        changes['ablation'] = False
    cfg = QualityConfig.full(**changes) if args.full else QualityConfig(**changes)
    result = run_quality(cfg, args.out)
    print(format_quality(result))
    return 0
