"""The rviz config follows the launch's namespace and input remappings."""

from __future__ import annotations

from pathlib import Path

import yaml

from lipfault_ros.ros.rviz_config import (namespaced_rviz_config, resolve_topic,
                                          write_rviz_config)

SHIPPED = Path(__file__).resolve().parents[2] / 'config' / 'lipfault.rviz'


def _topics(text: str) -> list[str]:
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get('Topic'), dict):
                found.append(node['Topic']['Value'])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(yaml.safe_load(text))
    return found


def test_names_resolve_as_ros_resolves_them():
    assert resolve_topic('wrench', 'arm1') == '/arm1/wrench'
    assert resolve_topic('wrench', '/arm1/') == '/arm1/wrench'
    assert resolve_topic('/ft/wrench', 'arm1') == '/ft/wrench'
    assert resolve_topic('wrench') == '/wrench'


def test_the_root_namespace_and_default_inputs_leave_the_topics_as_shipped():
    text = SHIPPED.read_text()
    assert _topics(namespaced_rviz_config(text)) == _topics(text)


def test_every_display_topic_moves_under_the_namespace_and_follows_the_remaps():
    text = SHIPPED.read_text()
    before = _topics(text)
    assert '/camera/image_raw' in before and '/lipfault_pipeline/fault_markers' in before
    after = _topics(namespaced_rviz_config(text, 'arm1', {'camera/image_raw': 'cam/rgb',
                                                          'wrench': '/ft/wrench'}))
    assert len(after) == len(before)
    assert '/arm1/cam/rgb' in after and '/ft/wrench' in after
    assert '/arm1/lipfault_pipeline/fault_markers' in after
    assert '/arm1/lipfault_pipeline/camera/image_corrected' in after
    assert all(t.startswith('/arm1/') or t == '/ft/wrench' for t in after)


def test_the_written_copy_is_a_file_rviz_can_read(tmp_path):
    path = write_rviz_config(SHIPPED, 'arm2')
    try:
        doc = yaml.safe_load(path.read_text())
        assert doc['Visualization Manager']['Global Options']['Fixed Frame'] == yaml.safe_load(
            SHIPPED.read_text())['Visualization Manager']['Global Options']['Fixed Frame']
        assert all(t.startswith('/arm2/') for t in _topics(path.read_text()))
    finally:
        path.unlink()


def test_the_fixed_frame_given_replaces_the_files_and_none_keeps_it():
    text = SHIPPED.read_text()
    frame = lambda t: yaml.safe_load(t)['Visualization Manager']['Global Options']['Fixed Frame']
    assert frame(text) == 'panda_hand'  # the wrench's frame: drawn without TF
    assert frame(namespaced_rviz_config(text, fixed_frame='base_link')) == 'base_link'
    assert frame(namespaced_rviz_config(text, 'arm1', fixed_frame='')) == 'panda_hand'
