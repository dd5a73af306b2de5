"""Message builders for the conversations tests."""

from __future__ import annotations

from parley.clock import to_timestamp
from parley.store import Keys, Redis, unpack_turn
from parley.v1 import common_pb2

T0 = 1_700_000_000.0
BRAND = "brand-1"


def msg(
    pid: str,
    *,
    author: str = "alice",
    at: float = 0.0,
    text: str = "",
    reply_to: str = "",
    thread: str = "",
    channel: int = common_pb2.CHANNEL_X,
    outbound: bool = False,
    private: bool = False,
) -> common_pb2.InboundMessage:
    """A message `pid` sent `at` seconds after T0."""
    prefix = {common_pb2.CHANNEL_X: "x", common_pb2.CHANNEL_MESSENGER: "messenger"}[channel]
    return common_pb2.InboundMessage(
        channel=channel,
        visibility=common_pb2.VISIBILITY_PRIVATE if private else common_pb2.VISIBILITY_PUBLIC,
        platform_message_id=pid,
        message_id=f"{prefix}:{pid}",
        in_reply_to_id=reply_to,
        platform_thread_id=thread,
        brand_account_id=BRAND,
        author=common_pb2.Author(id=BRAND if outbound else author, handle=author),
        text=text or f"text of {pid}",
        sent_at=to_timestamp(T0 + at),
        direction=common_pb2.DIRECTION_OUTBOUND if outbound else common_pb2.DIRECTION_INBOUND,
    )


async def store_messages_as_earlier_versions_did(redis: Redis, keys: Keys, cid: str) -> None:
    """Move a conversation's stored messages out of `turns`, into bodies and roles kept apart."""
    stored = await redis.hgetall(keys.conversation_turns(cid))
    await redis.delete(keys.conversation_turns(cid))
    for mid, value in stored.items():
        role, body = unpack_turn(value)
        await redis.hset(keys.conversation_part(cid, "bodies"), mid, body)
        await redis.hset(keys.conversation_part(cid, "roles"), mid, role)
