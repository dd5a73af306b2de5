"""Assignment on arrival (skills, load, stickiness), the audit, and the background loop on a manual clock:
ageing, SLA escalation, presence grace, backlog draining, recovery of half-done claims, policy reload."""

import asyncio
import os
from pathlib import Path

import pytest
from router_testkit import events_of, make_item

from parley import lua
from parley.router.core import Router
from parley.router.keys import RouterKeys
from parley.router.policy import DEFAULT_POLICY_FILE, PolicyError, load_policy
from parley.rpc import FailedPrecondition, InvalidArgument, NotFound
from parley.store import connect
from parley.v1 import common_pb2, router_pb2

ASSIGNED = common_pb2.ROUTE_ACTION_ASSIGNED
QUEUED = common_pb2.ROUTE_ACTION_QUEUED


async def route(router: Router, cid: str, intent: str = "complaint", mid: str = "", **kwargs):
    (decision,) = await router.route([make_item(cid, mid or f"x:{cid}", intent, **kwargs)])
    return decision


async def test_arrival_goes_to_the_least_loaded_skilled_agent_and_the_audit_says_why(
    router: Router, redis, keys
):
    await router.set_presence("ann", "online", ["billing"], capacity=3)
    await router.set_presence("bob", "online", ["billing"], capacity=3, skills=["refunds", "es"])
    skilled = await route(router, "c1", topic="refunds")
    assert (skilled.action, skilled.agent_id, skilled.team) == (ASSIGNED, "bob", "billing")
    plain = await route(router, "c2", topic="billing")  # no skill applies: the lighter load wins
    assert plain.agent_id == "ann"
    again = await route(router, "c2", topic="billing")  # a retried Route returns the stored decision
    assert again == plain

    audit = await router.get_audit("c1")
    assert [e.kind for e in audit] == ["route", "assign"]
    routed, assigned = audit
    assert routed.rule == "complaint_by_topic" and routed.priority_parts["intent"] == 50
    by_agent = {c.agent_id: c for c in assigned.candidates}
    assert by_agent["bob"].skill_match and by_agent["bob"].eligible and "chosen" in by_agent["bob"].note
    assert by_agent["ann"].eligible and not by_agent["ann"].skill_match and by_agent["ann"].note == "load 0/3"
    assert "matching skill" in assigned.why
    (event, _) = await events_of(redis, keys, "conversation.assigned")
    assert event["attrs"]["skill_match"] is True and event["attrs"]["candidates"] == 2
    # A language is a skill too.
    spanish = make_item("c3", "x:c3", "complaint", topic="billing")
    spanish.triage.language = "es"
    assert (await router.route([spanish]))[0].agent_id == "bob"
    with pytest.raises(NotFound):
        await router.get_audit("never-routed")


async def test_full_agents_mean_the_conversation_waits(router: Router):
    await router.set_presence("ann", "online", ["first_line"], capacity=1)
    assert (await route(router, "c1", "praise")).action == ASSIGNED
    waiting = await route(router, "c2", "praise")
    assert (waiting.action, waiting.agent_id) == (QUEUED, "")


async def test_a_reopened_conversation_returns_to_its_agent(router: Router):
    await router.set_presence("ann", "online", ["first_line"], capacity=5)
    first = await route(router, "c1", "praise", mid="x:1")
    assert first.agent_id == "ann"
    await router.resolve("c1", "ann")
    await router.set_presence("bob", "online", ["first_line"], capacity=5)
    await route(router, "other", "praise")  # a tie at 0/5, broken by name: ann now carries more than bob
    reopened = await route(router, "c1", "complaint", mid="x:2", topic="weather")
    assert reopened.agent_id == "ann" and "handled this conversation before" in reopened.reason
    # Not available: the conversation waits for ann (see test_router_sticky), unless holds are off.
    await router.resolve("c1", "ann")
    await router.set_presence("ann", "away")
    router.policy = router.policy.model_copy(
        update={"assignment": router.policy.assignment.model_copy(update={"sticky_hold_seconds": 0})}
    )
    assert (await route(router, "c1", "praise", mid="x:3")).agent_id == "bob"


