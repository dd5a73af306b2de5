"""Events: each type an EventType value with a payload message, built strictly from the attributes every
publisher passes, and partitioned by conversation over keys that spread over a cluster."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from parley import events
from parley.events import EventError, EventRecord
from parley.store import Keys, Redis
from parley.v1 import common_pb2

SOURCES = Path(events.__file__).parent
T0 = 1_700_000_000.0


# --- every publisher's events map to the protos -----------------------------------------------------------


def _dict_keys(node: ast.expr, function: ast.AST) -> set[str] | None:
    """The attribute names of an attributes expression: a dict literal, or a name bound to one (and given
    more keys by subscript assignments) in the same function; None when it cannot be read statically."""
    if isinstance(node, ast.Dict):
        out: set[str] = set()
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:  # **other
                more = _dict_keys(value, function)
                if more is None:
                    return None
                out |= more
            elif isinstance(key, ast.Constant) and isinstance(key.value, str):
                out.add(key.value)
            else:
                return None
        return out
    if isinstance(node, ast.IfExp):
        left, right = _dict_keys(node.body, function), _dict_keys(node.orelse, function)
        return None if left is None or right is None else left | right
    if isinstance(node, ast.Name):
        found: set[str] | None = None
        for inner in ast.walk(function):
            if isinstance(inner, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == node.id for t in inner.targets
            ):
                bound = _dict_keys(inner.value, function)
                if bound is None:
                    return None
                found = (found or set()) | bound
            if isinstance(inner, ast.Assign) and any(
                isinstance(t, ast.Subscript)
                and isinstance(t.value, ast.Name)
                and t.value.id == node.id
                and isinstance(t.slice, ast.Constant)
                for t in inner.targets
            ):
                found = (found or set()) | {
                    t.slice.value
                    for t in inner.targets
                    if isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant)
                }
        return found
    return None


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def published_events() -> list[tuple[str, str, set[str] | None]]:
    """(where, type, attribute names) of every event a module of the suite builds: each `EventRecord(...)`
    with a literal type, and each call of a module's own `_event("type", ..., **attributes)` helper (the
    attributes of the helper's own EventRecord count for all of its calls)."""
    found: list[tuple[str, str, set[str] | None]] = []
    for path in sorted(SOURCES.rglob("*.py")):
        if "v1" in path.parts or path.name == "events.py":
            continue
        tree = ast.parse(path.read_text())
        helper_keys: set[str] = set()
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for function in functions:
            for call in (n for n in ast.walk(function) if isinstance(n, ast.Call)):
                if _call_name(call) != "EventRecord":
                    continue
                kind = call.args[0] if call.args else next(k.value for k in call.keywords if k.arg == "type")
                attributes = call.args[4] if len(call.args) > 4 else None
                attributes = next((k.value for k in call.keywords if k.arg == "attributes"), attributes)
                keys = set() if attributes is None else _dict_keys(attributes, function)
                where = f"{path.relative_to(SOURCES)}:{call.lineno}"
                if isinstance(kind, ast.Constant):
                    found.append((where, kind.value, keys))
                elif function.name == "_event":  # the module's helper: its keys go with each call of it
                    helper_keys |= keys or set()
        for function in functions:
            for call in (n for n in ast.walk(function) if isinstance(n, ast.Call)):
                if _call_name(call) == "_event" and call.args and isinstance(call.args[0], ast.Constant):
                    keys: set[str] | None = set(helper_keys)
                    for keyword in call.keywords:
                        more = {keyword.arg} if keyword.arg else _dict_keys(keyword.value, function)
                        keys = None if keys is None or more is None else keys | more
                    found.append((f"{path.relative_to(SOURCES)}:{call.lineno}", call.args[0].value, keys))
    return found


def test_every_published_event_has_its_type_and_attributes_in_the_protos() -> None:
    published = published_events()
    assert len(published) >= 25  # every publisher was found (23 EventRecord calls and the dispatch helper's)
    for where, kind, keys in published:
        assert kind in events.PAYLOADS, f"{where}: {kind} is not an EventType"
        assert keys is not None, f"{where}: the attributes of {kind} cannot be read; pass a dict literal"
        fields = set(events.PAYLOADS[kind].DESCRIPTOR.fields_by_name)
        assert keys <= fields, f"{where}: {kind} has no field {', '.join(sorted(keys - fields))}"
    # And no type is published by nobody: the enum says what really happens.
    assert {kind for _, kind, _ in published} == set(events.PAYLOADS)


def test_the_enum_the_payloads_and_the_public_event_agree() -> None:
    numbers = {v.number for v in common_pb2.EventType.DESCRIPTOR.values} - {0}
    assert numbers == set(events.NAMES)
    payload = common_pb2.Event.DESCRIPTOR.oneofs_by_name["payload"]
    by_field = {f.name: f.message_type.full_name for f in payload.fields}
    assert by_field == {
        name.replace(".", "_"): cls.DESCRIPTOR.full_name for name, cls in events.PAYLOADS.items()
    }


