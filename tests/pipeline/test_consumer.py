"""The one stream consumer: it stops when cancelled whatever it is doing, and it renews the claim on a batch
in hand no more often than the claim needs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from parley.pipeline.consumer import ConsumerOptions, StreamConsumer, StreamEntry
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
