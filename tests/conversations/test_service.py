"""The conversations service through its real gRPC server: the calls, field violations and NOT_FOUND."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from parley import rpc
from parley.clock import ManualClock, to_timestamp
from parley.config import Settings
from parley.conversations.server import create_server
from parley.store import Redis
from parley.v1 import common_pb2, conversations_pb2, conversations_pb2_grpc

from .builders import T0, msg

S = conversations_pb2


@pytest.fixture
async def stub(
    settings: Settings, redis: Redis, clock: ManualClock
) -> AsyncIterator[conversations_pb2_grpc.ConversationsServiceStub]:
    running = await create_server(settings.model_copy(update={"max_batch": 3}), "127.0.0.1:0", clock=clock)
    channel = rpc.channel(settings, f"127.0.0.1:{running.port}")
    try:
        yield conversations_pb2_grpc.ConversationsServiceStub(channel)
    finally:
        await channel.close()
        await running.stop(0)


async def violations_of(call) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return [f for f, _ in rpc.field_violations(error.value)]


async def test_thread_outcomes_get_list_metrics(
    stub: conversations_pb2_grpc.ConversationsServiceStub,
) -> None:
    reply = await stub.Thread(
        S.ThreadRequest(
            messages=[
                msg("1", at=0),
                msg("2", reply_to="1", author="bob", at=5),
                msg("3", outbound=True, reply_to="2", at=50),
            ]
        )
    )
    cid = reply.results[0].conversation_id
    assert [r.conversation_id for r in reply.results] == [cid] * 3
    assert [r.role for r in reply.results] == [
        S.PARTICIPANT_ROLE_OWNER,
        S.PARTICIPANT_ROLE_PARTICIPANT,
        S.PARTICIPANT_ROLE_BRAND,
    ]
    assert list(reply.results[1].context) == ["text of 1"]

    recorded = await stub.RecordOutcomes(
        S.RecordOutcomesRequest(
            outcomes=[
                S.Outcome(
                    conversation_id=cid,
                    message_id="x:1",
                    triage=common_pb2.Triage(
                        message_id="x:1", intent=common_pb2.INTENT_URGENT, topic="outage"
                    ),
                    routing=common_pb2.RoutingDecision(
                        conversation_id=cid,
                        message_id="x:1",
                        action=common_pb2.ROUTE_ACTION_QUEUED,
                        team="tech",
                    ),
                )
            ]
        )
    )
    assert recorded.recorded == 1

    conv = (await stub.GetConversation(S.GetConversationRequest(conversation_id=cid))).conversation
    assert conv.state == S.CONVERSATION_STATE_QUEUED
    assert [m.message.message_id for m in conv.messages] == ["x:1", "x:2", "x:3"]
    assert conv.messages[0].triage.topic == "outage"
    assert [t.state for t in conv.transitions] == [S.CONVERSATION_STATE_NEW, S.CONVERSATION_STATE_QUEUED]

    listed = await stub.ListConversations(S.ListConversationsRequest(state=S.CONVERSATION_STATE_QUEUED))
    assert [(c.conversation_id, c.message_count, c.team) for c in listed.conversations] == [(cid, 3, "tech")]
    assert listed.next_page_token == ""

    metrics = await stub.GetMetrics(
        S.GetMetricsRequest(start=to_timestamp(T0), end=to_timestamp(T0 + 3600), group_by="intent")
    )
    [group] = metrics.groups
    assert (group.key, group.conversations, group.first_response_seconds.mean) == ("urgent", 1, 50.0)


async def test_field_violations(stub: conversations_pb2_grpc.ConversationsServiceStub) -> None:
    bad = msg("2")
    bad.message_id = ""
    bad.author.id = ""
    assert await violations_of(stub.Thread(S.ThreadRequest(messages=[msg("1"), msg("3"), bad]))) == [
        "messages[2].message_id",
        "messages[2].author.id",
    ]
    assert await violations_of(stub.Thread(S.ThreadRequest(messages=[msg(str(i)) for i in range(4)]))) == [
        "messages"
    ]
    assert await violations_of(stub.GetConversation(S.GetConversationRequest())) == ["conversation_id"]
    assert await violations_of(stub.ListConversations(S.ListConversationsRequest(page_size=-1))) == [
        "page_size"
    ]
    assert await violations_of(stub.ListConversations(S.ListConversationsRequest(page_token="@@"))) == [
        "page_token"
    ]
    assert await violations_of(stub.RecordOutcomes(S.RecordOutcomesRequest(outcomes=[S.Outcome()]))) == [
        "outcomes[0].conversation_id",
        "outcomes[0].message_id",
    ]
    assert await violations_of(stub.GetMetrics(S.GetMetricsRequest(group_by="weather"))) == ["group_by"]
    # Nothing was threaded by the refused calls.
    assert (await stub.ListConversations(S.ListConversationsRequest())).conversations == []


async def test_not_found(stub: conversations_pb2_grpc.ConversationsServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.GetConversation(S.GetConversationRequest(conversation_id="cv-unknown"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.RecordOutcomes(
            S.RecordOutcomesRequest(outcomes=[S.Outcome(conversation_id="cv-unknown", message_id="x:1")])
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_profile_calls_name_bad_fields_and_unknown_customers(
    stub: conversations_pb2_grpc.ConversationsServiceStub,
) -> None:
    assert await violations_of(stub.GetProfile(S.GetProfileRequest())) == [
        "identity.channel",
        "identity.author_id",
    ]
    bad = S.LinkIdentitiesRequest(
        identity=S.Identity(channel=common_pb2.CHANNEL_X), other=S.Identity(author_id="1")
    )
    assert await violations_of(stub.LinkIdentities(bad)) == ["identity.author_id", "other.channel"]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.GetProfile(
            S.GetProfileRequest(identity=S.Identity(channel=common_pb2.CHANNEL_X, author_id="nobody"))
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_get_conversation_by_one_of_its_message_ids(
    stub: conversations_pb2_grpc.ConversationsServiceStub,
) -> None:
    reply = await stub.Thread(S.ThreadRequest(messages=[msg("m1", at=0), msg("m2", reply_to="m1", at=5)]))
    cid = reply.results[0].conversation_id
    second = reply.results[1].message_id
    got = await stub.GetConversation(S.GetConversationRequest(message_id=second))
    assert got.conversation.conversation_id == cid and len(got.conversation.messages) == 2
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetConversation(S.GetConversationRequest(message_id="x:never-seen"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    both = S.GetConversationRequest(conversation_id=cid, message_id=second)
    assert await violations_of(stub.GetConversation(both)) == ["message_id"]


@pytest.mark.parametrize(
    "field, outcome",
    [
        ("outcomes[0].triage.intent", S.Outcome(triage=common_pb2.Triage(intent=99))),
        ("outcomes[0].triage.model_intent", S.Outcome(triage=common_pb2.Triage(model_intent=99))),
        ("outcomes[0].routing.action", S.Outcome(routing=common_pb2.RoutingDecision(action=99))),
    ],
)
async def test_an_undefined_enum_value_is_refused_and_not_stored(
    stub: conversations_pb2_grpc.ConversationsServiceStub, field: str, outcome: S.Outcome
) -> None:
    [threaded] = (await stub.Thread(S.ThreadRequest(messages=[msg("1")]))).results
    outcome.conversation_id, outcome.message_id = threaded.conversation_id, "x:1"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.RecordOutcomes(S.RecordOutcomesRequest(outcomes=[outcome]))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = rpc.field_violations(error.value)
    assert [f for f, _ in violations] == [field]
    assert "99 is not a defined" in violations[0][1]
    stored = await stub.GetConversation(S.GetConversationRequest(conversation_id=threaded.conversation_id))
    assert all(m.triage.intent != 99 for m in stored.conversation.messages)
