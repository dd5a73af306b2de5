"""Conversation merges folded into the router's state: a reply routed in a conversation of its own joins its
parent's, so the issue ends up in one queue entry or with one agent. Each case, a replayed event, a crash
between the steps, Route calls naming the merged id, and the follower on the real event stream."""

import asyncio

import pytest
from router_testkit import events_of, make_item

from parley import events
from parley.clock import SystemClock, to_timestamp
from parley.conversations.core import Conversations
from parley.router.core import Router
from parley.router.keys import RouterKeys
from parley.router.merges import GROUP, MergeDeferred, Merges, ensure_group, follow_once
from parley.router.server import create_server
from parley.v1 import common_pb2, router_pb2

ASSIGNED = common_pb2.ROUTE_ACTION_ASSIGNED
QUEUED = common_pb2.ROUTE_ACTION_QUEUED
BOT = common_pb2.ROUTE_ACTION_BOT_REPLY


class Crash(Exception):
    pass


async def route(router: Router, cid: str, intent: str = "complaint", mid: str = "", **kwargs):
    (decision,) = await router.route([make_item(cid, mid or f"x:{cid}", intent, **kwargs)])
    return decision


async def queued_members(redis, k: RouterKeys, team: str) -> dict[str, float]:
    return {m.decode(): s for m, s in await redis.zrange(k.base(team), 0, -1, withscores=True)}


async def active(redis, k: RouterKeys, agent: str) -> set[str]:
    return {m.decode() for m in await redis.smembers(k.active(agent))}


async def state(redis, k: RouterKeys, cid: str) -> dict[str, str]:
    return {a.decode(): b.decode() for a, b in (await redis.hgetall(k.state(cid))).items()}


def crash_after(merges: Merges, step: str) -> None:
    """The step runs, then the process dies before the next one ("before:step": dies just before it)."""
    before, _, step = step.rpartition(":")
    real = getattr(merges, step)

    async def step_then_crash(*args, **kwargs):
        if not before:
            await real(*args, **kwargs)
        raise Crash(step)

    setattr(merges, step, step_then_crash)


async def test_two_waiting_entries_become_one_at_the_higher_priority_and_earlier_times(
    router: Router, redis, keys, clock
):
    k = router.k
    reply = await route(router, "held", public=True, followers=100_000, topic="refunds")  # the earlier one
    clock.advance(60)
    parent = await route(router, "parent", topic="refunds")
    assert (reply.action, parent.action, reply.team, parent.team) == (QUEUED, QUEUED, "billing", "billing")
    assert reply.priority > parent.priority

    outcome = await Merges(router).apply("held", "parent")

    assert outcome.action == "joined_queue" and outcome.applied
    assert await queued_members(redis, k, "billing") == {"parent": reply.priority}
    since = {m.decode(): s for m, s in await redis.zrange(k.since("billing"), 0, -1, withscores=True)}
    due = {m.decode(): s for m, s in await redis.zrange(k.due("billing"), 0, -1, withscores=True)}
    assert since == {"parent": reply.decided_at.ToSeconds()}
    assert due == {"parent": reply.sla_due_at.ToSeconds()}
    survivor = await state(redis, k, "parent")
    assert float(survivor["priority"]) == reply.priority
    assert float(survivor["enqueued_at"]) == reply.decided_at.ToSeconds()
    assert (await state(redis, k, "held"))["merged_into"] == "parent"
    (status,) = [q for q in await router.list_queues() if q.team == "billing"]
    assert status.depth == 1
    (event,) = await events_of(redis, keys, "conversation.merged_routing")
    assert event["conversation_id"] == "held" and event["attrs"]["into"] == "parent"
    assert event["attrs"]["action"] == "joined_queue"
    audit = await router.get_audit("parent")
    assert [e.kind for e in audit].count("route") == 2  # the merged conversation's history came along
    assert audit[-1].kind == "merge" and "held merged into parent" in audit[-1].why


