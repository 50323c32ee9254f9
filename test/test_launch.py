"""launch/pipeline.launch.py, checked statically (launch is not on PyPI) and, where
../shared/ros2py provides launch_testing, run by ``launch_test`` from the colcon-installed package
(test_ros_launch.py starts it with the simulated robot and a model)."""

from __future__ import annotations

import ast
import glob
import subprocess
from pathlib import Path

import yaml

from lipfault_ros.ros.params import file_parameters
from lipfault_ros.topics import INPUT_NAMES
from lipfault_ros.tuples import Modality

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / 'launch' / 'pipeline.launch.py'
ARGUMENTS = {'params_file', 'model', 'device', 'namespace', 'use_sim_time', 'camera_topic',
             'wrench_topic', 'joints_topic', 'sim', 'rviz', 'rviz_frame', 'view', 'view_port'}


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
    assert set(ours) == {'pipeline_node', 'sim_node', 'view_node'}
    assert set(ours) <= _console_scripts()


def test_every_default_file_exists_and_is_installed():
    tree = ast.parse(LAUNCH.read_text())
    files = []
    for call in _calls(tree, 'PathJoinSubstitution'):
        parts = [ast.literal_eval(e) for e in call.args[0].elts[1:]]
        files.append('/'.join(parts))
    assert set(files) == {'config/pipeline.yaml', 'config/lipfault.rviz', 'config/view.yaml'}
    installed = _installed_files()
    for f in files + ['launch/pipeline.launch.py', 'config/diagnostics_aggregator.yaml']:
        assert (ROOT / f).is_file(), f
        assert f in installed, f'{f} is not installed by setup.py data_files'


def test_launch_defaults_agree_with_the_parameter_file():
    tree = ast.parse(LAUNCH.read_text())
    defaults = {ast.literal_eval(c.args[0]): _kw(c, 'default_value')
                for c in _calls(tree, 'DeclareLaunchArgument')}
    params = file_parameters(yaml.safe_load((ROOT / 'config' / 'pipeline.yaml').read_text()),
                             'lipfault_pipeline')
    # the remap arguments default to the nodes' own input names (topics.INPUT_NAMES), which
    # the file's topics equal
    for name, modality in (('camera_topic', 'CAMERA'), ('wrench_topic', 'WRENCH'),
                           ('joints_topic', 'JOINTS')):
        assert ast.unparse(defaults[name]) == f'INPUT_NAMES[Modality.{modality}]', name
        assert INPUT_NAMES[Modality[modality]] == params[name], name
    # empty: not passed on, so that params_file's value stands
    for name in ('model', 'device', 'use_sim_time', 'view_port'):
        assert ast.literal_eval(defaults[name]) == '', name
    assert ast.literal_eval(defaults['view']) == 'false', 'the live view is off by default'


def test_parameter_file_sections_apply_in_any_namespace():
    doc = yaml.safe_load((ROOT / 'config' / 'pipeline.yaml').read_text())
    for node in ('lipfault_pipeline', 'lipfault_sim', 'lipfault_training', 'lipfault_replay'):
        values = file_parameters(doc, node)
        assert values and file_parameters(doc, node, '/arm1') == values, node
        assert file_parameters(doc, node, '/cell/arm2') == values, node
    # how ROS matches section keys: a bare name only in the root namespace, wildcards anywhere
    keyed = {'lipfault_pipeline': {'ros__parameters': {'a': 1}},
             '/arm1/lipfault_pipeline': {'ros__parameters': {'b': 2}},
             '/*/lipfault_*': {'ros__parameters': {'c': 3}},
             '/**': {'ros__parameters': {'d': 4}}}
    assert file_parameters(keyed, 'lipfault_pipeline') == {'a': 1, 'd': 4}
    assert file_parameters(keyed, 'lipfault_pipeline', '/arm1') == {'b': 2, 'c': 3, 'd': 4}
    assert file_parameters(keyed, 'lipfault_sim', '/arm2/x') == {'d': 4}


def test_diagnostics_analyzers_match_the_status_names():
    doc = yaml.safe_load((ROOT / 'config' / 'diagnostics_aggregator.yaml').read_text())
    analyzers = doc['analyzers']['ros__parameters']
    prefixes = [p for a in analyzers.values() if isinstance(a, dict) for p in a['startswith']]
    names = {f'lipfault_pipeline: {t}' for t in ('model', 'sync', 'camera', 'wrench', 'joints')}
    assert names == {n for n in names if any(n.startswith(p) for p in prefixes)}


# Run by launch_test (launch_testing's pytest plugin does not load under pytest 9; see
# ../shared/ros2py/README.md). No model and no sim: the pipeline must come up, say that the
# model is missing, and stop cleanly; rviz:=true (where rviz2 is not installed) must not
# stop the launch.
LAUNCH_TEST = """
import os
import unittest

import launch
import launch_testing.actions
import launch_testing.asserts
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare


def generate_test_description():
    pipeline = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution(
            [FindPackageShare('lipfault_ros'), 'launch', 'pipeline.launch.py'])),
        launch_arguments={'rviz': os.environ['LIPFAULT_TEST_RVIZ'], 'device': 'cpu'}.items())
    return launch.LaunchDescription([pipeline, launch_testing.actions.ReadyToTest()])


class TestPipelineComesUp(unittest.TestCase):

    def test_it_reports_the_missing_model(self, proc_output):
        proc_output.assertWaitFor('parameter model is empty', timeout=60, stream='stderr')


@launch_testing.post_shutdown_test()
class TestPipelineStops(unittest.TestCase):

    def test_exit_codes(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)
"""


def test_launch_test_runs_the_installed_launch_file(launch_env, rviz2_installed, tmp_path):
    test_file = tmp_path / 'test_pipeline_launch.py'
    test_file.write_text(LAUNCH_TEST)
    env = dict(launch_env, LIPFAULT_TEST_RVIZ=str(not rviz2_installed).lower())
    result = subprocess.run(['launch_test', str(test_file)], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert 'Traceback' not in output, output
    if not rviz2_installed:
        assert 'rviz2 is not installed' in output, output
