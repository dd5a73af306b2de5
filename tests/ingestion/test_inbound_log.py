"""InboundLog on a real Redis: de-duplicated appends, stable partitions, and its consumer group read
through the one stream consumer."""

from __future__ import annotations

import asyncio

import pytest
from redis import exceptions as redis_exceptions

from parley.clock import ManualClock
from parley.config import Settings
from parley.events import read_all
from parley.ingestion.inbound_log import ACCEPTED, DUPLICATE, InboundLog
from parley.ingestion.intake import normalize
from parley.pipeline.consumer import StreamEntry
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
    # Each message's event lands in the partition of its id: compared without their order.
    published = sorted((event.type, event.message_id) for _, event in await read_all(redis, keys))
    assert published == [
        ("message.accepted", "x:1"),
        ("message.accepted", "x:2"),
        ("message.accepted", "x:3"),
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


class Taken:
    """A handler that records what it is given; `keep` holds every entry back (it stays pending), as a worker
    that dies mid-batch leaves it."""

    def __init__(self, keep: bool = False) -> None:
        self.keep = keep
        self.entries: list[StreamEntry] = []

    async def __call__(self, entries: list[StreamEntry]) -> list[str] | None:
        self.entries += entries
        return [e.entry_id for e in entries] if self.keep else None

    def message_ids(self) -> list[str]:
        return sorted(common_pb2.InboundMessage.FromString(e.fields[b"m"]).message_id for e in self.entries)


@pytest.mark.parametrize("read_each_stream", [False, True], ids=["one-call", "per-partition"])
async def test_a_reader_in_the_group_sees_each_entry_once(
    settings: Settings, redis: Redis, keys: Keys, read_each_stream: bool
) -> None:
    log = InboundLog(settings, redis, keys)
    read_each_stream = read_each_stream or settings.redis_cluster  # a cluster has no read over several slots
    first = log.reader("a", read_each_stream=read_each_stream)
    await first.ensure_group()
    await first.ensure_group()  # idempotent
    sent = [make(str(i), author=f"u{i % 7}") for i in range(20)]
    await log.append(sent)

    taken = Taken(keep=True)
    await first.once(taken, 10)
    assert taken.message_ids() == sorted(m.message_id for m in sent)
    for entry in taken.entries:  # each on its message's own partition
        message = common_pb2.InboundMessage.FromString(entry.fields[b"m"])
        assert entry.stream == keys.inbound_stream(log.partition_of(message))
    other = Taken()
    await log.reader("b", read_each_stream=read_each_stream).once(other, 10)
    assert other.entries == []  # held by a live reader, not idle long enough to be taken over
    assert await log.pending_count() == 20


async def test_unacked_entries_are_reclaimed_and_acking_deletes_them(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    log = InboundLog(settings, redis, keys)
    await log.reader("dead-worker").ensure_group()
    await log.append([make("1"), make("2", author="u2")])
    taken = Taken(keep=True)
    await log.reader("dead-worker").once(taken, 10)
    assert len(taken.entries) == 2

    # Not idle long enough yet: nobody may take them.
    early = Taken()
    await log.reader("rescuer", claim_idle_ms=60_000).once(early, None)
    assert early.entries == []
    await asyncio.sleep(0.1)
    rescued = Taken()
    result = await log.reader("rescuer", claim_idle_ms=50).once(rescued, None)
    assert sorted(e.entry_id for e in result.done) == sorted(e.entry_id for e in taken.entries)
    assert rescued.message_ids() == ["x:1", "x:2"]

    assert await log.pending_count() == 0
    assert await log.backlog() == 0
    # The marks outlive the entries: a redelivery is still a duplicate.
    assert await log.append([make("1")]) == [DUPLICATE]


async def test_entries_deleted_while_pending_are_skipped(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    log = InboundLog(settings, redis, keys)
    await log.reader("dead-worker").ensure_group()
    await log.append([make("1")])
    taken = Taken(keep=True)
    await log.reader("dead-worker").once(taken, 10)
    [entry] = taken.entries
    await redis.xdel(entry.stream, entry.entry_id)
    await asyncio.sleep(0.1)
    rescued = Taken()
    await log.reader("rescuer", claim_idle_ms=50).once(rescued, None)
    assert rescued.entries == []
    assert await log.pending_count() == 0


async def test_a_read_blocks_until_an_entry_arrives(settings: Settings, redis: Redis, keys: Keys) -> None:
    log = InboundLog(settings, redis, keys)
    reader = log.reader("a")
    await reader.ensure_group()
    taken = Taken()
    waiting = asyncio.create_task(reader.once(taken, 5_000))
    await asyncio.sleep(0.05)
    await log.append([make("1")])
    await asyncio.wait_for(waiting, 5)
    assert taken.message_ids() == ["x:1"]


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
