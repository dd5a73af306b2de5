"""The inbound dead-letter list is bounded: it keeps the newest `dead_letter_maxlen` entries."""

from __future__ import annotations

from parley.clock import ManualClock
from parley.config import Settings
from parley.ingestion.inbound_log import InboundLog, LogEntry
from parley.ingestion.intake import normalize
from parley.store import Keys, Redis
from parley.v1 import common_pb2


async def test_the_dead_letter_list_keeps_only_the_newest(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    log = InboundLog(settings.model_copy(update={"dead_letter_maxlen": 2}), redis, keys)
    for i in range(4):
        message = normalize(
            common_pb2.InboundMessage(
                channel=common_pb2.CHANNEL_X,
                platform_message_id=str(i),
                brand_account_id="brand",
                author=common_pb2.Author(id="u1"),
                text="hello",
            ),
            ManualClock().now(),
        )
        await log.dead_letter(LogEntry(0, "0-1", message), "classify", "refused")
    assert [d["message_id"] for d in await log.dead_letters()] == ["x:2", "x:3"]