async def test_ageing_lifts_a_long_waiting_low_priority_conversation(router: Router, redis, keys, clock):
    praise = await route(router, "old_praise", "praise")  # priority 5, SLA 24 h
    clock.advance(40 * 60)
    question = await route(router, "new_question", "question")  # priority 30
    assert praise.priority < question.priority
    k = RouterKeys(keys)
    assert await router.tick() == {
        "policy_reloaded": 0,
        "desk_finished": 0,
        "claims_recovered": 0,
        "reservations_released": 0,
        "requeued_offline": 0,
        "sla_at_risk": 0,
        "holds_released": 0,
        "aged": 2,
        "drained": 0,
    }
    # 40 min at 0.5/min caps at 20, plus SLA pressure 20 * 2400/86400.
    assert await redis.zscore(k.queue("first_line"), "old_praise") == pytest.approx(
        5 + 20 + 20 * 2400 / 86400
    )
    assert await redis.zscore(k.queue("first_line"), "new_question") == 30
    clock.advance(20 * 60)
    await route(router, "fresh_question", "question")
    await router.tick()
    handed = await router.set_presence("ann", "online", ["first_line"], capacity=2)
    # Without ageing both questions (30) would go before the praise (5); after an hour it has 5 + 30 + a
    # little SLA pressure, more than a fresh question, less than the question waiting for 20 minutes.
    assert [a.conversation_id for a in handed] == ["new_question", "old_praise"]


async def test_a_long_queue_is_aged_a_slice_per_tick_until_every_conversation_is_rescored(
    settings, redis, keys, clock
):
    router = Router(settings.model_copy(update={"router_ageing_batch": 3}), redis, keys, clock)
    for n in range(7):
        await route(router, f"praise{n}", "praise")  # priority 5 each, arriving one minute apart
        clock.advance(60)
    k = RouterKeys(keys)

    async def scores() -> list[float]:
        return [await redis.zscore(k.queue("first_line"), f"praise{n}") for n in range(7)]

    assert await scores() == [5] * 7
    aged = [(await router.tick())["aged"] for _ in range(4)]
    assert aged == [3, 3, 1, 3]  # three slices cover the seven, then the next round starts at the oldest
    # Each slice rescored its conversations at the time of its own tick (the clock stood still here).
    waited = [7 - n for n in range(7)]
    assert await scores() == pytest.approx([5 + 0.5 * m + 20 * m * 60 / 86400 for m in waited])


async def test_a_slice_longer_than_one_lua_call_takes_rescores_every_conversation_in_it(
    settings, redis, keys, clock
):
    # age.lua reads and writes a thousand conversations per call: 2,300 cross two of those boundaries.
    router = Router(settings.model_copy(update={"router_ageing_batch": 2500}), redis, keys, clock)
    waiting = 2300
    await router.route([make_item(f"p{n}", f"x:p{n}", "praise") for n in range(waiting)])
    clock.advance(10 * 60)
    assert (await router.tick())["aged"] == waiting
    k = RouterKeys(keys)
    scores = await redis.zmscore(k.queue("first_line"), [f"p{n}" for n in range(waiting)])
    assert scores == pytest.approx([5 + 0.5 * 10 + 20 * 600 / 86400] * waiting)


async def test_sla_about_to_breach_escalates_once_and_tells_supervisors(router: Router, redis, keys, clock):
    routed = await route(router, "c1", "complaint", topic="weather")  # first_line, SLA 3600 s
    clock.advance(3600 - router.policy.sla_at_risk_seconds - 1)
    assert (await router.tick())["sla_at_risk"] == 0
    clock.advance(2)
    assert (await router.tick())["sla_at_risk"] == 1
    state = await redis.hgetall(RouterKeys(keys).state("c1"))
    assert state[b"team"] == b"priority" and state[b"state"] == b"queued"
    assert float(state[b"sla_due"]) == pytest.approx(routed.sla_due_at.ToSeconds(), abs=1)  # SLA kept
    (risk,) = await events_of(redis, keys, "conversation.sla_at_risk")
    assert risk["attrs"]["team"] == "first_line" and risk["attrs"]["escalated_to"] == "priority"
    (escalated,) = await events_of(redis, keys, "conversation.escalated")
    assert "SLA at risk" in escalated["attrs"]["reason"]
    # The same deadline does not escalate again, even though it is still at risk in the new tier.
    clock.advance(60)
    assert (await router.tick())["sla_at_risk"] == 0
    assert [e.kind for e in await router.get_audit("c1")] == ["route", "escalated"]


