"""Sample replies and a reader for the log adapter's outbox file, shared by the dispatch tests."""

from __future__ import annotations

from pathlib import Path

from parley.v1 import common_pb2, dispatch_pb2


def make_reply(
    reply_id: str = "bot:x:1001",
    text: str = "Thanks for reaching out, we are on it.",
    channel: int = common_pb2.CHANNEL_X,
    visibility: int = common_pb2.VISIBILITY_PUBLIC,
    in_reply_to_id: str = "1001",
    conversation_id: str = "conv-1",
    recipient_id: str = "",
) -> dispatch_pb2.Reply:
    return dispatch_pb2.Reply(
        reply_id=reply_id,
        conversation_id=conversation_id,
        channel=channel,  # type: ignore[arg-type]
        visibility=visibility,  # type: ignore[arg-type]
        in_reply_to_id=in_reply_to_id,
        brand_account_id="brand-1",
        recipient=common_pb2.Author(id=recipient_id or "user-1", handle="@customer"),
        text=text,
        sent_by="bot",
    )


def log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
