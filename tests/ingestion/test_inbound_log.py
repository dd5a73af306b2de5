"""InboundLog on a real Redis: de-duplicated appends, stable partitions, and the consumer group."""

from __future__ import annotations

import asyncio

import pytest
from redis import exceptions as redis_exceptions

from parley.clock import ManualClock
from parley.config import Settings
from parley.ingestion.inbound_log import ACCEPTED, DUPLICATE, InboundLog
from parley.ingestion.intake import normalize
from parley.store import Keys, Redis
from parley.v1 import common_pb2

NOW = ManualClock().now()


def make(pid: str, author: str = "u1", text: str = "hello") -> common_pb2.InboundMessage:
    return normalize(
        common_pb2.InboundMessage(
            channel=common_pb2.CHANNEL_X,
            visibility=common_pb2.VISIBILITY_PRIVATE,
            platform_message_id=pid,
            brand_account_id="brand",
            author=common_pb2.Author(id=author),
            text=text,
        ),
        NOW,
    )


async def test_accepts_then_refuses_duplicates_across_batches(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    log = InboundLog(settings, redis, keys)
    assert await log.append([make("1"), make("2")]) == [ACCEPTED, ACCEPTED]
    assert await log.append([make("2", text="redelivered"), make("3")]) == [DUPLICATE, ACCEPTED]
    assert await log.backlog() == 3


async def test_duplicates_inside_one_batch(settings: Settings, redis: Redis, keys: Keys) -> None:
    log = InboundLog(settings, redis, keys)
    batch = [make("1"), make("1"), make("2"), make("1", author="someone-else")]
    assert await log.append(batch) == [ACCEPTED, DUPLICATE, ACCEPTED, DUPLICATE]
    assert await log.backlog() == 2


async def test_the_entry_and_its_mark_share_a_partition(settings: Settings, redis: Redis, keys: Keys) -> None:
    log = InboundLog(settings, redis, keys)
    message = make("77", author="u9")
    partition = log.partition_of(message)
    assert partition == log.partition_of(make("77", author="u9", text="again"))
    assert partition == InboundLog(settings, redis, keys).partition_of(message)
    assert 0 <= partition < settings.stream_partitions
    # Only the message's own id chooses: a copy naming another author or brand finds the same mark.
    assert partition == log.partition_of(make("77", author="someone-else"))
    # Several messages spread over several partitions.
    assert len({log.partition_of(make(str(i))) for i in range(50)}) > 1

    await log.append([message])
    assert await redis.exists(keys.seen(partition, "x:77")) == 1
    assert 0 < await redis.ttl(keys.seen(partition, "x:77")) <= settings.dedupe_ttl_seconds
    [(_, fields)] = await redis.xrange(keys.inbound_stream(partition))
    assert common_pb2.InboundMessage.FromString(fields[b"m"]) == message


async def test_each_accepted_message_publishes_an_event(settings: Settings, redis: Redis, keys: Keys) -> None:
    log = InboundLog(settings, redis, keys)
    await log.append([make("1"), make("2")])
    await log.append([make("2"), make("3")])
    published = await redis.xrange(keys.events())
    assert [(f[b"type"], f[b"message_id"]) for _, f in published] == [
        (b"message.accepted", b"x:1"),
        (b"message.accepted", b"x:2"),
        (b"message.accepted", b"x:3"),
    ]


async def test_loads_the_script_when_the_server_lacks_it(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    log = InboundLog(settings, redis, keys)
    real_sha = log._append.sha
    # A sha the server has never seen answers NOSCRIPT, as a fresh server does (without flushing the
    # script cache of a Redis others share).
    log._append.sha = "0" * 40
    assert await log.append([make("1"), make("1"), make("2")]) == [ACCEPTED, DUPLICATE, ACCEPTED]
    assert log._append.sha == real_sha
    assert await log.backlog() == 2


@pytest.mark.parametrize("read_each_partition", [False, True], ids=["one-call", "per-partition"])
async def test_a_reader_in_the_group_sees_each_entry_once(
    settings: Settings, redis: Redis, keys: Keys, read_each_partition: bool
) -> None:
    log = InboundLog(settings, redis, keys, read_each_partition=read_each_partition)
    await log.ensure_groups()
    await log.ensure_groups()  # idempotent
    sent = [make(str(i), author=f"u{i % 7}") for i in range(20)]
    await log.append(sent)

    first = await log.read("a", count=100, block_ms=10)
    assert sorted(e.message.message_id for e in first) == sorted(m.message_id for m in sent)
    assert all(e.partition == log.partition_of(e.message) for e in first)
    assert await log.read("a", count=100, block_ms=10) == []
    assert await log.read("b", count=100, block_ms=10) == []
    assert await log.pending_count() == 20


async def test_unacked_entries_are_reclaimed_and_ack_removes_them(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    log = InboundLog(settings, redis, keys)
    await log.ensure_groups()
    await log.append([make("1"), make("2", author="u2")])
    taken = await log.read("dead-worker", count=10, block_ms=10)
    assert len(taken) == 2

    # Not idle long enough yet: nobody may take them.
    assert await log.claim_stale("rescuer", min_idle_ms=60_000, count=10) == []
    await asyncio.sleep(0.1)
    rescued = await log.claim_stale("rescuer", min_idle_ms=50, count=10)
    assert sorted(e.entry_id for e in rescued) == sorted(e.entry_id for e in taken)
    assert {e.message.message_id for e in rescued} == {"x:1", "x:2"}

    await log.ack(rescued)
    assert await log.pending_count() == 0
    assert await log.backlog() == 0
    await asyncio.sleep(0.1)
    assert await log.claim_stale("rescuer", min_idle_ms=50, count=10) == []
    # The marks outlive the entries: a redelivery is still a duplicate.
    assert await log.append([make("1")]) == [DUPLICATE]


async def test_entries_deleted_while_pending_are_skipped(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    log = InboundLog(settings, redis, keys)
    await log.ensure_groups()
    await log.append([make("1")])
    [entry] = await log.read("dead-worker", count=10, block_ms=10)
    await redis.xdel(keys.inbound_stream(entry.partition), entry.entry_id)
    await asyncio.sleep(0.1)
    assert await log.claim_stale("rescuer", min_idle_ms=50, count=10) == []


async def test_read_blocks_until_an_entry_arrives(settings: Settings, redis: Redis, keys: Keys) -> None:
    log = InboundLog(settings, redis, keys)
    await log.ensure_groups()
    reader = asyncio.create_task(log.read("a", count=10, block_ms=5_000))
    await asyncio.sleep(0.05)
    await log.append([make("1")])
    [entry] = await asyncio.wait_for(reader, 5)
    assert entry.message.message_id == "x:1"


async def test_nothing_is_pending_before_any_group_exists(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    log = InboundLog(settings, redis, keys)
    await log.append([make("1")])
    assert await log.pending_count() == 0
    assert await log.backlog() == 1


async def test_a_failed_append_leaves_no_seen_mark(settings, redis, keys) -> None:
    """If the stream write fails, a retry must append the message, not call it a duplicate."""
    log = InboundLog(settings, redis, keys)
    message = normalize(
        common_pb2.InboundMessage(
            channel=common_pb2.CHANNEL_X,
            visibility=common_pb2.VISIBILITY_PUBLIC,
            platform_message_id="fails-once",
            brand_account_id="brand",
            author=common_pb2.Author(id="u1"),
            text="hello",
        ),
        now=1_700_000_000.0,
    )
    stream = keys.inbound_stream(log.partition_of(message))
    await redis.set(stream, "not a stream")  # XADD on this key fails with WRONGTYPE
    with pytest.raises(redis_exceptions.ResponseError):
        await log.append([message])
    await redis.delete(stream)
    assert await log.append([message]) == [ACCEPTED]
    assert await redis.xlen(stream) == 1
