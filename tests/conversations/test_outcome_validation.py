"""RecordOutcomes validates like a public RPC: an invented enum value is refused, by field, and not stored."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from parley import rpc
from parley.clock import ManualClock
from parley.config import Settings
from parley.conversations.server import create_server
from parley.store import Redis
from parley.v1 import common_pb2, conversations_pb2, conversations_pb2_grpc

from .builders import msg

S = conversations_pb2


@pytest.fixture
async def stub(
    settings: Settings, redis: Redis, clock: ManualClock
) -> AsyncIterator[conversations_pb2_grpc.ConversationsServiceStub]:
    running = await create_server(settings, "127.0.0.1:0", clock=clock)
    channel = rpc.channel(settings, f"127.0.0.1:{running.port}")
    try:
        yield conversations_pb2_grpc.ConversationsServiceStub(channel)
    finally:
        await channel.close()
        await running.stop(0)


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
