"""Closed conversations and their messages expire after the retention period; reopening keeps them."""

from __future__ import annotations

from parley.clock import ManualClock
from parley.conversations.core import Conversations
from parley.conversations.store import ConversationKeys
from parley.store import Keys, Redis
from parley.v1 import common_pb2, conversations_pb2

from .builders import msg
from .test_lifecycle import Timeline

RETENTION = 90 * 24 * 3600


async def _ttls(redis: Redis, keys: Keys, cid: str, message_ids: list[str]) -> list[int]:
    k = ConversationKeys(keys)
    names = [k.meta(cid), k.messages(cid), k.turns(cid), *map(k.message_index, message_ids)]
    return [await redis.ttl(name) for name in names]


async def test_a_resolved_conversation_expires_and_a_reopened_one_does_not(
    core: Conversations, clock: ManualClock, redis: Redis, keys: Keys
) -> None:
    [first] = await core.thread([msg("1", text="my card was charged twice")])
    cid = first.conversation_id
    t = Timeline(core, clock, cid)
    await t.at(30, "conversation.assigned", agent_id="a1", team="care")
    assert all(ttl == -1 for ttl in await _ttls(redis, keys, cid, ["x:1"]))

    await t.at(90, "conversation.resolved")
    assert all(RETENTION - 5 <= ttl <= RETENTION for ttl in await _ttls(redis, keys, cid, ["x:1"]))

    again = await t.customer(3600, "2")
    assert again.conversation_id == cid
    assert all(ttl == -1 for ttl in await _ttls(redis, keys, cid, ["x:1", "x:2"]))


async def test_closed_without_action_expires_and_leaves_the_listing(
    core: Conversations, redis: Redis, keys: Keys
) -> None:
    [first] = await core.thread([msg("1", text="nice!")])
    cid = first.conversation_id
    routing = common_pb2.RoutingDecision(message_id="x:1", action=common_pb2.ROUTE_ACTION_NO_ACTION)
    await core.record_outcomes(
        [conversations_pb2.Outcome(conversation_id=cid, message_id="x:1", routing=routing)]
    )
    assert all(RETENTION - 5 <= ttl <= RETENTION for ttl in await _ttls(redis, keys, cid, ["x:1"]))

    # Once expired, the conversation is gone from the listings too.
    k = ConversationKeys(keys)
    await redis.delete(k.meta(cid), *k.parts(cid))
    listed, _ = await core.list()
    assert cid not in [s.conversation_id for s in listed]


async def test_expired_conversations_leave_the_listing_indexes_and_live_ones_stay(
    core: Conversations, clock: ManualClock, redis: Redis, keys: Keys
) -> None:
    k = ConversationKeys(keys)
    results = await core.thread([msg(str(n), author=f"u{n}", text="my parcel is late") for n in range(6)])
    cids = [r.conversation_id for r in results]
    expired, live = cids[:4], cids[4:]
    await redis.delete(*(k.meta(cid) for cid in expired))  # as the retention TTL would
    index_keys = core.index_pruner.index_keys()

    async def indexed() -> set[str]:
        found: set[str] = set()
        for name in index_keys:
            found |= {m.decode() for m in await redis.zrange(name, 0, -1)}
        return found

    assert set(cids) <= await indexed()
    assert await core.prune_indexes() == 0  # younger than the retention period: not yet candidates
    clock.advance(RETENTION + 1)
    core.index_pruner.batch = 1  # one entry per key per pass: the live ones passed over must not block
    for _ in range(20):
        await core.prune_indexes()
    assert await indexed() == set(live)
    listed, _ = await core.list()
    assert {s.conversation_id for s in listed} == set(live)
