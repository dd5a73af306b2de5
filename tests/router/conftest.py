"""Router fixtures: a core on a manual clock, and a client of a router server started in the test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from parley.clock import ManualClock
from parley.config import Settings
from parley.router.core import Router
from parley.router.server import create_server
from parley.rpc import channel, wait_ready
from parley.store import Keys, Redis
from parley.v1 import router_pb2_grpc


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def router(settings: Settings, redis: Redis, keys: Keys, clock: ManualClock) -> Router:
    return Router(settings, redis, keys, clock)


@pytest.fixture
async def stub(settings: Settings, redis: Redis) -> AsyncIterator[router_pb2_grpc.RouterServiceStub]:
    # The background loop is exercised step by step in test_router_loop; here it would race the assertions.
    running = await create_server(settings, "127.0.0.1:0", watch_poll_ms=50, run_background=False)
    address = f"127.0.0.1:{running.port}"
    await wait_ready(address)
    async with channel(settings, address) as ch:
        yield router_pb2_grpc.RouterServiceStub(ch)
    await running.stop(0.1)
