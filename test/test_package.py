"""The package installs like any ROS 2 package: colcon build lands launch, config and nodes."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NODES = ('pipeline_node', 'training_node', 'sim_node', 'replay_node', 'view_node')


def _console_scripts() -> dict[str, str]:
    tree = ast.parse((ROOT / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == 'console_scripts':
                    entries = [ast.literal_eval(e) for e in value.elts]
                    return dict(e.replace(' ', '').split('=', 1) for e in entries)
    raise AssertionError('setup.py declares no console_scripts')


def test_every_node_has_a_console_script_that_imports():
    scripts = _console_scripts()
    assert set(NODES) | {'lipfault'} <= set(scripts)
    for name, target in scripts.items():
        module, func = target.split(':')
        path = ROOT / module.replace('.', '/')
        assert path.with_suffix('.py').is_file() or (path / '__init__.py').is_file(), \
            f'{name} -> {module} missing'


def test_package_xml_declares_runtime_dependencies():
    root = ET.parse(ROOT / 'package.xml').getroot()
    assert root.get('format') == '3'
    assert root.findtext('name') == 'lipfault_ros'
    deps = {e.text for e in root if e.tag in ('depend', 'exec_depend')}
    for key in ('rclpy', 'sensor_msgs', 'geometry_msgs', 'diagnostic_msgs', 'std_msgs',
                'message_filters', 'cv_bridge', 'python3-numpy', 'python3-opencv',
                'python3-yaml', 'python3-pytorch-pip'):
        assert key in deps, f'package.xml lacks {key}'
    assert root.find('export/build_type').text == 'ament_python'


def test_colcon_build_installs_launch_config_and_nodes(colcon_install):
    prefix = colcon_install
    share = prefix / 'share' / 'lipfault_ros'
    assert (share / 'launch' / 'pipeline.launch.py').is_file()
    assert (share / 'config' / 'pipeline.yaml').is_file()
    assert (share / 'package.xml').is_file()
    assert (prefix / 'share' / 'ament_index' / 'resource_index' / 'packages'
            / 'lipfault_ros').is_file()
    for node in NODES:
        assert (prefix / 'lib' / 'lipfault_ros' / node).is_file(), f'{node} not installed'
    installed = list((prefix / 'lib').glob('python3*/site-packages/lipfault_ros/__init__.py'))
    assert installed, 'the Python package was not installed'


@pytest.mark.parametrize('script', ['run', 'test'])
def test_readme_and_ci_use_the_same_commands(script):
    readme = (ROOT / 'README.md').read_text()
    assert f'./scripts/{"demo" if script == "run" else "test"}.sh' in readme
    ci = (ROOT / '.ci' / 'run').read_text().strip().splitlines()
    assert ci[-1].strip() == './scripts/test.sh'