async def test_the_merged_conversations_agent_gets_the_surviving_one(router: Router, redis, keys):
    k = router.k
    await router.set_presence("ann", "online", ["first_line"], capacity=1)
    assert (await route(router, "held", "praise")).agent_id == "ann"
    assert (await route(router, "parent", "praise")).action == QUEUED  # ann is full

    outcome = await Merges(router).apply("held", "parent")

    assert (outcome.action, outcome.agent_id) == ("moved_to_agent", "ann")
    assert await active(redis, k, "ann") == {"parent"}  # counted once
    assert await queued_members(redis, k, "first_line") == {}
    survivor = await state(redis, k, "parent")
    assert (survivor["state"], survivor["agent"], survivor["last_agent"]) == ("assigned", "ann", "ann")
    feed = [router_pb2.Assignment.FromString(f[b"assignment"]) for _, f in await redis.xrange(k.feed("ann"))]
    # The first assignment, then the merged conversation withdrawn and the surviving one given, in one step.
    assert [(a.conversation_id, a.withdrawn) for a in feed] == [
        ("held", False),
        ("held", True),
        ("parent", False),
    ]
    assert "merged into parent" in feed[1].reason
    # The agent resolves the surviving conversation and is free again.
    await router.resolve("parent", "ann")
    assert await active(redis, k, "ann") == set()


async def test_a_surviving_conversation_never_routed_takes_the_merged_ones_agent(router: Router, redis):
    k = router.k
    await router.set_presence("ann", "online", ["billing"], capacity=2)
    assert (await route(router, "held", topic="refunds")).agent_id == "ann"

    outcome = await Merges(router).apply("held", "parent")

    assert outcome.action == "moved_to_agent"
    survivor = await state(redis, k, "parent")
    assert (survivor["state"], survivor["team"], survivor["agent"]) == ("assigned", "billing", "ann")
    assert await active(redis, k, "ann") == {"parent"}
    # The next message of the thread joins the agent's conversation; nothing is queued.
    follow_up = await route(router, "parent", mid="x:next", topic="refunds")
    assert (follow_up.action, follow_up.agent_id) == (common_pb2.ROUTE_ACTION_APPENDED, "ann")


async def test_a_waiting_merged_conversation_moves_to_a_surviving_one_never_routed(router: Router, redis):
    k = router.k
    reply = await route(router, "held", topic="refunds")
    outcome = await Merges(router).apply("held", "parent")
    assert outcome.action == "moved_queue"
    assert await queued_members(redis, k, "billing") == {"parent": reply.priority}
    assert (await state(redis, k, "parent"))["state"] == "queued"
    await router.set_presence("ann", "online", ["billing"], capacity=1)  # comes online: gets the survivor
    assert await active(redis, k, "ann") == {"parent"}


async def test_two_agents_the_surviving_ones_keeps_it_and_the_other_is_freed(router: Router, redis, keys):
    k = router.k
    await router.set_presence("ann", "online", ["first_line"], capacity=1)
    await router.set_presence("bob", "online", ["first_line"], capacity=1)
    assert (await route(router, "held", "praise")).agent_id == "ann"
    assert (await route(router, "parent", "praise")).agent_id == "bob"
    assert (await route(router, "waiting", "praise")).action == QUEUED

    outcome = await Merges(router).apply("held", "parent")

    assert (outcome.action, outcome.agent_id, outcome.withdrawn_agent) == ("withdrawn", "bob", "ann")
    assert (await state(redis, k, "parent"))["agent"] == "bob"
    assert await active(redis, k, "bob") == {"parent"}
    assert await active(redis, k, "ann") == {"waiting"}  # the freed capacity took the next conversation
    (event,) = await events_of(redis, keys, "conversation.merged_routing")
    assert event["attrs"]["withdrawn_agent"] == "ann" and event["attrs"]["agent_id"] == "bob"
    merge_entry = (await router.get_audit("parent"))[-1]
    assert merge_entry.kind == "merge" and "withdrawn from agent ann" in merge_entry.why
    # ann's feed says the conversation was taken away before it hands her the next one; bob's is untouched.
    ann = [router_pb2.Assignment.FromString(f[b"assignment"]) for _, f in await redis.xrange(k.feed("ann"))]
    assert [(a.conversation_id, a.withdrawn) for a in ann] == [
        ("held", False),
        ("held", True),
        ("waiting", False),
    ]
    assert "stays with agent bob" in ann[1].reason
    bob = [router_pb2.Assignment.FromString(f[b"assignment"]) for _, f in await redis.xrange(k.feed("bob"))]
    assert [(a.conversation_id, a.withdrawn) for a in bob] == [("parent", False)]
    # A replayed merge withdraws nothing a second time.
    await Merges(router).apply("held", "parent")
    assert await redis.xlen(k.feed("ann")) == 3


