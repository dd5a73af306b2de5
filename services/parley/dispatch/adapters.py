"""Channel adapters: the log adapter, and which adapter posts on which channel.

The interface and its errors are in `base`; the adapters that call the networks' APIs are in `networks`.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from parley.clock import Clock, SystemClock
from parley.config import Settings
from parley.dispatch import networks
from parley.dispatch.base import ChannelAdapter, PartProgress, PermanentError, RetryableError
from parley.messages import CHANNEL_NAMES
from parley.v1 import common_pb2, dispatch_pb2

__all__ = [
    "ADAPTER_FACTORIES",
    "AdapterRegistry",
    "ChannelAdapter",
    "LogAdapter",
    "PartProgress",
    "PermanentError",
    "RetryableError",
]


class LogAdapter(ChannelAdapter):
    """Appends one JSON line per posted part to a file instead of calling a network.

    Honours the idempotency key across processes: the file is locked while it is checked and appended, and a
    key already in it returns the recorded ids (posting only the parts a crash may have left unwritten).
    """

    name = "log"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        # key -> {part index -> platform id}, read incrementally from the file (other writers may append).
        self._index: dict[str, dict[int, str]] = {}
        self._offset = 0

    async def post(
        self,
        reply: dispatch_pb2.Reply,
        parts: Sequence[str],
        idempotency_key: str,
        progress: PartProgress | None = None,
    ) -> list[str]:
        # The file itself records each part against the key: no outside progress is needed.
        return await asyncio.to_thread(self._post, reply, parts, idempotency_key)

    def _post(self, reply: dispatch_pb2.Reply, parts: Sequence[str], idempotency_key: str) -> list[str]:
        # The file lock (per open file) also keeps this instance's own threads apart.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _private_append(self.path) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._catch_up(handle)
                recorded = self._index.get(idempotency_key, {})
                lines = []
                ids = []
                for index, text in enumerate(parts):
                    if index in recorded:
                        ids.append(recorded[index])
                        continue
                    platform_id = f"log-{uuid.uuid4().hex}"
                    ids.append(platform_id)
                    lines.append(self._line(reply, idempotency_key, index, len(parts), text, platform_id))
                if lines:
                    # A torn last line (a writer died mid-line) is closed off so it cannot swallow ours.
                    if handle.seek(0, os.SEEK_END) > self._offset:
                        lines.insert(0, b"\n")
                    handle.write(b"".join(lines))
                    # Flushed to the OS: survives the process dying (no fsync: this is not the network).
                    handle.flush()
                    self._catch_up(handle)
                return ids
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _catch_up(self, handle: BinaryIO) -> None:
        handle.seek(self._offset)
        for raw in handle:
            if not raw.endswith(b"\n"):
                break  # a line cut short by a crash; it is not counted as posted
            self._offset += len(raw)
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            self._index.setdefault(entry["idempotency_key"], {})[int(entry["part"])] = entry["platform_id"]

    @staticmethod
    def _line(
        reply: dispatch_pb2.Reply, key: str, index: int, total: int, text: str, platform_id: str
    ) -> bytes:
        entry = {
            "idempotency_key": key,
            "platform_id": platform_id,
            "part": index,
            "parts": total,
            "reply_id": reply.reply_id,
            "conversation_id": reply.conversation_id,
            "channel": CHANNEL_NAMES.get(reply.channel, str(reply.channel)),
            "in_reply_to_id": reply.in_reply_to_id,
            "recipient_id": reply.recipient.id,
            "text": text,
        }
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _private_append(path: Path) -> BinaryIO:
    """`path` opened for reading and appending, created 0600 (it holds private replies); a file made
    world-readable before is tightened."""
    handle = os.fdopen(os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600), "a+b")
    if os.fstat(handle.fileno()).st_mode & 0o077:
        os.fchmod(handle.fileno(), 0o600)
    return handle


def _log_adapter(settings: Settings, clock: Clock) -> ChannelAdapter:
    return LogAdapter(settings.dispatch_log_path)


# Adapter name (as used in settings) -> factory.
ADAPTER_FACTORIES: dict[str, Callable[[Settings, Clock], ChannelAdapter]] = {
    "log": _log_adapter,
    "x": networks.XAdapter,
    "meta": networks.MetaAdapter,
    "whatsapp": networks.WhatsAppAdapter,
}

# "network" as an adapter name: each channel's own API.
NATIVE = {"x": "x", "facebook": "meta", "messenger": "meta", "instagram": "meta", "whatsapp": "whatsapp"}


class AdapterRegistry:
    """Which adapter posts replies on which channel."""

    def __init__(self, by_channel: Mapping[int, ChannelAdapter]) -> None:
        self._by_channel = dict(by_channel)

    @classmethod
    def uniform(cls, adapter: ChannelAdapter) -> AdapterRegistry:
        """The same adapter for every channel."""
        return cls({channel: adapter for channel in CHANNEL_NAMES})

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> AdapterRegistry:
        """`dispatch_adapters` names an adapter per channel name; others use `dispatch_default_adapter`.

        "network" means the channel's own API. One instance per adapter name, shared by the channels that
        use it (Facebook, Messenger and Instagram share the Graph API adapter and its limits).
        """
        clock = clock or SystemClock()
        unknown = set(settings.dispatch_adapters) - set(CHANNEL_NAMES.values())
        if unknown:
            raise ValueError(f"dispatch_adapters: unknown channel(s) {sorted(unknown)}")
        instances: dict[str, ChannelAdapter] = {}
        by_channel: dict[int, ChannelAdapter] = {}
        for channel, channel_name in CHANNEL_NAMES.items():
            adapter_name = settings.dispatch_adapters.get(channel_name, settings.dispatch_default_adapter)
            if adapter_name == "network":
                adapter_name = NATIVE.get(channel_name, adapter_name)
            if adapter_name not in ADAPTER_FACTORIES:
                raise ValueError(f"dispatch adapter for {channel_name}: unknown adapter {adapter_name!r}")
            if adapter_name not in instances:
                instances[adapter_name] = ADAPTER_FACTORIES[adapter_name](settings, clock)
            by_channel[channel] = instances[adapter_name]
        return cls(by_channel)

    def for_channel(self, channel: common_pb2.Channel) -> ChannelAdapter:
        adapter = self._by_channel.get(channel)
        if adapter is None:
            raise PermanentError(f"no adapter for channel {CHANNEL_NAMES.get(channel, channel)}")
        return adapter

    async def aclose(self) -> None:
        for adapter in {id(a): a for a in self._by_channel.values()}.values():
            await adapter.aclose()
