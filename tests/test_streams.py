"""Server streams are bounded: per server and per token subject, on the real ingestion and router servers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest
from auth_kit import token

from parley import rpc
from parley.authz import ADMIN, SUPERVISOR
from parley.config import Settings
from parley.suite import start_service
from parley.v1 import ingestion_pb2, ingestion_pb2_grpc, router_pb2, router_pb2_grpc


@contextlib.asynccontextmanager
async def server(settings: Settings, name: str) -> AsyncIterator[str]:
    running = await start_service(name, settings, "127.0.0.1:0")
    try:
        yield f"127.0.0.1:{running.port}"
    finally:
        await running.stop(0)


async def opened(call: grpc.aio.UnaryStreamCall) -> grpc.StatusCode | None:
    """None while the stream stays open (admitted); else the code it ended with. The call is only watched:
    cancelling a read would cancel the stream itself."""
    try:
        return await asyncio.wait_for(asyncio.shield(call.code()), timeout=0.5)
    except TimeoutError:
        return None


async def test_watch_events_admits_a_bounded_number_of_streams_per_caller(settings: Settings) -> None:
    limited = settings.model_copy(update={"stream_max_per_caller": 2})
    async with server(limited, "ingestion") as address:
        ann = token(limited, "ann", SUPERVISOR)
        bob = token(limited, "bob", SUPERVISOR)
        async with (
            rpc.channel(limited, address, token=ann) as ch,
            rpc.channel(limited, address, token=bob) as b,
        ):
            stub, other = (
                ingestion_pb2_grpc.IngestionServiceStub(ch),
                ingestion_pb2_grpc.IngestionServiceStub(b),
            )
            first = stub.WatchEvents(ingestion_pb2.WatchEventsRequest())
            second = stub.WatchEvents(ingestion_pb2.WatchEventsRequest())
            assert await opened(first) is None and await opened(second) is None
            third = stub.WatchEvents(ingestion_pb2.WatchEventsRequest())
            assert await opened(third) == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "limit per caller" in await third.details()
            assert await opened(other.WatchEvents(ingestion_pb2.WatchEventsRequest())) is None  # bob's own
            first.cancel()
            await asyncio.sleep(0.2)  # a closed stream frees its place
            assert await opened(stub.WatchEvents(ingestion_pb2.WatchEventsRequest())) is None


@pytest.mark.parametrize("cap", [1, 3])
async def test_watch_assignments_admits_a_bounded_number_of_streams_per_server(
    settings: Settings, cap: int
) -> None:
    limited = settings.model_copy(update={"stream_max": cap, "stream_max_per_caller": 100})
    async with server(limited, "router") as address:
        callers = [token(limited, f"sup{i}", SUPERVISOR, ADMIN) for i in range(cap + 1)]
        channels = [rpc.channel(limited, address, token=t) for t in callers]
        try:
            stubs = [router_pb2_grpc.RouterServiceStub(c) for c in channels]
            request = router_pb2.WatchAssignmentsRequest(agent_id="ann")
            await stubs[0].SetPresence(
                router_pb2.SetPresenceRequest(
                    agent_id="ann", presence=router_pb2.PRESENCE_ONLINE, teams=["billing"]
                )
            )
            for stub in stubs[:cap]:
                assert await opened(stub.WatchAssignments(request)) is None
            refused = stubs[cap].WatchAssignments(request)
            assert await opened(refused) == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "its limit" in await refused.details()
        finally:
            for c in channels:
                await c.close()
