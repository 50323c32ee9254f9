"""`lipfault train`: simulated bags (mcap and sqlite3) -> a tiny model -> an artifact that
detects an injected fault; refusals; Ctrl-C + --resume; torchrun with two gloo processes."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lipfault_ros.cli import main as cli_main
from lipfault_ros.errors import BagError, ConfigError
from lipfault_ros.train_cli import load_settings, train_from_bags

from bags.synthetic import write_bag
from tiny_config import tiny_config

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _config(tmp_path: Path, e1: int = 8, e2: int = 8, every: int = 0) -> Path:
    """The tiny network with a few epochs: seconds on one CPU thread."""
    path = tmp_path / 'tiny.yaml'
    path.write_text(tiny_config(stage1_epochs=e1, stage2_epochs=e2, checkpoint_every=every))
    return path


@pytest.fixture(scope='module')
def sim_bags(tmp_path_factory):
    """Two short recordings of the simulated robot, one mcap, one sqlite3."""
    from lipfault_ros.sim import SimConfig
    from lipfault_ros.sim.record import record

    root = tmp_path_factory.mktemp('sim')
    config = dict(camera_rate_hz=15, wrench_rate_hz=150, joints_rate_hz=150,
                  physics_rate_hz=150, image_width=32, image_height=32)
    out = []
    for i, storage in enumerate(('mcap', 'sqlite3')):
        path = root / f'sim_{storage}'
        record(path, 8.0, SimConfig(seed=i, **config), storage=storage, progress=False,
               origin_ns=(1_700_000_000 + 100 * i) * 10**9)
        out.append(path)
    return out


def _weights(artifact: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file
    return load_file(str(artifact / 'model.safetensors'))


def test_cli_trains_on_sim_bags_and_the_artifact_flags_an_injected_fault(sim_bags, tmp_path,
                                                                          capsys):
    out = tmp_path / 'model'
    rc = cli_main(['train', *map(str, sim_bags), '--out', str(out), '--quick',
                   '--config', str(_config(tmp_path)), '--cache', str(tmp_path / 'cache'),
                   '--no-progress', '--summary-json', str(tmp_path / 'summary.json'),
                   '--log-dir', str(tmp_path / 'logs')])
    printed = capsys.readouterr().out
    assert rc == 0
    assert 'AUROC' in printed and 'threshold' in printed and 'wrench' in printed
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert set(summary['auroc']) == {'camera', 'wrench', 'joints'}
    assert list((tmp_path / 'logs').glob('events.out.tfevents.*'))  # loss curves, reconstructions

    from lipfault_ros.bags.reader import read_samples
    from lipfault_ros.inference import Engine
    from lipfault_ros.sync import SyncConfig, assemble
    from lipfault_ros import faults
    from lipfault_ros.tuples import Modality

    engine = Engine.from_artifact(out, device='cpu')
    assert engine.image_size == 32 and engine.wrench_window == 16
    sync = SyncConfig(camera_rate=15, wrench_rate=150, joints_rate=150, wrench_window=16,
                      joints_window=16)
    tuples = list(assemble(read_samples(sim_bags[0]), sync, engine.joint_names))
    rng = np.random.default_rng(0)
    black_flags, wrench_higher, clean_flags = [], [], []
    for t in tuples[20:120:10]:
        clean = engine.infer(t)
        clean_flags.append(any(r.fault for r in clean.results.values()))
        black = engine.infer(dataclasses.replace(
            t, image=faults.corrupt_image(t.image, 'black_frame', 1.0, rng)))
        black_flags.append(black.results[Modality.CAMERA].fault)
        if black.results[Modality.CAMERA].fault:
            assert black.results[Modality.CAMERA].corrected
            assert black.image.shape == t.image.shape
        window, _ = faults.corrupt_window(t.wrench, 'bias', 1.0, rng,
                                          scale=engine.stats.wrench_std)
        biased = engine.infer(dataclasses.replace(t, wrench=window))
        wrench_higher.append(biased.results[Modality.WRENCH].score
                             > clean.results[Modality.WRENCH].score)
    assert np.mean(black_flags) >= 0.8, black_flags
    assert np.mean(wrench_higher) >= 0.8, wrench_higher
    assert np.mean(clean_flags) <= 0.3, clean_flags


def test_existing_artifact_is_refused_and_bad_bags_leave_nothing(sim_bags, tmp_path, capsys):
    out = tmp_path / 'model'
    out.mkdir()
    with pytest.raises(FileExistsError, match='exists; pass --overwrite'):
        train_from_bags(sim_bags, out)
    assert cli_main(['train', str(sim_bags[0]), '--out', str(out)]) == 2
    assert 'exists; pass --overwrite' in capsys.readouterr().err

    bad = write_bag(tmp_path / 'nojoints', duration_s=1.0, skip=['joints'])
    out2 = tmp_path / 'model2'
    with pytest.raises(BagError, match=r'nojoints has no topic /joint_states'):
        train_from_bags([sim_bags[0], bad], out2, config_file=_config(tmp_path))
    assert not out2.exists() and not list(tmp_path.glob('.model2*'))
    other = write_bag(tmp_path / 'other_robot', duration_s=3.0,
                      joints=[f'ur5_joint{i}' for i in range(6)])
    with pytest.raises(BagError, match=r'other_robot has joints .*ur5_joint1'):
        train_from_bags([sim_bags[0], other], out2, config_file=_config(tmp_path))
    with pytest.raises(FileNotFoundError, match='no checkpoint'):
        train_from_bags(sim_bags, out2, resume=True)
    assert not out2.exists()


def test_config_file_errors_name_the_key(tmp_path):
    path = tmp_path / 'bad.yaml'
    path.write_text('train:\n  epochs: 3\n')
    with pytest.raises(ConfigError, match='unknown TrainConfig keys: epochs'):
        load_settings(path)
    path.write_text('optimiser: {}\n')
    with pytest.raises(ConfigError, match=r"unknown sections \['optimiser'\]"):
        load_settings(path)
    path.write_text('data:\n  topics: {imu: /imu}\n')
    with pytest.raises(ConfigError, match=r"unknown topic keys \['imu'\]"):
        load_settings(path)
    settings = load_settings(_config(tmp_path), quick=True, data_changes={'split': 'bag'})
    assert settings.model.image_size == 32 and settings.data.image_size == 32
    assert settings.train.stage1_epochs == 8 and str(settings.data.split) == 'bag'


@pytest.fixture(scope='module')
def uninterrupted(sim_bags, tmp_path_factory):
    """A short run with checkpoints every 2 steps, never interrupted: the reference weights."""
    root = tmp_path_factory.mktemp('uninterrupted')
    config = _config(root, e1=3, e2=3, every=2)
    train_from_bags(sim_bags[:1], root / 'full', config_file=config, cache_dir=root / 'cache',
                    progress=False)
    return root


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGKILL], ids=['ctrl-c', 'kill'])
def test_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_run(sim_bags, uninterrupted,
                                                                       tmp_path, sig):
    config, cache = uninterrupted / 'tiny.yaml', uninterrupted / 'cache'
    out = tmp_path / 'resumed'
    cmd = [str(BIN / 'lipfault'), 'train', str(sim_bags[0]), '--out', str(out), '--config',
           str(config), '--cache', str(cache), '--no-progress']
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=tmp_path)
    checkpoint = tmp_path / 'resumed.ckpt' / 'last.pt'
    deadline = time.monotonic() + 60
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert checkpoint.exists(), proc.communicate()[0] if proc.poll() is not None else 'timeout'
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    if sig == signal.SIGINT:  # Ctrl-C: stop at the end of the step, save, exit cleanly
        assert proc.returncode == 130, output
        assert 'interrupted; checkpoint in' in output and '--resume' in output
    else:
        assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.resumed')]

    train_from_bags(sim_bags[:1], out, config_file=config, cache_dir=cache, resume=True,
                    progress=False)
    a, b = _weights(uninterrupted / 'full'), _weights(out)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_torchrun_two_gloo_processes_write_one_artifact(sim_bags, tmp_path):
    out = tmp_path / 'ddp'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [str(BIN / 'torchrun'), '--standalone', '--nproc_per_node', '2', '-m',
           'lipfault_ros.cli', 'train', *map(str, sim_bags), '--out', str(out), '--config',
           str(_config(tmp_path, e1=2, e2=2)), '--cache', str(tmp_path / 'cache'),
           '--no-progress']
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / 'model.safetensors').is_file() and (out / 'config.json').is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(('ddp', '.ddp'))) == [
        'ddp', 'ddp.ckpt']
    doc = json.loads((out / 'config.json').read_text())
    assert doc['training']['world_size'] == 2
    assert proc.stdout.count('artifact:') == 1


def test_split_by_bag_calibrates_on_the_held_out_recording_without_a_lifecycle_alarm(
        sim_bags, tmp_path):
    """The thresholds come from the recording the model never trained on: replaying that
    recording through the engine and the node's fault lifecycle raises no alarm."""
    from lipfault_ros.alarm import AlarmConfig, FaultAlarms
    from lipfault_ros.bags.reader import read_samples
    from lipfault_ros.inference import Engine
    from lipfault_ros.sync import SyncConfig, assemble
    from lipfault_ros.tuples import MODALITIES

    settings = load_settings(_config(tmp_path), quick=True, data_changes={'split': 'bag'})
    events = []
    result = train_from_bags(sim_bags, tmp_path / 'model', settings=settings, progress=False,
                             on_event=lambda event, fields: events.append((event, fields)))
    info = next(fields for event, fields in events if event == 'dataset')
    engine = Engine.from_artifact(tmp_path / 'model', device='cpu')
    sync = SyncConfig(camera_rate=15, wrench_rate=150, joints_rate=150, wrench_window=16,
                      joints_window=16)
    held_out = list(assemble(read_samples(sim_bags[1]), sync, engine.joint_names))
    trained = list(assemble(read_samples(sim_bags[0]), sync, engine.joint_names))
    assert info['split'] == 'bag' and info['val'] == result.summary['val_tuples']
    assert abs(info['val'] - len(held_out)) <= 2 and abs(info['train'] - len(trained)) <= 2
    assert result.summary['calibration']['alarm'] == AlarmConfig().as_dict()
    alarms = FaultAlarms(AlarmConfig())
    raised = 0
    for t in held_out:
        missing = [m in t.missing for m in MODALITIES]
        engine.infer(t, decide=lambda flags, _: alarms.active(flags, missing, t.stamp_ns))
        raised = max(raised, sum(s.count for s in alarms.status.values()))
    assert raised == 0
