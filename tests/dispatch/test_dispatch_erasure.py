"""Redacting a customer's lines in the outbox log keeps every line's length and idempotency key."""

from __future__ import annotations

import pytest
from dispatch_samples import make_reply

from parley.config import Settings
from parley.dispatch import erasure
from parley.dispatch.adapters import LogAdapter
from parley.rpc import InvalidArgument
from parley.v1 import dispatch_pb2


async def test_redacted_lines_keep_their_place_and_nothing_is_posted_twice(
    dispatch_settings: Settings,
) -> None:
    path = dispatch_settings.dispatch_log_path
    writer = LogAdapter(path)
    first = await writer.post(
        make_reply("r:1", recipient_id="alice"), ["Alice, your refund is on its way"], "r:1"
    )
    await writer.post(make_reply("r:2", recipient_id="bob", conversation_id="conv-2"), ["Bob, hello"], "r:2")
    size = path.stat().st_size

    assert erasure.erase_outbox_lines(path, set(), {("x", "alice")}) == 1
    assert erasure.erase_outbox_lines(path, set(), {("x", "alice")}) == 0  # already redacted
    assert path.stat().st_size == size
    text = path.read_text()
    assert "Alice" not in text and "alice" not in text and "Bob, hello" in text
    # The writer that read the file before, and a fresh one, both still know r:1 was posted.
    assert await writer.post(make_reply("r:1"), ["again"], "r:1") == first
    assert await LogAdapter(path).post(make_reply("r:1"), ["again"], "r:1") == first
    assert path.stat().st_size == size


def test_erase_replies_needs_a_conversation_or_a_recipient(settings: Settings) -> None:
    with pytest.raises(InvalidArgument) as error:
        erasure.validate(settings, dispatch_pb2.EraseRepliesRequest())
    assert [f for f, _ in error.value.violations] == ["conversation_ids"]
