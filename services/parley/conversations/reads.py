"""Reading conversations: one whole (messages, triage, routing, transitions, metrics, the customer's
profile), many at once, and the listing by most recently updated."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from parley import corrections, lua
from parley.clock import Clock, to_timestamp
from parley.rpc import InvalidArgument, NotFound
from parley.store import Redis, stored_turns
from parley.v1 import common_pb2, conversations_pb2

from .metrics import conversation_metrics
from .profiles import Customers
from .store import ConversationKeys, as_text

GET_MANY_CONCURRENCY = 16
# The fewest entries read from a listing partition at a time.
MIN_CHUNK = 16
# A filtered listing (by customer handle or team) reads at most this many index entries per call: past it, the
# call returns what it found with a token that goes on from there, so a rare match in a long index costs
# bounded work per call (a page may then hold fewer than page_size, with more to come).
FILTER_SCAN = 5_000


class Reader:
    def __init__(self, redis: Redis, keys: ConversationKeys, clock: Clock, customers: Customers) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.customers = customers
        self.scan_limit = FILTER_SCAN

    async def conversation_of(self, message_id: str) -> str:
        """The conversation a threaded message belongs to (NotFound before it is threaded)."""
        found = await self.redis.get(self.keys.message_index(message_id))
        if not found:
            raise NotFound(f"message {message_id} is in no conversation")
        return as_text(found)

    async def get_many(
        self, conversation_ids: Sequence[str]
    ) -> tuple[list[conversations_pb2.Conversation], list[str]]:
        """The conversations of `conversation_ids` in order, and the ids that have none.

        Read GET_MANY_CONCURRENCY at a time: each read is one pipelined round trip on its own connection,
        and the client's connection pool is bounded.
        """
        found: list[conversations_pb2.Conversation | BaseException] = []
        for start in range(0, len(conversation_ids), GET_MANY_CONCURRENCY):
            chunk = conversation_ids[start : start + GET_MANY_CONCURRENCY]
            found += await asyncio.gather(*(self.get(cid) for cid in chunk), return_exceptions=True)
        conversations, missing = [], []
        for cid, result in zip(conversation_ids, found, strict=True):
            if isinstance(result, NotFound):
                missing.append(cid)
            elif isinstance(result, BaseException):
                raise result
            else:
                conversations.append(result)
        return conversations, missing

    async def get(self, conversation_id: str) -> conversations_pb2.Conversation:
        k = self.keys
        cid = conversation_id
        async with lua.pipeline(self.redis) as pipe:
            pipe.hgetall(k.meta(cid))
            pipe.zrange(k.messages(cid), 0, -1)
            pipe.hgetall(k.turns(cid))
            pipe.hgetall(k.legacy_bodies(cid))
            pipe.hgetall(k.legacy_roles(cid))
            pipe.hgetall(k.triage(cid))
            pipe.hgetall(k.routing(cid))
            pipe.lrange(k.transitions(cid), 0, -1)
            pipe.zrange(k.agents(cid), 0, -1)
            pipe.lrange(k.corrections(cid), 0, -1)
            meta, ids, turns, *legacy, triages, routings, transitions, agents, fixes = await pipe.execute()
        if not meta:
            raise NotFound(f"conversation {cid} not found")
        meta = {as_text(a): b for a, b in meta.items()}
        if meta.get("merged_into"):  # its reply chain joined another conversation
            return await self.get(as_text(meta["merged_into"]))
        # The enum fields take the stored numbers; protoc's stubs accept only the enum's own values.
        conv = conversations_pb2.Conversation(
            conversation_id=cid,
            channel=int(as_text(meta.get("channel")) or 0),  # type: ignore[arg-type]
            brand_account_id=as_text(meta.get("brand_account_id")),
            state=int(as_text(meta.get("state")) or 0),  # type: ignore[arg-type]
            opened_at=to_timestamp(float(as_text(meta.get("opened_at")) or 0)),
            updated_at=to_timestamp(float(as_text(meta.get("updated_at")) or 0)),
            intent=int(as_text(meta.get("intent")) or 0),  # type: ignore[arg-type]
            topic=as_text(meta.get("topic")),
        )
        if meta.get("owner_author"):
            conv.owner.ParseFromString(meta["owner_author"])
        seen: set[tuple[int, str]] = set()
        visibilities = []
        stored = stored_turns(turns, *legacy)
        for raw_id in ids:
            role, body = stored.get(raw_id, (0, b""))
            item = conv.messages.add(role=role)
            item.message.ParseFromString(body)
            if raw_id in triages:
                item.triage.ParseFromString(triages[raw_id])
            if raw_id in routings:
                item.routing.ParseFromString(routings[raw_id])
            visibilities.append(item.message.visibility)
            who = (item.role, item.message.author.id)
            if who not in seen:
                seen.add(who)
                conv.participants.add(author=item.message.author, role=item.role)
        # Moved to private: a public start followed later by a private message.
        if common_pb2.VISIBILITY_PUBLIC in visibilities:
            first_public = visibilities.index(common_pb2.VISIBILITY_PUBLIC)
            conv.moved_to_private = common_pb2.VISIBILITY_PRIVATE in visibilities[first_public:]
        for raw in transitions:
            t = json.loads(raw)
            conv.transitions.add(state=t["state"], at=to_timestamp(t["at"]), reason=t.get("reason", ""))
        text_meta = {a: as_text(b) for a, b in meta.items() if a != "owner_author"}
        conv.moved_to_private = bool(text_meta.get("moved_to_private")) or conv.moved_to_private
        conv.reopen_count = int(text_meta.get("reopen_count") or 0)
        conv.previous_conversation_id = text_meta.get("previous", "")
        conv.agents.extend(as_text(a) for a in agents)
        conv.corrections.extend(corrections.from_json(raw) for raw in fixes)
        conv.metrics.CopyFrom(conversation_metrics(text_meta, len(ids), len(agents), self.clock.now()))
        if text_meta.get("owner_person"):
            with contextlib.suppress(NotFound):
                conv.profile.CopyFrom(await self.customers.profile(person=text_meta["owner_person"]))
        return conv

    async def list(
        self,
        state: int = 0,
        channel: int = 0,
        page_size: int = 50,
        page_token: str = "",
        owner_handle: str = "",
        team: str = "",
    ) -> tuple[list[conversations_pb2.ConversationSummary], str]:
        """Conversations by most recently updated; the token is the (time, id) of the last one returned.

        `owner_handle` and `team` filter while reading the index: it reads on until it has a page of matches,
        the index ends, or it has read `scan_limit` entries (then the token goes on after the last one read).
        """
        handle = owner_handle.lstrip("@").casefold()
        k = self.keys
        chunk = max(page_size + 1, MIN_CHUNK)
        index = MergedIndex(
            self.redis, k.listing_partitions(state, channel), _decode_token(page_token), chunk
        )
        out: list[tuple[conversations_pb2.ConversationSummary, tuple[float, str]]] = []
        scanned = 0
        entries: list[tuple[float, str]] = []
        # One extra match tells whether there is a next page.
        while len(out) <= page_size:
            if (handle or team) and scanned >= self.scan_limit and entries:
                # Read enough for one call: go on after the last entry read, not the last match.
                return [s for s, _ in out], _encode_token(entries[-1])
            want = page_size + 1 - len(out)
            entries = await index.take(max(want, chunk) if handle or team else want)
            if not entries:
                break
            scanned += len(entries)
            async with lua.pipeline(self.redis) as pipe:
                for _, cid in entries:
                    pipe.hgetall(k.meta(cid))
                    pipe.zcard(k.messages(cid))
                rows = await pipe.execute()
            for j, (score, cid) in enumerate(entries):
                if not rows[2 * j]:
                    continue  # expired after closing, or erased: the index entry outlives the record
                meta = {as_text(a): b for a, b in rows[2 * j].items()}
                summary = _summary(cid, meta, rows[2 * j + 1])
                # The index may lag the record under concurrent writes: the record decides.
                if (state and summary.state != state) or (channel and summary.channel != channel):
                    continue
                if handle and summary.owner.handle.lstrip("@").casefold() != handle:
                    continue
                if team and summary.team != team:
                    continue
                out.append((summary, (score, cid)))
                if len(out) > page_size:
                    break
        if len(out) > page_size:
            return [s for s, _ in out[:page_size]], _encode_token(out[page_size - 1][1])
        return [s for s, _ in out], ""


@dataclass
class _Partition:
    """Where the read of one partition is: entries at or below `top` (a score), past the first `skip` entries
    at exactly `top` (ties already read); `buffer` holds the ones read and not taken yet."""

    key: str
    top: float
    skip: int = 0
    buffer: deque[tuple[float, str]] = field(default_factory=deque)
    done: bool = False


class MergedIndex:
    """The partitions of one listing index read as one sorted set: by score, then by id, both descending
    (ZREVRANGEBYSCORE's order), from just below `below` (the last (score, id) of the previous page).

    Each partition is read `chunk` entries at a time from where it was left, every partition that needs more
    in one pipelined round trip. An entry is taken only while every partition not at its end has one read,
    so the merge never passes an entry still unread. Each id is given once, also when a concurrent write
    moves it within the index while it is read.
    """

    def __init__(
        self, redis: Redis, partitions: Sequence[str], below: tuple[float, str] | None, chunk: int
    ) -> None:
        self.redis = redis
        self.below = below
        self.chunk = chunk
        top = below[0] if below else math.inf
        self.partitions = [_Partition(key, top) for key in partitions]
        self.given: set[str] = set()

    async def take(self, n: int) -> list[tuple[float, str]]:
        """The next `n` entries (fewer at the end of the index)."""
        out: list[tuple[float, str]] = []
        while len(out) < n:
            await self._fill()
            ready = [p for p in self.partitions if p.buffer]
            if not ready:
                break
            while len(out) < n:
                first = max(ready, key=lambda p: p.buffer[0])
                out.append(first.buffer.popleft())
                if not first.buffer:
                    if not first.done:
                        break  # read on before comparing again: its next entry may come first
                    ready.remove(first)
                    if not ready:
                        break
        return out

    async def _fill(self) -> None:
        """Read on every partition whose buffer is empty and that is not at its end."""
        while hungry := [p for p in self.partitions if not p.buffer and not p.done]:
            async with lua.pipeline(self.redis) as pipe:
                for p in hungry:
                    top = "+inf" if p.top == math.inf else repr(p.top)
                    pipe.zrevrangebyscore(p.key, top, "-inf", start=p.skip, num=self.chunk, withscores=True)
                replies: list[Any] = await pipe.execute()
            for p, raw in zip(hungry, replies, strict=True):
                entries = [(float(score), as_text(member)) for member, score in raw]
                p.done = len(entries) < self.chunk
                if entries:
                    last = entries[-1][0]
                    ties = sum(1 for score, _ in entries if score == last)
                    p.skip, p.top = (p.skip + ties, last) if last == p.top else (ties, last)
                for entry in entries:
                    if (self.below is None or entry < self.below) and entry[1] not in self.given:
                        self.given.add(entry[1])
                        p.buffer.append(entry)


def _summary(cid: str, meta: dict[str, bytes], count: int) -> conversations_pb2.ConversationSummary:
    # The enum fields take the stored numbers; protoc's stubs accept only the enum's own values.
    s = conversations_pb2.ConversationSummary(
        conversation_id=cid,
        channel=int(as_text(meta.get("channel")) or 0),  # type: ignore[arg-type]
        state=int(as_text(meta.get("state")) or 0),  # type: ignore[arg-type]
        message_count=count,
        opened_at=to_timestamp(float(as_text(meta.get("opened_at")) or 0)),
        updated_at=to_timestamp(float(as_text(meta.get("updated_at")) or 0)),
        intent=int(as_text(meta.get("intent")) or 0),  # type: ignore[arg-type]
        topic=as_text(meta.get("topic")),
        team=as_text(meta.get("team")),
    )
    if meta.get("owner_author"):
        s.owner.ParseFromString(meta["owner_author"])
    return s


def _encode_token(cursor: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps([cursor[0], cursor[1]]).encode()).decode()


def _decode_token(token: str) -> tuple[float, str] | None:
    if not token:
        return None
    try:
        score, cid = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(score, (int, float)) or not math.isfinite(score) or not isinstance(cid, str):
            raise ValueError("not a (time, id) pair")
        return float(score), cid
    except (ValueError, TypeError, binascii.Error) as error:
        raise InvalidArgument([("page_token", "not a token returned by ListConversations")]) from error