async def test_offline_agent_conversations_return_after_the_grace_period(router: Router, redis, keys, clock):
    await router.set_presence("ann", "online", ["billing"], capacity=2)
    routed = await route(router, "c1", topic="billing")
    assert routed.agent_id == "ann"
    k = RouterKeys(keys)
    await router.set_presence("ann", "offline")
    clock.advance(router.policy.presence.offline_grace_seconds - 1)
    assert (await router.tick())["requeued_offline"] == 0
    assert await redis.smembers(k.active("ann")) == {b"c1"}
    # Back within the grace period: nothing moves.
    await router.set_presence("ann", "online")
    await router.set_presence("ann", "offline")
    clock.advance(router.policy.presence.offline_grace_seconds - 1)
    assert (await router.tick())["requeued_offline"] == 0
    clock.advance(2)
    assert (await router.tick())["requeued_offline"] == 1
    assert await redis.smembers(k.active("ann")) == set()
    assert await redis.zscore(k.queue("billing"), "c1") is not None
    state = await redis.hgetall(k.state("c1"))
    assert float(state[b"priority"]) == routed.priority
    assert float(state[b"sla_due"]) == routed.sla_due_at.ToSeconds()
    (requeued,) = await events_of(redis, keys, "conversation.requeued")
    assert requeued["attrs"]["agent_id"] == "ann"
    # Capacity appears: the loop drains the backlog.
    await router.set_presence("bob", "away", ["billing"], capacity=1)
    await redis.hset(k.agent("bob"), "presence", "online")  # online without set_presence's own claim
    await redis.sadd(k.online("billing"), "bob")
    assert (await router.tick())["drained"] == 1
    assert await redis.smembers(k.active("bob")) == {b"c1"}


async def test_draining_hands_out_the_best_score_first_base_priority_then_time_waited(
    router: Router, redis, keys, clock
):
    k = RouterKeys(keys)
    for cid in ("c-late", "c-early", "c-last"):  # ids that sort against arrival order
        await route(router, cid, topic="billing")
        clock.advance(5)
    await redis.zincrby(k.base("billing"), 10, "c-last")  # a higher base priority, as a rule would give
    # Someone comes online without claiming at once (as after a router restart): the loop hands out two.
    await router.set_presence("bob", "away", ["billing"], capacity=2)
    await redis.hset(k.agent("bob"), "presence", "online")
    await redis.sadd(k.online("billing"), "bob")
    assert (await router.tick())["drained"] == 2
    assert await redis.smembers(k.active("bob")) == {b"c-last", b"c-late"}


async def test_a_declined_conversation_goes_to_someone_else(router: Router, redis, keys):
    await router.set_presence("ann", "online", ["billing"], capacity=2)
    await route(router, "c1", topic="billing")
    await router.decline("ann", "c1", "not my area")
    assert (await router.tick())["drained"] == 0  # ann is the only one and she declined it
    await router.set_presence("bob", "online", ["billing"], capacity=2)
    assert await redis.smembers(RouterKeys(keys).active("bob")) == {b"c1"}


