"""DispatchService over gRPC with every channel on its own API (the fake networks): SendReply, the delivery
loop, and GetDelivery for both halves of a reply the PII guard moved to private."""

from __future__ import annotations

import asyncio

from dispatch_samples import make_reply
from network_double import FakeNetwork

from parley import rpc
from parley.config import Settings
from parley.dispatch.server import create_server
from parley.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc

SENT = dispatch_pb2.DELIVERY_STATUS_SENT
UNSETTLED = (dispatch_pb2.DELIVERY_STATUS_PENDING, dispatch_pb2.DELIVERY_STATUS_RETRYING)


async def settled(stub: dispatch_pb2_grpc.DispatchServiceStub, reply_id: str) -> dispatch_pb2.Delivery:
    """Poll GetDelivery until the loop has dealt with the reply (bounded, not a timing assertion)."""
    for _ in range(400):
        response = await stub.GetDelivery(dispatch_pb2.GetDeliveryRequest(reply_id=reply_id), timeout=5)
        if response.delivery.status not in UNSETTLED:
            return response.delivery
        await asyncio.sleep(0.025)
    raise AssertionError(f"{reply_id} still {response.delivery.status}")


async def test_moved_reply_over_grpc(network_settings: Settings, network: FakeNetwork, redis: object) -> None:
    running = await create_server(network_settings, "127.0.0.1:0")
    channel = rpc.channel(network_settings, f"127.0.0.1:{running.port}")
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    try:
        public = make_reply("bot:x:900", text="We emailed jane.doe@example.com the label.", recipient_id="42")
        plain = make_reply(
            "bot:instagram:901",
            channel=common_pb2.CHANNEL_INSTAGRAM,
            in_reply_to_id="17900002",
            conversation_id="conv-3",
        )
        for r in (public, plain):
            r.brand_account_id = ""
        response = await stub.SendReply(dispatch_pb2.SendReplyRequest(replies=[public, plain]), timeout=5)
        assert [d.reply_id for d in response.deliveries] == ["bot:x:900", "bot:instagram:901"]
        assert response.deliveries[0].private_reply_id == "bot:x:900/private"
        deliveries = [await settled(stub, r) for r in ("bot:x:900", "bot:x:900/private", "bot:instagram:901")]
    finally:
        await channel.close()
        await running.stop(network_settings.shutdown_grace_seconds)
    assert [d.status for d in deliveries] == [SENT] * 3
    assert "jane.doe@example.com" not in " ".join(network.public_texts())
    assert sorted(p.kind for p in network.posted) == ["ig_reply", "tweet", "x_dm"]
