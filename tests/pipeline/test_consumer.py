"""The one stream consumer: it stops when cancelled whatever it is doing, and it renews the claim on a batch
in hand no more often than the claim needs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
import redis.asyncio as aioredis
from redis._parsers import _AsyncRESP2Parser
from redis.exceptions import OutOfMemoryError, RedisClusterException

from parley.chaos.redis_server import RedisServer
from parley.pipeline.consumer import ConsumerOptions, StreamConsumer, StreamEntry, Verdict, verdict
from parley.store import Keys, Redis


class CountingConsumer(StreamConsumer):
    renewals = 0

    async def extend(self, entries: Sequence[StreamEntry]) -> None:
        self.renewals += 1
        await super().extend(entries)


async def slow_batch(redis: Redis, keys: Keys, claim_idle_ms: int) -> CountingConsumer:
    stream = keys.namespaced("consumer-test", "s")
    await redis.xadd(stream, {"n": "1"})
    options = ConsumerOptions(claim_idle_ms=claim_idle_ms, start_id="0")
    consumer = CountingConsumer(redis, [stream], "g", "c1", options)
    await consumer.ensure_group()

    async def handle(entries: list[StreamEntry]) -> None:
        await asyncio.sleep(0.6)

    result = await consumer.once(handle, None)
    assert len(result.done) == 1
    return consumer


async def test_a_consumer_that_claims_at_once_does_not_renew_its_claims(redis: Redis, keys: Keys) -> None:
    # With claim_idle_ms=0 any consumer takes any pending entry at once: a renewal protects nothing, and one
    # every few milliseconds per stream floods Redis while a batch is slow.
    consumer = await slow_batch(redis, keys, 0)
    assert consumer.renewals == 0


async def test_a_short_claim_is_renewed_at_a_bounded_rate(redis: Redis, keys: Keys) -> None:
    consumer = await slow_batch(redis, keys, 30)
    # Never more often than every 0.1 s (the claim lasts 30 ms, so a peer may take it anyway: that is the
    # setting's choice, not a reason to send a command per event-loop tick).
    assert 1 <= consumer.renewals <= 6


class AbsorbsCancellation(StreamConsumer):
    """A renewal stuck in a client call that absorbs a cancellation and finishes the call first (as a Redis
    client does mid-reply)."""

    renewing = asyncio.Event()

    async def extend(self, entries: Sequence[StreamEntry]) -> None:
        self.renewing.set()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            await asyncio.sleep(0.5)


async def test_a_cancelled_consumer_stops_while_its_renewal_winds_down(redis: Redis, keys: Keys) -> None:
    stream = keys.namespaced("consumer-test", "c")
    await redis.xadd(stream, {"n": "1"})
    consumer = AbsorbsCancellation(
        redis, [stream], "g", "c1", ConsumerOptions(claim_idle_ms=300, start_id="0")
    )
    consumer.renewing = asyncio.Event()
    handled = asyncio.Event()

    async def handle(entries: list[StreamEntry]) -> None:
        await consumer.renewing.wait()
        handled.set()

    task = asyncio.create_task(consumer.run(handle, asyncio.Event()))
    await asyncio.wait_for(handled.wait(), 10)
    await asyncio.sleep(0.1)  # the consumer now waits for its renewal to end
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=3)
    assert task in done, "the consumer ignored its cancellation"
    assert task.cancelled()


@pytest.mark.parametrize("delay", [0.0, 0.001, 0.01])
async def test_a_cancelled_consumer_stops_while_it_waits_between_passes(
    redis: Redis, keys: Keys, delay: float
) -> None:
    stream = keys.namespaced("consumer-test", "w")
    consumer = StreamConsumer(redis, [stream], "g", "c1", ConsumerOptions(block_ms=0, start_id="0"))
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(lambda entries: asyncio.sleep(0), stop))
    await asyncio.sleep(0.2 + delay)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=3)
    assert task in done and task.cancelled()


# Error replies as a Redis Cluster sends them while a master fails over, a slot moves or memory is full.
OUTAGE_REPLIES = [
    "CLUSTERDOWN The cluster is down",
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    "READONLY You can't write against a read only replica.",
    "TRYAGAIN Multiple keys request during rehashing of slot",
    "OOM command not allowed when used memory > 'maxmemory'.",
    "LOADING Redis is loading the dataset in memory",
]


@pytest.mark.parametrize("reply", OUTAGE_REPLIES)
def test_a_failover_or_full_redis_is_an_outage_not_a_fault(reply: str) -> None:
    # As redis-py turns the server's reply into an exception (its classes strip the error code).
    error = _AsyncRESP2Parser(65536).parse_error(reply)
    assert verdict(error) is Verdict.OUTAGE
    assert verdict(RedisClusterException("Redis Cluster cannot be connected")) is Verdict.OUTAGE


async def test_a_batch_failing_on_a_full_redis_stays_pending_and_is_never_dead_lettered(
    redis: Redis, keys: Keys, tmp_path
) -> None:
    """A handler writing to a Redis at `maxmemory` fails with OOM for as long as memory is full: the batch
    stays pending for a later pass, however many passes fail, and goes through once there is room."""
    full = RedisServer(tmp_path / "full")
    full.start()
    target = aioredis.Redis.from_url(full.url)
    try:
        await target.config_set("maxmemory", "1")
        stream, dead_key = keys.namespaced("consumer-test", "oom"), keys.namespaced("consumer-test", "dead")
        await redis.xadd(stream, {"n": "1"})
        options = ConsumerOptions(claim_idle_ms=0, start_id="0", attempts=2, backoff_cap=0.05)
        consumer = StreamConsumer(redis, [stream], "g", "c1", options, dead_key=dead_key)
        await consumer.ensure_group()

        async def handle(entries: list[StreamEntry]) -> None:
            await target.set("written", entries[0].text("n"))

        for _ in range(4):  # more passes than the attempts a fault gets
            with pytest.raises(OutOfMemoryError):
                await consumer.once(handle, None)
        assert await redis.llen(dead_key) == 0
        assert (await redis.xpending(stream, "g"))["pending"] == 1
        await target.config_set("maxmemory", "0")
        result = await consumer.once(handle, None)
        assert len(result.done) == 1 and await target.get("written") == b"1"
    finally:
        await target.aclose()
        full.stop()
