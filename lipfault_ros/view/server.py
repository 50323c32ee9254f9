"""The Foxglove side of the live view: a WebSocket server and one channel per stream.

:class:`LiveView` owns a Foxglove ``Context`` of its own (so two views, or a test beside a
view, never share channels), the server bound to ``host:port`` and the channels of
:class:`~lipfault_ros.view.payloads.Channel`: images as ``foxglove.RawImage`` (protobuf),
the rest as JSON with the schemas of :data:`~lipfault_ros.view.payloads.SCHEMAS`.

It never holds a caller up: :meth:`LiveView.wants` is false while no client subscribes to a
channel (the caller then skips the conversion), and the server keeps at most ``backlog``
messages per client, dropping the oldest data when a client reads too slowly.
"""

from __future__ import annotations

import json
from typing import Any

from lipfault_ros.errors import ConfigError, ViewError
from lipfault_ros.view.payloads import SCHEMAS, Channel, ImageFrame, Kind

__all__ = ['LiveView']


class LiveView:
    """``open()`` starts the server, ``close()`` stops it; also a context manager.

    ``port`` 0 takes a free port (read it from :attr:`port` once open). Timestamps are integer
    nanoseconds.
    """

    def __init__(self, *, host: str = '127.0.0.1', port: int = 8765, name: str = 'lipfault',
                 backlog: int = 64) -> None:
        if not 0 <= int(port) <= 65535:
            raise ConfigError(f'port must be in [0, 65535], got {port}')
        if int(backlog) < 1:
            raise ConfigError(f'backlog must be >= 1, got {backlog}')
        if not host:
            raise ConfigError('host is empty: give an address to listen on (127.0.0.1)')
        self.host, self.name = str(host), str(name)
        self._port, self._backlog = int(port), int(backlog)
        self._server: Any = None
        self._context: Any = None
        self._channels: dict[Channel, Any] = {}
        self._raw_image: Any = None
        self._timestamp: Any = None

    def open(self) -> LiveView:
        try:
            import foxglove
            from foxglove.channels import RawImageChannel
            from foxglove.messages import RawImage, Timestamp
        except ImportError as exc:
            raise ViewError(f'the live view needs the Foxglove SDK ({exc}); install it with '
                            f'pip install -r requirements.txt') from None
        if self._server is not None:
            return self
        # kept for as long as the view is open: the channels and the server only meet in it
        context = self._context = foxglove.Context()
        try:
            self._server = foxglove.start_server(
                name=self.name, host=self.host, port=self._port, context=context,
                message_backlog_size=self._backlog)
        except RuntimeError as exc:  # the SDK's FoxgloveError (address in use, bad host)
            raise ViewError(f'cannot serve the live view on {self.host}:{self._port}: {exc} '
                            f'(another view running? set the parameter port)') from None
        for channel in Channel:
            if channel.kind is Kind.IMAGE:
                self._channels[channel] = RawImageChannel(channel.value, context=context)
            else:
                schema_name, schema = SCHEMAS[channel.kind]
                self._channels[channel] = foxglove.Channel(
                    channel.value, message_encoding='json', context=context,
                    schema=foxglove.Schema(name=schema_name, encoding='jsonschema',
                                           data=json.dumps(schema).encode()))
        self._raw_image, self._timestamp = RawImage, Timestamp
        return self

    def close(self) -> None:
        server, self._server = self._server, None
        for channel in self._channels.values():
            channel.close()
        self._channels = {}
        if server is not None:
            server.stop()
        self._context = None

    def __enter__(self) -> LiveView:
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def port(self) -> int:
        """The port served on (the one the system chose when created with port 0)."""
        if self._server is None:
            raise ViewError('the live view is not open')
        return int(self._server.port)

    @property
    def url(self) -> str:
        """What to give Foxglove's "Open connection" dialog."""
        return f'ws://{self.host}:{self.port}'

    def wants(self, channel: Channel) -> bool:
        """Whether a client subscribes to ``channel`` (else logging it is wasted work)."""
        base = self._channels.get(channel)
        return base is not None and base.has_sinks()

    def log_image(self, channel: Channel, frame: ImageFrame) -> None:
        """Send one image on an image channel."""
        if channel.kind is not Kind.IMAGE:
            raise ConfigError(f'{channel.value} carries {channel.kind.value}, not images')
        base = self._channels.get(channel)
        if base is None:
            return
        stamp = self._timestamp(sec=frame.stamp_ns // 1_000_000_000,
                                nsec=frame.stamp_ns % 1_000_000_000)
        base.log(self._raw_image(timestamp=stamp, frame_id=frame.frame_id, width=frame.width,
                                 height=frame.height, encoding=frame.encoding, step=frame.step,
                                 data=frame.data))

    def log_json(self, channel: Channel, payload: dict[str, Any]) -> None:
        """Send one JSON object on a JSON channel (ValueError for a non-finite number: the
        payload functions give None instead)."""
        if channel.kind is Kind.IMAGE:
            raise ConfigError(f'{channel.value} carries images, not JSON')
        base = self._channels.get(channel)
        if base is None:
            return
        base.log(json.dumps(payload, allow_nan=False, separators=(',', ':')).encode())
