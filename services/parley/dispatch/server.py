"""Start the dispatch service: the gRPC API plus the delivery loop as a background task."""

from __future__ import annotations

import asyncio

from parley import rpc, store
from parley.clock import SystemClock
from parley.config import Settings
from parley.dispatch.adapters import AdapterRegistry
from parley.dispatch.dispatcher import Dispatcher
from parley.dispatch.servicer import DispatchServicer
from parley.supervision import start_up
from parley.v1 import dispatch_pb2, dispatch_pb2_grpc

SERVICE_NAME = dispatch_pb2.DESCRIPTOR.services_by_name["DispatchService"].full_name


async def create_server(settings: Settings, address: str) -> rpc.RunningServer:
    redis = store.connect(settings)
    clock = SystemClock()
    adapters = AdapterRegistry.from_settings(settings, clock)
    dispatcher = Dispatcher(settings, redis, store.keys_for(settings), clock, adapters)
    # Redis may still be loading its data (or not up yet): wait for it rather than exit.
    await start_up(redis, settings, "dispatch start-up", dispatcher.start)
    add = dispatch_pb2_grpc.add_DispatchServiceServicer_to_server
    running = await rpc.start_server(settings, address, [(add, DispatchServicer(dispatcher), SERVICE_NAME)])
    loop_task = asyncio.create_task(dispatcher.run(), name="dispatch-delivery-loop")

    async def close_redis() -> None:
        await adapters.aclose()
        await redis.aclose()

    async def stop_loop() -> None:
        # The round in flight may finish within the grace period: a network call cut short leaves its part
        # in doubt. Past it, the attempt stays pending in the stream and the next loop re-claims it.
        dispatcher.stop()
        await rpc.stop_background([loop_task], settings.shutdown_grace_seconds)

    # on_stop runs in reverse: the loop stops before its Redis client closes.
    running.on_stop.append(close_redis)
    running.on_stop.append(stop_loop)
    return running
