"""The ingestion service through its real gRPC server: errors, duplicates, streams and events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from parley import rpc
from parley.clock import ManualClock, to_timestamp
from parley.config import Settings
from parley.ingestion.server import create_server
from parley.ingestion.servicer import START_ID_METADATA, WATCH_GATHER_SECONDS, watch_pause
from parley.rpc import RunningServer, field_violations
from parley.store import Keys, Redis
from parley.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc

ACCEPTED = ingestion_pb2.INGEST_STATUS_ACCEPTED
DUPLICATE = ingestion_pb2.INGEST_STATUS_DUPLICATE


def make(pid: str, text: str = "my parcel never arrived", **extra: object) -> common_pb2.InboundMessage:
    fields: dict[str, object] = {
        "channel": common_pb2.CHANNEL_MESSENGER,
        "visibility": common_pb2.VISIBILITY_PRIVATE,
        "platform_message_id": pid,
        "brand_account_id": "page-1",
        "author": common_pb2.Author(id="psid-7", display_name="Ann"),
        "text": text,
    }
    return common_pb2.InboundMessage(**(fields | extra))  # type: ignore[arg-type]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def server(settings: Settings, redis: Redis, clock: ManualClock) -> AsyncIterator[RunningServer]:
    running = await create_server(settings, "127.0.0.1:0", clock=clock)
    yield running
    await running.stop(0)


@pytest.fixture
async def stub(
    settings: Settings, server: RunningServer
) -> AsyncIterator[ingestion_pb2_grpc.IngestionServiceStub]:
    async with rpc.channel(settings, f"127.0.0.1:{server.port}") as channel:
        yield ingestion_pb2_grpc.IngestionServiceStub(channel)


async def test_ingest_accepts_then_reports_duplicates(
    stub: ingestion_pb2_grpc.IngestionServiceStub, redis: Redis, keys: Keys
) -> None:
    first = await stub.Ingest(ingestion_pb2.IngestRequest(messages=[make("m1"), make("m2"), make("m1")]))
    assert [(r.message_id, r.status) for r in first.results] == [
        ("messenger:m1", ACCEPTED),
        ("messenger:m2", ACCEPTED),
        ("messenger:m1", DUPLICATE),
    ]
    again = await stub.Ingest(ingestion_pb2.IngestRequest(messages=[make("m3"), make(" m2 ")]))
    assert [(r.message_id, r.status) for r in again.results] == [
        ("messenger:m3", ACCEPTED),
        ("messenger:m2", DUPLICATE),
    ]


async def test_ingest_logs_the_normalized_message(
    stub: ingestion_pb2_grpc.IngestionServiceStub, redis: Redis, keys: Keys, clock: ManualClock
) -> None:
    await stub.Ingest(ingestion_pb2.IngestRequest(messages=[make("m1")]))
    entries = []
    for partition in range(4):
        entries += await redis.xrange(keys.inbound_stream(partition))
    [(_, fields)] = entries
    logged = common_pb2.InboundMessage.FromString(fields[b"m"])
    assert logged.message_id == "messenger:m1"
    assert logged.direction == common_pb2.DIRECTION_INBOUND
    assert logged.received_at == to_timestamp(clock.now())
    assert logged.sent_at == logged.received_at


async def test_bad_batch_gets_invalid_argument_naming_every_field(
    stub: ingestion_pb2_grpc.IngestionServiceStub, redis: Redis, keys: Keys, clock: ManualClock
) -> None:
    batch = [
        make("ok"),
        make("", text=""),
        make("m3", channel=99, sent_at=to_timestamp(clock.now() + 3 * 24 * 3600)),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Ingest(ingestion_pb2.IngestRequest(messages=batch))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(caught.value)] == [
        "messages[1].platform_message_id",
        "messages[1].text",
        "messages[2].channel",
        "messages[2].sent_at",
    ]
    # The whole batch was refused: not even the good message was logged.
    assert await redis.exists(*(keys.inbound_stream(p) for p in range(4))) == 0


async def test_empty_batch_is_invalid(stub: ingestion_pb2_grpc.IngestionServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Ingest(ingestion_pb2.IngestRequest())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(caught.value)] == ["messages"]


async def test_ingest_stream_answers_each_batch_and_ends_on_a_bad_one(
    stub: ingestion_pb2_grpc.IngestionServiceStub,
) -> None:
    call = stub.IngestStream()
    await call.write(ingestion_pb2.IngestStreamRequest(messages=[make("s1"), make("s2")]))
    first = await call.read()
    assert [r.status for r in first.results] == [ACCEPTED, ACCEPTED]
    await call.write(ingestion_pb2.IngestStreamRequest(messages=[make("s2"), make("s3")]))
    second = await call.read()
    assert [(r.message_id, r.status) for r in second.results] == [
        ("messenger:s2", DUPLICATE),
        ("messenger:s3", ACCEPTED),
    ]
    await call.write(ingestion_pb2.IngestStreamRequest(messages=[make("s4", text="   ")]))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(caught.value)] == ["messages[0].text"]


async def test_watch_events_sees_accepted_messages(stub: ingestion_pb2_grpc.IngestionServiceStub) -> None:
    await stub.Ingest(ingestion_pb2.IngestRequest(messages=[make("before")]))
    # "" starts with new events: the server says where it starts before any event is sent.
    watch = stub.WatchEvents(ingestion_pb2.WatchEventsRequest(types=["message.accepted"]))
    metadata = dict(await watch.initial_metadata())
    assert metadata[START_ID_METADATA] != "0-0"
    await stub.Ingest(ingestion_pb2.IngestRequest(messages=[make("after"), make("before")]))
    reply = await asyncio.wait_for(watch.read(), 5)
    assert reply.event.type == "message.accepted"
    assert reply.event.message_id == "messenger:after"
    assert reply.event.attributes["channel"] == "messenger"
    watch.cancel()


def test_a_watch_pauses_longer_the_longer_it_finds_nothing() -> None:
    assert watch_pause(0, 0.1) == WATCH_GATHER_SECONDS
    assert watch_pause(1, 0.1) == 2 * WATCH_GATHER_SECONDS
    assert watch_pause(5, 0.1) == 0.1  # never longer than the idle poll
    assert watch_pause(10**6, 0.1) == 0.1  # a watch idle for days


async def test_a_watch_that_found_nothing_does_not_sleep_the_idle_poll_before_the_next_event(
    settings: Settings, redis: Redis, clock: ManualClock
) -> None:
    # An idle poll of a minute: a watch that slept it after its first empty read would miss the deadline.
    settings = settings.model_copy(update={"stream_poll_seconds": 60.0})
    running = await create_server(settings, "127.0.0.1:0", clock=clock)
    try:
        async with rpc.channel(settings, f"127.0.0.1:{running.port}") as channel:
            stub = ingestion_pb2_grpc.IngestionServiceStub(channel)
            watch = stub.WatchEvents(ingestion_pb2.WatchEventsRequest(types=["message.accepted"]))
            await watch.initial_metadata()
            await asyncio.sleep(0.05)  # a few reads find nothing
            await stub.Ingest(ingestion_pb2.IngestRequest(messages=[make("soon")]))
            reply = await asyncio.wait_for(watch.read(), 10)
            assert reply.event.message_id == "messenger:soon"
            watch.cancel()
    finally:
        await running.stop(0)


async def test_watch_events_replays_and_filters(
    stub: ingestion_pb2_grpc.IngestionServiceStub, redis: Redis, keys: Keys
) -> None:
    from parley import events

    await stub.Ingest(ingestion_pb2.IngestRequest(messages=[make("a1")]))
    await events.publish(
        redis,
        keys,
        [
            events.EventRecord(type="conversation.opened", conversation_id="c1", message_id="messenger:a1"),
            events.EventRecord(type="conversation.opened", conversation_id="c2"),
            events.EventRecord(type="message.threaded", conversation_id="c2"),
        ],
    )
    watch = stub.WatchEvents(
        ingestion_pb2.WatchEventsRequest(after_id="0", types=["conversation.opened"], conversation_id="c2")
    )
    reply = await asyncio.wait_for(watch.read(), 5)
    assert (reply.event.type, reply.event.conversation_id) == ("conversation.opened", "c2")

    everything = stub.WatchEvents(ingestion_pb2.WatchEventsRequest(after_id="0"))
    seen = [(await asyncio.wait_for(everything.read(), 5)).event.type for _ in range(4)]
    assert seen == ["message.accepted", "conversation.opened", "conversation.opened", "message.threaded"]
    watch.cancel()
    everything.cancel()


async def test_a_batched_watch_sends_the_same_events_in_the_same_order_fewer_responses(
    stub: ingestion_pb2_grpc.IngestionServiceStub, redis: Redis, keys: Keys
) -> None:
    from parley import events

    cids = [f"cv-b{n}" for n in range(30)]
    await events.publish(redis, keys, [events.EventRecord("conversation.opened", c) for c in cids])
    await events.publish(redis, keys, [events.EventRecord("message.threaded", c) for c in cids])
    request = ingestion_pb2.WatchEventsRequest(after_id="0", types=["conversation.opened"])
    one_by_one = stub.WatchEvents(request)
    single = [(await asyncio.wait_for(one_by_one.read(), 5)).event for _ in cids]
    one_by_one.cancel()

    request.batched = True
    batched = stub.WatchEvents(request)
    together: list[common_pb2.Event] = []
    responses = 0
    while len(together) < len(cids):
        reply = await asyncio.wait_for(batched.read(), 5)
        assert not reply.HasField("event")
        together += reply.events
        responses += 1
    batched.cancel()
    assert [e.id for e in together] == [e.id for e in single]
    assert {e.conversation_id for e in together} == set(cids)
    assert {e.type for e in together} == {"conversation.opened"}
    assert responses < len(cids)


async def test_watch_events_merges_the_partitions_in_order_and_resumes_exactly(
    stub: ingestion_pb2_grpc.IngestionServiceStub, redis: Redis, keys: Keys
) -> None:
    from parley import events

    cids = [f"cv-{n}" for n in range(12)]
    assert len({events.partition_of(c, keys.event_partitions) for c in cids}) > 4
    for _ in range(3):
        await events.publish(redis, keys, [events.EventRecord("conversation.opened", c) for c in cids])
    # The same entry id in three partitions: events of one time are ordered by partition.
    tied = sorted({events.partition_of(c, keys.event_partitions) for c in cids})[:3]
    newest = max(int(e.split("-")[0]) for e, _ in await events.read_all(redis, keys)) + 1
    for p in tied:
        record = events.EventRecord("conversation.resolved", cids[0])
        await redis.xadd(keys.event_stream(p), record.fields(), id=f"{newest}-0")
    stored = [event_id for event_id, _ in await events.read_all(redis, keys)]
    assert len(stored) == 39 and stored[-3:] == [f"{newest}-0-{p}" for p in tied]

    async def watched(after_id: str, count: int) -> list[str]:
        watch = stub.WatchEvents(ingestion_pb2.WatchEventsRequest(after_id=after_id))
        out = [(await asyncio.wait_for(watch.read(), 5)).event.id for _ in range(count)]
        watch.cancel()
        return out

    assert await watched("0", 39) == stored
    # From any event on, exactly the ones after it, ties included.
    for k in (0, 17, 36, 37):
        assert await watched(stored[k], 38 - k) == stored[k + 1 :]


async def test_watch_events_skips_an_entry_that_is_not_an_event(
    stub: ingestion_pb2_grpc.IngestionServiceStub, redis: Redis, keys: Keys
) -> None:
    from parley import events

    await redis.xadd(keys.event_stream(0), {"type": "conversation.opened", "attrs": "{}"})  # the old layout
    await events.publish(redis, keys, [events.EventRecord("conversation.opened", "c1")])
    watch = stub.WatchEvents(ingestion_pb2.WatchEventsRequest(after_id="0"))
    reply = await asyncio.wait_for(watch.read(), 5)
    assert (reply.event.type, reply.event.conversation_id) == ("conversation.opened", "c1")
    watch.cancel()


async def test_watch_events_refuses_a_malformed_start(stub: ingestion_pb2_grpc.IngestionServiceStub) -> None:
    watch = stub.WatchEvents(ingestion_pb2.WatchEventsRequest(after_id="yesterday"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await watch.read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(caught.value)] == ["after_id"]


async def test_oversized_request_is_resource_exhausted(settings: Settings, redis: Redis) -> None:
    small = settings.model_copy(update={"max_message_bytes": 4096})
    running = await create_server(small, "127.0.0.1:0")
    try:
        # The client itself has the default limits, so it is the server that refuses.
        async with rpc.channel(settings, f"127.0.0.1:{running.port}") as channel:
            stub = ingestion_pb2_grpc.IngestionServiceStub(channel)
            ok = await stub.Ingest(ingestion_pb2.IngestRequest(messages=[make("small")]))
            assert ok.results[0].status == ACCEPTED
            big = [make(f"b{i}", text="x" * 1000) for i in range(8)]
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Ingest(ingestion_pb2.IngestRequest(messages=big))
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await running.stop(0)


async def test_unreachable_redis_is_unavailable(settings: Settings) -> None:
    nowhere = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    running = await create_server(nowhere, "127.0.0.1:0")
    try:
        async with rpc.channel(settings, f"127.0.0.1:{running.port}") as channel:
            stub = ingestion_pb2_grpc.IngestionServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Ingest(ingestion_pb2.IngestRequest(messages=[make("m1")]))
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await running.stop(0)


# -- what was accepted and then lost, hidden or duplicated -------------------------------------------------


async def test_a_corrupt_request_is_invalid_argument_without_internal_names(
    settings: Settings, server: RunningServer
) -> None:
    # A truncated protobuf, and a well-formed one whose text is not UTF-8 (bytes 0xff 0xfe).
    corrupt = [b"\xff\xff\xff", b"\x0a\x04\x3a\x02\xff\xfe"]
    async with rpc.channel(settings, f"127.0.0.1:{server.port}") as channel:
        for body in corrupt:
            ingest = channel.unary_unary("/parley.v1.IngestionService/Ingest")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await ingest(body)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "DecodeError" not in (caught.value.details() or "")
            assert [f for f, _ in field_violations(caught.value)] == ["request"]
        stream = channel.stream_stream("/parley.v1.IngestionService/IngestStream")()
        await stream.write(corrupt[1])
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stream.read()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "parley.v1.IngestStreamRequest" in (caught.value.details() or "")


async def test_an_id_that_fits_only_without_its_channel_prefix_is_refused(
    stub: ingestion_pb2_grpc.IngestionServiceStub, settings: Settings
) -> None:
    # "messenger:" + 256 characters is no Parley id: every later stage would refuse it, after the ack.
    too_long = "m" * settings.max_id_chars
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Ingest(ingestion_pb2.IngestRequest(messages=[make(too_long)]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(caught.value)] == ["messages[0].platform_message_id"]
    fits = "m" * (settings.max_id_chars - len("messenger:"))
    reply = await stub.Ingest(ingestion_pb2.IngestRequest(messages=[make(fits)]))
    assert len(reply.results[0].message_id) == settings.max_id_chars


async def test_a_sent_at_a_timestamp_cannot_hold_is_refused(
    stub: ingestion_pb2_grpc.IngestionServiceStub,
) -> None:
    before_year_one = common_pb2.InboundMessage()
    before_year_one.sent_at.seconds = -(10**12)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Ingest(ingestion_pb2.IngestRequest(messages=[make("m1", sent_at=before_year_one.sent_at)]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(caught.value)] == ["messages[0].sent_at"]


async def test_a_message_is_accepted_once_whatever_brand_or_author_a_copy_names(
    stub: ingestion_pb2_grpc.IngestionServiceStub, redis: Redis, keys: Keys
) -> None:
    # X sends one copy of a post per subscribed account, each naming that account as the brand.
    copies = [make("p1", brand_account_id=f"page-{i}") for i in range(8)]
    copies += [make("p1", author=common_pb2.Author(id=f"psid-{i}")) for i in range(8)]
    statuses = []
    for copy in copies:
        reply = await stub.Ingest(ingestion_pb2.IngestRequest(messages=[copy]))
        statuses.append(reply.results[0].status)
    assert statuses == [ACCEPTED] + [DUPLICATE] * (len(copies) - 1)
    assert sum([await redis.xlen(keys.inbound_stream(p)) for p in range(4)]) == 1


async def test_direct_messages_without_a_thread_make_one_conversation(
    stub: ingestion_pb2_grpc.IngestionServiceStub, settings: Settings, redis: Redis, keys: Keys
) -> None:
    from parley.conversations.core import Conversations

    # A platform sends a customer's DMs through gRPC without the network's thread id.
    dms = [make(f"dm{i}", text=text) for i, text in enumerate(["hi", "my order is late", "KW-448120"])]
    for dm in dms:
        await stub.Ingest(ingestion_pb2.IngestRequest(messages=[dm]))
    logged = []
    for partition in range(4):
        logged += [
            common_pb2.InboundMessage.FromString(f[b"m"])
            for _, f in await redis.xrange(keys.inbound_stream(partition))
        ]
    assert {m.platform_thread_id for m in logged} == {"psid-7"}  # the thread Meta's webhook gives them
    threaded = await Conversations(settings, redis, keys, ManualClock()).thread(logged)
    assert len({result.conversation_id for result in threaded}) == 1
