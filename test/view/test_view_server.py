"""The Foxglove side of the live view over a real WebSocket: channels advertised with their
schemas, what is logged arrives decoded, nothing is wanted before a client subscribes."""

from __future__ import annotations

import numpy as np
import pytest

from lipfault_ros.errors import ConfigError, ViewError
from lipfault_ros.view import Channel, ImageFrame, LiveView
from view.wsclient import FoxgloveClient


@pytest.fixture
def view():
    with LiveView(port=0, name='lipfault test') as live:
        yield live


def test_every_channel_is_advertised_with_its_schema(view):
    with FoxgloveClient(view.url) as client:
        assert client.wait_for(lambda: len(client.channels) == len(Channel), 10.0)
        assert client.subprotocol == 'foxglove.sdk.v1'
        assert client.server_info['name'] == 'lipfault test'
        schemas = {t: (c['encoding'], c['schemaName']) for t, c in client.channels.items()}
    assert schemas == {
        '/camera/raw': ('protobuf', 'foxglove.RawImage'),
        '/camera/corrected': ('protobuf', 'foxglove.RawImage'),
        '/wrench/raw': ('json', 'lipfault.Wrench'),
        '/wrench/corrected': ('json', 'lipfault.Wrench'),
        '/joints/raw': ('json', 'lipfault.JointState'),
        '/joints/corrected': ('json', 'lipfault.JointState'),
        '/fault_status': ('json', 'lipfault.FaultStatus')}


def test_a_channel_is_wanted_once_subscribed_and_what_is_logged_arrives(view):
    assert not view.wants(Channel.CAMERA_RAW)
    pixels = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    frame = ImageFrame(stamp_ns=3 * 10**9 + 7, frame_id='cam', width=5, height=4,
                       encoding='rgb8', step=15, data=pixels.tobytes())
    with FoxgloveClient(view.url) as client:
        assert client.wait_for(lambda: view.wants(Channel.CAMERA_RAW)
                               and view.wants(Channel.FAULT_STATUS), 10.0)

        def sent():
            view.log_image(Channel.CAMERA_RAW, frame)
            view.log_json(Channel.FAULT_STATUS, {'camera': {'score': 0.25}})
            return {'/camera/raw', '/fault_status'} <= set(client.messages)

        assert client.wait_for(sent, 10.0)
        image = client.last('/camera/raw')
        status = client.last('/fault_status')
    assert (image.width, image.height, image.encoding, image.step) == (5, 4, 'rgb8', 15)
    assert (image.timestamp.seconds, image.timestamp.nanos, image.frame_id) == (3, 7, 'cam')
    assert image.data == pixels.tobytes()
    assert status == {'camera': {'score': 0.25}}


def test_a_non_finite_number_is_refused_rather_than_sent_as_invalid_json(view):
    with pytest.raises(ValueError):
        view.log_json(Channel.WRENCH_RAW, {'force': {'x': float('nan')}})


def test_a_payload_on_a_channel_of_the_other_kind_is_refused(view):
    with pytest.raises(ConfigError, match='/camera/raw carries images'):
        view.log_json(Channel.CAMERA_RAW, {})
    frame = ImageFrame(0, '', 1, 1, 'mono8', 1, b'\0')
    with pytest.raises(ConfigError, match='/fault_status carries status'):
        view.log_image(Channel.FAULT_STATUS, frame)


def test_a_port_in_use_is_a_view_error_naming_the_address(view):
    with pytest.raises(ViewError, match=rf'127\.0\.0\.1:{view.port}'):
        LiveView(port=view.port).open()


def test_settings_are_checked_before_anything_is_served():
    with pytest.raises(ConfigError, match='port must be in'):
        LiveView(port=70000)
    with pytest.raises(ConfigError, match='backlog must be >= 1'):
        LiveView(backlog=0)
    with pytest.raises(ConfigError, match='host is empty'):
        LiveView(host='')
    with pytest.raises(ViewError, match='not open'):
        LiveView(port=0).port
