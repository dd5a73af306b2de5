"""Reading the inbound log in tests: every entry, through its one consumer group, left pending."""

from __future__ import annotations

from parley.ingestion.inbound_log import InboundLog, LogEntry
from parley.pipeline.consumer import StreamEntry


async def logged_entries(log: InboundLog, consumer: str = "reader") -> list[LogEntry]:
    """Every entry of the inbound log, read through its consumer group and left pending."""
    reader = log.reader(consumer)
    await reader.ensure_group()
    taken: list[StreamEntry] = []

    async def hold(entries: list[StreamEntry]) -> list[str]:
        taken.extend(entries)
        return [e.entry_id for e in entries]

    await reader.once(hold, 10)
    return [log.decode(e) for e in taken]