async def test_a_claim_that_died_halfway_is_put_back(router: Router, redis, keys, clock, monkeypatch):
    await route(router, "c1", topic="billing")
    k = RouterKeys(keys)
    record = router.assignments.assign

    async def die(*args, **kwargs):
        raise ConnectionError("claimer died")

    monkeypatch.setattr(router.assignments, "assign", die)
    with pytest.raises(ConnectionError):  # coming online claims c1, and dies before recording it
        await router.set_presence("bob", "online", ["billing"], capacity=1)
    monkeypatch.setattr(router.assignments, "assign", record)
    assert await redis.zscore(k.queue("billing"), "c1") is None
    (entry,) = (await redis.hgetall(k.taking("billing"))).values()
    assert (await router.tick())["claims_recovered"] == 0  # within the lease the claimer may be alive
    clock.advance(router.settings.claim_idle_ms / 1000)
    tick = await router.tick()
    # Put back, the half-reserved capacity released, and then handed out again by the same step.
    assert (tick["claims_recovered"], tick["drained"]) == (1, 1)
    assert await redis.smembers(k.active("bob")) == {b"c1"}
    assert await redis.hlen(k.taking("billing")) == 0
    # The dead claimer waking up late cannot record its old claim.
    old_token = entry.decode().split("|")[1]
    assert await router.assignments.assign("bob", "c1", old_token, "claimed") is None
    assert await redis.smembers(k.active("bob")) == {b"c1"}
    (requeued,) = await events_of(redis, keys, "conversation.requeued")
    assert requeued["attrs"]["reason"] == "the claim was never recorded"


async def test_a_recovered_claim_that_had_been_recorded_is_completed(router: Router, redis, keys, clock):
    await route(router, "c1", topic="billing")
    await router.set_presence("ann", "away", ["billing"], capacity=1)
    await redis.hset(RouterKeys(keys).agent("ann"), "presence", "online")
    k = RouterKeys(keys)
    token = await router.assignments.reserve_capacity("ann")
    assert await router.queues.take_from("billing", "c1", "ann", token)
    # The assignment is recorded on the conversation, then the claimer dies before the agent's side.
    assign = lua.register(redis, "parley.router", "assign")
    await assign(keys=[k.state("c1")], args=[token, "state", "assigned", "agent", "ann"])
    clock.advance(router.settings.claim_idle_ms / 1000)
    assert (await router.tick())["claims_recovered"] == 0
    assert await redis.smembers(k.active("ann")) == {b"c1"}
    assert await redis.hlen(k.taking("billing")) == 0 and await redis.zcard(k.queue("billing")) == 0
    # Finished as the claimer would have: the agent's feed and the event too, once.
    assert await fed(redis, k, "ann") == [("c1", False)]
    (event,) = await events_of(redis, keys, "conversation.assigned")
    assert (event["conversation_id"], event["attrs"]["agent_id"]) == ("c1", "ann")
    assert event["attrs"]["how"] == "recovered"


async def fed(redis, k: RouterKeys, agent_id: str) -> list[tuple[str, bool]]:
    entries = await redis.xrange(k.feed(agent_id))
    return [
        (a.conversation_id, a.withdrawn)
        for a in (router_pb2.Assignment.FromString(fields[b"assignment"]) for _, fields in entries)
    ]


async def test_a_claim_journal_closes_only_after_its_assignment_counts(
    router: Router, redis, keys, clock, monkeypatch
):
    """The claimer records the assignment and dies before the agent's capacity and feed count it: its
    journal entry stays open, so the loop finishes the assignment (a journal closed first would leave the
    conversation assigned to an agent whose capacity does not count it, and whose feed never showed it)."""
    await route(router, "c1", topic="billing")
    k = RouterKeys(keys)

    async def die(*args, **kwargs):
        raise ConnectionError("claimer died")

    monkeypatch.setattr(router.assignments, "complete", die)
    with pytest.raises(ConnectionError):
        await router.set_presence("bob", "online", ["billing"], capacity=1)
    monkeypatch.undo()
    assert await redis.hget(k.state("c1"), "agent") == b"bob"  # recorded
    assert await redis.hlen(k.taking("billing")) == 1
    (token,) = await redis.smembers(k.active("bob"))
    assert token.startswith(b"reserving:")  # only the reservation counts so far
    clock.advance(router.settings.claim_idle_ms / 1000)
    assert (await router.tick())["claims_recovered"] == 0  # nothing went back to the queue
    assert await redis.smembers(k.active("bob")) == {b"c1"}
    assert await redis.hlen(k.taking("billing")) == 0
    assert await fed(redis, k, "bob") == [("c1", False)]
    assert len(await events_of(redis, keys, "conversation.assigned")) == 1
    # A second pass finds nothing to do, and writes nothing twice.
    clock.advance(router.settings.claim_idle_ms / 1000)
    await router.tick()
    assert await fed(redis, k, "bob") == [("c1", False)]
    assert len(await events_of(redis, keys, "conversation.assigned")) == 1


