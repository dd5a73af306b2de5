"""DispatchService over gRPC, on the real server with its delivery loop running."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
import pytest
from dispatch_samples import log_lines, make_reply

from parley import rpc
from parley.config import Settings
from parley.dispatch.server import create_server
from parley.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc

SENT = dispatch_pb2.DELIVERY_STATUS_SENT
PENDING = dispatch_pb2.DELIVERY_STATUS_PENDING


@pytest.fixture
async def stub(
    dispatch_settings: Settings, redis: object
) -> AsyncIterator[dispatch_pb2_grpc.DispatchServiceStub]:
    running = await create_server(dispatch_settings, "127.0.0.1:0")
    channel = rpc.channel(dispatch_settings, f"127.0.0.1:{running.port}")
    try:
        yield dispatch_pb2_grpc.DispatchServiceStub(channel)
    finally:
        await channel.close()
        await running.stop(dispatch_settings.shutdown_grace_seconds)


async def wait_until_settled(
    stub: dispatch_pb2_grpc.DispatchServiceStub, reply_id: str
) -> dispatch_pb2.Delivery:
    """Poll GetDelivery until the delivery loop has dealt with the reply (bounded, not a timing assertion)."""
    for _ in range(400):
        response = await stub.GetDelivery(dispatch_pb2.GetDeliveryRequest(reply_id=reply_id), timeout=5)
        if response.delivery.status not in (PENDING, dispatch_pb2.DELIVERY_STATUS_RETRYING):
            return response.delivery
        await asyncio.sleep(0.025)
    raise AssertionError(f"{reply_id} still {response.delivery.status}")


async def test_send_reply_is_delivered(
    stub: dispatch_pb2_grpc.DispatchServiceStub, dispatch_settings: Settings
) -> None:
    replies = [
        make_reply("bot:x:100", text=" ".join(["update"] * 100)),
        make_reply(
            "bot:whatsapp:wamid.1",
            text="Your order ships today.",
            channel=common_pb2.CHANNEL_WHATSAPP,
            visibility=common_pb2.VISIBILITY_PRIVATE,
            in_reply_to_id="",
            recipient_id="15551234567",
            conversation_id="conv-2",
        ),
    ]
    response = await stub.SendReply(dispatch_pb2.SendReplyRequest(replies=replies), timeout=5)
    assert [d.reply_id for d in response.deliveries] == ["bot:x:100", "bot:whatsapp:wamid.1"]
    assert {d.status for d in response.deliveries} <= {PENDING, SENT}

    thread = await wait_until_settled(stub, "bot:x:100")
    dm = await wait_until_settled(stub, "bot:whatsapp:wamid.1")
    assert (thread.status, len(thread.platform_message_ids)) == (SENT, 3)
    assert (dm.status, len(dm.platform_message_ids), dm.channel) == (SENT, 1, common_pb2.CHANNEL_WHATSAPP)

    # Sending the same batch again changes nothing: same deliveries, no new lines.
    again = await stub.SendReply(dispatch_pb2.SendReplyRequest(replies=replies), timeout=5)
    assert [list(d.platform_message_ids) for d in again.deliveries] == [
        list(thread.platform_message_ids),
        list(dm.platform_message_ids),
    ]
    lines = [json.loads(line) for line in log_lines(dispatch_settings.dispatch_log_path)]
    assert sorted(line["platform_id"] for line in lines) == sorted(
        [*thread.platform_message_ids, *dm.platform_message_ids]
    )


async def test_invalid_send_reply_names_each_field(stub: dispatch_pb2_grpc.DispatchServiceStub) -> None:
    request = dispatch_pb2.SendReplyRequest(
        replies=[
            make_reply("ok"),
            make_reply("", text=""),
            make_reply("r3", channel=common_pb2.CHANNEL_MESSENGER, visibility=common_pb2.VISIBILITY_PUBLIC),
            make_reply("r4", in_reply_to_id=""),
        ]
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.SendReply(request, timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in rpc.field_violations(raised.value)] == [
        "replies[1].reply_id",
        "replies[1].text",
        "replies[2].visibility",
        "replies[3].in_reply_to_id",
    ]

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.SendReply(dispatch_pb2.SendReplyRequest(), timeout=5)
    assert rpc.field_violations(raised.value)[0][0] == "replies"


async def test_get_delivery_errors(stub: dispatch_pb2_grpc.DispatchServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetDelivery(dispatch_pb2.GetDeliveryRequest(reply_id="bot:x:unknown"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetDelivery(dispatch_pb2.GetDeliveryRequest(), timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in rpc.field_violations(raised.value)] == ["reply_id"]
