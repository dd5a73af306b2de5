"""The lifecycle driven by the router's and dispatch's events, with a manual clock, and the metrics of
hand-checked timelines."""

from __future__ import annotations

import asyncio
import dataclasses

from parley import events, rpc
from parley.clock import ManualClock, to_timestamp
from parley.config import Settings
from parley.conversations.core import Conversations
from parley.conversations.follower import ensure_group, follow_once
from parley.conversations.lifecycle import EVENT_STATES
from parley.conversations.server import create_server
from parley.events import EventRecord, publish, read_all
from parley.store import Keys, Redis
from parley.v1 import common_pb2, conversations_pb2, conversations_pb2_grpc

from .builders import T0, msg

S = conversations_pb2
NEW, QUEUED, ASSIGNED, WAITING, RESOLVED, REOPENED, BOT = (
    S.CONVERSATION_STATE_NEW,
    S.CONVERSATION_STATE_QUEUED,
    S.CONVERSATION_STATE_ASSIGNED,
    S.CONVERSATION_STATE_WAITING_ON_CUSTOMER,
    S.CONVERSATION_STATE_RESOLVED,
    S.CONVERSATION_STATE_REOPENED,
    S.CONVERSATION_STATE_BOT,
)


class Timeline:
    """Events as the router and dispatch publish them, each at the manual clock's time."""

    def __init__(self, core: Conversations, clock: ManualClock, cid: str) -> None:
        self.core, self.clock, self.cid, self.n = core, clock, cid, 0

    async def at(self, seconds: float, kind: str, **attrs: object) -> int:
        self.clock.set(T0 + seconds)
        self.n += 1
        event = EventRecord(kind, self.cid, "", self.clock.now(), attrs)
        return await self.core.apply_events([(f"{self.n}-0", event)])

    async def customer(self, seconds: float, pid: str) -> conversations_pb2.ThreadResult:
        self.clock.set(T0 + seconds)
        [r] = await self.core.thread([msg(pid, reply_to="1", at=seconds)])
        return r


async def queued(
    core: Conversations, cid: str, mid: str, at: float, sla_in: float = 600.0, team: str = "care"
) -> None:
    routing = common_pb2.RoutingDecision(
        message_id=mid,
        action=common_pb2.ROUTE_ACTION_QUEUED,
        team=team,
        decided_at=to_timestamp(T0 + at),
        sla_due_at=to_timestamp(T0 + at + sla_in),
    )
    triage = common_pb2.Triage(message_id=mid, intent=common_pb2.INTENT_COMPLAINT, topic="delivery")
    await core.record_outcomes(
        [S.Outcome(conversation_id=cid, message_id=mid, triage=triage, routing=routing)]
    )


async def test_a_conversation_through_its_life(
    core: Conversations, clock: ManualClock, redis: Redis, keys: Keys
) -> None:
    [first] = await core.thread([msg("1", at=0)])
    cid = first.conversation_id
    t = Timeline(core, clock, cid)
    await queued(core, cid, "x:1", at=10)
    assert await t.at(60, "conversation.assigned", agent_id="a1", team="care") == 1
    assert await t.at(120, "reply.sent", sent_by="a1") == 1
    assert (await t.customer(300, "2")).state == ASSIGNED  # back to its agent
    await t.at(400, "reply.sent", sent_by="a1")
    await t.at(500, "conversation.resolved", agent_id="a1")
    conv = await core.get(cid)
    assert [(x.state, x.at.seconds - int(T0)) for x in conv.transitions] == [
        (NEW, 0),
        (QUEUED, 10),
        (ASSIGNED, 60),
        (WAITING, 120),
        (ASSIGNED, 300),
        (WAITING, 400),
        (RESOLVED, 500),
    ]
    m = conv.metrics
    assert m.human_first_response_seconds == 120 and m.first_response_seconds == 120
    assert not m.HasField("bot_first_response_seconds")
    assert m.handling_seconds == (120 - 60) + (400 - 300)  # waiting on the customer does not count
    assert m.resolution_seconds == 500
    assert (m.messages, m.agents_touched, m.reopen_count) == (2, 1, 0)
    assert m.sla == S.SLA_STATUS_MET and m.sla_due_at.seconds == int(T0) + 610
    assert list(conv.agents) == ["a1"]
    changed = "conversation.state_changed"
    published = [event.attributes for _, event in await read_all(redis, keys) if event.type == changed]
    assert [(e["from"], e["to"]) for e in published] == [
        (NEW, QUEUED),
        (QUEUED, ASSIGNED),
        (ASSIGNED, WAITING),
        (WAITING, ASSIGNED),
        (ASSIGNED, WAITING),
        (WAITING, RESOLVED),
    ]