async def test_the_same_agent_with_both_counts_the_survivor_once(router: Router, redis):
    k = router.k
    await router.set_presence("ann", "online", ["first_line"], capacity=3)
    await route(router, "held", "praise")
    await route(router, "parent", "praise")
    assert await active(redis, k, "ann") == {"held", "parent"}
    outcome = await Merges(router).apply("held", "parent")
    assert outcome.action == "same_agent"
    assert await active(redis, k, "ann") == {"parent"}
    feed = [router_pb2.Assignment.FromString(f[b"assignment"]) for _, f in await redis.xrange(k.feed("ann"))]
    assert [(a.conversation_id, a.withdrawn) for a in feed][-1] == ("held", True)
    assert "merged into parent" in feed[-1].reason


async def test_a_bot_answer_in_the_merged_conversation_counts_for_the_surviving_one(router: Router, redis):
    k = router.k
    assert (await route(router, "held", "question", bot_confidence=0.9)).action == BOT
    outcome = await Merges(router).apply("held", "parent")
    assert outcome.action == "bot"
    again = await route(router, "parent", "question", mid="x:again", bot_confidence=0.9)
    assert again.action == QUEUED and again.rule == "question_first_line"  # the bot answers once
    # A surviving conversation already waiting learns it too.
    assert (await route(router, "held2", "question", bot_confidence=0.9)).action == BOT
    await route(router, "parent2", "complaint")
    await Merges(router).apply("held2", "parent2")
    assert (await state(redis, k, "parent2"))["bot_replied"] == "1"


async def test_route_calls_naming_the_merged_conversation_land_in_the_surviving_one(router: Router, redis):
    k = router.k
    first = await route(router, "held", mid="x:reply")
    await route(router, "parent", mid="x:parent")
    await Merges(router).apply("held", "parent")

    late = await route(router, "held", "urgent", mid="x:late")
    assert late.conversation_id == "parent" and late.action == common_pb2.ROUTE_ACTION_APPENDED
    retried = await route(router, "held", mid="x:reply")  # decided before the merge: as it was stored
    assert retried == first
    assert await queued_members(redis, k, "first_line") == {"parent": pytest.approx(late.priority)}
    assert await redis.ttl(k.state("held")) > 0  # the pointer lasts as long as decisions do
    # A chain: the surviving conversation merges on; the first id follows both steps.
    await Merges(router).apply("parent", "root")
    assert (await route(router, "held", mid="x:later")).conversation_id == "root"


async def test_a_replayed_event_changes_nothing(router: Router, redis, keys):
    k = router.k
    await router.set_presence("ann", "online", ["first_line"], capacity=1)
    await route(router, "held", "praise")
    await route(router, "parent", "praise")
    merges = Merges(router)
    await merges.apply("held", "parent")
    before = (await state(redis, k, "parent"), await active(redis, k, "ann"), await redis.xlen(k.feed("ann")))

    again = await merges.apply("held", "parent")

    assert not again.applied
    after = (await state(redis, k, "parent"), await active(redis, k, "ann"), await redis.xlen(k.feed("ann")))
    assert after == before
    assert len(await events_of(redis, keys, "conversation.merged_routing")) == 1


@pytest.mark.parametrize("step", ["join", "write_survivor", "remove_waiting", "finish"])
async def test_a_crash_between_waiting_steps_leaves_one_entry(router: Router, redis, keys, step):
    k = router.k
    reply = await route(router, "held", public=True, followers=100_000)
    await route(router, "parent")
    crashing = Merges(router)
    crash_after(crashing, step)
    with pytest.raises(Crash):
        await crashing.apply("held", "parent")

    await Merges(router).apply("held", "parent")  # the event is delivered again

    assert await queued_members(redis, k, "first_line") == {"parent": reply.priority}
    assert (await state(redis, k, "held"))["merged_into"] == "parent"
    (event,) = await events_of(redis, keys, "conversation.merged_routing")
    assert event["attrs"]["action"] == "joined_queue"


