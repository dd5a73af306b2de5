"""Partition counts place the data (a message's log partition and de-duplication mark, an event's stream, a
conversation's listing index, a reply's outbox), so a process configured with other counts than the data was
written with refuses to start instead of silently missing it: a duplicate accepted, a conversation no longer
listed, a reply never sent."""

from __future__ import annotations

import pytest

from parley.config import Settings
from parley.ingestion.server import create_server
from parley.store import LayoutMismatch, Redis, check_layout


async def test_the_first_process_records_the_counts_and_the_same_ones_start_again(
    settings: Settings, redis: Redis
) -> None:
    await check_layout(redis, settings)
    stored = await redis.hgetall(f"{settings.key_prefix}:layout")
    assert stored[b"stream_partitions"] == str(settings.stream_partitions).encode()
    assert stored[b"index_partitions"] == str(settings.index_partitions).encode()
    await check_layout(redis, settings)  # a restart, or a second replica of a service


@pytest.mark.parametrize(
    "name", ["stream_partitions", "event_partitions", "index_partitions", "dispatch_partitions"]
)
async def test_other_counts_are_refused_with_what_the_data_was_written_with(
    settings: Settings, redis: Redis, name: str
) -> None:
    await check_layout(redis, settings)
    written = getattr(settings, name)
    changed = settings.model_copy(update={name: written + 1})
    with pytest.raises(LayoutMismatch) as refused:
        await check_layout(redis, changed)
    assert f"PARLEY_{name.upper()}={written}" in str(refused.value)
    assert f"{name}={written + 1}" in str(refused.value)


async def test_a_service_configured_otherwise_does_not_start(settings: Settings, redis: Redis) -> None:
    await check_layout(redis, settings)
    changed = settings.model_copy(update={"stream_partitions": settings.stream_partitions * 2})
    with pytest.raises(LayoutMismatch):
        await create_server(changed, "127.0.0.1:0")
    running = await create_server(settings, "127.0.0.1:0")  # as configured before, it does
    await running.stop(0)
