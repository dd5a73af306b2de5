"""A reopened conversation waits for the agent who handled it (the sticky hold) while they are busy, away or
briefly offline; the hold ends on time, when they stay offline, or when the SLA is at risk. An agent's feed is
told when a conversation is taken away from them (withdrawn)."""

import asyncio

import pytest
from router_testkit import events_of, make_item

from parley.router.core import Router
from parley.rpc import FailedPrecondition
from parley.v1 import common_pb2, router_pb2

QUEUED = common_pb2.ROUTE_ACTION_QUEUED
ASSIGNED = common_pb2.ROUTE_ACTION_ASSIGNED


async def route(router: Router, cid: str, intent: str = "praise", mid: str = "", **kwargs):
    (decision,) = await router.route([make_item(cid, mid or f"x:{cid}", intent, **kwargs)])
    return decision


async def handled_by_ann(router: Router, cid: str = "c1") -> None:
    """ann handles and resolves `cid`; bob is online with room in the same team. A second passes, so the
    audit of what follows sorts after it."""
    await router.set_presence("ann", "online", ["first_line"], capacity=1)
    assert (await route(router, cid, mid=f"x:{cid}:1")).agent_id == "ann"
    await router.resolve(cid, "ann")
    await router.set_presence("bob", "online", ["first_line"], capacity=5)
    router.clock.advance(1)


async def feed_of(router: Router, agent_id: str) -> list[router_pb2.Assignment]:
    return [
        router_pb2.Assignment.FromString(f[b"assignment"])
        for _, f in await router.redis.xrange(router.k.feed(agent_id))
    ]


async def test_a_reopened_conversation_waits_for_its_busy_agent_and_goes_to_them_when_they_free_up(
    router: Router, redis, keys, clock
):
    await handled_by_ann(router)
    busy = await route(router, "busy", mid="x:busy")
    assert busy.agent_id == "ann"  # a tie at no load, broken by name: ann is full now
    clock.advance(5)

    reopened = await route(router, "c1", "complaint", mid="x:c1:2")
    assert (reopened.action, reopened.agent_id) == (QUEUED, "")
    assert "held for agent ann" in reopened.reason and "at capacity (1/1)" in reopened.reason
    assert await router.route([make_item("c1", "x:c1:2", "complaint")]) == [reopened]  # stored as said
    # bob has room, but neither a claim, nor his own claim of it, nor the loop gives it to him.
    assert await router.claim("bob") is None
    with pytest.raises(FailedPrecondition, match="held for its previous agent ann"):
        await router.claim("bob", "c1")
    clock.advance(30)
    assert (await router.tick())["drained"] == 0
    assert await redis.zscore(router.k.queue("first_line"), "c1") is not None

    await router.resolve("busy", "ann")  # ann frees up: it is hers at once
    assert await redis.smembers(router.k.active("ann")) == {b"c1"}
    audit = await router.get_audit("c1")
    assert [e.kind for e in audit][-3:] == ["route", "hold", "assign"]
    hold, assign = audit[-2], audit[-1]
    assert hold.agent_id == "ann" and "at capacity" in hold.why
    assert {c.agent_id for c in hold.candidates} == {"ann", "bob"}
    assert "held for them after a hold of 30s" in assign.why
    (held,) = await events_of(redis, keys, "conversation.held")
    assert held["attrs"]["agent_id"] == "ann" and held["attrs"]["until"] == pytest.approx(
        clock.now() - 30 + 120
    )
    last = (await events_of(redis, keys, "conversation.assigned"))[-1]
    assert last["conversation_id"] == "c1" and last["attrs"]["held"] is True
    assert await redis.hlen(router.k.held("first_line")) == 0
    assert await redis.scard(router.k.holds("ann")) == 0


async def test_the_hold_runs_out_and_the_team_takes_it(router: Router, redis, keys, clock):
    await handled_by_ann(router)
    await router.set_presence("ann", "away")
    reopened = await route(router, "c1", mid="x:c1:2")
    assert reopened.action == QUEUED and "is away" in reopened.reason
    clock.advance(router.policy.assignment.sticky_hold_seconds - 1)
    done = await router.tick()
    assert (done["holds_released"], done["drained"]) == (0, 0)
    clock.advance(1)
    done = await router.tick()
    assert (done["holds_released"], done["drained"]) == (1, 1)
    assert await redis.smembers(router.k.active("bob")) == {b"c1"}
    (released,) = await events_of(redis, keys, "conversation.hold_released")
    assert released["attrs"]["agent_id"] == "ann" and "ran out" in released["attrs"]["reason"]
    assert [e.kind for e in await router.get_audit("c1")][-3:] == ["hold", "hold_released", "assign"]
    assert await redis.scard(router.k.holds("ann")) == 0


