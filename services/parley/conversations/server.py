"""Starts the conversations service: `parley serve conversations` and tests call `create_server`."""

from __future__ import annotations

from parley import rpc, store
from parley.clock import Clock, SystemClock
from parley.config import Settings
from parley.v1 import conversations_pb2, conversations_pb2_grpc

from .core import Conversations
from .servicer import ConversationsServicer

SERVICE_NAME = conversations_pb2.DESCRIPTOR.services_by_name["ConversationsService"].full_name


async def create_server(settings: Settings, address: str, clock: Clock | None = None) -> rpc.RunningServer:
    redis = store.connect(settings)
    core = Conversations(settings, redis, store.keys_for(settings), clock or SystemClock())
    try:
        running = await rpc.start_server(
            settings,
            address,
            [
                (
                    conversations_pb2_grpc.add_ConversationsServiceServicer_to_server,
                    ConversationsServicer(settings, core),
                    SERVICE_NAME,
                )
            ],
        )
    except BaseException:
        await redis.aclose()
        raise
    running.on_stop.append(redis.aclose)
    return running
