"""Builders shared by the router tests: route items and a reader for the event stream."""

from __future__ import annotations

from parley import events
from parley.store import Keys, Redis
from parley.v1 import common_pb2, router_pb2

INTENTS = {
    "praise": common_pb2.INTENT_PRAISE,
    "question": common_pb2.INTENT_QUESTION,
    "complaint": common_pb2.INTENT_COMPLAINT,
    "urgent": common_pb2.INTENT_URGENT,
    "other": common_pb2.INTENT_OTHER,
}


def make_item(
    conversation_id: str,
    message_id: str,
    intent: str,
    *,
    topic: str = "",
    public: bool = False,
    followers: int = 0,
    channel: int = common_pb2.CHANNEL_X,
    bot_confidence: float | None = None,
    bot_channels: tuple[int, ...] = (),
    customer_tier: str = "",
    confidence: float | None = None,
) -> router_pb2.RouteItem:
    triage = common_pb2.Triage(message_id=message_id, intent=INTENTS[intent], topic=topic)
    if confidence is not None:
        triage.scores.add(intent=INTENTS[intent], probability=confidence)
    if bot_confidence is not None:
        triage.bot_answer.CopyFrom(
            common_pb2.BotAnswer(
                answer_id="kb-1",
                text="You can find it under Settings.",
                confidence=bot_confidence,
                allowed_channels=list(bot_channels),
            )
        )
    message = common_pb2.InboundMessage(
        channel=channel,
        visibility=common_pb2.VISIBILITY_PUBLIC if public else common_pb2.VISIBILITY_PRIVATE,
        platform_message_id=message_id.split(":", 1)[-1],
        message_id=message_id,
        direction=common_pb2.DIRECTION_INBOUND,
        author=common_pb2.Author(id="u1", handle="someone", follower_count=followers),
        text="hello",
    )
    return router_pb2.RouteItem(
        conversation_id=conversation_id, message=message, triage=triage, customer_tier=customer_tier
    )


async def events_of(redis: Redis, keys: Keys, event_type: str) -> list[dict]:
    out = []
    for _, event in await events.read_all(redis, keys):
        if event.type == event_type:
            out.append(
                {
                    "conversation_id": event.conversation_id,
                    "message_id": event.message_id,
                    "attrs": dict(event.attributes),
                }
            )
    return out


async def known_conversations(redis: Redis, keys: Keys, *conversation_ids: str) -> None:
    """Records for conversations the conversations service would have opened (Route refuses unknown ids)."""
    for conversation_id in conversation_ids:
        await redis.hset(keys.conversation(conversation_id), mapping={"conversation_id": conversation_id})
