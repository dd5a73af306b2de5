"""The log adapter (one JSON line per part, idempotent by key) and the per-channel registry."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from dispatch_samples import log_lines, make_reply

from parley.config import Settings
from parley.dispatch.adapters import AdapterRegistry, LogAdapter, PermanentError
from parley.v1 import common_pb2


async def test_log_adapter_writes_one_line_per_part(tmp_path: Path) -> None:
    adapter = LogAdapter(tmp_path / "out" / "outbox.log")
    ids = await adapter.post(make_reply(), ["1/2 Hello", "2/2 world"], "bot:x:1001")
    lines = [json.loads(line) for line in log_lines(adapter.path)]
    assert [line["text"] for line in lines] == ["1/2 Hello", "2/2 world"]
    assert [line["platform_id"] for line in lines] == ids
    assert len(set(ids)) == 2
    assert {line["idempotency_key"] for line in lines} == {"bot:x:1001"}
    assert lines[0]["channel"] == "x" and lines[0]["in_reply_to_id"] == "1001"


async def test_log_adapter_returns_recorded_ids_for_a_known_key(tmp_path: Path) -> None:
    path = tmp_path / "outbox.log"
    first = await LogAdapter(path).post(make_reply(), ["Hello"], "key-1")
    # A fresh instance (another process after a crash) reads the key back from the file.
    again = await LogAdapter(path).post(make_reply(), ["Hello"], "key-1")
    other = await LogAdapter(path).post(make_reply(), ["Hello"], "key-2")
    assert again == first
    assert other != first
    assert len(log_lines(path)) == 2


async def test_log_adapter_completes_a_thread_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "outbox.log"
    first_part = await LogAdapter(path).post(make_reply(), ["1/2 Hello"], "key-1")
    ids = await LogAdapter(path).post(make_reply(), ["1/2 Hello", "2/2 world"], "key-1")
    assert ids[0] == first_part[0]
    assert [json.loads(line)["part"] for line in log_lines(path)] == [0, 1]


async def test_log_adapter_ignores_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "outbox.log"
    path.write_text('{"idempotency_key": "key-1", "platform_id": "log-x", "part": 0')
    ids = await LogAdapter(path).post(make_reply(), ["Hello"], "key-1")
    assert ids != ["log-x"]
    # The new line is readable on its own: another instance finds it and posts nothing more.
    assert await LogAdapter(path).post(make_reply(), ["Hello"], "key-1") == ids
    assert json.loads(log_lines(path)[-1])["platform_id"] == ids[0]
    assert len(log_lines(path)) == 2


@dataclass
class Attempt:
    """The dispatcher's view of one attempt at a delivery (only its number matters to the log adapter)."""

    attempt: int

    async def load(self) -> tuple[dict[int, str], set[int]]:
        return {}, set()

    async def started(self, index: int) -> None:
        return None

    async def posted(self, index: int, platform_id: str) -> None:
        return None

    async def failed(self, index: int) -> None:
        return None


async def test_log_adapter_keeps_only_the_newest_keys_and_a_retry_finds_an_older_one_in_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.log"
    adapter = LogAdapter(path, recent_keys=3)
    first = {key: await adapter.post(make_reply(), ["Hello"], key, Attempt(1)) for key in "abcdefgh"}
    assert list(adapter._recent) == ["f", "g", "h"]  # memory stays bounded however long the file grows

    # A retry of a reply posted long ago (a crash between the post and its record) reads it from the file.
    assert await adapter.post(make_reply(), ["Hello"], "a", Attempt(2)) == first["a"]
    # A first attempt meets its key only among the newest: another process posting the same reply at once.
    other = LogAdapter(path, recent_keys=3)
    assert await other.post(make_reply(), ["Hello"], "h", Attempt(1)) == first["h"]
    assert len(log_lines(path)) == 8


def test_registry_uses_the_log_adapter_for_every_channel_by_default(settings: Settings) -> None:
    registry = AdapterRegistry.from_settings(settings)
    adapters = {registry.for_channel(c) for c in (common_pb2.CHANNEL_X, common_pb2.CHANNEL_WHATSAPP)}
    assert len(adapters) == 1 and isinstance(adapters.pop(), LogAdapter)
    with pytest.raises(PermanentError):
        registry.for_channel(common_pb2.CHANNEL_UNSPECIFIED)


def test_registry_rejects_unknown_names(settings: Settings) -> None:
    with pytest.raises(ValueError, match="unknown adapter"):
        AdapterRegistry.from_settings(
            settings.model_copy(update={"dispatch_adapters": {"x": "carrier-pigeon"}})
        )
    with pytest.raises(ValueError, match="unknown channel"):
        AdapterRegistry.from_settings(settings.model_copy(update={"dispatch_adapters": {"myspace": "log"}}))
