"""The agent desk: presence, claims (priority, capacity, races), decline, transfer, escalate, resolve,
queue status and staffing."""

import asyncio

import pytest
from router_testkit import events_of, make_item

from parley.clock import from_timestamp
from parley.router import erlang
from parley.router.core import Router
from parley.router.keys import RouterKeys
from parley.rpc import FailedPrecondition, InvalidArgument, NotFound
from parley.store import connect
from parley.v1 import common_pb2


async def queue(router: Router, cid: str, intent: str = "complaint", **kwargs) -> common_pb2.RoutingDecision:
    (decision,) = await router.route([make_item(cid, f"x:{cid}", intent, **kwargs)])
    return decision


def test_erlang_c_worked_example():
    # 100 calls in 30 minutes, 180 s handling, 80% answered within 20 s: 10 Erlangs, 14 agents (88.8%).
    agents, level = erlang.agents_needed(100 / 1800, 180, 20, 0.8)
    assert agents == 14
    assert level == pytest.approx(0.888, abs=0.001)
    assert erlang.erlang_c(14, 10.0) == pytest.approx(0.174, abs=0.001)
    assert erlang.service_level(13, 100 / 1800, 180, 20) < 0.8
    assert erlang.agents_needed(0, 180, 20, 0.8) == (0, 1.0)


def test_erlang_c_more_worked_examples():
    # The step-by-step Erlang C example often reproduced (360 contacts a half hour, 4 min handling, 55 agents,
    # 15 s target): 48 Erlangs, 87.3% occupancy, a 23.87% chance to wait, 8.2 s mean answer, 84.6% in 15 s.
    assert erlang.erlang_c(55, 48.0) == pytest.approx(0.2387, abs=0.0001)
    assert erlang.erlang_c(55, 48.0) * 240 / (55 - 48) == pytest.approx(8.18, abs=0.01)
    assert erlang.service_level(55, 360 / 1800, 240, 15) == pytest.approx(0.846, abs=0.001)
    # Closed forms from queueing textbooks: one server waits with probability equal to its load; two servers
    # at 1 Erlang wait with probability 2r^2 / (1 + r) = 1/3, r = 0.5.
    assert erlang.erlang_c(1, 0.7) == pytest.approx(0.7)
    assert erlang.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    # An overloaded queue always waits; staffing for it starts above the load.
    assert erlang.erlang_c(10, 10.0) == 1.0 and erlang.agents_needed(10 / 180, 180, 20, 0.8)[0] > 10


async def test_claim_order_and_capacity(router: Router, clock):
    await queue(router, "low", "complaint", topic="weather")
    clock.advance(10)
    await queue(router, "first_equal", "complaint", topic="weather", public=True)
    clock.advance(10)
    await queue(router, "second_equal", "complaint", topic="weather", public=True)
    await queue(router, "urgent_elsewhere", "urgent")
    await router.set_presence("ann", "away", ["first_line", "priority"], capacity=3)
    with pytest.raises(FailedPrecondition):
        await router.claim("ann")
    handed = await router.set_presence("ann", "online")
    assert [a.conversation_id for a in handed] == ["urgent_elsewhere", "first_equal", "second_equal"]
    with pytest.raises(FailedPrecondition, match="capacity"):
        await router.claim("ann")
    await router.set_presence("bob", "online", ["first_line"], capacity=1)
    # bob's set_presence already took the last one.
    assert (await router.claim("bob", "low")).conversation_id == "low"  # a retried claim returns it again
    with pytest.raises(NotFound):
        await router.claim("nobody")


async def test_claim_a_given_conversation(router: Router, redis, keys):
    await queue(router, "c1", "complaint", topic="billing")
    await router.set_presence("ann", "online", ["first_line"], capacity=2)
    assignment = await router.claim("ann", "c1")
    assert (assignment.conversation_id, assignment.team, assignment.agent_id) == ("c1", "billing", "ann")
    assert await redis.zcard(RouterKeys(keys).queue("billing")) == 0
    await router.set_presence("bob", "online", ["billing"], capacity=2)
    with pytest.raises(FailedPrecondition):
        await router.claim("bob", "c1")
    with pytest.raises(NotFound):
        await router.claim("bob", "never-routed")
    (assigned,) = await events_of(redis, keys, "conversation.assigned")
    assert assigned["conversation_id"] == "c1" and assigned["attrs"]["agent_id"] == "ann"


