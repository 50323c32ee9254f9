"""The quality run's figures from hand-made reports: families cover the library, attribution,
leave-family-out AUROC, false-alarm events per hour, verdicts, the table and the plot."""

from __future__ import annotations

import numpy as np
import pytest

from lipfault_ros.bench.quality import QualityConfig
from lipfault_ros.bench.quality_report import (FAMILIES, attribution, detector_rows,
                                               events_per_hour, false_alarm_events,
                                               family_auroc, format_quality, plot,
                                               poisson_upper, verdicts)
from lipfault_ros.errors import ConfigError
from lipfault_ros.faults import FAULTS


def test_every_fault_of_the_library_is_in_exactly_one_family():
    kinds = [f'{m.value}:{k}' for m, ks in FAULTS.items() for k in ks]
    members = [k for fam in FAMILIES.values() for k in fam]
    assert sorted(members) == sorted(kinds)


def test_training_and_held_out_episodes_never_share_a_seed():
    for cfg in (QualityConfig(train_episodes=4, heldout_episodes=3, clean_scenes=5),
                QualityConfig.full()):
        seeds = cfg.train_seeds() + cfg.heldout_seeds() + cfg.scene_seeds()
        assert len(set(seeds)) == len(seeds)
    assert QualityConfig(clean_scenes=0).scene_seeds() == []
    with pytest.raises(ConfigError):
        QualityConfig(families=('nonsense',))
    with pytest.raises(ConfigError):
        QualityConfig(train_episodes=1)
    with pytest.raises(ConfigError):
        QualityConfig(clean_scenes=-1)


def test_the_split_holds_back_exactly_the_calibration_episodes():
    from lipfault_ros.bags.dataset.split import val_bag_count

    for n in range(2, 13):
        for k in range(1, n):
            cfg = QualityConfig(train_episodes=n, calibration_episodes=k)
            assert val_bag_count(n, cfg.val_fraction()) == k, (n, k)
    for n, k in ((3, 3), (5, 0), (2, 2)):
        with pytest.raises(ConfigError, match='calibration_episodes'):
            QualityConfig(train_episodes=n, calibration_episodes=k)


def _report(n: int = 600) -> dict:
    """30 Hz tuples; a wrench 'stuck' fault on 100..199 and a camera 'blur' on 300..399, the
    model flags the wrench fault (and, once, the joints) and its scores separate them."""
    stamps = (np.arange(n) * 33_333_333).astype(np.int64)
    labels = {m: np.zeros(n, bool) for m in ('camera', 'wrench', 'joints')}
    kinds = {m: [''] * n for m in labels}
    labels['wrench'][100:200] = True
    labels['camera'][300:400] = True
    for i in range(100, 200):
        kinds['wrench'][i] = 'stuck'
    for i in range(300, 400):
        kinds['camera'][i] = 'blur'
    rng = np.random.default_rng(0)
    scores = {m: rng.normal(size=n) + 5.0 * labels[m] for m in labels}
    flags = {m: labels[m].copy() for m in labels}
    flags['joints'][150:160] = True  # blamed together with the wrench on 10 of 100 tuples
    flags['joints'][500:510] = True  # one clean false-alarm event
    return {'series': {'stamps_ns': stamps.tolist(),
                       'labels': {m: v.tolist() for m, v in labels.items()},
                       'flags': {m: v.tolist() for m, v in flags.items()},
                       'scores': {m: v.tolist() for m, v in scores.items()},
                       'settling': {m: [False] * n for m in labels},
                       'kinds': kinds},
            'camera': {'auroc': 0.9}, 'wrench': {'auroc': 0.8}, 'joints': {'auroc': 0.7},
            'overall': {'auroc': 0.85},
            'effective': {m: {'auroc': a, 'false_alarms_per_1000': 1.0,
                              'detection_latency_tuples_p95': 2.0}
                          for m, a in (('camera', 0.99), ('wrench', 0.98), ('joints', 0.5),
                                       ('overall', 0.9))},
            'baselines': {'pca': {'effective': {'overall': {'auroc': 0.8}}}}}


def test_attribution_counts_tuples_where_only_the_faulty_modality_is_flagged():
    # 200 faulty tuples with an alarm; on 10 the joints were blamed too
    assert attribution(_report()) == pytest.approx(190 / 200)


def test_family_auroc_scores_only_that_familys_tuples_against_clean_ones():
    got = family_auroc(_report(), 'stale')
    assert got['wrench'] == pytest.approx(1.0, abs=0.01)
    assert got['joints'] is None and got['camera'] is None  # no tuple of the family there
    assert 'camera' in family_auroc(_report(), 'lens')


def test_events_per_hour_counts_rising_edges_of_the_alarm():
    per = events_per_hour(_report())
    hours = 599 * 33_333_333 / 3.6e12
    assert per['joints'] == pytest.approx(2 / hours)
    assert per['wrench'] == pytest.approx(1 / hours)


def test_pooled_alarm_counts_carry_an_exact_poisson_bound():
    # textbook values of the one-sided 95 % upper limit of a Poisson mean
    assert poisson_upper(0) == pytest.approx(2.996, abs=1e-3)
    assert poisson_upper(1) == pytest.approx(4.744, abs=1e-3)
    pooled = false_alarm_events([_report(), _report()])
    hours = 2 * 599 * 33_333_333 / 3.6e12
    assert pooled['joints']['events'] == 4 and pooled['camera']['events'] == 2
    assert pooled['joints']['hours'] == pytest.approx(hours)
    assert pooled['joints']['per_hour'] == pytest.approx(4 / hours)
    assert pooled['joints']['per_hour_upper95'] == pytest.approx(poisson_upper(4) / hours)


