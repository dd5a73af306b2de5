"""The bundled demo shows what `parley up` promises: bot replies sent, questions and complaints queued."""

from __future__ import annotations

import pytest

from parley.cli import DEMO_FILE
from parley.replay import read_twcs, replay
from parley.suite import InProcessSuite
from parley.v1 import common_pb2, dispatch_pb2


@pytest.fixture
async def suite(settings, redis):
    running = await InProcessSuite.start(settings, workers=1)
    yield running
    await running.stop()


@pytest.fixture
async def idle_suite(settings, redis):
    """No worker: the test drives one by hand."""
    running = await InProcessSuite.start(settings, workers=0)
    yield running
    await running.stop()


async def test_the_demo_shows_a_bot_reply_and_queued_work(suite) -> None:
    report = await replay(read_twcs(DEMO_FILE), suite.settings, timeout=60)
    assert report.unfinished == []
    actions = [
        item.routing.action for c in report.conversations for item in c.messages if item.routing.action
    ]
    assert common_pb2.ROUTE_ACTION_QUEUED in actions
    bot = [
        item
        for c in report.conversations
        for item in c.messages
        if item.routing.action == common_pb2.ROUTE_ACTION_BOT_REPLY
    ]
    assert len(bot) >= 2, "the demo promises bot replies"
    for item in bot:
        assert item.routing.bot_reply_text
        delivery = report.deliveries[f"bot:{item.message.message_id}"]
        assert delivery.status in (dispatch_pb2.DELIVERY_STATUS_PENDING, dispatch_pb2.DELIVERY_STATUS_SENT)


async def test_replaying_the_demo_again_shows_the_conversations_it_already_made(suite, capsys) -> None:
    from parley.cli import _replay_and_print

    first = await replay(read_twcs(DEMO_FILE), suite.settings, timeout=60)
    again = await replay(read_twcs(DEMO_FILE), suite.settings, timeout=60)
    assert (again.accepted, again.duplicates) == (0, first.accepted)
    assert [c.conversation_id for c in again.conversations] == [
        c.conversation_id for c in first.conversations
    ]
    assert [len(c.messages) for c in again.conversations] == [len(c.messages) for c in first.conversations]

    capsys.readouterr()
    assert await _replay_and_print(DEMO_FILE, suite.settings) == 0
    printed = capsys.readouterr().out
    assert "already ingested" in printed
    assert all(c.conversation_id in printed for c in first.conversations)


async def test_a_batch_is_routed_in_the_order_its_messages_were_sent(idle_suite, redis, keys) -> None:
    """Entries arrive partition by partition; the follow-up must not be routed before the question it
    follows (the bot answers the question; the complaint after it goes to a person)."""
    from parley.ingestion.inbound_log import InboundLog
    from parley.pipeline.worker import Peers, PipelineWorker
    from parley.rpc import channel
    from parley.v1 import conversations_pb2, conversations_pb2_grpc, ingestion_pb2, ingestion_pb2_grpc

    suite = idle_suite
    question, follow_up = [m for m in read_twcs(DEMO_FILE) if m.platform_message_id in ("9017", "9018")]
    async with channel(suite.settings, suite.address("ingestion")) as ch:
        await ingestion_pb2_grpc.IngestionServiceStub(ch).Ingest(
            ingestion_pb2.IngestRequest(messages=[question, follow_up])
        )
    from log_kit import logged_entries

    log = InboundLog(suite.settings, redis, keys)
    entries = await logged_entries(log)
    entries.sort(key=lambda e: e.message.platform_message_id, reverse=True)  # the follow-up first
    peers = Peers.connect(suite.settings)
    try:
        await PipelineWorker(suite.settings, log, peers, "w").process(entries)
    finally:
        await peers.close()
    async with channel(suite.settings, suite.address("conversations")) as ch:
        got = await conversations_pb2_grpc.ConversationsServiceStub(ch).GetConversation(
            conversations_pb2.GetConversationRequest(message_id=entries[-1].message.message_id)
        )
    actions = [item.routing.action for item in got.conversation.messages]
    assert actions == [common_pb2.ROUTE_ACTION_BOT_REPLY, common_pb2.ROUTE_ACTION_QUEUED]
