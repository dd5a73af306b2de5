"""The event stream: every service publishes what happened; the followers and `WatchEvents` read it.

An event has a type (`parley.v1.EventType`, named in code by its dotted name, "conversation.opened") and a
payload, the protobuf message of its type (`ConversationOpenedEvent`). Publishers keep writing
`EventRecord("conversation.opened", cid, mid, at, {"channel": "x"})`: the record maps the name to the enum and
the attributes to the payload message, and refuses an unknown type, an unknown attribute or a value of the
wrong kind (`EventError`) where it is built.

The stream is partitioned: an event goes to partition crc32(conversation id, else message id) mod
`event_partitions`, a stream of its own (`Keys.event_stream`), so no key grows with the whole traffic and
the partitions spread over a cluster. All the events of one conversation share a partition, in order.
A `conversation.merged` event is also copied to the partition's merges stream, for the router's merges
follower. Each stream entry has the flat fields `type` (the EventType number), `conversation_id`,
`message_id`, `at` and `payload` (the serialized payload message). Each partition keeps about
`events_maxlen / event_partitions` entries.

An event's id is "<entry id>-<partition>"; events are ordered by entry id, then partition.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.message import Message

from parley import lua
from parley.clock import to_timestamp
from parley.store import Keys, Redis
from parley.v1 import common_pb2

# Every event type by its dotted name, with its payload message.
PAYLOADS: dict[str, type[Message]] = {
    "message.accepted": common_pb2.MessageAcceptedEvent,
    "message.threaded": common_pb2.MessageThreadedEvent,
    "message.processed": common_pb2.MessageProcessedEvent,
    "conversation.opened": common_pb2.ConversationOpenedEvent,
    "conversation.state_changed": common_pb2.ConversationStateChangedEvent,
    "conversation.merged": common_pb2.ConversationMergedEvent,
    "conversation.merged_routing": common_pb2.ConversationMergedRoutingEvent,
    "conversation.routed": common_pb2.ConversationRoutedEvent,
    "conversation.assigned": common_pb2.ConversationAssignedEvent,
    "conversation.held": common_pb2.ConversationHeldEvent,
    "conversation.hold_released": common_pb2.ConversationHoldReleasedEvent,
    "conversation.declined": common_pb2.ConversationDeclinedEvent,
    "conversation.transferred": common_pb2.ConversationTransferredEvent,
    "conversation.escalated": common_pb2.ConversationEscalatedEvent,
    "conversation.requeued": common_pb2.ConversationRequeuedEvent,
    "conversation.resolved": common_pb2.ConversationResolvedEvent,
    "conversation.sla_at_risk": common_pb2.ConversationSlaAtRiskEvent,
    "triage.corrected": common_pb2.TriageCorrectedEvent,
    "reply.sent": common_pb2.ReplySentEvent,
    "reply.retrying": common_pb2.ReplyRetryingEvent,
    "reply.dead_lettered": common_pb2.ReplyDeadLetteredEvent,
    "reply.blocked": common_pb2.ReplyBlockedEvent,
    "reply.moved_private": common_pb2.ReplyMovedPrivateEvent,
}


def enum_name(name: str) -> str:
    """ "conversation.hold_released" -> "EVENT_TYPE_CONVERSATION_HOLD_RELEASED"."""
    return "EVENT_TYPE_" + name.upper().replace(".", "_")


TYPES: dict[str, int] = {name: common_pb2.EventType.Value(enum_name(name)) for name in PAYLOADS}
NAMES: dict[int, str] = {number: name for name, number in TYPES.items()}
# Events the router's merges follower applies: copied to the merges stream of their partition.
MERGES = frozenset({"conversation.merged"})
# Events the conversations service's lifecycle follower applies (a conversation assigned, moved back to a
# queue, resolved, answered): copied to the lifecycle stream of their partition, so that follower reads only
# these rather than every event of the pipeline.
LIFECYCLE = frozenset(
    {
        "conversation.assigned",
        "conversation.resolved",
        "conversation.escalated",
        "conversation.transferred",
        "conversation.declined",
        "conversation.requeued",
        "reply.sent",
    }
)


class EventError(ValueError):
    """An event that does not fit its type: an unknown type, an unknown attribute, a value of the wrong kind,
    or a stream entry that is not an event."""


def payload_of(kind: str, attributes: Mapping[str, Any]) -> Message:
    """The payload message of an event of type `kind` with `attributes`, strictly."""
    cls = PAYLOADS.get(kind)
    if cls is None:
        raise EventError(f"unknown event type {kind!r}")
    names, lists = _field_names(kind)
    unknown = attributes.keys() - names
    if unknown:
        known = ", ".join(cls.DESCRIPTOR.fields_by_name)
        raise EventError(f"{kind} has no attribute {', '.join(sorted(unknown))} (it has {known})")
    for name in lists.intersection(attributes):
        if isinstance(attributes[name], (str, bytes)):  # not split into characters
            raise EventError(f"{kind}: {name} is a list, not {attributes[name]!r}")
    try:
        # None leaves a field unset; a field set to its default value stays set (every field has presence).
        return cls(**{name: value for name, value in attributes.items() if value is not None})
    except (TypeError, ValueError) as error:
        raise EventError(f"{kind}: {error}") from error


@functools.cache
def _field_names(kind: str) -> tuple[frozenset[str], frozenset[str]]:
    """The field names of an event type's payload, and those of its lists (every event builds a payload)."""
    fields = PAYLOADS[kind].DESCRIPTOR.fields
    return frozenset(f.name for f in fields), frozenset(f.name for f in fields if f.is_repeated)


