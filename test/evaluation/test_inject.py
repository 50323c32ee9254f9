"""Scenario files and `lipfault inject`: faults land where scheduled, truth is recorded, the
clean stretches stay bit-identical, bad scenarios are refused by name."""

from __future__ import annotations

import numpy as np
import pytest

from lipfault_ros.errors import BagError, ConfigError, FaultError
from lipfault_ros.evaluation.inject import inject
from lipfault_ros.evaluation.scenario import Scenario, default_scenario_path, load_scenario
from lipfault_ros.faults import FAULTS
from lipfault_ros.tuples import MODALITIES, Modality

from synthbag import T0_NS, write_empty_bag


def _samples(bag):
    from lipfault_ros.bags.reader import read_samples

    out = {m: {} for m in MODALITIES}
    for _path, s in read_samples(bag):
        out[s.modality][s.stamp_ns] = s
    return out


def test_default_scenario_has_every_fault_once_per_modality_with_clean_gaps():
    path = default_scenario_path()
    assert path is not None and path.name == 'fault_scenario.yaml'
    sc = load_scenario(path)
    for m in MODALITIES:
        kinds = [f.kind for f in sc.faults if f.modality == m]
        assert sorted(kinds) == sorted(FAULTS[m])
    sched = sorted(sc.schedule(), key=lambda f: f.start_s)
    assert sched[0].start_s > 0
    for a, b in zip(sched, sched[1:]):
        assert b.start_s >= a.start_s + a.duration_s + 1.0  # clean stretch between faults
    fitted = sc.fitted(20.0)
    assert fitted.end_s() <= 20.0


@pytest.mark.parametrize('text, error, match', [
    ('faults: [{modality: camera, kind: melted}]', FaultError, 'melted'),
    ('faults: [{modality: lidar, kind: noise}]', ConfigError, 'lidar'),
    ('faults: [{modality: wrench, kind: bias, colour: red}]', ConfigError, 'colour'),
    ('topics: {sonar: /x}\nfaults: [{modality: wrench, kind: bias}]', ConfigError, 'sonar'),
    ('faults: [{modality: wrench, kind: bias, severity: 2}]', ConfigError, 'severity'),
    ('faults: [{modality: wrench, kind: bias, start_s: 1, duration_s: 2},\n'
     '         {modality: wrench, kind: spike, start_s: 2}]', ConfigError, 'overlap'),
    ('faults: []', ConfigError, 'non-empty'),
])
def test_bad_scenarios_are_refused_naming_the_entry(tmp_path, text, error, match):
    path = tmp_path / 's.yaml'
    path.write_text(text)
    with pytest.raises(error, match=match):
        load_scenario(path)


def test_cli_fault_specs_parse_and_refuse_garbage():
    sc = Scenario.from_specs(['wrench:drift:0.5:3.0:2.0'])
    assert sc.schedule()[0].start_s == 3.0
    with pytest.raises(FaultError, match='modality:kind'):
        Scenario.from_specs(['wrench:drift:0.5'])
    with pytest.raises(FaultError, match='teleport'):
        Scenario.from_specs(['joints:teleport:0.5:1:1'])


def test_inject_writes_truth_and_changes_only_faulty_stretches(clean_bag, faulty_bag):
    from lipfault_ros.bags.reader import read_truth
    from synthbag import SPECS

    truth = read_truth(faulty_bag)
    assert [(iv.modality.value, iv.kind) for iv in truth] == \
        [(s.split(':')[0], s.split(':')[1]) for s in SPECS]
    first = truth[0]
    assert first.start_ns == T0_NS + 1_000_000_000 and first.end_ns == T0_NS + 1_600_000_000
    clean, faulty = _samples(clean_bag), _samples(faulty_bag)
    # camera frames keep their stamps; inside the black_frame interval they are dark
    assert set(faulty[Modality.CAMERA]) == set(clean[Modality.CAMERA])
    for stamp, s in faulty[Modality.CAMERA].items():
        c = clean[Modality.CAMERA][stamp].image
        active = any(iv.modality is Modality.CAMERA and iv.active(stamp) for iv in truth)
        if active:
            assert not np.array_equal(s.image, c)
        else:
            assert np.array_equal(s.image, c)
    for stamp, s in faulty[Modality.WRENCH].items():
        active = any(iv.modality is Modality.WRENCH and iv.active(stamp) for iv in truth)
        same = np.array_equal(s.values, clean[Modality.WRENCH][stamp].values)
        bias = any(iv.kind == 'bias' and iv.modality is Modality.WRENCH and iv.active(stamp)
                   for iv in truth)
        assert same == (not active) or (active and not bias)  # dropout keeps some as they are
    # dropout lost wrench messages inside its interval only
    lost = set(clean[Modality.WRENCH]) - set(faulty[Modality.WRENCH])
    drop = next(iv for iv in truth if iv.kind == 'dropout')
    assert lost and all(drop.active(t) for t in lost)
    # stuck holds joint values during its interval
    stuck = next(iv for iv in truth if iv.kind == 'stuck')
    held = [s.position for t, s in sorted(faulty[Modality.JOINTS].items()) if stuck.active(t)]
    assert len(held) > 10 and np.array_equal(held[0], held[-1])


def test_inject_refuses_overwrite_unknown_topics_and_long_schedules(tmp_path, clean_bag,
                                                                  faulty_bag):
    sc = Scenario.from_specs(['camera:blur:0.5:1:1'])
    with pytest.raises(FileExistsError, match='overwrite'):
        inject(clean_bag, sc, faulty_bag)
    odd = Scenario(sc.faults, topics={'wrench': '/ft_sensor/wrench'}, source='odd.yaml')
    with pytest.raises(BagError, match='/ft_sensor/wrench'):
        inject(clean_bag, odd, tmp_path / 'x')
    long = Scenario.from_specs(['camera:blur:0.5:1:60'])
    with pytest.raises(BagError, match='--fit'):
        inject(clean_bag, long, tmp_path / 'y')
    assert not (tmp_path / 'y').exists() and not list(tmp_path.glob('*.partial'))
    result = inject(clean_bag, long, tmp_path / 'y', fit=True)
    assert result.intervals[0].end_ns <= T0_NS + int(result.duration_s * 1e9)
    with pytest.raises(BagError, match='already records'):
        inject(faulty_bag, sc, tmp_path / 'z')


def test_inject_refuses_an_empty_bag(tmp_path):
    empty = tmp_path / 'empty'
    write_empty_bag(empty)
    with pytest.raises(BagError, match='no sensor messages'):
        inject(empty, Scenario.from_specs(['camera:blur:0.5:1:1']), tmp_path / 'out')
    assert not (tmp_path / 'out').exists()


def test_lipfault_inject_command(tmp_path, clean_bag, capsys):
    from lipfault_ros.cli import main

    out = tmp_path / 'cli_bag'
    rc = main(['inject', str(clean_bag), '--fault', 'joints:noise:0.6:2:1', '--out', str(out),
               '--storage', 'sqlite3'])
    assert rc == 0 and (out / 'metadata.yaml').is_file()
    assert 'joints' in capsys.readouterr().out
    rc = main(['inject', str(clean_bag), '--fault', 'joints:noise:0.6:2:1', '--out', str(out)])
    assert rc == 2
    assert 'overwrite' in capsys.readouterr().err