async def test_many_routers_and_agents_at_once_never_assign_a_conversation_twice(
    settings, redis, keys, clock
):
    setup = Router(settings, redis, keys, clock)
    agents = [f"agent{i}" for i in range(16)]
    for n, agent in enumerate(agents):
        await setup.set_presence(agent, "away", ["billing", "first_line"], capacity=2 + n % 3)
    # Eight conversations each handled by one agent and resolved; they reopen during the race and are
    # held for that agent (who is coming online, or full, at that moment).
    for n in range(8):
        await setup.set_presence(agents[n], "online")
        (first,) = await setup.route([make_item(f"sticky{n}", f"x:s{n}:1", "praise")])
        assert first.agent_id == agents[n]
        await setup.resolve(f"sticky{n}")
        await setup.set_presence(agents[n], "away")
    await setup.route([make_item(f"early{i}", f"x:e{i}", "complaint", topic="billing") for i in range(40)])
    clients = [connect(settings) for _ in range(8)]
    routers = [Router(settings, c, keys, clock) for c in clients]

    async def quietly(call):
        try:
            return await call
        except FailedPrecondition:
            return None

    try:
        work = []
        for n, agent in enumerate(agents):
            work.append(quietly(routers[n % 8].set_presence(agent, "online")))
            work.append(quietly(routers[(n + 3) % 8].claim(agent)))
        for n in range(80):
            intent, topic = ("praise", "") if n % 2 else ("complaint", "billing")
            item = make_item(f"late{n}", f"x:l{n}", intent, topic=topic)
            work.append(routers[n % 8].route([item]))
            work.append(routers[(n + 5) % 8].route([item]))  # the same message routed twice at once
        for n in range(8):
            work.append(routers[(n + 2) % 8].route([make_item(f"sticky{n}", f"x:s{n}:2", "complaint")]))
        work += [routers[n].loop.drain() for n in range(8)]
        work += [quietly(routers[n % 8].claim(agents[n], "early1")) for n in range(8)]
        await asyncio.gather(*work)
        await asyncio.gather(*(r.tick() for r in routers))
        await setup.loop.drain()  # a drain that lost a race may leave a place free: one more fills it
    finally:
        for c in clients:
            await c.aclose()

    k = RouterKeys(keys)
    owners: dict[str, str] = {}
    capacity_total = 0
    for n, agent in enumerate(agents):
        members = {m.decode() for m in await redis.smembers(k.active(agent))}
        assert not any(m.startswith("reserving:") for m in members)
        assert len(members) <= 2 + n % 3
        capacity_total += 2 + n % 3
        for cid in members:
            assert cid not in owners, f"{cid} is with {owners[cid]} and {agent}"
            owners[cid] = agent
            state = await redis.hgetall(k.state(cid))
            assert (state[b"state"], state[b"agent"]) == (b"assigned", agent.encode())
    waiting = {
        m.decode() for team in ("billing", "first_line") for m in await redis.zrange(k.queue(team), 0, -1)
    }
    assert not waiting & set(owners)
    assert len(owners) == capacity_total  # the backlog filled every free place
    assert len(owners) + len(waiting) == 128  # and nothing was lost
    for n in range(8):  # a reopened one is with its agent, or still held for them: never with another
        cid = f"sticky{n}"
        if cid in owners:
            assert owners[cid] == agents[n]
        else:
            assert (await redis.hget(k.held("first_line"), cid)).decode().startswith(f"{agents[n]}|")
    assert await redis.hlen(k.taking("billing")) == await redis.hlen(k.taking("first_line")) == 0
    assigned_events = await events_of(redis, keys, "conversation.assigned")
    assert len(assigned_events) == len(owners) + 8  # and the eight first assignments of the setup


