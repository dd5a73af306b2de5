"""Races and kills around routing: a router that dies part-way, and a batch retried after it."""

from __future__ import annotations

import pytest
from router_testkit import known_conversations, make_item

from parley.router.core import Router
from parley.router.merges import Merges


async def test_a_router_killed_after_reserving_capacity_leaks_none(router: Router, redis, keys, clock):
    await known_conversations(redis, keys, "c1")
    await router.set_presence("ann", "online", ["first_line"], capacity=1)
    # A claim reserved ann's only unit of capacity, then its router died before the claim journal.
    await router.assignments.reserve_capacity("ann")
    (decision,) = await router.route([make_item("c1", "x:c1", "complaint", topic="weather")])
    assert not decision.agent_id  # ann is full: c1 waits
    clock.advance(router.settings.claim_idle_ms / 1000)
    await router.tick()  # the background loop gives the reservation back, and c1 goes to ann
    state = await redis.hgetall(router.k.state("c1"))
    assert state[b"state"] == b"assigned" and state[b"agent"] == b"ann"
    assert await redis.smembers(router.k.active("ann")) == {b"c1"}


async def test_a_fresh_reservation_is_left_alone(router: Router, redis, keys, clock):
    await router.set_presence("ann", "online", ["first_line"], capacity=2)
    token = await router.assignments.reserve_capacity("ann")  # a claim in flight right now
    await router.tick()
    assert token.encode() in await redis.smembers(router.k.active("ann"))


@pytest.mark.parametrize("router_merged", [False, True], ids=["merge-pending", "merge-applied"])
async def test_a_batch_retried_after_a_merge_keeps_its_one_decision(
    router: Router, redis, keys, router_merged: bool
):
    await known_conversations(redis, keys, "held", "parent")
    # A reply routed in the conversation it waited in; its worker dies before acknowledging the batch.
    (first,) = await router.route([make_item("held", "x:r", "complaint", topic="weather")])
    await router.route([make_item("parent", "x:p", "question", topic="weather")])
    # Conversations merges the reply's conversation into its parent's (the router may not have followed yet);
    # the retried batch threads the reply into the parent's conversation and routes it again.
    if router_merged:
        await Merges(router).apply("held", "parent")
    (again,) = await router.route([make_item("parent", "x:r", "complaint", topic="weather")])
    assert again == first
    assert not await redis.exists(router.k.decision("parent", "x:r"))
    audits = await redis.hkeys(router.k.audit("parent")) + await redis.hkeys(router.k.audit("held"))
    assert audits.count(b"route:x:r") <= 1 + router_merged  # a merge may carry the audit over, never a second
