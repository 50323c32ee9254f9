"""~/fault_markers: one text per modality, coloured by what the lifecycle says."""

from __future__ import annotations

from visualization_msgs.msg import Marker

from lipfault_ros.alarm import AlarmState, AlarmStatus
from lipfault_ros.ros.markers import COLOURS, MarkerGate, fault_markers
from lipfault_ros.tuples import Modality


def test_each_modality_gets_a_text_in_its_state_colour():
    alarms = {Modality.CAMERA: AlarmStatus(),
              Modality.WRENCH: AlarmStatus(AlarmState.RAISED, 10, 2.25, 3),
              Modality.JOINTS: AlarmStatus(AlarmState.LATCHED, 10, 1.0, 1)}
    out = fault_markers(5 * 10**9, 'panda_link0', alarms, {Modality.CAMERA: True})
    texts = [m.text for m in out.markers]
    assert texts == ['camera: missing', 'wrench: fault (2.2 s, #3)', 'joints: latched (1.0 s, #1)']
    assert [m.id for m in out.markers] == [0, 1, 2]
    assert all(m.type == Marker.TEXT_VIEW_FACING and m.header.frame_id == 'panda_link0'
               and m.header.stamp.sec == 5 for m in out.markers)
    colours = [(m.color.r, m.color.g, m.color.b) for m in out.markers]
    assert colours == [COLOURS['missing'], COLOURS['fault'], COLOURS['latched']]
    clear = fault_markers(0, 'base', {}, {})
    assert [m.text for m in clear.markers] == ['camera: ok', 'wrench: ok', 'joints: ok']


def test_markers_go_out_on_a_change_and_once_a_period_not_per_tuple():
    gate = MarkerGate(period_s=1.0)
    ok, bad = ('ok', 'ok', 'ok'), ('ok', 'fault', 'ok')
    assert gate.due(ok, 0)
    assert not gate.due(ok, 100_000_000)
    assert gate.due(bad, 200_000_000)           # a change goes out at once
    assert not gate.due(bad, 900_000_000)
    assert gate.due(bad, 1_200_000_001)         # a second after the last one
