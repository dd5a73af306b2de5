"""Starts RouterService: `create_server(settings, address)` is what `parley serve router` and tests call."""

from __future__ import annotations

from parley import store
from parley.clock import Clock, SystemClock
from parley.config import Settings
from parley.router.core import Router
from parley.router.policy import load_policy
from parley.router.servicer import RouterServicer
from parley.rpc import RunningServer, start_server
from parley.v1 import router_pb2_grpc

SERVICE_NAME = "parley.v1.RouterService"


async def create_server(
    settings: Settings, address: str, clock: Clock | None = None, watch_block_ms: int = 1000
) -> RunningServer:
    policy = load_policy(settings.policy_file)  # fail fast, before binding, on a bad policy
    redis = store.connect(settings)
    router = Router(settings, redis, store.keys_for(settings), clock or SystemClock(), policy)
    servicer = RouterServicer(settings, router, watch_block_ms)
    try:
        running = await start_server(
            settings, address, [(router_pb2_grpc.add_RouterServiceServicer_to_server, servicer, SERVICE_NAME)]
        )
    except BaseException:
        await redis.aclose()
        raise
    running.on_stop.append(redis.aclose)
    return running
