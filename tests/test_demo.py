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
