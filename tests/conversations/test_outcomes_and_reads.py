"""Outcomes and state transitions, first response, listing with pagination, metrics on a known timeline."""

from __future__ import annotations

import asyncio
import json

import pytest

from parley.clock import ManualClock, from_timestamp, to_timestamp
from parley.conversations.core import Conversations
from parley.conversations.metrics import GROUP_BY, Entry, distribution
from parley.conversations.store import conversation_id_for
from parley.events import EventRecord, read_all
from parley.rpc import InvalidArgument, NotFound
from parley.store import Keys, Redis
from parley.v1 import common_pb2, conversations_pb2

from .builders import T0, msg

S = conversations_pb2
QUEUED, ASSIGNED, BOT_REPLY = (
    common_pb2.ROUTE_ACTION_QUEUED,
    common_pb2.ROUTE_ACTION_ASSIGNED,
    common_pb2.ROUTE_ACTION_BOT_REPLY,
)


def outcome(
    mid: str,
    action: int,
    *,
    at: float,
    intent: int = common_pb2.INTENT_COMPLAINT,
    topic: str = "billing",
    team: str = "",
    agent: str = "",
) -> conversations_pb2.Outcome:
    cid = conversation_id_for(mid) if mid.endswith(":1") else ""
    return conversations_pb2.Outcome(
        conversation_id=cid,
        message_id=mid,
        triage=common_pb2.Triage(message_id=mid, intent=intent, topic=topic),
        routing=common_pb2.RoutingDecision(
            message_id=mid, action=action, team=team, agent_id=agent, decided_at=to_timestamp(T0 + at)
        ),
    )


def in_conversation(o: conversations_pb2.Outcome, cid: str) -> conversations_pb2.Outcome:
    o.conversation_id = cid
    o.routing.conversation_id = cid
    return o


async def state_events(redis: Redis, keys: Keys) -> list[tuple[str, str]]:
    return [
        (e.message_id, json.dumps(dict(e.attributes), separators=(",", ":")))
        for _, e in await read_all(redis, keys)
        if e.type == "conversation.state_changed"
    ]


async def test_outcomes_move_state_once_and_replays_change_nothing(
    core: Conversations, redis: Redis, keys: Keys
) -> None:
    cid = conversation_id_for("x:1")
    await core.thread([msg("1"), msg("2", reply_to="1", at=1), msg("3", reply_to="2", at=2)])
    queued = in_conversation(outcome("x:1", QUEUED, at=10, team="billing"), cid)
    assigned = in_conversation(outcome("x:2", ASSIGNED, at=20, team="billing", agent="ag-7"), cid)
    appended = in_conversation(outcome("x:3", common_pb2.ROUTE_ACTION_APPENDED, at=30, topic=""), cid)
    assert await core.record_outcomes([queued]) == 1
    assert await core.record_outcomes([assigned, appended]) == 2
    # At-least-once: the whole lot again, and the first one once more after the others.
    await core.record_outcomes([queued, assigned, appended])
    await core.record_outcomes([queued])

    conv = await core.get(cid)
    assert conv.state == S.CONVERSATION_STATE_ASSIGNED
    assert [(t.state, from_timestamp(t.at)) for t in conv.transitions] == [
        (S.CONVERSATION_STATE_NEW, T0),
        (S.CONVERSATION_STATE_QUEUED, T0 + 10),
        (S.CONVERSATION_STATE_ASSIGNED, T0 + 20),
    ]
    assert (conv.intent, conv.topic) == (common_pb2.INTENT_COMPLAINT, "billing")
    assert [m.routing.action for m in conv.messages] == [QUEUED, ASSIGNED, common_pb2.ROUTE_ACTION_APPENDED]
    assert [m.triage.message_id for m in conv.messages] == ["x:1", "x:2", "x:3"]
    assert [mid for mid, _ in await state_events(redis, keys)] == ["x:1", "x:2"]
    [summary], _ = await core.list()
    assert (summary.team, summary.state) == ("billing", S.CONVERSATION_STATE_ASSIGNED)


@pytest.mark.parametrize(
    ("action", "state"),
    [
        (common_pb2.ROUTE_ACTION_BOT_REPLY, S.CONVERSATION_STATE_BOT),
        (common_pb2.ROUTE_ACTION_NO_ACTION, S.CONVERSATION_STATE_CLOSED_NO_ACTION),
        (common_pb2.ROUTE_ACTION_APPENDED, S.CONVERSATION_STATE_NEW),
    ],
)
async def test_state_for_each_action(core: Conversations, action: int, state: int) -> None:
    [r] = await core.thread([msg("1")])
    await core.record_outcomes([outcome("x:1", action, at=5)])
    assert (await core.get(r.conversation_id)).state == state
    # The next Thread result reports the state too.
    [later] = await core.thread([msg("2", reply_to="1", at=6)])
    assert later.state == state


