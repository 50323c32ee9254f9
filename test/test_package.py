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


#: import name -> its rosdep key, where the two differ (ROS packages import under their key)
_ROSDEP = {'numpy': 'python3-numpy', 'cv2': 'python3-opencv', 'yaml': 'python3-yaml',
           'torch': 'python3-pytorch-pip', 'rosbags': 'python3-rosbags-pip',
           'pybullet': 'python3-pybullet-pip', 'pybullet_data': 'python3-pybullet-pip',
           'tqdm': 'python3-tqdm', 'scipy': 'python3-scipy', 'sklearn': 'python3-sklearn',
           'skimage': 'python3-skimage', 'matplotlib': 'python3-matplotlib'}
#: imports with no rosdep key for the pinned version: installed from requirements.txt
_PIP_ONLY = {'safetensors': 'safetensors', 'onnxruntime': 'onnxruntime', 'onnx': 'onnx',
             'onnxscript': 'onnxscript', 'foxglove': 'foxglove-sdk'}
#: benchmarked when installed, never required (``lipfault bench --only model``)
_OPTIONAL = {'openvino'}


def _third_party_imports() -> set[str]:
    import sys
    names = set()
    for path in (ROOT / 'lipfault_ros').rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name.split('.')[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split('.')[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != 'lipfault_ros'}


def test_every_import_of_the_package_is_a_declared_dependency():
    """What the code imports, rosdep installs (package.xml) or requirements.txt pins: a new
    import without a declaration fails here, not on a robot."""
    root = ET.parse(ROOT / 'package.xml').getroot()
    keys = {e.text for e in root if e.tag in ('depend', 'exec_depend')}
    pinned = {line.split('==')[0].strip().lower()
              for line in (ROOT / 'requirements.txt').read_text().splitlines()
              if line.strip() and not line.startswith('#')}
    undeclared = []
    for name in sorted(_third_party_imports() - _OPTIONAL):
        if name in _PIP_ONLY:
            ok = _PIP_ONLY[name] in pinned
        else:
            ok = _ROSDEP.get(name, name) in keys
        if not ok:
            undeclared.append(name)
    assert not undeclared, f'imported but declared nowhere: {undeclared}'
    assert (ROOT / 'LICENSE').is_file() and root.findtext('license') == 'Apache-2.0'
    assert 'Apache License' in (ROOT / 'LICENSE').read_text()[:200]


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
