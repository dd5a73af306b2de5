"""Retention: a closed conversation and its messages expire `conversations_retention_seconds` after closing.

The TTL goes on every key of the conversation (its record, messages, texts, triage, routing, ...) and on the
index entry of each of its messages; a conversation that reopens has the TTL cleared again. Listings skip a
conversation whose record has expired.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from parley import lua
from parley.config import Settings
from parley.router.keys import RouterKeys
from parley.store import Redis
from parley.v1 import conversations_pb2

from .store import ConversationKeys

CLOSED_STATES = frozenset(
    {conversations_pb2.CONVERSATION_STATE_RESOLVED, conversations_pb2.CONVERSATION_STATE_CLOSED_NO_ACTION}
)


def closing_and_reopening(changes: Mapping[str, list[tuple[int, int]]]) -> tuple[list[str], list[str]]:
    """From each conversation's (old, new) state changes: those now closed, and those that left a closed
    state (reopened)."""
    closing, reopening = [], []
    for cid, steps in changes.items():
        if not steps:
            continue
        if steps[-1][1] in CLOSED_STATES:
            closing.append(cid)
        elif any(old in CLOSED_STATES for old, _ in steps):
            reopening.append(cid)
    return closing, reopening


async def apply(
    redis: Redis, keys: ConversationKeys, settings: Settings, changes: Mapping[str, list[tuple[int, int]]]
) -> None:
    """Set the TTL on conversations that closed and clear it on those that reopened."""
    ttl = settings.conversations_retention_seconds
    closing, reopening = closing_and_reopening(changes)
    if ttl <= 0 or not (closing or reopening):
        return
    every = [*closing, *reopening]
    async with lua.pipeline(redis) as pipe:
        for cid in every:
            pipe.zrange(keys.messages(cid), 0, -1)
        messages = dict(zip(every, await pipe.execute(), strict=True))
    async with lua.pipeline(redis) as pipe:
        for cid in closing:
            for key in _keys_of(keys, cid, messages[cid]):
                pipe.expire(key, ttl)
            # The router's state and audit of it go too (LT: an audit expiring sooner keeps its own TTL).
            for key in RouterKeys(keys.keys).conversation_keys(cid, [])[:2]:
                pipe.expire(key, ttl, lt=True)
        for cid in reopening:
            for key in _keys_of(keys, cid, messages[cid]):
                pipe.persist(key)
            pipe.persist(RouterKeys(keys.keys).state(cid))
        await pipe.execute()


def _keys_of(keys: ConversationKeys, cid: str, message_ids: Iterable[bytes | str]) -> list[str]:
    ids = [m.decode() if isinstance(m, bytes) else m for m in message_ids]
    return [keys.meta(cid), *keys.parts(cid), *(keys.message_index(m) for m in ids)]