async def test_waiting_without_an_agent_goes_back_to_the_queue(
    core: Conversations, clock: ManualClock
) -> None:
    [first] = await core.thread([msg("1")])
    t = Timeline(core, clock, first.conversation_id)
    await t.at(50, "reply.sent", sent_by="a7")  # an agent answered from the queue
    await core.redis.hdel(core.keys.meta(first.conversation_id), "agent")
    assert (await t.customer(80, "2")).state == QUEUED


async def test_reopen_within_the_window_then_metrics_count_it(
    core: Conversations, clock: ManualClock
) -> None:
    [first] = await core.thread([msg("1")])
    t = Timeline(core, clock, first.conversation_id)
    await t.at(30, "conversation.assigned", agent_id="a1", team="care")
    await t.at(90, "conversation.resolved")
    again = await t.customer(3600, "2")
    assert again.conversation_id == first.conversation_id and again.state == REOPENED
    conv = await core.get(first.conversation_id)
    assert conv.reopen_count == 1 and conv.metrics.reopen_count == 1
    assert not conv.metrics.HasField("resolution_seconds")  # open again
    await t.at(3700, "conversation.assigned", agent_id="a2", team="care")
    await t.at(3800, "conversation.resolved")
    m = (await core.get(first.conversation_id)).metrics
    assert m.resolution_seconds == 3800 and m.agents_touched == 2
    assert m.handling_seconds == 60 + 100
    [group] = await core.metrics(T0, T0 + 10)
    assert group.reopened == 1


async def test_events_apply_once_and_follow_merges(core: Conversations, clock: ManualClock) -> None:
    [held] = await core.thread([msg("c", reply_to="p", at=5)])
    [root] = await core.thread([msg("p")])
    event = EventRecord("conversation.assigned", held.conversation_id, "", T0 + 20, {"agent_id": "a1"})
    assert await core.apply_events([("5-0", event)]) == 1
    assert await core.apply_events([("5-0", event)]) == 0
    conv = await core.get(root.conversation_id)
    assert conv.state == ASSIGNED and [x.state for x in conv.transitions] == [NEW, ASSIGNED]
    ignored = EventRecord("message.threaded", root.conversation_id, "x:p", T0)
    nowhere = dataclasses.replace(event, conversation_id="cv-none")
    assert await core.apply_events([("6-0", ignored), ("7-0", nowhere)]) == 0


async def test_bot_and_human_first_responses_apart_and_missed_sla(
    core: Conversations, clock: ManualClock
) -> None:
    [first] = await core.thread([msg("1")])
    cid = first.conversation_id
    t = Timeline(core, clock, cid)
    await t.at(2, "reply.sent", sent_by="bot")
    await queued(core, cid, "x:1", at=5, sla_in=100)
    clock.set(T0 + 50)
    assert (await core.get(cid)).metrics.sla == S.SLA_STATUS_PENDING
    await t.at(300, "reply.sent", sent_by="a1")
    m = (await core.get(cid)).metrics
    assert (m.bot_first_response_seconds, m.human_first_response_seconds, m.first_response_seconds) == (
        2,
        300,
        2,
    )
    assert m.sla == S.SLA_STATUS_MISSED


async def test_get_metrics_groups_with_means_and_percentiles(core: Conversations, clock: ManualClock) -> None:
    # Three conversations, hand-checked: team care answers in 60 s and 180 s, team billing in 30 s.
    plan = [("1", "care", 60, 600), ("2", "care", 180, 100), ("3", "billing", 30, 600)]
    for n, (pid, team, answer, sla) in enumerate(plan):
        clock.set(T0 + n)
        [r] = await core.thread([msg(pid, author=f"c{pid}", at=n)])
        await queued(core, r.conversation_id, f"x:{pid}", at=n, sla_in=sla, team=team)
        t = Timeline(core, clock, r.conversation_id)
        t.n = 10 * n
        await t.at(n + 10, "conversation.assigned", agent_id=f"a{pid}", team=team)
        await t.at(n + answer, "reply.sent", sent_by=f"a{pid}")
    clock.set(T0 + 1000)
    groups = {g.key: g for g in await core.metrics(T0, T0 + 100, "team")}
    care, billing = groups["care"], groups["billing"]
    assert (care.conversations, billing.conversations) == (2, 1)
    assert care.human_first_response_seconds.mean == 120
    assert (care.human_first_response_seconds.p50, care.human_first_response_seconds.p90) == (60, 180)
    assert care.handling_seconds.mean == ((60 - 10) + (180 - 10)) / 2
    assert (care.sla_met, care.sla_missed, billing.sla_met) == (1, 1, 1)
    assert care.agents_touched.mean == 1 and care.messages.mean == 1
    [everything] = await core.metrics(T0, T0 + 100)
    assert everything.conversations == 3 and everything.human_first_response_seconds.p99 == 180
    assert await core.metrics(T0 + 100, T0 + 200) == []


