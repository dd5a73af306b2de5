"""The whole pipeline end to end on real Redis: every service's real gRPC server, real workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import pytest

from parley import events
from parley.cli import DEMO_FILE
from parley.ingestion.inbound_log import InboundLog
from parley.messages import message_id
from parley.pipeline.worker import Peers, PipelineWorker
from parley.replay import read_twcs, replay, reply_chains
from parley.rpc import channel
from parley.store import Keys, Redis
from parley.suite import InProcessSuite
from parley.v1 import (
    common_pb2,
    conversations_pb2,
    conversations_pb2_grpc,
    dispatch_pb2,
    ingestion_pb2,
    ingestion_pb2_grpc,
)

FIXTURE = DEMO_FILE  # written by the team; covers every intent, brand replies and a bystander


async def routed_events(redis: Redis, keys: Keys) -> Counter[str]:
    """How many `conversation.routed` events each message id got."""
    counts: Counter[str] = Counter()
    for _, event in await events.read_all(redis, keys):
        if event.type == "conversation.routed":
            counts[event.message_id] += 1
    return counts


def true_conversations(messages: list[common_pb2.InboundMessage]) -> list[set[str]]:
    """The true conversations of a twcs file, as sets of Parley message ids."""
    chain_of = reply_chains(messages)
    groups: dict[str, set[str]] = {}
    for m in messages:
        groups.setdefault(chain_of[m.platform_message_id], set()).add(
            message_id(m.channel, m.platform_message_id)
        )
    return list(groups.values())


@pytest.fixture
async def suite(settings, redis):
    running = await InProcessSuite.start(settings, workers=0)
    yield running
    await running.stop()


async def test_replay_threads_classifies_and_routes_every_message(suite, redis, keys) -> None:
    messages = read_twcs(FIXTURE)
    suite.add_worker("w1")
    report = await replay(messages, suite.settings, timeout=60)

    assert report.unfinished == []
    assert report.accepted == len(messages)
    # Every message sits in exactly one conversation.
    threaded = [item.message.message_id for c in report.conversations for item in c.messages]
    assert sorted(threaded) == sorted(message_id(m.channel, m.platform_message_id) for m in messages)
    # Each customer message was routed once, and carries its triage and routing on the conversation.
    inbound = [m for m in messages if m.direction == common_pb2.DIRECTION_INBOUND]
    counts = await routed_events(redis, keys)
    assert {message_id(m.channel, m.platform_message_id): 1 for m in inbound} == dict(counts)
    for conversation in report.conversations:
        for item in conversation.messages:
            if item.message.direction == common_pb2.DIRECTION_INBOUND:
                assert item.triage.intent != common_pb2.INTENT_UNSPECIFIED
                assert item.routing.action != common_pb2.ROUTE_ACTION_UNSPECIFIED
                assert item.routing.reason
    # Bot replies went out through dispatch, once each.
    for reply_id, delivery in report.deliveries.items():
        assert delivery.status in (dispatch_pb2.DELIVERY_STATUS_PENDING, dispatch_pb2.DELIVERY_STATUS_SENT), (
            reply_id
        )


async def test_one_batch_is_threaded_into_its_true_conversations(suite, redis, keys) -> None:
    messages = read_twcs(FIXTURE)
    async with channel(suite.settings, suite.address("ingestion")) as ch:
        await ingestion_pb2_grpc.IngestionServiceStub(ch).Ingest(
            ingestion_pb2.IngestRequest(messages=messages)
        )
    suite.add_worker("w1")  # started after ingestion: the whole file is one batch
    inbound_ids = {
        message_id(m.channel, m.platform_message_id)
        for m in messages
        if m.direction == common_pb2.DIRECTION_INBOUND
    }
    for _ in range(300):
        if set(await routed_events(redis, keys)) == inbound_ids:
            break
        await asyncio.sleep(0.1)
    async with channel(suite.settings, suite.address("conversations")) as ch:
        stub = conversations_pb2_grpc.ConversationsServiceStub(ch)
        listed = await stub.ListConversations(conversations_pb2.ListConversationsRequest(page_size=100))
        groups = []
        for summary in listed.conversations:
            got = await stub.GetConversation(
                conversations_pb2.GetConversationRequest(conversation_id=summary.conversation_id)
            )
            groups.append({item.message.message_id for item in got.conversation.messages})
    assert sorted(map(sorted, groups)) == sorted(map(sorted, true_conversations(messages)))


async def test_a_redelivered_batch_creates_nothing_new(suite, redis, keys) -> None:
    messages = read_twcs(FIXTURE)
    suite.add_worker("w1")
    first = await replay(messages, suite.settings, timeout=60)
    async with channel(suite.settings, suite.address("ingestion")) as ch:
        again = await ingestion_pb2_grpc.IngestionServiceStub(ch).Ingest(
            ingestion_pb2.IngestRequest(messages=messages)
        )
    assert {r.status for r in again.results} == {ingestion_pb2.INGEST_STATUS_DUPLICATE}
    await asyncio.sleep(0.3)
    assert set((await routed_events(redis, keys)).values()) == {1}
    assert len(first.conversations) == len(true_conversations(messages))


async def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(
    suite, settings, redis, keys
) -> None:
    messages = read_twcs(FIXTURE)
    inbound_ids = {
        message_id(m.channel, m.platform_message_id)
        for m in messages
        if m.direction == common_pb2.DIRECTION_INBOUND
    }
    async with channel(suite.settings, suite.address("ingestion")) as ch:
        await ingestion_pb2_grpc.IngestionServiceStub(ch).Ingest(
            ingestion_pb2.IngestRequest(messages=messages)
        )

    # Worker A gets through threading, classification and routing, then dies before it acks.
    routed_once = asyncio.Event()

    async def die_after_routing(stage: str) -> None:
        if stage == "route":
            routed_once.set()
            await asyncio.Event().wait()  # hangs here until killed

    peers = Peers.connect(suite.settings)
    doomed = PipelineWorker(
        suite.settings, InboundLog(suite.settings, redis, keys), peers, "doomed", die_after_routing
    )
    stop = asyncio.Event()
    task = asyncio.create_task(doomed.run(stop))
    await asyncio.wait_for(routed_once.wait(), 30)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await peers.close()
    killed_mid_batch = await routed_events(redis, keys)
    assert killed_mid_batch and doomed.processed == 0

    # Worker B re-claims the dead worker's entries once they have been idle for claim_idle_ms.
    suite.add_worker("rescuer")
    inbound_log = InboundLog(suite.settings, redis, keys)
    for _ in range(200):
        if set(await routed_events(redis, keys)) == inbound_ids and await inbound_log.pending_count() == 0:
            break
        await asyncio.sleep(0.1)
    counts = await routed_events(redis, keys)
    assert set(counts) == inbound_ids
    assert set(counts.values()) == {1}, "a message was routed twice"
    assert await inbound_log.pending_count() == 0


async def test_replaying_a_file_again_reports_duplicates_and_prefixed_ids_are_new_traffic(suite) -> None:
    suite.add_worker("w1")
    first = await replay(read_twcs(FIXTURE), suite.settings, timeout=60)
    again = await replay(read_twcs(FIXTURE), suite.settings, timeout=60)
    assert (again.accepted, again.duplicates, again.unfinished) == (0, first.accepted, [])

    fresh = read_twcs(FIXTURE, id_prefix="run2-")
    assert all(m.platform_message_id.startswith("run2-") for m in fresh)
    assert {m.in_reply_to_id for m in fresh} - {""} <= {m.platform_message_id for m in fresh}
    third = await replay(fresh, suite.settings, timeout=60)
    assert (third.accepted, third.unfinished) == (len(fresh), [])
    assert len(third.conversations) == len(first.conversations)
