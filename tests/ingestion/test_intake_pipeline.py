"""What the intake accepts, the pipeline carries through: every service's real gRPC server, a real worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from parley.events import read_all
from parley.ingestion.inbound_log import InboundLog
from parley.rpc import channel
from parley.store import Keys, Redis
from parley.suite import InProcessSuite
from parley.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc


@pytest.fixture
async def suite(settings, redis) -> AsyncIterator[InProcessSuite]:
    running = await InProcessSuite.start(settings, workers=1)
    yield running
    await running.stop()


async def events_for(redis: Redis, keys: Keys, message_id: str) -> list[str]:
    return [event.type for _, event in await read_all(redis, keys) if event.message_id == message_id]


# No text, or WhatsApp's blank caption as it is sent.
@pytest.mark.parametrize("text", ["", " "])
async def test_a_photo_without_text_is_threaded_triaged_and_routed(
    suite: InProcessSuite, redis: Redis, keys: Keys, text: str
) -> None:
    photo = common_pb2.InboundMessage(
        channel=common_pb2.CHANNEL_WHATSAPP,
        visibility=common_pb2.VISIBILITY_PRIVATE,
        platform_message_id="wamid.photo-only",
        brand_account_id="109874315563201",
        author=common_pb2.Author(id="48601234567"),
        text=text,
        attachments=[common_pb2.Attachment(type="image", mime_type="image/jpeg", platform_id="1735628214")],
    )
    async with channel(suite.settings, suite.address("ingestion")) as ch:
        reply = await ingestion_pb2_grpc.IngestionServiceStub(ch).Ingest(
            ingestion_pb2.IngestRequest(messages=[photo])
        )
    assert reply.results[0].status == ingestion_pb2.INGEST_STATUS_ACCEPTED
    seen: list[str] = []
    for _ in range(200):
        seen = await events_for(redis, keys, "whatsapp:wamid.photo-only")
        if "message.processed" in seen:
            break
        await asyncio.sleep(0.05)
    assert "conversation.routed" in seen and "message.processed" in seen
    assert await InboundLog(suite.settings, redis, keys).dead_letters() == []
