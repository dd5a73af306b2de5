"""The conversations follower over the partitions of the lifecycle streams (its copy of the event stream)."""

from __future__ import annotations

import asyncio

from parley import events
from parley.clock import ManualClock
from parley.config import Settings
from parley.conversations.core import Conversations
from parley.conversations.follower import ensure_group, follow_once
from parley.events import EventRecord
from parley.store import Keys, Redis
from parley.v1 import conversations_pb2

from .builders import T0, msg


async def test_an_event_redirected_by_a_merge_never_collides_with_the_survivors_own(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    """Two partitions can hold entries with the same id. An event for a conversation merged away is applied
    to the one it went into, whose own events come from another partition: each is applied once by an id
    that names its partition, so one never passes for the other."""
    core = Conversations(settings, redis, keys, ManualClock(T0))
    await ensure_group(redis, keys)
    for n in range(50):  # a reply that arrived before its parent, in another partition than the parent's
        [held] = await core.thread([msg(f"c{n}", reply_to=f"p{n}", at=5)])
        [root] = await core.thread([msg(f"p{n}")])
        partitions = [events.partition_of(r.conversation_id, keys.event_partitions) for r in (held, root)]
        if held.conversation_id != root.conversation_id and partitions[0] != partitions[1]:
            break
    while await follow_once(core, "test", block_ms=None):
        pass
    # One entry id in both partitions: an assignment to ann of the merged one, to bob of the survivor.
    streams = [keys.lifecycle_stream(p) for p in partitions]
    tops = [await redis.xrevrange(s, count=1) for s in streams]
    same_id = f"{max((int(t[0][0].decode().split('-')[0]) for t in tops if t), default=0) + 1}-0"
    pairs = ((held.conversation_id, "ann"), (root.conversation_id, "bob"))
    for stream, (cid, agent) in zip(streams, pairs, strict=True):
        event = EventRecord("conversation.assigned", cid, "", T0 + 20, {"agent_id": agent})
        await redis.xadd(stream, event.fields(), id=same_id)
    while await follow_once(core, "test", block_ms=None):
        pass
    assert sorted((await core.get(root.conversation_id)).agents) == ["ann", "bob"]


async def test_the_follower_reads_every_partition(settings: Settings, redis: Redis, keys: Keys) -> None:
    core = Conversations(settings, redis, keys, ManualClock(T0))
    await ensure_group(redis, keys)
    threaded = await core.thread([msg(f"m{n}") for n in range(24)])
    cids = [t.conversation_id for t in threaded]
    assert len({events.partition_of(c, keys.event_partitions) for c in cids}) > 6
    resolved = [EventRecord("conversation.resolved", cid, "", T0 + 9) for cid in cids]
    await events.publish(redis, keys, resolved)
    for _ in range(50):
        if not await follow_once(core, "test", block_ms=None):
            break
        await asyncio.sleep(0)
    assert {(await core.get(cid)).state for cid in cids} == {conversations_pb2.CONVERSATION_STATE_RESOLVED}