def _events_verdict(events: int, hours: float) -> tuple[dict, str]:
    rows = detector_rows([_report()])
    rate = {'events': events, 'hours': hours, 'per_hour': events / hours,
            'per_hour_upper95': poisson_upper(events) / hours}
    result = {'detectors': rows, 'events_per_hour': {m: rate['per_hour'] for m in rows['model']},
              'false_alarm_events': {m: rate for m in ('camera', 'wrench', 'joints')},
              'attribution': 1.0, 'leave_family_out': {}, 'correction': {}, 'timing': {}}
    result['verdicts'] = verdicts(result)
    return ({v['target']: v for v in result['verdicts']}['false-alarm events / hour wrench'],
            format_quality(result))


def test_no_alarm_meets_the_events_target_only_when_the_clean_time_can_show_it():
    short, text = _events_verdict(0, 0.125)  # 7.5 clean minutes: bound 24 per hour
    assert short['met'] is None and short['upper95'] == pytest.approx(2.996 / 0.125, rel=1e-3)
    assert 'not shown (95 % bound 24.0)' in text
    assert 'pooled over 7.5 clean minutes: camera 0 (95 % upper bound 23.966 per hour)' in text
    long, _ = _events_verdict(0, 4.0)  # four clean hours without an alarm: bound 0.75
    assert long['met'] is True and 'upper95' not in long
    many, _ = _events_verdict(3, 1.0)  # three an hour is a miss whatever the bound
    assert many['met'] is False


def test_rows_prefer_effective_labels_and_verdicts_say_what_missed(tmp_path):
    rows = detector_rows([_report(), _report()])
    assert rows['model']['camera']['auroc'] == pytest.approx(0.99)
    assert rows['pca']['overall']['auroc'] == pytest.approx(0.8)
    result = {'detectors': rows, 'events_per_hour': events_per_hour(_report()),
              'events_per_hour_by_episode': {1600: events_per_hour(_report())},
              'attribution': attribution(_report()),
              'leave_family_out': {'stale': {'wrench': {'unseen': 0.7, 'trained_on': 0.9}}},
              'correction': {'wrench': {'raw_faulty': 10.0, 'model': 1.0,
                                        'hold_last_value_detected': 2.0,
                                        'hold_last_value': 1.5, 'median_filter': 8.0,
                                        'clean_tuples_model_vs_raw': 0.0}},
              'timing': {'total_s': 12.0}}
    result['verdicts'] = verdicts(result)
    by = {v['target']: v for v in result['verdicts']}
    assert by['AUROC camera (kinds trained on)']['met'] is True
    assert by['AUROC joints (kinds trained on)']['met'] is False
    assert by['AUROC wrench, stale left out']['met'] is False
    assert by['overall AUROC margin over the best baseline']['value'] == pytest.approx(0.1)
    assert by['correction wrench: raw / model error']['value'] == pytest.approx(10.0)
    text = format_quality(result)
    assert '| model |' in text and '| pca |' in text and '**no**' in text
    assert '- episode 1600: camera' in text
    extra = format_quality(result, ['', '## Threshold offsets'])
    assert extra.index('## Threshold offsets') < extra.index('## Verdicts')
    plot(result, tmp_path / 'q.png')
    assert (tmp_path / 'q.png').stat().st_size > 1000


def test_several_trainings_get_a_variance_table_with_their_range():
    rows = detector_rows([_report()])['model']
    other = {n: dict(v) for n, v in rows.items()}
    other['camera']['auroc'] = 0.95
    result = {'detectors': {'model': rows}, 'events_per_hour': events_per_hour(_report()),
              'attribution': 1.0, 'leave_family_out': {}, 'correction': {}, 'verdicts': [],
              'timing': {}, 'repeats': [{'train_seed': 1000, **rows},
                                        {'train_seed': 1001, **other}]}
    text = format_quality(result)
    assert '## Training variance' in text
    table = text.split('## Training variance')[1].split('##')[0]
    assert '| 1000 |' in table and '| 1001 |' in table
    assert '| range | 0.950-0.990 |' in table
    result['repeats'] = result['repeats'][:1]
    assert '## Training variance' not in format_quality(result)  # one training: no table


def test_a_run_written_before_a_setting_existed_still_resumes(tmp_path):
    import dataclasses
    import json

    from lipfault_ros.bench.quality import run_quality
    from lipfault_ros.errors import ConfigError

    cfg = QualityConfig()
    old = json.loads(json.dumps(dataclasses.asdict(cfg)))
    old.pop('repeats')
    old.pop('clean_scenes')
    (tmp_path / 'settings.json').write_text(json.dumps(old))
    seen = []

    def stop(text: str) -> None:  # the first step after the settings check
        seen.append(text)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_quality(cfg, tmp_path, say=stop)
    assert seen and 'recording' in seen[0]
    with pytest.raises(ConfigError, match='other settings'):
        run_quality(dataclasses.replace(cfg, repeats=3), tmp_path, say=stop)
