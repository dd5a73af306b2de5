"""A Redis (or Redis Cluster) out of reach reads as UNAVAILABLE, which callers retry, not UNKNOWN."""

from __future__ import annotations

import grpc
import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from parley import rpc
from parley.clock import SystemClock
from parley.config import Settings
from parley.conversations.core import Conversations
from parley.conversations.server import SERVICE_NAME
from parley.conversations.servicer import ConversationsServicer
from parley.store import keys_for
from parley.v1 import conversations_pb2, conversations_pb2_grpc

NOTHING_LISTENS = "redis://127.0.0.1:1/0"


@pytest.mark.parametrize("cluster", [False, True], ids=["redis", "cluster"])
async def test_an_unreachable_store_answers_unavailable(settings: Settings, cluster: bool) -> None:
    redis = RedisCluster.from_url(NOTHING_LISTENS) if cluster else aioredis.Redis.from_url(NOTHING_LISTENS)
    core = Conversations(settings, redis, keys_for(settings), SystemClock())
    servicer = ConversationsServicer(settings, core)
    running = await rpc.start_server(
        settings,
        "127.0.0.1:0",
        [(conversations_pb2_grpc.add_ConversationsServiceServicer_to_server, servicer, SERVICE_NAME)],
    )
    try:
        async with rpc.channel(settings, f"127.0.0.1:{running.port}") as ch:
            stub = conversations_pb2_grpc.ConversationsServiceStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.GetConversation(conversations_pb2.GetConversationRequest(conversation_id="cv-1"))
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "retry" in (error.value.details() or "")
    finally:
        await running.stop(0.1)
        await redis.aclose()
