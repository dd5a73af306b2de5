"""Retention: a closed conversation and its messages expire `conversations_retention_seconds` after closing.

The TTL goes on every key of the conversation (its record, messages, texts, triage, routing, ...) and on the
index entry of each of its messages; a conversation that reopens has the TTL cleared again. Listings skip a
conversation whose record has expired, and `IndexPruner` (run by the conversations server's sweeper) takes its
entries out of the listing indexes afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from parley import lua
from parley.config import Settings
from parley.router.keys import RouterKeys
from parley.store import Redis
from parley.v1 import common_pb2, conversations_pb2

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
    async with lua.pipeline(redis) as pipe:  # plain writes: one call per slot
        for cid in closing:
            for key in _keys_of(keys, cid, messages[cid]):
                pipe.write("EXPIRE", key, ttl)
            # The router's state and audit of it go too (LT: an audit expiring sooner keeps its own TTL).
            for key in RouterKeys(keys.keys).conversation_keys(cid, [])[:2]:
                pipe.write("EXPIRE", key, ttl, "LT")
        for cid in reopening:
            for key in _keys_of(keys, cid, messages[cid]):
                pipe.write("PERSIST", key)
            pipe.write("PERSIST", RouterKeys(keys.keys).state(cid))
        await pipe.execute()


def _keys_of(keys: ConversationKeys, cid: str, message_ids: Iterable[bytes | str]) -> list[str]:
    ids = [m.decode() if isinstance(m, bytes) else m for m in message_ids]
    return [keys.meta(cid), *keys.parts(cid), *(keys.message_index(m) for m in ids)]


class IndexPruner:
    """Takes the entries of expired conversations out of the listing indexes, a bounded batch per index key
    per pass, oldest first. Listings skip them already; without this the indexes keep every conversation ever
    opened. An entry is read only once its time is older than the retention period (nothing younger can have
    expired) and removed only when the conversation's record is gone; live conversations passed over are
    remembered per key (`_skip`), so a long-open old conversation does not hide expired ones behind it."""

    def __init__(self, redis: Redis, keys: ConversationKeys, settings: Settings, batch: int = 200) -> None:
        self.redis, self.keys, self.settings, self.batch = redis, keys, settings, batch
        self._skip: dict[str, int] = {}

    def index_keys(self) -> list[str]:
        names = [*self.keys.listing_partitions(), *self.keys.opened_partitions()]
        for state in conversations_pb2.ConversationState.values():
            names += self.keys.listing_partitions(state=state) if state else []
        for channel in common_pb2.Channel.values():
            names += self.keys.listing_partitions(channel=channel) if channel else []
        return names

    async def prune(self, now: float) -> int:
        """One pass; returns how many index entries it removed."""
        ttl = self.settings.conversations_retention_seconds
        if ttl <= 0:
            return 0
        names = self.index_keys()
        async with lua.pipeline(self.redis) as pipe:
            for name in names:
                pipe.zrangebyscore(name, "-inf", now - ttl, start=self._skip.get(name, 0), num=self.batch)
            oldest: list[list[bytes]] = await pipe.execute()
        candidates = sorted({member.decode() for members in oldest for member in members})
        if not candidates:
            self._skip.clear()  # every key read to its end: the next pass starts again from the oldest
            return 0
        async with lua.pipeline(self.redis) as pipe:
            for cid in candidates:
                pipe.exists(self.keys.meta(cid))
            alive = {cid for cid, found in zip(candidates, await pipe.execute(), strict=True) if found}
        removed = 0
        async with lua.pipeline(self.redis) as pipe:
            for name, members in zip(names, oldest, strict=True):
                gone = [m for m in members if m.decode() not in alive]
                if gone:
                    pipe.zrem(name, *gone)
                    removed += len(gone)
                kept = len(members) - len(gone)
                self._skip[name] = self._skip.get(name, 0) + kept if len(members) == self.batch else 0
            await pipe.execute()
        return removed