async def test_follower_applies_stream_events_and_acks(core: Conversations, redis: Redis, keys: Keys) -> None:
    await ensure_group(redis, keys)
    [first] = await core.thread([msg("1")])  # its own events never reach the lifecycle streams
    assert sum([await redis.xlen(stream) for stream in keys.lifecycle_streams()]) == 0
    await publish(
        redis,
        keys,
        [EventRecord("conversation.assigned", first.conversation_id, "", T0 + 5, {"agent_id": "a1"})],
    )
    assert await follow_once(core, "test", block_ms=None) == 1  # the one lifecycle event, nothing else
    assert (await core.get(first.conversation_id)).state == ASSIGNED
    for stream in keys.lifecycle_streams():
        assert (await redis.xpending(stream, "conversations-lifecycle"))["pending"] == 0


async def test_an_offline_agents_conversation_requeued_by_the_router_is_queued_again(
    core: Conversations, redis: Redis, keys: Keys
) -> None:
    await ensure_group(redis, keys)
    [first] = await core.thread([msg("1")])
    cid = first.conversation_id
    await publish(redis, keys, [EventRecord("conversation.assigned", cid, "", T0 + 5, {"agent_id": "a1"})])
    await publish(
        redis,
        keys,
        [EventRecord("conversation.requeued", cid, "", T0 + 9, {"agent_id": "a1", "team": "billing"})],
    )
    while await follow_once(core, "test", block_ms=None):
        pass
    conversation = await core.get(cid)
    assert conversation.state == conversations_pb2.CONVERSATION_STATE_QUEUED
    assert [t.state for t in conversation.transitions][-2:] == [ASSIGNED, conversation.state]


def test_the_lifecycle_streams_carry_every_event_the_follower_applies() -> None:
    assert {*EVENT_STATES, "reply.sent"} <= events.LIFECYCLE


async def test_follower_takes_over_a_dead_consumers_entries_and_skips_trimmed_ones(
    core: Conversations, redis: Redis, keys: Keys
) -> None:
    await ensure_group(redis, keys)
    [first] = await core.thread([msg("1")])
    while await follow_once(core, "test", block_ms=None):
        pass
    event = EventRecord("conversation.assigned", first.conversation_id, "", T0 + 5, {"agent_id": "a1"})
    await publish(redis, keys, [event])
    # A consumer reads the event and dies before applying it; a trimmed entry is left pending too.
    stream = keys.lifecycle_stream(event.partition(keys.event_partitions))
    await redis.xreadgroup("conversations-lifecycle", "dead", {stream: ">"}, count=10)
    trimmed_id = await redis.xadd(stream, {"type": "noise"})
    await redis.xreadgroup("conversations-lifecycle", "dead", {stream: ">"}, count=10)
    await redis.xdel(stream, trimmed_id)
    await asyncio.sleep(core.settings.claim_idle_ms / 1000 + 0.1)

    while await follow_once(core, "rescuer", block_ms=None):
        pass
    assert (await core.get(first.conversation_id)).state == ASSIGNED
    assert (await redis.xpending(stream, "conversations-lifecycle"))["pending"] == 0


async def test_server_follows_events_and_serves_profiles(
    settings: Settings, clock: ManualClock, redis: Redis, keys: Keys
) -> None:
    running = await create_server(settings, "127.0.0.1:0", clock=clock)
    channel = rpc.channel(settings, f"127.0.0.1:{running.port}")
    stub = conversations_pb2_grpc.ConversationsServiceStub(channel)
    try:
        reply = await stub.Thread(S.ThreadRequest(messages=[msg("1")]))
        cid = reply.results[0].conversation_id
        assert reply.results[0].customer_tier == "standard"
        await publish(redis, keys, [EventRecord("conversation.resolved", cid, "", T0 + 9)])
        for _ in range(200):  # the follower runs in the background; wait until it has applied the event
            conv = (await stub.GetConversation(S.GetConversationRequest(conversation_id=cid))).conversation
            if conv.state == RESOLVED:
                break
            await asyncio.sleep(0.05)
        assert conv.state == RESOLVED and conv.profile.person_id == "x:alice"
        identity = S.Identity(channel=common_pb2.CHANNEL_X, author_id="alice")
        other = S.Identity(channel=common_pb2.CHANNEL_WHATSAPP, author_id="+100")
        linked = await stub.LinkIdentities(S.LinkIdentitiesRequest(identity=identity, other=other))
        profile = (await stub.GetProfile(S.GetProfileRequest(identity=other))).profile
        assert profile.person_id == linked.person_id == "x:alice"
        assert [c.conversation_id for c in profile.conversations] == [cid]
    finally:
        await channel.close()
        await running.stop(0)


async def test_a_sign_off_after_resolution_leaves_it_resolved(
    core: Conversations, clock: ManualClock
) -> None:
    [first] = await core.thread([msg("1")])
    t = Timeline(core, clock, first.conversation_id)
    await t.at(10, "conversation.resolved")
    assert await t.at(20, "reply.sent", sent_by="a1") == 0
    assert (await core.get(first.conversation_id)).state == RESOLVED
