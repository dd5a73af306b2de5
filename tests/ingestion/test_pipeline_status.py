"""GetPipeline and RequeueDeadLetter through the real ingestion server: partitions and dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from parley.config import Settings
from parley.ingestion.inbound_log import InboundLog
from parley.ingestion.server import create_server
from parley.pipeline.consumer import StreamEntry
from parley.rpc import RunningServer, channel, field_violations
from parley.store import Keys, Redis
from parley.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc


def make(pid: str, author: str) -> common_pb2.InboundMessage:
    return common_pb2.InboundMessage(
        channel=common_pb2.CHANNEL_X,
        visibility=common_pb2.VISIBILITY_PRIVATE,
        platform_message_id=pid,
        brand_account_id="brand",
        author=common_pb2.Author(id=author, handle=author),
        text=f"message {pid}",
    )


class Hold:
    """A handler of the log's reader that keeps every entry it is given pending (read, not acked)."""

    def __init__(self) -> None:
        self.entries: list[StreamEntry] = []

    async def __call__(self, entries: list[StreamEntry]) -> list[str]:
        self.entries += entries
        return [e.entry_id for e in entries]


@pytest.fixture
async def server(settings: Settings, redis: Redis) -> AsyncIterator[RunningServer]:
    running = await create_server(settings, "127.0.0.1:0")
    yield running
    await running.stop(0)


@pytest.fixture
async def stub(
    settings: Settings, server: RunningServer
) -> AsyncIterator[ingestion_pb2_grpc.IngestionServiceStub]:
    async with channel(settings, f"127.0.0.1:{server.port}") as ch:
        yield ingestion_pb2_grpc.IngestionServiceStub(ch)


async def test_partitions_report_backlog_pending_lag_and_age(
    settings: Settings, redis: Redis, keys: Keys, stub: ingestion_pb2_grpc.IngestionServiceStub
) -> None:
    empty = await stub.GetPipeline(ingestion_pb2.GetPipelineRequest())
    assert [p.partition for p in empty.partitions] == list(range(settings.stream_partitions))
    assert all(p.backlog == p.pending == p.lag == 0 for p in empty.partitions) and not empty.workers

    messages = [make(str(i), f"u{i}") for i in range(12)]
    await stub.Ingest(ingestion_pb2.IngestRequest(messages=messages))
    reader = InboundLog(settings, redis, keys).reader("w1")
    await reader.ensure_group()
    held = Hold()
    await reader.once(held, 10)  # every entry read and left pending
    await stub.Ingest(ingestion_pb2.IngestRequest(messages=[make(f"n{i}", "ann") for i in range(5)]))
    await asyncio.sleep(0.02)  # the oldest entries are measurably old
    status = (await stub.GetPipeline(ingestion_pb2.GetPipelineRequest())).partitions
    assert len(held.entries) == 12
    assert sum(p.backlog for p in status) == 17 and sum(p.pending for p in status) == 12
    assert sum(p.lag for p in status) == 5  # logged after the read, not yet read
    for p in status:
        assert p.lag == p.backlog - p.pending
        assert (p.oldest_age_seconds > 0) == (p.backlog > 0)
    (worker,) = (await stub.GetPipeline(ingestion_pb2.GetPipelineRequest())).workers
    assert (worker.name, worker.pending) == ("w1", 12) and worker.idle_seconds >= 0.02
    await reader.ack(held.entries)
    status = (await stub.GetPipeline(ingestion_pb2.GetPipelineRequest())).partitions
    assert sum(p.backlog for p in status) == 5 and sum(p.pending for p in status) == 0


async def test_a_dead_letter_is_listed_with_its_reason_and_requeued_once(
    settings: Settings, redis: Redis, keys: Keys, stub: ingestion_pb2_grpc.IngestionServiceStub
) -> None:
    await stub.Ingest(ingestion_pb2.IngestRequest(messages=[make("bad", "ann"), make("ok", "bob")]))
    log = InboundLog(settings, redis, keys)
    reader = log.reader("w1")
    await reader.ensure_group()
    held = Hold()
    await reader.once(held, 10)
    entries = {log.decode(e).message.message_id: e for e in held.entries}
    await log.dead_letter(log.decode(entries["x:bad"]), "classify", "INVALID_ARGUMENT: items[0].text: empty")
    await reader.ack([entries["x:ok"]])

    got = await stub.GetPipeline(ingestion_pb2.GetPipelineRequest())
    assert got.dead_letter_count == 1
    (letter,) = got.dead_letters
    assert (letter.message_id, letter.stage) == ("x:bad", "classify")
    assert letter.reason.startswith("INVALID_ARGUMENT") and letter.message.text == "message bad"
    assert sum(p.backlog for p in got.partitions) == 0

    requeued = await stub.RequeueDeadLetter(ingestion_pb2.RequeueDeadLetterRequest(message_id="x:bad"))
    assert requeued.partition == letter.partition
    again = Hold()
    await reader.once(again, 10)
    (entry,) = again.entries
    assert log.decode(entry).message == letter.message and entry.entry_id == requeued.entry_id
    after = await stub.GetPipeline(ingestion_pb2.GetPipelineRequest())
    assert after.dead_letter_count == 0 and not after.dead_letters

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.RequeueDeadLetter(ingestion_pb2.RequeueDeadLetterRequest(message_id="x:bad"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.RequeueDeadLetter(ingestion_pb2.RequeueDeadLetterRequest())
    assert [f for f, _ in field_violations(bad.value)] == ["message_id"]