# --- strict mapping and the stream entry ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "attributes", "complaint"),
    [
        ("conversation.reopened", {}, "unknown event type"),
        ("conversation.opened", {"chanel": "x"}, "no attribute chanel"),
        ("conversation.assigned", {"candidates": "3"}, "conversation.assigned"),
        ("conversation.assigned", {"candidates": True}, "conversation.assigned"),
        ("reply.sent", {"platform_message_ids": "p1"}, "reply.sent"),
    ],
)
def test_an_event_that_does_not_fit_its_type_is_refused_where_it_is_built(
    kind: str, attributes: dict[str, object], complaint: str
) -> None:
    with pytest.raises(EventError, match=complaint):
        EventRecord(kind, "cv-1", "", T0, attributes)


def test_a_stream_entry_carries_the_enum_and_the_payload_and_decodes_to_the_same_event() -> None:
    event = EventRecord(
        "conversation.assigned",
        "cv-1",
        "",
        T0,
        {"agent_id": "ann", "priority": 40, "held": False, "candidates": 0, "why": None},
    )
    fields = event.fields()
    assert fields["type"] == str(common_pb2.EVENT_TYPE_CONVERSATION_ASSIGNED)
    assert common_pb2.ConversationAssignedEvent.FromString(fields["payload"]).agent_id == "ann"
    raw = {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in fields.items()}
    back = events.decode(raw)
    # Unset (None) stays absent; a field set to its default value stays set.
    assert back.attributes == {"agent_id": "ann", "priority": 40.0, "held": False, "candidates": 0}
    assert (back.type, back.conversation_id, back.at) == ("conversation.assigned", "cv-1", T0)
    public = events.to_proto(b"7-1", raw, 3)
    assert public.id == "7-1-3" and public.event_type == common_pb2.EVENT_TYPE_CONVERSATION_ASSIGNED
    assert public.type == "conversation.assigned" and public.attributes["agent_id"] == "ann"
    assert public.WhichOneof("payload") == "conversation_assigned"
    assert public.conversation_assigned.priority == 40.0


def test_an_entry_that_is_not_an_event_is_refused() -> None:
    with pytest.raises(EventError):
        events.decode({b"type": b"999", b"payload": b""})
    with pytest.raises(EventError):
        events.decode({b"type": b"conversation.opened", b"attrs": b"{}"})  # the old layout


# --- partitions -------------------------------------------------------------------------------------------


def test_partition_streams_spread_evenly_over_the_slot_range() -> None:
    for partitions in (1, 3, 6, 12, 16):
        keys = Keys("parley", partitions)
        shares = [key_slot(s.encode()) * partitions // REDIS_CLUSTER_HASH_SLOTS for s in keys.event_streams()]
        assert shares == list(range(partitions))
        # A partition's merges stream shares its slot.
        assert [key_slot(s.encode()) for s in keys.merge_streams()] == [
            key_slot(s.encode()) for s in keys.event_streams()
        ]
    # On three masters with the slots split evenly, twelve partitions are four per master.
    keys = Keys("parley", 12)
    masters = Counter(key_slot(s.encode()) * 3 // REDIS_CLUSTER_HASH_SLOTS for s in keys.event_streams())
    assert sorted(masters.values()) == [4, 4, 4]


def test_conversations_spread_over_the_partitions() -> None:
    counts = Counter(events.partition_of(f"cv-{n}", 12) for n in range(12_000))
    assert len(counts) == 12 and max(counts.values()) < 1.1 * 1000 and min(counts.values()) > 0.9 * 1000


async def test_a_conversations_events_share_one_partition_and_a_merge_is_copied_for_the_router(
    redis: Redis, keys: Keys
) -> None:
    published = [
        EventRecord("message.accepted", "", "x:1", T0, {"channel": "x"}),
        EventRecord("conversation.opened", "cv-a", "x:1", T0, {"channel": "x"}),
        EventRecord("message.threaded", "cv-a", "x:1", T0, {"role": 1}),
        EventRecord("conversation.merged", "cv-a", "", T0, {"into": "cv-b", "messages": 1}),
    ]
    await events.publish(redis, keys, published)
    own = keys.event_stream(events.partition_of("cv-a", keys.event_partitions))
    types = [events.decode(f).type for _, f in await redis.xrange(own)]
    assert types == ["conversation.opened", "message.threaded", "conversation.merged"]
    # The accepted message has no conversation yet: its message id picks the partition.
    by_message = keys.event_stream(events.partition_of("x:1", keys.event_partitions))
    assert "message.accepted" in [events.decode(f).type for _, f in await redis.xrange(by_message)]
    copies = [events.decode(f).type for stream in keys.merge_streams() for _, f in await redis.xrange(stream)]
    assert copies == ["conversation.merged"]
    assert [e.type for _, e in await events.read_all(redis, keys)].count("conversation.merged") == 1


def test_a_watch_resumes_exactly_after_an_event_id() -> None:
    # After event 5-0 of partition 1: partitions up to 1 start after 5-0; later ones include their own 5-0.
    assert events.starts_after("5-0-1", 3) == ["5-0", "5-0", f"4-{2**64 - 1}"]
    assert events.starts_after("5-2-0", 2) == ["5-2", "5-1"]
    assert events.starts_after("0", 2) == ["0-0", "0-0"]
    assert events.starts_after("5-2", 2) == ["5-2", "5-2"]  # an entry id: after it everywhere
