"""Followers of the event stream read through the one stream consumer: a malformed event is set aside with
its reason instead of blocking every event behind it."""

from __future__ import annotations

import json

from parley.clock import ManualClock
from parley.config import Settings
from parley.conversations.core import Conversations
from parley.conversations.follower import GROUP, ensure_group, follow_once
from parley.events import EventRecord, publish
from parley.store import Keys, Redis
from parley.v1 import common_pb2, conversations_pb2

T0 = 1_700_000_000.0
ASSIGNED = conversations_pb2.CONVERSATION_STATE_ASSIGNED


def customer_message(platform_id: str) -> common_pb2.InboundMessage:
    m = common_pb2.InboundMessage(
        message_id=f"x:{platform_id}",
        platform_message_id=platform_id,
        channel=common_pb2.CHANNEL_X,
        direction=common_pb2.DIRECTION_INBOUND,
        brand_account_id="brand",
        text="my order never came",
    )
    m.author.id = "cust-1"
    m.sent_at.FromSeconds(int(T0))
    return m


async def test_a_malformed_event_is_dead_lettered_and_the_ones_behind_it_applied(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    core = Conversations(settings, redis, keys, ManualClock(T0))
    await ensure_group(redis, keys)
    [first] = await core.thread([customer_message("1")])
    cid = first.conversation_id
    while await follow_once(core, "test", block_ms=None):
        pass
    assigned = EventRecord("conversation.assigned", cid, "", T0 + 5, {"agent_id": "a1"})
    stream = keys.lifecycle_stream(assigned.partition(keys.event_partitions))
    # The assigned event's type with a payload that is not a protobuf message.
    await redis.xadd(
        stream, {"type": str(assigned.event_type), "conversation_id": cid, "payload": b"\xff\xff"}
    )
    await publish(redis, keys, [assigned])

    for _ in range(10):
        if not await follow_once(core, "test", block_ms=None):
            break
    assert (await core.get(cid)).state == ASSIGNED
    assert (await redis.xpending(stream, GROUP))["pending"] == 0
    [dead] = [json.loads(raw) for raw in await redis.lrange(keys.namespaced("events-dead", GROUP), 0, -1)]
    # The undecodable payload is kept, its bytes escaped.
    assert dead["fields"]["payload"] == "\\xff\\xff" and "DecodeError" in dead["reason"]