def attributes_of(payload: Message) -> dict[str, Any]:
    """The fields a payload has set, by name (lists always, empty or not)."""
    out: dict[str, Any] = {f.name: [] for f in payload.DESCRIPTOR.fields if f.is_repeated}
    for f, value in payload.ListFields():
        out[f.name] = list(value) if f.is_repeated else value
    return out


def partition_of(key: str, partitions: int) -> int:
    """The event partition of a conversation (or of a message not in one yet)."""
    return zlib.crc32(key.encode()) % partitions


@dataclass(frozen=True)
class EventRecord:
    type: str
    conversation_id: str = ""
    message_id: str = ""
    at: float = 0.0
    attributes: Mapping[str, Any] = field(default_factory=dict)
    payload: Message = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "payload", payload_of(self.type, self.attributes))

    @property
    def event_type(self) -> int:
        return TYPES[self.type]

    def partition(self, partitions: int) -> int:
        return partition_of(self.conversation_id or self.message_id, partitions)

    def fields(self) -> dict[str, str | bytes]:
        return {
            "type": str(self.event_type),
            "conversation_id": self.conversation_id,
            "message_id": self.message_id,
            "at": f"{self.at:.6f}",
            "payload": self.payload.SerializeToString(),
        }


def decode(fields: Mapping[bytes, bytes]) -> EventRecord:
    """The event of a stream entry (EventError, or DecodeError for a payload that does not parse)."""

    def text(name: str) -> str:
        return fields.get(name.encode(), b"").decode()

    raw_type = text("type")
    name = NAMES.get(int(raw_type)) if raw_type.isdigit() else None
    if name is None:
        raise EventError(f"not an event type: {raw_type!r}")
    payload = PAYLOADS[name].FromString(fields.get(b"payload", b""))
    try:
        at = float(text("at") or 0)
    except ValueError as error:
        raise EventError(f"not an event time: {text('at')!r}") from error
    return EventRecord(name, text("conversation_id"), text("message_id"), at, attributes_of(payload))


