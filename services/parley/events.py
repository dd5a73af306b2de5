"""The event stream: every service publishes what happened; `WatchEvents` follows it.

Events are Redis stream entries with flat fields (type, conversation_id, message_id, at, attrs as JSON),
capped at `events_maxlen` entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import struct_pb2

from parley.clock import to_timestamp
from parley.store import Keys, Redis
from parley.v1 import common_pb2


@dataclass(frozen=True)
class EventRecord:
    type: str
    conversation_id: str = ""
    message_id: str = ""
    at: float = 0.0
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, str]:
        return {
            "type": self.type,
            "conversation_id": self.conversation_id,
            "message_id": self.message_id,
            "at": f"{self.at:.6f}",
            "attrs": json.dumps(dict(self.attributes), separators=(",", ":"), default=str),
        }


def add_to_pipeline(pipe: Any, keys: Keys, events: Iterable[EventRecord], maxlen: int) -> None:
    """Queue XADDs for `events` on an open pipeline (the caller executes it)."""
    for event in events:
        pipe.xadd(keys.events(), event.fields(), maxlen=maxlen, approximate=True)


async def publish(redis: Redis, keys: Keys, events: Iterable[EventRecord], maxlen: int = 1_000_000) -> None:
    events = list(events)
    if not events:
        return
    async with redis.pipeline(transaction=False) as pipe:
        add_to_pipeline(pipe, keys, events, maxlen)
        await pipe.execute()


def to_proto(entry_id: bytes | str, fields: Mapping[bytes, bytes]) -> common_pb2.Event:
    """A stream entry as a parley.v1.Event."""

    def text(name: str) -> str:
        return fields.get(name.encode(), b"").decode()

    attributes = struct_pb2.Struct()
    raw = text("attrs")
    if raw:
        attributes.update(json.loads(raw))
    return common_pb2.Event(
        id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
        type=text("type"),
        conversation_id=text("conversation_id"),
        message_id=text("message_id"),
        occurred_at=to_timestamp(float(text("at") or 0)),
        attributes=attributes,
    )