async def test_unknown_conversation_or_foreign_message_is_refused(core: Conversations) -> None:
    await core.thread([msg("1"), msg("7")])
    with pytest.raises(NotFound):
        await core.record_outcomes([in_conversation(outcome("x:1", QUEUED, at=1), "cv-nope")])
    with pytest.raises(InvalidArgument) as error:
        await core.record_outcomes(
            [in_conversation(outcome("x:7", QUEUED, at=1), conversation_id_for("x:1"))]
        )
    assert [f for f, _ in error.value.violations] == ["outcomes[0].message_id"]
    with pytest.raises(NotFound):
        await core.get("cv-nope")


async def test_first_response_is_first_brand_message_after_first_customer_message(
    core: Conversations,
) -> None:
    cid = conversation_id_for("x:1")
    await core.thread([msg("1", at=100), msg("2", reply_to="1", at=130)])
    await core.thread(
        [msg("3", outbound=True, reply_to="2", at=160), msg("4", outbound=True, reply_to="3", at=400)]
    )
    # A later-arriving but earlier-sent brand reply wins.
    await core.thread([msg("5", outbound=True, reply_to="1", at=150)])
    fields = await core.redis.hmget(core.keys.meta(cid), ["first_inbound_at", "first_response_at"])
    assert [float(v) for v in fields] == [T0 + 100, T0 + 150]
    # Brand messages do not move the state: routing owns it (see the report).
    assert (await core.get(cid)).state == S.CONVERSATION_STATE_NEW


async def test_list_paginates_newest_first_and_filters(core: Conversations, clock: ManualClock) -> None:
    for i in range(1, 8):
        await core.thread([msg(str(i), at=i)])
        clock.advance(1 if i != 4 else 0)  # 4 and 5 share an updated time: the tie is broken by id
    await core.thread([msg("m1", thread="dm", channel=common_pb2.CHANNEL_MESSENGER, at=9)])
    await core.record_outcomes([outcome("x:1", QUEUED, at=20, team="billing")])
    seen: list[str] = []
    token = ""
    while True:
        page, token = await core.list(channel=common_pb2.CHANNEL_X, page_size=4, page_token=token)
        assert len(page) <= 4
        seen += [s.conversation_id for s in page]
        if not token:
            break
    # x:1 was updated last (its outcome), the rest newest first; the 4/5 tie straddles two pages.
    expected = (
        ["x:1", "x:7", "x:6"] + sorted(["x:5", "x:4"], key=conversation_id_for, reverse=True) + ["x:3", "x:2"]
    )
    assert seen == [conversation_id_for(m) for m in expected]
    queued, _ = await core.list(state=S.CONVERSATION_STATE_QUEUED)
    assert [s.conversation_id for s in queued] == [conversation_id_for("x:1")]
    assert [s.conversation_id for s in (await core.list(team="billing"))[0]] == [conversation_id_for("x:1")]
    assert (await core.list(state=S.CONVERSATION_STATE_QUEUED, team="travel"))[0] == []
    new, _ = await core.list(state=S.CONVERSATION_STATE_NEW, page_size=100)
    assert len(new) == 7
    [messenger], _ = await core.list(channel=common_pb2.CHANNEL_MESSENGER)
    assert messenger.conversation_id == conversation_id_for("messenger:m1")
    with pytest.raises(InvalidArgument):
        await core.list(page_token="not-a-token")