@pytest.mark.parametrize("step", ["write_survivor", "remove_waiting", "finish"])
async def test_a_crash_while_moving_a_waiting_entry_to_a_survivor_never_routed(router: Router, redis, step):
    k = router.k
    reply = await route(router, "held", topic="refunds")
    crashing = Merges(router)
    crash_after(crashing, step)
    with pytest.raises(Crash):
        await crashing.apply("held", "parent")

    await Merges(router).apply("held", "parent")  # the event is delivered again

    assert await queued_members(redis, k, "billing") == {"parent": reply.priority}
    survivor = await state(redis, k, "parent")
    assert (survivor["state"], survivor["team"]) == ("queued", "billing")
    assert "merge_entry" not in survivor
    assert (await state(redis, k, "held"))["merged_into"] == "parent"


@pytest.mark.parametrize("step", ["before:swap", "swap", "write_survivor", "finish"])
async def test_a_crash_between_agent_steps_counts_the_load_once(router: Router, redis, keys, step):
    k = router.k
    await router.set_presence("ann", "online", ["first_line"], capacity=1)
    await route(router, "held", "praise")
    assert (await route(router, "parent", "praise")).action == QUEUED
    crashing = Merges(router)
    crash_after(crashing, step)
    with pytest.raises(Crash):
        await crashing.apply("held", "parent")

    await Merges(router).apply("held", "parent")

    assert await active(redis, k, "ann") == {"parent"}
    assert await queued_members(redis, k, "first_line") == {}
    feed = [router_pb2.Assignment.FromString(f[b"assignment"]) for _, f in await redis.xrange(k.feed("ann"))]
    # The merged one is withdrawn and the survivor announced once.
    assert [(a.conversation_id, a.withdrawn) for a in feed] == [
        ("held", False),
        ("held", True),
        ("parent", False),
    ]
    assert (await state(redis, k, "parent"))["agent"] == "ann"
    (assigned,) = [
        e for e in await events_of(redis, keys, "conversation.assigned") if e["conversation_id"] == "parent"
    ]
    assert assigned["attrs"]["how"] == "merged"  # conversations hears of it like any assignment
    (event,) = await events_of(redis, keys, "conversation.merged_routing")
    assert event["attrs"]["action"] == "moved_to_agent"


async def test_a_claim_in_flight_defers_the_merge_until_it_settles(router: Router, redis, keys, clock):
    k = router.k
    await route(router, "held")
    await route(router, "parent")
    await router.set_presence("ann", "away", ["first_line"], capacity=1)
    # An agent's claim took the merged conversation from the queue and has not recorded it yet.
    assert await router.queues.take_from("first_line", "held", "ann", "reserving:t1")
    with pytest.raises(MergeDeferred):
        await Merges(router).apply("held", "parent")
    assert not (await state(redis, k, "held")).get("merged_into")
    merges = Merges(router)
    await ensure_group(merges)
    await _publish_merge(redis, keys, "held", "parent", clock.now())
    assert await follow_once(merges, "r1", block_ms=None) == -1  # deferred: it stays pending
    assert await merges_pending(redis, keys) == 1
    # A merge behind it is not held up.
    await route(router, "other_held", mid="x:oh")
    await _publish_merge(redis, keys, "other_held", "other_parent", clock.now())
    assert await follow_once(merges, "r1", block_ms=None) == 1  # the merge (it reads no routed event)
    assert (await state(redis, k, "other_held"))["merged_into"] == "other_parent"
    assert await merges_pending(redis, keys) == 1

    clock.advance(router.settings.claim_idle_ms / 1000)
    assert await router.loop.recover_claims() == 1  # the claimer died: the conversation is waiting again
    assert await follow_once(merges, "r1", block_ms=None) == 1
    assert await merges_pending(redis, keys) == 0
    late = [
        e
        for e in await events_of(redis, keys, "conversation.merged_routing")
        if e["conversation_id"] == "held"
    ]
    assert [e["attrs"]["action"] for e in late] == ["joined_queue"]
    assert set(await queued_members(redis, k, "first_line")) == {"parent", "other_parent"}


