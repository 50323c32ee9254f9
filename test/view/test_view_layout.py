"""The Foxglove layout: the shipped file is the generator's output, and every topic and field
it names is one the view sends."""

from __future__ import annotations

import json
from pathlib import Path

from lipfault_ros import cli
from lipfault_ros.view import SCHEMAS, Channel, Kind
from lipfault_ros.view.layout import foxglove_layout

SHIPPED = Path(__file__).resolve().parents[2] / 'config' / 'foxglove_layout.json'


def _panels(node: dict) -> list[dict]:
    if node.get('type') == 'panel':
        return [node]
    return [p for item in node.get('items', []) for p in _panels(item['content'])]


def _resolves(path: str) -> bool:
    """Whether ``/topic.a.b`` names a view channel and a field of its JSON schema."""
    topic, *fields = path.split('.')
    channel = Channel(topic)
    schema = SCHEMAS[channel.kind][1]
    for name in fields:
        if name in schema.get('properties', {}):
            schema = schema['properties'][name]
        elif 'additionalProperties' in schema:
            schema = schema['additionalProperties']
        else:
            return False
    return True


def test_the_shipped_layout_is_the_generators_output():
    assert json.loads(SHIPPED.read_text()) == json.loads(foxglove_layout().to_json()), \
        'config/foxglove_layout.json is stale: run lipfault view --layout ' \
        'config/foxglove_layout.json'


def test_every_topic_and_field_the_layout_names_is_sent_by_the_view():
    panels = _panels(json.loads(foxglove_layout().to_json())['content'])
    kinds = {p['panelType'] for p in panels}
    assert kinds == {'Image', 'Plot', 'StateTransitions'}
    images = {p['config']['imageMode']['imageTopic'] for p in panels if p['panelType'] == 'Image'}
    assert images == {Channel.CAMERA_RAW.value, Channel.CAMERA_CORRECTED.value}
    paths = [s['value'] for p in panels if p['panelType'] != 'Image'
             for s in p['config']['paths']]
    assert paths and all(_resolves(v) for v in paths), [v for v in paths if not _resolves(v)]
    assert not _resolves('/fault_status.camera.no_such_field')  # the check can fail
    used = {Channel(v.split('.')[0]) for v in paths}
    assert {c for c in Channel if c.kind is not Kind.IMAGE} == used


def test_the_cli_writes_a_layout_for_other_joints(tmp_path, capsys):
    out = tmp_path / 'layout.json'
    assert cli.main(['view', '--layout', str(out), '--joint-names', 'shoulder, elbow']) == 0
    text = out.read_text()
    assert '/joints/raw.position.shoulder' in text and '/joints/corrected.position.elbow' in text
    assert 'panda_joint1' not in text and str(out) in capsys.readouterr().out