async def test_racing_claims_never_give_one_conversation_to_two_agents(settings, redis, keys, clock):
    setup = Router(settings, redis, keys, clock)
    agents = [f"agent{i}" for i in range(12)]
    await setup.route([make_item(f"c{i}", f"x:{i}", "complaint", topic="billing") for i in range(30)])
    await setup.route([make_item(f"f{i}", f"x:f{i}", "praise") for i in range(10)])
    clients = [connect(settings) for _ in range(6)]

    async def claim(router: Router, agent: str):
        try:
            return await router.claim(agent)
        except FailedPrecondition:  # at capacity
            return None

    try:
        routers = [Router(settings, c, keys, clock) for c in clients]
        # Agents coming online each take the best waiting conversations, racing each other and more claims.
        came_online = await asyncio.gather(
            *(
                routers[n % 6].set_presence(a, "online", ["billing", "first_line"], 5)
                for n, a in enumerate(agents)
            )
        )
        results = [a for handed in came_online for a in handed]
        results += await asyncio.gather(*(claim(routers[n % 6], agents[n % 12]) for n in range(60)))
        # Many agents racing for one given conversation: exactly one gets it.
        for agent in agents[:6]:
            await setup.set_presence(agent, "away", ["priority"], capacity=10)
        await setup.route([make_item("solo", "x:solo", "urgent")])
        for agent in agents[:6]:
            await redis.hset(RouterKeys(keys).agent(agent), "presence", "online")
        solo = await asyncio.gather(
            *(routers[n].claim(agents[n], "solo") for n in range(6)), return_exceptions=True
        )
    finally:
        for c in clients:
            await c.aclose()
    claimed = [a.conversation_id for a in results if a is not None]
    assert len(claimed) == len(set(claimed)) == 40
    k = RouterKeys(keys)
    owners: dict[str, str] = {}
    for agent in agents:
        members = [m.decode() for m in await redis.smembers(k.active(agent))]
        assert len(members) <= (10 if agent in agents[:6] else 5)
        for cid in members:
            assert cid not in owners
            owners[cid] = agent
    assert set(owners) == {*claimed, "solo"}
    assert sum(1 for r in solo if not isinstance(r, BaseException)) == 1
    assert all(isinstance(r, FailedPrecondition) for r in solo if isinstance(r, BaseException))


async def test_decline_returns_the_conversation_to_its_queue(router: Router, redis, keys, clock):
    routed = await queue(router, "c1", "complaint", topic="billing")
    await router.set_presence("ann", "online", ["billing"], capacity=1)
    clock.advance(30)
    assert await router.decline("ann", "c1", "not my area") == "billing"
    k = RouterKeys(keys)
    assert await redis.zscore(k.queue("billing"), "c1") == routed.priority
    assert await redis.scard(k.active("ann")) == 0
    with pytest.raises(FailedPrecondition):
        await router.decline("ann", "c1")
    (status,) = [q for q in await router.list_queues() if q.team == "billing"]
    assert status.oldest_wait_seconds == 30  # it kept its place in time


async def test_transfer_to_a_team_and_to_an_agent(router: Router, redis, keys):
    await queue(router, "c1", "complaint", topic="weather")
    moved = await router.transfer("c1", to_team="travel", reason="flight question")
    assert (moved.action, moved.team, moved.tier, moved.rule) == (
        common_pb2.ROUTE_ACTION_QUEUED,
        "travel",
        "specialist",
        "transfer",
    )
    k = RouterKeys(keys)
    assert await redis.zcard(k.queue("first_line")) == 0 and await redis.zcard(k.queue("travel")) == 1
    await router.set_presence("tom", "online", ["travel"], capacity=1)  # takes it
    await router.set_presence("ann", "online", ["billing"], capacity=1)
    given = await router.transfer("c1", to_agent_id="ann")
    assert (given.action, given.agent_id) == (common_pb2.ROUTE_ACTION_ASSIGNED, "ann")
    assert await redis.smembers(k.active("tom")) == set()
    assert await redis.smembers(k.active("ann")) == {b"c1"}
    with pytest.raises(InvalidArgument):
        await router.transfer("c1", to_team="nowhere")
    with pytest.raises(FailedPrecondition, match="capacity"):
        await queue(router, "c2", "complaint", topic="billing") and await router.transfer(
            "c2", to_agent_id="ann"
        )


async def test_escalate_moves_up_a_tier_with_a_higher_priority(router: Router, redis, keys):
    start = await queue(router, "c1", "complaint", topic="weather")
    up = await router.escalate("c1", "customer asked for a manager")
    assert (up.team, up.tier, up.rule) == ("priority", "supervisor", "escalate")
    assert up.priority == start.priority + router.policy.priority.escalation
    k = RouterKeys(keys)
    assert await redis.zcard(k.queue("first_line")) == 0
    assert await redis.zscore(k.queue("priority"), "c1") == up.priority
    with pytest.raises(FailedPrecondition, match="top tier"):
        await router.escalate("c1")
    (event,) = await events_of(redis, keys, "conversation.escalated")
    assert event["attrs"]["team"] == "priority"