async def test_policy_reload_on_change_and_a_bad_file_keeps_the_old_one(
    settings, redis, keys, clock, tmp_path
):
    path = tmp_path / "policy.yaml"
    text = DEFAULT_POLICY_FILE.read_text()
    path.write_text(text)
    router = Router(settings.model_copy(update={"policy_file": path}), redis, keys, clock)
    assert router.reload_policy() is False
    path.write_text(text.replace("min_confidence: 0.6", "min_confidence: 0.9"))
    bump = path.stat().st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(bump, bump))
    assert (await router.tick())["policy_reloaded"] == 1
    assert router.policy.bot.min_confidence == 0.9
    path.write_text(text.replace("team: priority", "team: nobody", 1))
    os.utime(path, ns=(bump + 10**9, bump + 10**9))
    assert (await router.tick())["policy_reloaded"] == 0  # refused
    assert router.policy.bot.min_confidence == 0.9
    with pytest.raises(InvalidArgument) as error:
        router.reload_policy(force=True)
    ((field, description),) = error.value.violations
    line = 1 + text.splitlines().index("    then: {action: queue, team: priority}")
    assert field == "rules[0].then.team" and description.startswith(f"line {line}:")


def test_policy_errors_give_the_yaml_line(tmp_path: Path):
    path = tmp_path / "policy.yaml"
    path.write_text(DEFAULT_POLICY_FILE.read_text().replace("min_confidence: 0.6", "min_confidence: 6"))
    with pytest.raises(PolicyError) as error:
        load_policy(path)
    line = 1 + DEFAULT_POLICY_FILE.read_text().splitlines().index("  min_confidence: 0.6")
    assert error.value.problems == [
        ("bot.min_confidence", f"line {line}: Input should be less than or equal to 1")
    ]


async def test_conditions_on_language_customer_tier_and_urgency_reasons(
    settings, redis, keys, clock, tmp_path
):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "tiers: [first_line, supervisor]\ndefault_team: desk\n"
        "teams: [{name: desk, tier: first_line}, {name: spanish, tier: first_line},\n"
        "  {name: vip, tier: supervisor}]\n"
        "rules:\n"
        "  - {name: safety, when: {urgency_reasons: [safety]}, then: {action: queue, team: vip}}\n"
        "  - {name: vip, when: {customer_tiers: [vip, gold]}, then: {action: queue, team: vip}}\n"
        "  - {name: es, when: {languages: [es]}, then: {action: queue, team: spanish}}\n"
        "  - {name: standard, when: {customer_tiers: [standard]}, then: {action: queue, team: desk}}\n"
        "sla: [{name: p4, min_priority: 0, first_response_seconds: 3600}]\nbot: {after_reply_team: desk}\n"
    )
    router = Router(settings.model_copy(update={"policy_file": path}), redis, keys, clock)
    items = [
        make_item("a", "x:a", "complaint", customer_tier="gold"),
        make_item("b", "x:b", "complaint"),
        make_item("c", "x:c", "complaint", customer_tier="standard"),
        make_item("d", "x:d", "complaint", customer_tier="silver"),
        make_item("e", "x:e", "complaint"),
        make_item("f", "x:f", "complaint"),
    ]
    items[1].triage.language = "es"
    items[4].triage.language = "es"
    items[4].customer_tier = "vip"
    items[5].triage.urgency_reasons.append("safety")
    decisions = await router.route(items)
    assert [(d.team, d.rule) for d in decisions] == [
        ("vip", "vip"),
        ("spanish", "es"),
        ("desk", "standard"),
        ("", ""),  # silver matches no rule
        ("vip", "vip"),
        ("vip", "safety"),
    ]
