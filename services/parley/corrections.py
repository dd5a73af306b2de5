"""Where triage corrections are stored and how they read back: written by the router's desk API
(`router/corrections.py`), shown by the conversations service's GetConversation, exported for training."""

from __future__ import annotations

import json
from typing import Any

from parley.clock import to_timestamp
from parley.messages import INTENTS_BY_NAME
from parley.store import Keys, Redis, stored_body
from parley.v1 import common_pb2


def corrections_key(keys: Keys, conversation_id: str) -> str:
    """List: the conversation's corrections as JSON, oldest first."""
    return keys.conversation_part(conversation_id, "corrections")


def log_key(keys: Keys) -> str:
    """List: [conversation id, message id] of every correction, in the order made, for export."""
    return keys.namespaced("corrections", "log")


def from_json(raw: str | bytes) -> common_pb2.TriageCorrection:
    """A stored correction as the protobuf message."""
    c = json.loads(raw)
    out = common_pb2.TriageCorrection(
        message_id=c["message_id"],
        intent=INTENTS_BY_NAME.get(c.get("intent", ""), common_pb2.INTENT_UNSPECIFIED),
        topic=c.get("topic", ""),
        corrected_by=c["by"],
        by_supervisor=c.get("supervisor", False),
        corrected_at=to_timestamp(c["at"]),
        note=c.get("note", ""),
        previous_intent=INTENTS_BY_NAME.get(c.get("previous_intent", ""), common_pb2.INTENT_UNSPECIFIED),
        previous_topic=c.get("previous_topic", ""),
        previous_urgent_review=c.get("previous_urgent_review", False),
    )
    if c.get("urgent") is not None:
        out.urgent = c["urgent"]
    return out


async def hand_labels(redis: Redis, keys: Keys) -> list[dict[str, str]]:
    """The latest correction of every corrected message as a hand label: message id, text, intent and topic,
    and its source (who corrected it, when). A field left uncorrected keeps the classifier's value, which the
    corrector saw and let stand; a message whose intent cannot be told (urgency denied, no intent given) is
    left out."""
    seen: dict[str, str] = {}
    for raw in await redis.lrange(log_key(keys), 0, -1):
        cid, mid = json.loads(raw)
        seen[mid] = cid
    latest: dict[str, dict[str, Any]] = {}  # parsed JSON
    bodies: dict[str, bytes | None] = {}
    async with redis.pipeline(transaction=False) as pipe:
        for mid, cid in seen.items():
            pipe.lrange(corrections_key(keys, cid), 0, -1)
            pipe.hget(keys.conversation_turns(cid), mid)
            pipe.hget(keys.conversation_part(cid, "bodies"), mid)  # as earlier versions stored it
        replies = await pipe.execute()
    for n, mid in enumerate(seen):
        mine = [json.loads(r) for r in replies[3 * n] if json.loads(r)["message_id"] == mid]
        if mine:
            latest[mid] = mine[-1]
            bodies[mid] = stored_body(*replies[3 * n + 1 : 3 * n + 3])
    out = []
    for mid, c in latest.items():
        intent = c["intent"] or ("urgent" if c["urgent"] else "")
        if not intent and not (c["urgent"] is False and c["previous_intent"] == "urgent"):
            intent = c["previous_intent"]
        body = bodies[mid]
        if not intent or body is None:
            continue
        text = common_pb2.InboundMessage.FromString(body).text
        role = "supervisor" if c["supervisor"] else "agent"
        out.append(
            {
                "dataset": "corrections",
                "id": mid,
                "intent": intent,
                "topic": c["topic"] or c["previous_topic"],
                "source": f"desk correction by {role} {c['by']} at {c['at']:.0f}",
                "text": text,
            }
        )
    return out