async def test_an_agent_coming_back_gets_the_conversation_held_for_them(router: Router, redis):
    await handled_by_ann(router)
    await router.set_presence("ann", "away")
    await route(router, "queued_first", "urgent", mid="x:q")  # higher priority, waiting for anyone
    await redis.srem(router.k.online("first_line"), "bob")
    await redis.srem(router.k.online("priority"), "bob")
    assert (await route(router, "c1", mid="x:c1:2")).action == QUEUED
    handed = await router.set_presence("ann", "online", ["first_line", "priority"], capacity=1)
    assert [a.conversation_id for a in handed] == ["c1"]  # what was held for her comes first


async def test_offline_within_the_grace_period_holds_then_the_hold_ends_with_it(
    router: Router, redis, keys, clock
):
    await handled_by_ann(router)
    await router.set_presence("ann", "offline")
    clock.advance(10)
    reopened = await route(router, "c1", mid="x:c1:2")
    assert reopened.action == QUEUED and "offline for 10s, within the 120s grace period" in reopened.reason
    # The hold would last until +130 s; ann's grace period ends at +120 s, and the hold with it.
    clock.advance(router.policy.presence.offline_grace_seconds - 10)
    done = await router.tick()
    assert (done["holds_released"], done["drained"]) == (1, 1)
    assert await redis.smembers(router.k.active("bob")) == {b"c1"}
    (released,) = await events_of(redis, keys, "conversation.hold_released")
    assert "offline for more than 120s" in released["attrs"]["reason"]


async def test_no_hold_when_the_agent_is_offline_beyond_grace_declined_or_not_in_the_team(
    router: Router, redis, clock
):
    await handled_by_ann(router)
    await router.set_presence("ann", "offline")
    clock.advance(router.policy.presence.offline_grace_seconds)
    await router.tick()
    assert (await route(router, "c1", mid="x:c1:2")).agent_id == "bob"
    # Declined by ann once: never held for her.
    await router.set_presence("ann", "online")
    await router.transfer("c1", to_agent_id="ann")
    await router.decline("ann", "c1")
    await router.loop.drain()
    assert (await redis.hgetall(router.k.state("c1")))[b"agent"] == b"bob"
    await router.resolve("c1")
    await router.set_presence("ann", "away")
    assert (await route(router, "c1", mid="x:c1:3")).agent_id == "bob"
    # A reopened conversation that needs another team does not wait for a first-line agent.
    await router.set_presence("cat", "online", ["first_line"], capacity=1)
    assert (await route(router, "c2", mid="x:c2:1")).agent_id == "cat"
    await router.resolve("c2")
    await router.set_presence("cat", "away")
    await router.set_presence("dan", "online", ["billing"], capacity=1)
    assert (await route(router, "c2", "complaint", mid="x:c2:2", topic="billing")).agent_id == "dan"


async def test_an_sla_at_risk_ends_the_hold(settings, redis, keys, clock):
    router = Router(settings, redis, keys, clock)
    router.policy = router.policy.model_copy(
        update={"assignment": router.policy.assignment.model_copy(update={"sticky_hold_seconds": 86400})}
    )
    await handled_by_ann(router)
    await router.set_presence("ann", "away")
    await redis.srem(router.k.online("first_line"), "bob")  # nobody free: only the SLA can move it
    reopened = await route(router, "c1", "complaint", mid="x:c1:2", topic="weather")  # SLA 3600 s
    assert "held for agent ann" in reopened.reason
    clock.advance(3600 - router.policy.sla_at_risk_seconds + 1)
    done = await router.tick()
    assert (done["sla_at_risk"], done["holds_released"]) == (1, 0)
    state = await redis.hgetall(router.k.state("c1"))
    assert (state[b"state"], state[b"team"]) == (b"queued", b"priority")
    assert await redis.hlen(router.k.held("first_line")) == 0
    (released,) = await events_of(redis, keys, "conversation.hold_released")
    assert "SLA at risk" in released["attrs"]["reason"]
    kinds = [e.kind for e in await router.get_audit("c1")]
    assert kinds[-3:] == ["hold", "hold_released", "escalated"]


