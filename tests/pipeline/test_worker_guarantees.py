"""The pipeline worker's guarantees on real servers: a Redis restart under a running suite, a slow batch next
to a live worker, a retryable answer, and a batch too large for one call."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from parley import events
from parley.chaos.redis_server import RedisServer
from parley.cli import DEMO_FILE
from parley.config import Settings
from parley.ingestion.inbound_log import InboundLog
from parley.messages import message_id
from parley.pipeline.worker import Peers, PipelineWorker
from parley.replay import read_twcs
from parley.router import common as router_common
from parley.rpc import channel
from parley.store import Keys, Redis, connect, drop_namespace
from parley.suite import InProcessSuite
from parley.v1 import (
    common_pb2,
    conversations_pb2,
    conversations_pb2_grpc,
    ingestion_pb2,
    ingestion_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)


async def event_counts(redis: Redis, keys: Keys, kind: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for _, event in await events.read_all(redis, keys):
        if event.type == kind:
            counts[event.message_id] += 1
    return counts


async def ingest(settings: Settings, messages: list[common_pb2.InboundMessage]) -> None:
    """An at-least-once client: a call that fails (Redis restarting behind Ingest) is sent again."""
    for attempt in range(100):
        try:
            async with channel(settings, settings.address("ingestion")) as ch:
                await ingestion_pb2_grpc.IngestionServiceStub(ch).Ingest(
                    ingestion_pb2.IngestRequest(messages=messages), timeout=10
                )
            return
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.1 * min(attempt + 1, 10))
    raise AssertionError("Ingest never answered")


async def until(check, seconds: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds * 10)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


def inbound_ids(messages: list[common_pb2.InboundMessage]) -> set[str]:
    return {
        message_id(m.channel, m.platform_message_id)
        for m in messages
        if m.direction == common_pb2.DIRECTION_INBOUND
    }


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


async def test_a_redis_restart_under_a_running_worker_loses_nothing(
    settings: Settings, own_redis: RedisServer
) -> None:
    # Its own single server, killed and restarted: never a cluster, whatever mode the suite runs in.
    settings = settings.model_copy(update={"redis_url": own_redis.url, "redis_cluster": False})
    first, second = read_twcs(DEMO_FILE), read_twcs(DEMO_FILE, id_prefix="after-")
    suite = await InProcessSuite.start(settings, workers=1)
    redis, keys = connect(settings), Keys(settings.key_prefix)
    try:
        await ingest(suite.settings, first)
        await until(lambda: _routed(redis, keys, inbound_ids(first)))

        own_redis.kill()
        await asyncio.sleep(1.0)  # the worker meets the outage
        own_redis.start()
        await ingest(suite.settings, second)

        everything = inbound_ids(first) | inbound_ids(second)
        await until(lambda: _routed(redis, keys, everything))
        assert set((await event_counts(redis, keys, "conversation.routed")).values()) == {1}
        assert not any(task.done() for task in suite.workers), "a worker died"
    finally:
        await suite.stop()
        await redis.aclose()


async def _routed(redis: Redis, keys: Keys, wanted: set[str]) -> bool:
    with contextlib.suppress(Exception):  # Redis may be restarting
        return wanted <= set(await event_counts(redis, keys, "conversation.routed"))
    return False


@contextlib.asynccontextmanager
async def own_worker(
    suite: InProcessSuite, redis: Redis, keys: Keys, name: str, hook: Callable[[str], Awaitable[None]]
) -> AsyncIterator[None]:
    """A worker of the test's own, told of each stage it ends (`hook`), running until the block ends."""
    peers = Peers.connect(suite.settings)
    worker = PipelineWorker(suite.settings, InboundLog(suite.settings, redis, keys), peers, name, hook)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        await peers.close()