def per_partition_maxlen(maxlen: int, partitions: int) -> int:
    return max(1, -(-maxlen // partitions))


def add_to_pipeline(
    pipe: lua.Pipeline, keys: Keys, events: Iterable[EventRecord], maxlen: int, once: str = ""
) -> list[str]:
    """Queue XADDs for `events` on an open pipeline (the caller executes it); `maxlen` counts all
    partitions together. Without `once` they are plain writes (`lua.Pipeline.write`: after the pipeline's
    other commands, in order). With `once` (an id of the effect the events belong to), each event is
    written the first time that effect is made and never again (`lua.Pipeline.once`, among those writes).
    Returns the marks that say so, one per event in its partition's slot (none without `once`)."""
    cap = per_partition_maxlen(maxlen, keys.event_partitions)
    marks: list[str] = []
    for event in events:
        partition = event.partition(keys.event_partitions)
        fields = event.fields()
        streams = [keys.event_stream(partition)]
        if event.type in MERGES:
            streams.append(keys.merge_stream(partition))
        if event.type in LIFECYCLE:
            streams.append(keys.lifecycle_stream(partition))
        flat = [word for pair in fields.items() for word in pair]
        xadds: list[tuple[Any, ...]] = [
            ("XADD", stream, "MAXLEN", "~", cap, "*", *flat) for stream in streams
        ]
        if once:
            marks.append(keys.event_once(partition, f"{once}:{event.type}"))
            pipe.once(marks[-1], xadds)
            continue
        for xadd in xadds:
            pipe.write(*xadd)
    return marks


async def publish(redis: Redis, keys: Keys, events: Iterable[EventRecord], maxlen: int = 1_000_000) -> None:
    events = list(events)
    if not events:
        return
    async with lua.pipeline(redis) as pipe:
        add_to_pipeline(pipe, keys, events, maxlen)
        await pipe.execute()


# --- ids and order ------------------------------------------------------------------------------------------


def event_id(entry_id: bytes | str, partition: int) -> str:
    """The public id of an event: its entry id in its partition's stream, then the partition."""
    return f"{_text(entry_id)}-{partition}"


def order(entry_id: str, partition: int) -> tuple[int, int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0), partition


def starts_after(after_id: str, partitions: int) -> list[str]:
    """For each partition, the entry id to read after to get the events following `after_id`: an event id
    ("<entry id>-<partition>"), an entry id (after it in every partition), or "0" (from the beginning)."""
    parts = [int(p) for p in after_id.split("-")]
    if len(parts) < 3:
        ms, seq = parts[0], parts[1] if len(parts) > 1 else 0
        return [f"{ms}-{seq}"] * partitions
    ms, seq, last = parts
    # Equal entry ids in later partitions come after this event: start just before them.
    before = f"{ms}-{seq - 1}" if seq else f"{ms - 1}-{2**64 - 1}" if ms else "0-0"
    return [f"{ms}-{seq}" if p <= last else before for p in range(partitions)]


async def newest_id(redis: Redis, keys: Keys) -> str:
    """The id of the newest event over all partitions, "0-0" when there is none."""
    async with redis.pipeline(transaction=False) as pipe:
        for stream in keys.event_streams():
            pipe.xrevrange(stream, count=1)
        replies = await pipe.execute()
    newest = [(order(_text(r[0][0]), p), _text(r[0][0]), p) for p, r in enumerate(replies) if r]
    if not newest:
        return "0-0"
    _, entry_id, partition = max(newest)
    return event_id(entry_id, partition)


async def read_all(redis: Redis, keys: Keys, page: int = 5000) -> list[tuple[str, EventRecord]]:
    """Every event still in the stream, in order (for reports and tests: it reads every partition whole)."""
    found: list[tuple[tuple[int, int, int], str, EventRecord]] = []
    for partition, stream in enumerate(keys.event_streams()):
        start = "-"
        while True:
            batch: Any = await redis.xrange(stream, min=start, count=page)
            for entry_id, fields in batch:
                entry = _text(entry_id)
                found.append((order(entry, partition), event_id(entry, partition), decode(fields)))
            if len(batch) < page:
                break
            start = "(" + _text(batch[-1][0])
    found.sort(key=lambda item: item[0])
    return [(eid, event) for _, eid, event in found]


# --- the public message -------------------------------------------------------------------------------------


def to_proto(entry_id: bytes | str, fields: Mapping[bytes, bytes], partition: int) -> common_pb2.Event:
    """A stream entry as a parley.v1.Event: the typed payload, and its name and attributes for clients
    that read those."""
    event = decode(fields)
    attributes = struct_pb2.Struct()
    attributes.update(event.attributes)
    out = common_pb2.Event(
        id=event_id(entry_id, partition),
        type=event.type,
        conversation_id=event.conversation_id,
        message_id=event.message_id,
        occurred_at=to_timestamp(event.at),
        attributes=attributes,
        event_type=event.event_type,  # type: ignore[arg-type]
    )
    getattr(out, event.type.replace(".", "_")).CopyFrom(event.payload)
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