async def test_racing_routes_and_claims_never_give_a_held_conversation_to_another_agent(
    settings, redis, keys, clock
):
    router = Router(settings, redis, keys, clock)
    await router.set_presence("ann", "online", ["first_line"], capacity=8)
    for n in range(8):
        await route(router, f"c{n}", mid=f"x:c{n}:1")
        await router.resolve(f"c{n}", "ann")
    await router.set_presence("ann", "away")
    for n in range(6):
        await router.set_presence(f"agent{n}", "away", ["first_line"], capacity=4)
    routers = [Router(settings, redis, keys, clock) for _ in range(4)]
    work = [routers[n % 4].route([make_item(f"c{n}", f"x:c{n}:2", "complaint")]) for n in range(8)]
    work += [routers[n % 4].route([make_item(f"new{n}", f"x:new{n}", "praise")]) for n in range(12)]
    work += [routers[n % 4].set_presence(f"agent{n}", "online") for n in range(6)]
    work += [routers[n % 4].loop.drain() for n in range(4)]
    await asyncio.gather(*work)
    owners = {}
    for agent in [f"agent{n}" for n in range(6)]:
        for cid in await redis.smembers(router.k.active(agent)):
            assert cid not in owners
            owners[cid] = agent
    assert not {f"c{n}".encode() for n in range(8)} & set(owners)  # every reopened one waits for ann
    assert len(owners) == 12
    handed = await router.set_presence("ann", "online")
    assert sorted(a.conversation_id for a in handed) == [f"c{n}" for n in range(8)]


async def test_feeds_are_told_when_a_conversation_is_taken_away(router: Router, redis, keys, clock):
    await router.set_presence("ann", "online", ["first_line"], capacity=4)
    await router.set_presence("bob", "online", ["first_line"], capacity=4)
    assert (await route(router, "t1", mid="x:t1")).agent_id == "ann"
    assert (await route(router, "t2", mid="x:t2")).agent_id == "bob"
    assert (await route(router, "t3", mid="x:t3")).agent_id == "ann"
    assert (await route(router, "t4", mid="x:t4")).agent_id == "bob"
    watch = router.watch("ann", poll_ms=20)
    assert {(await anext(watch)).conversation_id for _ in range(2)} == {"t1", "t3"}  # the current ones

    await router.transfer("t1", to_team="billing", reason="refund")
    await router.transfer("t3", to_agent_id="bob")
    await router.transfer("t4", to_agent_id="ann")  # to ann: a new assignment, not a withdrawal
    got = [await anext(watch) for _ in range(3)]
    assert [(a.conversation_id, a.withdrawn) for a in got] == [("t1", True), ("t3", True), ("t4", False)]
    assert "transferred to billing" in got[0].reason and "transferred to agent bob" in got[1].reason
    assert got[0].agent_id == "ann" and got[0].team == "first_line"

    await router.escalate("t4", "angry customer")
    escalated = await anext(watch)
    assert (escalated.conversation_id, escalated.withdrawn) == ("t4", True)
    assert "escalated to priority" in escalated.reason and "angry customer" in escalated.reason

    assert (await route(router, "t5", mid="x:t5")).agent_id == "ann"
    assert (await anext(watch)).conversation_id == "t5"
    await router.set_presence("ann", "offline")
    clock.advance(router.policy.presence.offline_grace_seconds + 1)
    await router.tick()
    requeued = await anext(watch)
    assert (requeued.conversation_id, requeued.withdrawn) == ("t5", True)
    assert "offline for more than 120s" in requeued.reason
    await watch.aclose()
    # bob's feed told him of t4 leaving; declining and resolving are his own acts and add nothing.
    await router.resolve("t2", "bob")
    await router.decline("bob", "t3")
    withdrawn = [a for a in await feed_of(router, "bob") if a.withdrawn]
    assert [(a.conversation_id, a.reason) for a in withdrawn] == [
        ("t4", "transferred from first_line; transferred to agent ann")
    ]


async def test_a_decline_frees_room_for_the_conversation_held_for_that_agent(router: Router, redis):
    await handled_by_ann(router)
    assert (await route(router, "busy", mid="x:busy")).agent_id == "ann"
    assert (await route(router, "c1", mid="x:c1:2")).action == QUEUED
    await router.decline("ann", "busy", "not mine")
    assert await redis.smembers(router.k.active("ann")) == {b"c1"}
    assert await redis.zscore(router.k.queue("first_line"), "busy") is not None  # not handed back to ann