async def test_a_slow_batch_is_never_taken_over_by_a_live_worker(settings: Settings, redis: Redis) -> None:
    settings = settings.model_copy(update={"claim_idle_ms": 400})
    keys = Keys(settings.key_prefix)
    messages = read_twcs(DEMO_FILE)
    suite = await InProcessSuite.start(settings, workers=0)
    in_thread = asyncio.Event()

    async def slow_first_batch(stage: str) -> None:
        if stage == "thread" and not in_thread.is_set():
            in_thread.set()
            await asyncio.sleep(1.5)  # well past claim_idle_ms

    try:
        await ingest(suite.settings, messages)
        async with own_worker(suite, redis, keys, "slow", slow_first_batch):
            await asyncio.wait_for(in_thread.wait(), 30)
            suite.add_worker("fast")
            await until(lambda: _processed(redis, keys, messages))
            await asyncio.sleep(1.0)  # let the slow worker finish its batch too
        counts = await event_counts(redis, keys, "message.processed")
        assert set(counts.values()) == {1}, "a batch was processed by two live workers"
    finally:
        await suite.stop()


async def _processed(redis: Redis, keys: Keys, messages: list[common_pb2.InboundMessage]) -> bool:
    wanted = {message_id(m.channel, m.platform_message_id) for m in messages}
    return wanted <= set(await event_counts(redis, keys, "message.processed"))


