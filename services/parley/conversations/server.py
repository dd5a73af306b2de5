"""Starts the conversations service: `parley serve conversations` and tests call `create_server`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from parley import rpc, store
from parley.clock import Clock, SystemClock
from parley.config import Settings
from parley.supervision import start_up
from parley.v1 import conversations_pb2, conversations_pb2_grpc, dispatch_pb2, dispatch_pb2_grpc

from .core import Conversations
from .follower import ensure_group, run_follower, run_sweeper
from .servicer import ConversationsServicer

log = logging.getLogger(__name__)

SERVICE_NAME = conversations_pb2.DESCRIPTOR.services_by_name["ConversationsService"].full_name


async def create_server(settings: Settings, address: str, clock: Clock | None = None) -> rpc.RunningServer:
    redis = store.connect(settings)
    core = Conversations(settings, redis, store.keys_for(settings), clock or SystemClock())
    # Erasure asks dispatch to redact the replies it holds (it connects on first use).
    dispatch = rpc.channel(settings, settings.address("dispatch"))
    # The generated gRPC module is untyped unless its stubs are generated too.
    dispatch_stub = dispatch_pb2_grpc.DispatchServiceStub(dispatch)  # type: ignore[no-untyped-call, unused-ignore]

    def erase_replies(
        request: dispatch_pb2.EraseRepliesRequest,
    ) -> Awaitable[dispatch_pb2.EraseRepliesResponse]:  # a gRPC call object, awaited for the reply
        call: Awaitable[dispatch_pb2.EraseRepliesResponse] = dispatch_stub.EraseReplies(
            request, timeout=settings.rpc_timeout_seconds
        )
        return call

    try:
        # The group exists before the server answers, so no event published after start-up is missed; Redis
        # may still be loading its data (or not up yet): the server waits for it rather than exit.
        await start_up(redis, settings, "conversations start-up", lambda: ensure_group(redis, core.keys.keys))
        running = await rpc.start_server(
            settings,
            address,
            [
                (
                    conversations_pb2_grpc.add_ConversationsServiceServicer_to_server,
                    ConversationsServicer(settings, core, erase_replies),
                    SERVICE_NAME,
                )
            ],
        )
    except BaseException:
        await dispatch.close()
        await redis.aclose()
        raise
    tasks = [
        asyncio.create_task(run_follower(core, settings)),
        asyncio.create_task(run_sweeper(core, settings)),
    ]

    async def stop_tasks() -> None:
        await rpc.stop_background(tasks, grace=0)  # cancelled at once, waited for a bounded while

    running.on_stop.append(redis.aclose)
    running.on_stop.append(dispatch.close)
    running.on_stop.append(stop_tasks)  # cleanups run last-first: the tasks stop before Redis closes
    return running
