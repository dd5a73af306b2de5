"""Channel adapters: the log adapter, and which adapter posts on which channel.

The interface and its errors are in `base`; the adapters that call the networks' APIs are in `networks`.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

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


# Keys of the newest lines kept in memory (about 400 bytes each): a claim taken over mid-post finds the other
# process's lines among them; a later attempt at an older reply reads the file instead.
RECENT_KEYS = 20_000


class LogAdapter(ChannelAdapter):
    """Appends one JSON line per posted part to a file instead of calling a network.

    Honours the idempotency key across processes: the file is locked while it is checked and appended, and a
    key already in it returns the recorded ids (posting only the parts a crash may have left unwritten). Only
    the newest keys stay in memory, so a long run does not grow with the file: a first attempt at a reply can
    only meet its key there (another process posting the same reply at the same moment), and a later attempt,
    which may resume a post from long ago, looks through the whole file when the key is not among them.
    """

    name = "log"

    def __init__(self, path: Path | str, recent_keys: int = RECENT_KEYS) -> None:
        self.path = Path(path)
        self.recent_keys = recent_keys
        # key -> {part index -> platform id} of the newest lines, read incrementally (other writers append).
        self._recent: OrderedDict[str, dict[int, str]] = OrderedDict()
        self._offset = 0

    async def post(
        self,
        reply: dispatch_pb2.Reply,
        parts: Sequence[str],
        idempotency_key: str,
        progress: PartProgress | None = None,
    ) -> list[str]:
        # The file itself records each part against the key; progress only says whether this is a retry.
        resumed = progress is None or progress.attempt > 1
        return await asyncio.to_thread(self._post, reply, parts, idempotency_key, resumed)

    def _post(
        self, reply: dispatch_pb2.Reply, parts: Sequence[str], idempotency_key: str, resumed: bool
    ) -> list[str]:
        # The file lock (per open file) also keeps this instance's own threads apart.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _private_append(self.path) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._catch_up(handle)
                recorded = self._recent.get(idempotency_key)
                if recorded is None and resumed:
                    recorded = self._search(handle, idempotency_key)
                recorded = recorded or {}
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
        for end, raw in _whole_lines(handle, self._offset):
            self._offset = end
            entry = _entry(raw)
            if entry is None:
                continue
            key = entry["idempotency_key"]
            self._recent.setdefault(key, {})[int(entry["part"])] = entry["platform_id"]
            self._recent.move_to_end(key)
            if len(self._recent) > self.recent_keys:
                self._recent.popitem(last=False)

    def _search(self, handle: BinaryIO, key: str) -> dict[int, str]:
        """The parts recorded against `key` anywhere in the file, up to what has been read."""
        found: dict[int, str] = {}
        needle = json.dumps(key, ensure_ascii=False).encode()
        for end, raw in _whole_lines(handle, 0):
            if end > self._offset:
                break
            entry = _entry(raw) if needle in raw else None
            if entry is not None and entry["idempotency_key"] == key:
                found[int(entry["part"])] = entry["platform_id"]
        return found

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


def _whole_lines(handle: BinaryIO, start: int) -> Iterator[tuple[int, bytes]]:
    """(offset after the line, the line) for each whole line from `start`. A line cut short by a crash (no
    newline yet) ends them: it is not counted as posted."""
    handle.seek(start)
    for raw in handle:
        if not raw.endswith(b"\n"):
            return
        start += len(raw)
        yield start, raw


def _entry(raw: bytes) -> dict[str, Any] | None:
    """One line of the log, or None for a line that is not one (a torn line closed off by the next writer)."""
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and "idempotency_key" in entry else None


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