async def test_kept_changing_while_routing_is_answered_as_retryable(
    settings: Settings, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(router_common, "ROUTE_ATTEMPTS", 0)  # every attempt lost to a concurrent change
    suite = await InProcessSuite.start(settings, workers=0)
    try:
        [message] = read_twcs(DEMO_FILE)[:1]
        message.message_id = message_id(message.channel, message.platform_message_id)
        async with channel(suite.settings, suite.address("conversations")) as ch:
            threaded = await conversations_pb2_grpc.ConversationsServiceStub(ch).Thread(
                conversations_pb2.ThreadRequest(messages=[message])
            )
        item = router_pb2.RouteItem(
            conversation_id=threaded.results[0].conversation_id,
            message=message,
            triage=common_pb2.Triage(intent=common_pb2.INTENT_COMPLAINT),
        )
        async with channel(suite.settings, suite.address("router")) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await router_pb2_grpc.RouterServiceStub(ch).Route(router_pb2.RouteRequest(items=[item]))
        assert error.value.code() == grpc.StatusCode.ABORTED
        assert "retry" in (error.value.details() or "")
    finally:
        await suite.stop()


async def test_a_batch_too_large_for_one_call_is_split_and_an_oversized_message_dead_lettered(
    settings: Settings, redis: Redis
) -> None:
    limit = 64 * 1024
    settings = settings.model_copy(update={"max_message_bytes": limit, "worker_batch": 64})
    keys = Keys(settings.key_prefix)
    suite = await InProcessSuite.start(settings, workers=0)
    log = InboundLog(suite.settings, redis, keys)
    base = read_twcs(DEMO_FILE)[0]
    batch = []
    for i in range(12):  # 12 x 8 KB: too large together, fine in halves
        m = common_pb2.InboundMessage()
        m.CopyFrom(base)
        m.platform_message_id, m.message_id, m.text = f"big{i}", f"x:big{i}", "word " * 1600
        m.author.id = "same-author"  # one partition: one batch
        batch.append(m)
    huge = common_pb2.InboundMessage()
    huge.CopyFrom(batch[0])
    huge.platform_message_id, huge.message_id, huge.text = "huge", "x:huge", "word " * 20_000
    await log.append([*batch, huge])
    suite.add_worker("w1")
    try:
        await until(lambda: _done(log, redis, keys, {m.message_id for m in batch}), 60)
        [dead] = await log.dead_letters()
        assert dead["message_id"] == "x:huge" and "RESOURCE_EXHAUSTED" in dead["reason"]
        assert await log.pending_count() == 0
    finally:
        await suite.stop()
        await drop_namespace(redis, settings.key_prefix)


async def _done(log: InboundLog, redis: Redis, keys: Keys, wanted: set[str]) -> bool:
    processed = set(await event_counts(redis, keys, "message.processed"))
    return wanted <= processed and len(await log.dead_letters()) == 1


@pytest.mark.parametrize("index_left", [None, "cv-lost-to-a-failover"])
async def test_a_placement_lost_to_a_failover_is_threaded_again_not_dead_lettered(
    settings: Settings, redis: Redis, index_left: str | None
) -> None:
    # A Redis Cluster master killed before it replicated Thread's writes loses them: here the message's
    # index (message id -> conversation, its own slot) vanishes between the thread and record stages, or
    # names a conversation whose own writes (another slot) were the ones lost.
    keys = Keys(settings.key_prefix)
    suite = await InProcessSuite.start(settings, workers=0)
    log = InboundLog(suite.settings, redis, keys)
    [message] = [m for m in read_twcs(DEMO_FILE) if m.direction == common_pb2.DIRECTION_INBOUND][:1]
    message.message_id = message_id(message.channel, message.platform_message_id)
    lost: list[str] = []

    async def lose_placement_once(stage: str) -> None:
        if stage == "route" and not lost:
            lost.append(message.message_id)
            assert await redis.delete(keys.message_index(message.message_id)) == 1
            if index_left:
                await redis.set(keys.message_index(message.message_id), index_left)

    peers = Peers.connect(suite.settings)
    worker = PipelineWorker(suite.settings, log, peers, "w1", lose_placement_once)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await log.append([message])

        async def settled() -> bool:
            processed = await event_counts(redis, keys, "message.processed")
            return message.message_id in processed or bool(await log.dead_letters())

        await until(settled)
        assert lost, "the placement was never removed"
        assert await log.dead_letters() == []
        assert await redis.get(keys.message_index(message.message_id)), "the message was not placed again"
        recorded = await event_counts(redis, keys, "conversation.state_changed")
        assert recorded[message.message_id] >= 1, "the message's outcome was never recorded"
        assert await log.pending_count() == 0
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        await peers.close()
        await suite.stop()
        await drop_namespace(redis, settings.key_prefix)


async def test_an_index_naming_a_conversation_lost_to_a_failover_does_not_refuse_the_outcome(
    settings: Settings, redis: Redis
) -> None:
    # Seen in `parley chaos --cluster`: the conversation holds the message, but the message's index (its own
    # slot) names a conversation of which no key survived a failover; threading again keeps that index.
    keys = Keys(settings.key_prefix)
    suite = await InProcessSuite.start(settings, workers=0)
    try:
        [message] = [m for m in read_twcs(DEMO_FILE) if m.direction == common_pb2.DIRECTION_INBOUND][:1]
        message.message_id = message_id(message.channel, message.platform_message_id)
        async with channel(suite.settings, suite.address("conversations")) as ch:
            stub = conversations_pb2_grpc.ConversationsServiceStub(ch)
            threaded = await stub.Thread(conversations_pb2.ThreadRequest(messages=[message]))
            cid = threaded.results[0].conversation_id
            await redis.set(keys.message_index(message.message_id), "cv-lost-to-a-failover")
            await stub.RecordOutcomes(
                conversations_pb2.RecordOutcomesRequest(
                    outcomes=[
                        conversations_pb2.Outcome(
                            conversation_id=cid,
                            message_id=message.message_id,
                            routing=common_pb2.RoutingDecision(action=common_pb2.ROUTE_ACTION_QUEUED),
                        )
                    ]
                )
            )
        assert await redis.get(keys.message_index(message.message_id)) == cid.encode()
        recorded = await event_counts(redis, keys, "conversation.state_changed")
        assert recorded[message.message_id] >= 1
    finally:
        await suite.stop()
        await drop_namespace(redis, settings.key_prefix)


async def test_the_bots_replies_and_the_outcomes_are_sent_side_by_side(
    settings: Settings, redis: Redis
) -> None:
    # In each batch the dispatch stage is told it ended only once the record stage has ended too: run one
    # after the other, the worker would wait on itself and the batch never finish.
    keys = Keys(settings.key_prefix)
    messages = read_twcs(DEMO_FILE)
    suite = await InProcessSuite.start(settings, workers=0)
    recorded, stages = asyncio.Event(), Counter[str]()

    async def dispatch_waits_for_record(stage: str) -> None:
        stages[stage] += 1
        if stage == "thread":  # a new batch: its own record stage has not run yet
            recorded.clear()
        elif stage == "record":
            recorded.set()
        elif stage == "dispatch":
            await asyncio.wait_for(recorded.wait(), 20)

    try:
        await ingest(suite.settings, messages)
        async with own_worker(suite, redis, keys, "side-by-side", dispatch_waits_for_record):
            await until(lambda: _processed(redis, keys, messages))
        assert stages["dispatch"] >= 1, "no batch had a bot reply: the test proves nothing"
        replies = await event_counts(redis, keys, "reply.sent")
        assert replies and set(replies.values()) == {1}
    finally:
        await suite.stop()