async def test_resolve_frees_capacity_and_is_idempotent(router: Router, redis, keys, clock):
    await queue(router, "c1", "complaint", topic="billing")
    await queue(router, "c2", "complaint", topic="billing")
    await router.set_presence("ann", "online", ["billing"], capacity=1)
    clock.advance(240)
    resolved_at = await router.resolve("c1", "ann")
    clock.advance(5)
    assert await router.resolve("c1", "ann") == resolved_at
    assert len(await events_of(redis, keys, "conversation.resolved")) == 1
    # The freed capacity took the waiting conversation at once.
    assert await redis.smembers(RouterKeys(keys).active("ann")) == {b"c2"}
    with pytest.raises(FailedPrecondition, match="capacity"):
        await router.claim("ann")
    with pytest.raises(FailedPrecondition):
        await router.resolve("c2", "bob")
    (staff,) = [q for q in await router.get_staffing(0.8, 20) if q.team == "billing"]
    assert staff.mean_handling_seconds == 240


async def test_list_queues_reports_depth_wait_risk_and_agents(router: Router, clock):
    await queue(router, "u1", "urgent")  # SLA 900 s
    clock.advance(100)
    await queue(router, "u2", "urgent")
    await router.set_presence("sue", "away", ["priority"], capacity=0)
    await router.set_presence("max", "online", ["billing"], capacity=1)
    clock.advance(500)  # u1 is due in 300 s: at risk; u2 in 400 s
    status = {q.team: q for q in await router.list_queues()}
    assert status["priority"].depth == 2
    assert status["priority"].oldest_wait_seconds == 600
    assert status["priority"].sla_at_risk == 1
    assert status["priority"].agents_online == 0
    assert status["billing"].agents_online == 1 and status["billing"].depth == 0


async def test_staffing_uses_observed_arrivals(router: Router, clock):
    await router.route([make_item(f"c{i}", f"x:{i}", "complaint", topic="orders") for i in range(100)])
    clock.advance(10)
    (staff,) = [q for q in await router.get_staffing(0.8, 20) if q.team == "orders_delivery"]
    assert staff.arrivals_per_hour == 100
    assert staff.mean_handling_seconds == 300  # the policy default until something is resolved
    expected, level = erlang.agents_needed(100 / 3600, 300, 20, 0.8)
    assert staff.agents_needed == expected and staff.expected_service_level == pytest.approx(level)
    clock.advance(3600)
    (later,) = [q for q in await router.get_staffing(0.8, 20) if q.team == "orders_delivery"]
    assert later.arrivals_per_hour == 0 and later.agents_needed == 0
    with pytest.raises(InvalidArgument):
        await router.get_staffing(1.0, 20)


async def test_watch_yields_current_then_new_assignments(router: Router):
    await queue(router, "c1", "complaint", topic="billing")
    await queue(router, "c2", "complaint", topic="billing")
    await router.set_presence("ann", "online", ["billing"], capacity=1)
    feed = router.watch("ann", poll_ms=50)
    first = await anext(feed)
    assert first.conversation_id in ("c1", "c2") and "billing" in first.reason
    nxt = asyncio.ensure_future(anext(feed))
    await router.resolve(first.conversation_id, "ann")  # frees capacity: the other one is handed over
    second = await nxt
    assert second.agent_id == "ann" and second.conversation_id != first.conversation_id
    await feed.aclose()
    assert from_timestamp(first.sla_due_at) > 0


async def test_list_queues_reports_breaches_presence_and_occupancy(router: Router, clock):
    await queue(router, "u1", "urgent")  # SLA 900 s
    clock.advance(100)
    await queue(router, "u2", "urgent")
    await queue(router, "u3", "urgent")
    await router.set_presence("sue", "away", ["priority"], capacity=2)
    await router.set_presence("kim", "online", ["priority"], capacity=2)  # takes u1 and u2
    await router.set_presence("lou", "online", ["priority", "billing"], capacity=3)  # takes u3
    clock.advance(850)  # u1 would be due 50 s ago, but it is assigned: only waiting ones count
    status = {q.team: q for q in await router.list_queues()}
    priority = status["priority"]
    assert priority.depth == 0 and priority.sla_breached == 0
    assert priority.agents_online == 2 and priority.agents_away == 1
    assert priority.agents_available == 1  # kim is full, lou has room
    assert priority.occupancy == pytest.approx(3 / 5)
    assert status["billing"].agents_available == 1 and status["billing"].occupancy == pytest.approx(1 / 3)
    await queue(router, "u4", "urgent")
    await queue(router, "u5", "urgent")
    await queue(router, "u6", "urgent")  # lou is full now: u6 waits
    clock.advance(901)
    priority = {q.team: q for q in await router.list_queues()}["priority"]
    assert priority.depth == 1 and priority.sla_breached == 1 and priority.agents_available == 0
