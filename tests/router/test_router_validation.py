"""Route validates like a public RPC: no phantom conversations, no invented enum values."""

from __future__ import annotations

import grpc
import pytest
from router_testkit import known_conversations, make_item

from parley.router.server import create_server
from parley.rpc import channel, field_violations, wait_ready
from parley.v1 import router_pb2, router_pb2_grpc


@pytest.fixture
async def stub(settings, redis):
    running = await create_server(settings, "127.0.0.1:0", watch_block_ms=50, run_background=False)
    address = f"127.0.0.1:{running.port}"
    await wait_ready(address)
    async with channel(settings, address) as ch:
        yield router_pb2_grpc.RouterServiceStub(ch)
    await running.stop(0.1)


async def refused(call) -> list[tuple[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return field_violations(error.value)


async def test_an_unknown_conversation_is_refused_and_never_assigned(stub, redis, keys):
    await known_conversations(redis, keys, "c1")
    await stub.SetPresence(
        router_pb2.SetPresenceRequest(agent_id="sue", presence=router_pb2.PRESENCE_ONLINE, capacity=5)
    )
    phantom = make_item("phantom", "x:9", "urgent")
    fields = await refused(
        stub.Route(router_pb2.RouteRequest(items=[make_item("c1", "x:1", "urgent"), phantom]))
    )
    assert [f for f, _ in fields] == ["items[1].conversation_id"]
    assert "unknown conversation" in fields[0][1]
    # Nothing of the batch was queued or assigned.
    queues = (await stub.ListQueues(router_pb2.ListQueuesRequest())).queues
    assert sum(q.depth for q in queues) == 0
    claimed = await stub.Claim(router_pb2.ClaimRequest(agent_id="sue"))
    assert not claimed.claimed


@pytest.mark.parametrize(
    "field, spoil",
    [
        ("items[0].triage.intent", lambda item: setattr(item.triage, "intent", 99)),
        ("items[0].message.channel", lambda item: setattr(item.message, "channel", 99)),
        ("items[0].message.visibility", lambda item: setattr(item.message, "visibility", 99)),
        ("items[0].message.direction", lambda item: setattr(item.message, "direction", 99)),
        ("items[0].triage.scores[0].intent", lambda item: item.triage.scores.add(intent=99, probability=1)),
    ],
)
async def test_an_undefined_enum_value_is_refused_by_name(stub, redis, keys, field, spoil):
    await known_conversations(redis, keys, "c1")
    item = make_item("c1", "x:1", "urgent")
    spoil(item)
    fields = await refused(stub.Route(router_pb2.RouteRequest(items=[item])))
    assert [f for f, _ in fields] == [field]
    assert "99 is not a defined" in fields[0][1]
