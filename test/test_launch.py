"""launch/pipeline.launch.py, checked statically (launch is not on PyPI) and, where
launch_testing is installed, started for real."""

from __future__ import annotations

import ast
import glob
import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / 'launch' / 'pipeline.launch.py'
ARGUMENTS = {'params_file', 'model', 'device', 'namespace', 'use_sim_time', 'camera_topic',
             'wrench_topic', 'joints_topic', 'sim', 'rviz'}


def _setup() -> ast.Module:
    return ast.parse((ROOT / 'setup.py').read_text())


def _console_scripts() -> set[str]:
    for node in ast.walk(_setup()):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == 'console_scripts':
                    return {ast.literal_eval(e).split('=')[0].strip() for e in value.elts}
    raise AssertionError('setup.py has no console_scripts')


def _installed_files() -> set[str]:
    """Files setup.py's data_files install (globs evaluated in the source tree)."""
    out: set[str] = set()
    for node in ast.walk(_setup()):
        if isinstance(node, ast.keyword) and node.arg == 'data_files':
            for entry in node.value.elts:
                sources = entry.elts[1]
                for call in ast.walk(sources):
                    if isinstance(call, ast.Call) and getattr(call.func, 'id', '') == 'glob':
                        pattern = ast.literal_eval(call.args[0])
                        out |= {str(Path(p)) for p in glob.glob(str(ROOT / pattern))}
                    elif isinstance(call, ast.Constant) and isinstance(call.value, str):
                        out.add(str(ROOT / call.value))
    return {str(Path(p).relative_to(ROOT)) for p in out}


def _calls(tree: ast.Module, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, 'id', getattr(n.func, 'attr', '')) == name]


def _kw(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_launch_file_declares_the_arguments():
    tree = ast.parse(LAUNCH.read_text())
    declared = {ast.literal_eval(c.args[0]) for c in _calls(tree, 'DeclareLaunchArgument')}
    assert declared == ARGUMENTS


def test_every_executable_of_this_package_is_a_console_script():
    tree = ast.parse(LAUNCH.read_text())
    nodes = _calls(tree, 'Node')
    ours = [ast.literal_eval(_kw(n, 'executable')) for n in nodes
            if ast.literal_eval(_kw(n, 'package')) == 'lipfault_ros']
    assert set(ours) == {'pipeline_node', 'sim_node'}
    assert set(ours) <= _console_scripts()


def test_every_default_file_exists_and_is_installed():
    tree = ast.parse(LAUNCH.read_text())
    files = []
    for call in _calls(tree, 'PathJoinSubstitution'):
        parts = [ast.literal_eval(e) for e in call.args[0].elts[1:]]
        files.append('/'.join(parts))
    assert set(files) == {'config/pipeline.yaml', 'config/lipfault.rviz'}
    installed = _installed_files()
    for f in files + ['launch/pipeline.launch.py', 'config/diagnostics_aggregator.yaml']:
        assert (ROOT / f).is_file(), f
        assert f in installed, f'{f} is not installed by setup.py data_files'


def test_launch_defaults_agree_with_the_parameter_file():
    tree = ast.parse(LAUNCH.read_text())
    defaults = {ast.literal_eval(c.args[0]): _kw(c, 'default_value')
                for c in _calls(tree, 'DeclareLaunchArgument')}
    params = yaml.safe_load((ROOT / 'config' / 'pipeline.yaml').read_text())[
        'lipfault_pipeline']['ros__parameters']
    for name in ('model', 'device', 'camera_topic', 'wrench_topic', 'joints_topic'):
        assert ast.literal_eval(defaults[name]) == params[name], name


def test_diagnostics_analyzers_match_the_status_names():
    doc = yaml.safe_load((ROOT / 'config' / 'diagnostics_aggregator.yaml').read_text())
    analyzers = doc['analyzers']['ros__parameters']
    prefixes = [p for a in analyzers.values() if isinstance(a, dict) for p in a['startswith']]
    names = {f'lipfault_pipeline: {t}' for t in ('model', 'sync', 'camera', 'wrench', 'joints')}
    assert names == {n for n in names if any(n.startswith(p) for p in prefixes)}


@pytest.mark.skipif(importlib.util.find_spec('launch_testing') is None,
                    reason='launch_testing is not installed (not on PyPI; present on robots)')
def test_launch_description_builds():
    spec = importlib.util.spec_from_file_location('pipeline_launch', LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert len(description.entities) == len(ARGUMENTS) + 3