async def merges_pending(redis, keys) -> int:
    return sum([(await redis.xpending(stream, GROUP))["pending"] for stream in keys.merge_streams()])


async def _publish_merge(redis, keys, merged: str, into: str, at: float) -> None:
    # The event exactly as conversations writes it.
    record = events.EventRecord("conversation.merged", merged, "", at, {"into": into, "messages": 1})
    await events.publish(redis, keys, [record])


async def test_the_follower_applies_and_acknowledges_merge_events(router: Router, redis, keys, clock):
    k = router.k
    merges = Merges(router)
    await ensure_group(merges)
    await route(router, "held")
    await route(router, "parent")
    await _publish_merge(redis, keys, "held", "parent", clock.now())
    await _publish_merge(redis, keys, "held", "parent", clock.now())  # delivered twice

    # The follower reads the merges streams: the two merges, none of the other events.
    assert await follow_once(merges, "r1", block_ms=None) == 2

    assert await queued_members(redis, k, "first_line") == {"parent": pytest.approx(50.0)}
    assert await merges_pending(redis, keys) == 0
    assert len(await events_of(redis, keys, "conversation.merged_routing")) == 1
    assert await follow_once(merges, "r1", block_ms=None) == 0  # its own routing event is not for it


async def test_the_server_follows_merges(settings, redis, keys):
    running = await create_server(settings, "127.0.0.1:0")
    try:
        router = Router(settings, redis, keys, SystemClock())
        await route(router, "held")
        await route(router, "parent")
        for _ in range(100):  # the group exists once the follower has started
            if any(g["name"] == GROUP.encode() for g in await redis.xinfo_groups(keys.merge_streams()[-1])):
                break
            await asyncio.sleep(0.02)
        await _publish_merge(redis, keys, "held", "parent", 0.0)
        for _ in range(250):
            if (await state(redis, router.k, "held")).get("merged_into"):
                break
            await asyncio.sleep(0.02)
        assert (await state(redis, router.k, "held")).get("merged_into") == "parent"
    finally:
        await running.stop()


def _inbound(pid: str, at: float, reply_to: str = "", outbound: bool = False) -> common_pb2.InboundMessage:
    return common_pb2.InboundMessage(
        channel=common_pb2.CHANNEL_X,
        visibility=common_pb2.VISIBILITY_PUBLIC,
        platform_message_id=pid,
        message_id=f"x:{pid}",
        in_reply_to_id=reply_to,
        brand_account_id="brand-1",
        author=common_pb2.Author(id="brand-1" if outbound else "alice", handle="alice"),
        text=f"text of {pid}",
        sent_at=to_timestamp(1_700_000_000.0 + at),
        direction=common_pb2.DIRECTION_OUTBOUND if outbound else common_pb2.DIRECTION_INBOUND,
    )


async def test_a_merge_made_by_conversations_leaves_one_queue_entry(
    router: Router, settings, redis, keys, clock
):
    """The whole path: a reply arrives before the message it answers, is held in a conversation of its own
    and routed there; the missing message arrives, conversations merges, the follower folds the routing."""
    threads = Conversations(settings, redis, keys, clock)
    merges = Merges(router)
    await ensure_group(merges)
    [root] = await threads.thread([_inbound("r", 0)])
    await route(router, root.conversation_id, mid="x:r")
    [held] = await threads.thread([_inbound("l", 20, reply_to="m")])
    assert held.held and held.conversation_id != root.conversation_id
    await route(router, held.conversation_id, "urgent", mid="x:l")  # waits in the priority team
    [middle] = await threads.thread([_inbound("m", 10, reply_to="r", outbound=True)])
    assert middle.conversation_id == root.conversation_id

    assert await follow_once(merges, "r1", block_ms=None) > 0

    # One entry: the surviving conversation's, at the urgent reply's priority.
    assert await queued_members(redis, router.k, "first_line") == {root.conversation_id: 80.0}
    assert await queued_members(redis, router.k, "priority") == {}
    (event,) = await events_of(redis, keys, "conversation.merged_routing")
    assert event["conversation_id"] == held.conversation_id and event["attrs"]["into"] == root.conversation_id