def test_distribution_nearest_rank() -> None:
    d = distribution([10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    assert (d.count, d.mean, d.p50, d.p90, d.p99) == (10, 55, 50, 90, 100)
    assert distribution([]).count == 0


async def test_metrics_on_a_hand_checked_timeline(core: Conversations) -> None:
    # Conversation A (X, complaint, billing): customer at 0, brand reply at 60, 3 messages.
    # Conversation B (X, question): customer at 100, bot answers at 110, 1 message.
    # Conversation C (Messenger, complaint, billing): customer at 200, no response yet, 2 messages.
    # Conversation D: opened at 5000, outside the window.
    await core.thread(
        [msg("a1", at=0), msg("a2", reply_to="a1", at=30), msg("a3", outbound=True, reply_to="a1", at=60)]
    )
    await core.thread([msg("b1", at=100)])
    await core.thread(
        [
            msg("c1", thread="t", channel=common_pb2.CHANNEL_MESSENGER, at=200),
            msg("c2", thread="t", channel=common_pb2.CHANNEL_MESSENGER, at=210),
        ]
    )
    await core.thread([msg("d1", at=5000)])
    await core.record_outcomes(
        [
            in_conversation(outcome("x:a1", QUEUED, at=1, team="billing"), conversation_id_for("x:a1")),
            in_conversation(
                outcome("x:b1", BOT_REPLY, at=110, intent=common_pb2.INTENT_QUESTION, topic="hours"),
                conversation_id_for("x:b1"),
            ),
            in_conversation(
                outcome("messenger:c1", QUEUED, at=201, team="billing"), conversation_id_for("messenger:c1")
            ),
        ]
    )
    [overall] = await core.metrics(T0, T0 + 1000)
    assert (overall.key, overall.conversations) == ("all", 3)
    assert (overall.first_response_seconds.count, overall.first_response_seconds.mean) == (2, 35.0)
    assert (overall.first_response_seconds.p50, overall.first_response_seconds.p99) == (10.0, 60.0)
    assert (overall.bot_first_response_seconds.count, overall.bot_first_response_seconds.mean) == (1, 10.0)
    assert (overall.human_first_response_seconds.count, overall.human_first_response_seconds.mean) == (
        1,
        60.0,
    )
    assert (overall.messages.mean, overall.messages.p50, overall.messages.p90) == (2.0, 2.0, 3.0)

    by_channel = {g.key: g for g in await core.metrics(T0, T0 + 1000, "channel")}
    assert {k: g.conversations for k, g in by_channel.items()} == {"x": 2, "messenger": 1}
    assert by_channel["messenger"].first_response_seconds.count == 0
    by_intent = {g.key: g.conversations for g in await core.metrics(T0, T0 + 1000, "intent")}
    assert by_intent == {"complaint": 2, "question": 1}
    by_team = {g.key: g.conversations for g in await core.metrics(T0, T0 + 1000, "team")}
    assert by_team == {"billing": 2, "none": 1}
    assert [g.conversations for g in await core.metrics(T0, T0 + 10_000)] == [4]
    # No end: up to now (the clock is at T0), so what was sent later (B, C, D) is left out.
    assert [g.conversations for g in await core.metrics(T0, None)] == [1]

    # A and C are resolved: A had the brand's reply, C none (abandoned); B (bot) was never with a team.
    for n, first in enumerate(("x:a1", "messenger:c1", "x:b1")):
        resolved = EventRecord("conversation.resolved", conversation_id_for(first), "", T0 + 400, {})
        await core.apply_events([(f"{n + 1}-0", resolved)])
    by_team_abandoned = {g.key: g.abandoned for g in await core.metrics(T0, T0 + 1000, "team")}
    assert by_team_abandoned == {"billing": 1, "none": 0}
    with pytest.raises(InvalidArgument):
        await core.metrics(T0, T0 + 1, "colour")
    # Read a conversation per round trip, the figures are the same.
    whole = {g: await core.metrics(T0, T0 + 10_000, g) for g in GROUP_BY}
    core.metrics_reader.chunk = 1
    assert {g: await core.metrics(T0, T0 + 10_000, g) for g in GROUP_BY} == whole
    # Several groupings of one window asked at once share one read of it; the next call reads again.
    reader, reads = core.metrics_reader, []
    read = reader._read

    async def counted(start: float, end: float | None) -> list[Entry]:
        reads.append((start, end))
        return await read(start, end)

    reader._read = counted  # type: ignore[method-assign]
    together = await asyncio.gather(*(core.metrics(T0, T0 + 10_000, g) for g in GROUP_BY))
    assert dict(zip(GROUP_BY, together, strict=True)) == whole and len(reads) == 1
    assert await core.metrics(T0, T0 + 10_000, "team") == whole["team"] and len(reads) == 2


async def test_a_filtered_listing_reads_a_bounded_part_of_the_index_per_call(core: Conversations) -> None:
    for i in range(40):
        await core.thread([msg(f"s{i}", author="Alice_Q" if i in (3, 30) else f"other{i}", at=i)])
    hers = {conversation_id_for("x:s30"), conversation_id_for("x:s3")}
    found, token = await core.list(owner_handle="alice_q", page_size=5)
    assert {s.conversation_id for s in found} == hers and token == ""
    core.reader.scan_limit = 16  # one chunk of the index per call
    pages, token = [], ""
    while True:
        found, token = await core.list(owner_handle="alice_q", page_size=5, page_token=token)
        pages.append([s.conversation_id for s in found])
        if not token:
            break
    # 40 entries, at most 16 read a call: three calls, each page with fewer than page_size, both found once.
    assert len(pages) == 3 and sorted(c for page in pages for c in page) == sorted(hers)


async def test_list_finds_a_customer_by_handle(core: Conversations) -> None:
    for i in range(6):
        await core.thread([msg(f"h{i}", author="Alice_Q" if i % 3 == 0 else f"other{i}", at=i)])
    found, token = await core.list(owner_handle="@alice_q", page_size=1)
    assert [s.owner.handle for s in found] == ["Alice_Q"] and token
    rest, token = await core.list(owner_handle="alice_q", page_size=1, page_token=token)
    assert {s.conversation_id for s in found + rest} == {conversation_id_for(m) for m in ("x:h3", "x:h0")}
    assert token == ""
    assert (await core.list(owner_handle="nobody"))[0] == []
