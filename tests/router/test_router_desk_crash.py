"""Desk actions cut short by a dying router: decline, transfer (to a team, to an agent), escalate and resolve
killed between taking the conversation off its agent and writing its new state. A retried call finishes the
job once; with no retry, the loop finishes it after `claim_idle_ms`. Either way the agent's capacity and the
conversation's state agree, and each event is written once."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest
from router_testkit import events_of, make_item

from parley.router import desk as desk_module
from parley.router.common import RESERVING
from parley.router.core import Router
from parley.router.keys import RouterKeys
from parley.router.merges import MergeDeferred, Merges
from parley.rpc import Aborted, FailedPrecondition
from parley.store import Keys, Redis
from parley.v1 import common_pb2


class Crash(Exception):
    """The router dies here."""


async def die(*args, **kwargs):
    raise Crash("router killed")


def die_now(*args, **kwargs):
    raise Crash("router killed")


Action = Callable[[Router], Awaitable[object]]

ACTIONS: dict[str, Action] = {
    "resolve": lambda router: router.resolve("c1", "ann"),
    "decline": lambda router: router.decline("ann", "c1", "not my area"),
    "transfer_team": lambda router: router.transfer("c1", to_team="travel", reason="flight"),
    "transfer_agent": lambda router: router.transfer("c1", to_agent_id="bob", reason="knows it"),
    "escalate": lambda router: router.escalate("c1", "asked for a manager"),
}
EVENT = {
    "resolve": "conversation.resolved",
    "decline": "conversation.declined",
    "transfer_team": "conversation.transferred",
    "transfer_agent": "conversation.assigned",
    "escalate": "conversation.escalated",
}


async def assigned_to_ann(router: Router) -> None:
    await router.route([make_item("c1", "x:c1", "complaint", topic="billing")])
    await router.set_presence("ann", "online", ["billing"], capacity=1)
    await router.set_presence("bob", "online", ["account_access"], capacity=1)  # no queue of his gets c1 back


async def crash_between_steps(router: Router, monkeypatch, action: str) -> None:
    """The action runs until the conversation has left ann, then its router dies before the new state."""
    with monkeypatch.context() as patch:
        if action == "transfer_agent":
            patch.setattr(router.assignments, "assign", die)
        else:
            patch.setattr(desk_module, "add_to_pipeline", die_now)
        with pytest.raises(Crash):
            await ACTIONS[action](router)
    assert "c1" not in {m.decode() for m in await router.redis.smembers(router.k.active("ann"))}


async def assert_finished_once(router: Router, redis: Redis, keys: Keys, action: str) -> None:
    k = RouterKeys(keys)
    state = {f.decode(): v.decode() for f, v in (await redis.hgetall(k.state("c1"))).items()}
    ann = {m.decode() for m in await redis.smembers(k.active("ann"))}
    bob = {m.decode() for m in await redis.smembers(k.active("bob"))}
    assert ann == set() and not [m for m in bob if m.startswith(RESERVING)]
    expected = {
        "resolve": ("resolved", "", None),
        "decline": ("queued", "billing", "billing"),
        "transfer_team": ("queued", "travel", "travel"),
        "transfer_agent": ("assigned", "billing", None),
        "escalate": ("queued", "priority", "priority"),
    }[action]
    assert (state["state"], state["team"] if expected[1] else "") == expected[:2]
    if expected[2]:
        assert await redis.zscore(k.queue(expected[2]), "c1") is not None
    if action == "transfer_agent":
        assert state["agent"] == "bob" and bob == {"c1"}
    else:
        assert state["agent"] == "" and bob == set()
    written = [
        e
        for e in await events_of(redis, keys, EVENT[action])
        if action != "transfer_agent" or e["attrs"]["agent_id"] == "bob"
    ]
    assert len(written) == 1
    assert not [name for name in state if name.startswith("leaving")]
    assert await redis.zcard(k.leaving()) == 0


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_a_retried_desk_action_finishes_what_a_dead_router_started(
    router: Router, redis, keys, monkeypatch, action
):
    await assigned_to_ann(router)
    assert router.policy.escalation_target("billing", "billing").name == "priority"
    await crash_between_steps(router, monkeypatch, action)
    await ACTIONS[action](router)  # the caller retries: the job is finished, not refused
    await assert_finished_once(router, redis, keys, action)
    if action == "resolve":
        await ACTIONS[action](router)  # and a further retry changes nothing
        await assert_finished_once(router, redis, keys, action)


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_the_loop_finishes_a_desk_action_nobody_retried(
    router: Router, redis, keys, clock, monkeypatch, action
):
    await assigned_to_ann(router)
    await crash_between_steps(router, monkeypatch, action)
    assert (await router.tick()).get("desk_finished", 0) == 0  # within the lease its router may be alive
    assert await redis.hget(router.k.state("c1"), "agent") == b"ann"
    clock.advance(router.settings.claim_idle_ms / 1000)
    tick = await router.tick()
    await assert_finished_once(router, redis, keys, action)
    assert tick["desk_finished"] == 1
    assert (await router.tick())["desk_finished"] == 0


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_a_stalled_desk_action_the_loop_finished_writes_nothing_twice(
    router: Router, redis, keys, clock, monkeypatch, action
):
    """The call is alive but stalls, after the conversation left ann, for longer than `claim_idle_ms`: the
    loop finishes the action, and when the stalled call goes on, its writes outside the conversation's own
    record (the event, the audit entry, the handled time) are not made a second time."""
    await assigned_to_ann(router)
    let_go, stalled, resume = router.desk._let_go, asyncio.Event(), asyncio.Event()

    async def stall(*args, **kwargs):
        await let_go(*args, **kwargs)
        stalled.set()
        await resume.wait()

    monkeypatch.setattr(router.desk, "_let_go", stall)
    call = asyncio.create_task(ACTIONS[action](router))
    await stalled.wait()
    monkeypatch.undo()
    clock.advance(router.settings.claim_idle_ms / 1000)
    assert (await router.tick())["desk_finished"] == 1
    resume.set()
    with contextlib.suppress(FailedPrecondition):
        await call
    await assert_finished_once(router, redis, keys, action)
    audit = await redis.hkeys(router.k.audit("c1"))
    assignments = [f for f in audit if f.startswith(b"assign:")]
    desk_entries = [f for f in audit if not f.startswith((b"route:", b"assign:"))]
    assert len(assignments) == (2 if action == "transfer_agent" else 1), audit  # ann's, then bob's
    assert len(desk_entries) == (0 if action in ("resolve", "transfer_agent") else 1), audit
    if action == "transfer_agent":
        feed = await redis.xrange(router.k.feed("bob"))
        assert len(feed) == 1  # bob's watcher is told of the transfer once
    if action == "resolve":
        assert await redis.hget(router.k.handled("billing"), "count") == b"1"


async def test_a_route_waits_for_a_desk_action_and_decides_against_what_it_leaves(
    router: Router, redis, keys, clock, monkeypatch
):
    await assigned_to_ann(router)
    await crash_between_steps(router, monkeypatch, "resolve")
    late = make_item("c1", "x:c1:late", "complaint", topic="billing")
    with pytest.raises(Aborted):  # not appended to ann, who is letting it go: the pipeline retries it
        await router.route([late])
    assert await redis.get(router.k.decision("c1", "x:c1:late")) is None
    clock.advance(router.settings.claim_idle_ms / 1000)
    await router.tick()  # the dead router's resolve is finished

    [decision] = await router.route([late])

    # A resolved conversation is routed anew (ann's freed capacity takes it), not appended to what it was.
    assert (decision.action, decision.agent_id) == (common_pb2.ROUTE_ACTION_ASSIGNED, "ann")
    assert len(await events_of(redis, keys, "conversation.resolved")) == 1


async def test_an_offline_requeue_cut_short_is_finished_by_the_loop(
    router: Router, redis, keys, clock, monkeypatch
):
    await assigned_to_ann(router)
    await router.set_presence("ann", "offline")
    clock.advance(router.policy.presence.offline_grace_seconds + 1)
    with monkeypatch.context() as patch:
        patch.setattr(desk_module, "add_to_pipeline", die_now)  # dies after c1 left ann, before its queue
        with pytest.raises(Crash):
            await router.tick()
    assert await redis.smembers(router.k.active("ann")) == set()
    clock.advance(router.settings.claim_idle_ms / 1000)

    assert (await router.tick())["desk_finished"] == 1

    state = {f.decode(): v.decode() for f, v in (await redis.hgetall(router.k.state("c1"))).items()}
    assert (state["state"], state["team"], state["agent"]) == ("queued", "billing", "")
    assert await redis.zscore(router.k.queue("billing"), "c1") is not None
    [event] = await events_of(redis, keys, "conversation.requeued")
    assert event["attrs"]["agent_id"] == "ann"
    assert (await router.tick())["requeued_offline"] == 0


def fence_then_die(merges: Merges) -> None:
    """The merge fences the merged conversation, then its follower dies."""
    fence = merges._fence

    async def fenced(*args, **kwargs):
        await fence(*args, **kwargs)
        raise Crash("merges follower killed")

    merges._fence = fenced  # type: ignore[method-assign]


async def test_a_merge_waits_for_a_desk_action_cut_short(router: Router, redis, keys, monkeypatch):
    await assigned_to_ann(router)
    await router.route([make_item("parent", "x:parent", "complaint", topic="billing")])  # waits: ann is full
    await crash_between_steps(router, monkeypatch, "resolve")
    with pytest.raises(MergeDeferred):  # the resolve's mark holds the merge back
        await Merges(router).apply("c1", "parent")
    assert b"merging_into" not in await redis.hkeys(router.k.state("c1"))
    await router.resolve("c1", "ann")  # finished: ann's freed capacity takes the waiting parent
    outcome = await Merges(router).apply("c1", "parent")
    assert outcome.action == "none"
    assert await redis.smembers(router.k.active("ann")) == {b"parent"}
    assert len(await events_of(redis, keys, "conversation.resolved")) == 1


async def test_a_transfer_racing_a_merge_fence_leaves_the_conversation_with_its_agent(
    router: Router, redis, keys, monkeypatch
):
    await assigned_to_ann(router)
    await router.route([make_item("parent", "x:parent", "complaint", topic="billing")])
    reserve = router.assignments.reserve_capacity

    async def merge_fences_meanwhile(agent_id: str) -> str:
        # The transfer has read c1's state; a merge of c1 fences it before the transfer moves anything.
        racing = Merges(router)
        fence_then_die(racing)
        with pytest.raises(Crash):
            await racing.apply("c1", "parent")
        return await reserve(agent_id)

    monkeypatch.setattr(router.assignments, "reserve_capacity", merge_fences_meanwhile)
    with pytest.raises(FailedPrecondition, match="merg"):
        await router.transfer("c1", to_agent_id="bob")
    monkeypatch.undo()
    # Refused before anything moved: c1 is still ann's, and bob's reserved capacity is given back.
    assert await redis.smembers(router.k.active("ann")) == {b"c1"}
    assert await redis.smembers(router.k.active("bob")) == set()
    outcome = await Merges(router).apply("c1", "parent")  # the merge finishes: ann gets the parent instead
    assert outcome.action == "moved_to_agent"
    assert await redis.smembers(router.k.active("ann")) == {b"parent"}
