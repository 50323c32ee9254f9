"""A Foxglove WebSocket client for tests: connects, subscribes to every channel advertised and
keeps what arrives, on a thread of its own so the test can publish meanwhile.

Protocol (the SDK's ``foxglove.sdk.v1``, which the older ``foxglove.websocket.v1`` also
describes): the server sends ``serverInfo`` and ``advertise`` as JSON text; the client sends
``subscribe`` with its own subscription ids; data arrives as binary ``messageData`` frames,
opcode 1, subscription id (u32), log time (u64, ns) and the payload, all little-endian.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import threading
import time
from typing import Any, Callable

#: the subprotocols offered, the server picks one (foxglove-sdk 0.30 speaks foxglove.sdk.v1)
SUBPROTOCOLS = ['foxglove.sdk.v1', 'foxglove.websocket.v1']


class FoxgloveClient:
    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url
        self.server_info: dict[str, Any] = {}
        self.subprotocol: str | None = None
        self.channels: dict[str, dict[str, Any]] = {}    # topic -> its advertise entry
        self.messages: dict[str, list[bytes]] = {}       # topic -> payloads, in order
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        if not self._connected.wait(timeout_s):
            raise TimeoutError(f'no connection to {url} in {timeout_s} s: {self.error!r}')
        if self.error is not None:
            raise self.error

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self.error = exc
            self._connected.set()

    async def _run(self) -> None:
        import websockets

        async with websockets.connect(self.url, subprotocols=SUBPROTOCOLS, proxy=None,
                                      max_size=None) as ws:
            self.subprotocol = ws.subprotocol
            self._connected.set()
            by_subscription: dict[int, str] = {}
            while not self._stop.is_set():
                try:
                    frame = await asyncio.wait_for(ws.recv(), 0.1)
                except asyncio.TimeoutError:
                    continue
                if isinstance(frame, str):
                    msg = json.loads(frame)
                    if msg['op'] == 'serverInfo':
                        self.server_info = msg
                    elif msg['op'] == 'advertise':
                        subs = []
                        for channel in msg['channels']:
                            with self._lock:
                                self.channels[channel['topic']] = channel
                            by_subscription[channel['id']] = channel['topic']
                            subs.append({'id': channel['id'], 'channelId': channel['id']})
                        await ws.send(json.dumps({'op': 'subscribe', 'subscriptions': subs}))
                elif frame[0] == 1:
                    sub_id, _log_time = struct.unpack_from('<IQ', frame, 1)
                    with self._lock:
                        self.messages.setdefault(by_subscription[sub_id], []).append(
                            bytes(frame[13:]))

    def wait_for(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Poll ``condition`` up to ``timeout_s`` (false when it never held)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if condition():
                    return True
            if self.error is not None:
                raise self.error
            time.sleep(0.02)
        with self._lock:
            return bool(condition())

    def decode(self, topic: str, payload: bytes) -> Any:
        """A JSON payload as a dict, a protobuf one as a message of the advertised schema."""
        channel = self.channels[topic]
        if channel['encoding'] == 'json':
            return json.loads(payload)
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        files = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(channel['schema']))
        pool = descriptor_pool.DescriptorPool()
        for file in files.file:
            pool.Add(file)
        cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(channel['schemaName']))
        return cls.FromString(payload)

    def last(self, topic: str) -> Any:
        with self._lock:
            payload = self.messages[topic][-1]
        return self.decode(topic, payload)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> FoxgloveClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
