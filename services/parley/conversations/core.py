"""Threading, the conversation lifecycle, customer profiles, listing and metrics: the core the servicer,
the event follower and tests call.

Threading a batch takes four round trips whatever its size: look up what is already known, claim each new
message (SET NX on its index), read the conversations it joins, then write. Conversation ids derive from the
opening message id, so two callers threading the same message agree without a lock.

Out of order: a reply whose parent is unknown is held in a conversation of its own (listed nowhere) that
waits for the parent (`awaiting`); when the parent arrives, the held conversation merges into the parent's,
so the grouping follows the reply chains whatever the arrival order. The sweep opens the held conversations
whose parent did not come in time. A merged conversation keeps a pointer to where it went, so ids handed out
earlier still work.

Lifecycle: routing outcomes set BOT/QUEUED/ASSIGNED/CLOSED_NO_ACTION; the router's and dispatch's events
(applied by the follower) set ASSIGNED, WAITING_ON_CUSTOMER (an agent replied), QUEUED (escalated,
transferred, declined) and RESOLVED; the owner's next message moves WAITING back to ASSIGNED (or QUEUED) and
reopens a RESOLVED one within the reopen window, after which it opens a new conversation linked to the old.
A brand message threaded here sets the first response time but does not move the state.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from parley import corrections, lua
from parley.clock import Clock, from_timestamp, to_timestamp
from parley.config import Settings
from parley.events import EventRecord, add_to_pipeline
from parley.messages import CHANNEL_NAMES, INTENT_NAMES, message_id
from parley.rpc import Aborted, InvalidArgument, NotFound
from parley.store import Keys, Redis
from parley.v1 import common_pb2, conversations_pb2

from . import retention
from .profiles import CHANNEL_BY_NAME, Tiers, identity_of
from .store import ConversationKeys, conversation_id_for

CONTEXT_TURNS = 5
# How long a reply that arrived before its parent keeps a place for the parent.
AWAITING_TTL_SECONDS = 7 * 24 * 3600
MERGE_ATTEMPTS = 8
GROUP_BY = ("", "channel", "intent", "topic", "team")
GET_MANY_CONCURRENCY = 16
METRIC_FIELDS = [
    "channel",
    "intent",
    "topic",
    "team",
    "state",
    "opened_at",
    "first_inbound_at",
    "first_response_at",
    "bot_first_response_at",
    "human_first_response_at",
    "handling",
    "work_since",
    "resolved_at",
    "reopen_count",
    "moved_to_private",
    "sla_due_at",
]

ROLE_OWNER = conversations_pb2.PARTICIPANT_ROLE_OWNER
ROLE_PARTICIPANT = conversations_pb2.PARTICIPANT_ROLE_PARTICIPANT
ROLE_BRAND = conversations_pb2.PARTICIPANT_ROLE_BRAND
STATE_NEW = conversations_pb2.CONVERSATION_STATE_NEW
STATE_QUEUED = conversations_pb2.CONVERSATION_STATE_QUEUED
STATE_ASSIGNED = conversations_pb2.CONVERSATION_STATE_ASSIGNED
STATE_WAITING = conversations_pb2.CONVERSATION_STATE_WAITING_ON_CUSTOMER
STATE_RESOLVED = conversations_pb2.CONVERSATION_STATE_RESOLVED
CLOSED_STATES = {STATE_RESOLVED, conversations_pb2.CONVERSATION_STATE_CLOSED_NO_ACTION}

# What each lifecycle event of the router and dispatch does: (new state, who it names).
EVENT_STATES = {
    "conversation.assigned": STATE_ASSIGNED,
    "conversation.resolved": STATE_RESOLVED,
    "conversation.escalated": STATE_QUEUED,
    "conversation.transferred": STATE_QUEUED,
    "conversation.declined": STATE_QUEUED,
}

# The state a routing action puts the conversation in; APPENDED (and unknown actions) leave it as it is.
STATE_FOR_ACTION = {
    common_pb2.ROUTE_ACTION_BOT_REPLY: conversations_pb2.CONVERSATION_STATE_BOT,
    common_pb2.ROUTE_ACTION_QUEUED: conversations_pb2.CONVERSATION_STATE_QUEUED,
    common_pb2.ROUTE_ACTION_ASSIGNED: conversations_pb2.CONVERSATION_STATE_ASSIGNED,
    common_pb2.ROUTE_ACTION_NO_ACTION: conversations_pb2.CONVERSATION_STATE_CLOSED_NO_ACTION,
}


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""


def is_outbound(message: common_pb2.InboundMessage) -> bool:
    return message.direction == common_pb2.DIRECTION_OUTBOUND


@dataclass
class _Placement:
    """Where one message of a batch goes, worked out before anything is written."""

    message: common_pb2.InboundMessage
    conversation_id: str
    existing: bool  # threaded by an earlier call
    new_conversation: bool = False  # this message opens a conversation created by this call
    claimed: bool = False  # this call set its message index
    role: int = 0
    context: list[str] = field(default_factory=list)
    held: bool = False  # opens its conversation held: its parent has not arrived
    previous: str = ""  # opens a conversation that follows this resolved one
    person: str = ""  # the customer behind the author
    thread_key: str = ""  # the platform thread it opens


class Conversations:
    def __init__(self, settings: Settings, redis: Redis, keys: Keys, clock: Clock) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = ConversationKeys(keys)
        self.clock = clock
        self.tiers = Tiers.from_settings(settings)
        self._thread, self._outcome, self._context, self._event, self._claim, self._await, self._retire = (
            lua.register(redis, "parley.conversations", name)
            for name in ("thread", "outcome", "context", "event", "claim", "await", "retire")
        )

    def _sent(self, message: common_pb2.InboundMessage, now: float) -> float:
        """A message's time: when it was sent, else when it reached us, else now."""
        if message.HasField("sent_at"):
            return from_timestamp(message.sent_at)
        if message.HasField("received_at"):
            return from_timestamp(message.received_at)
        return now

    async def _get_many(self, keys: list[str]) -> list[bytes | None]:
        """GET of keys in many slots: one MGET on a single Redis, pipelined GETs on a cluster (where the
        client splits them by node)."""
        if not self.settings.redis_cluster:
            return list(await self.redis.mget(keys))
        async with lua.pipeline(self.redis) as pipe:
            for key in keys:
                pipe.get(key)
            return list(await pipe.execute())

    # ---- threading ---------------------------------------------------------------------------------------

    async def thread(
        self, messages: Sequence[common_pb2.InboundMessage]
    ) -> list[conversations_pb2.ThreadResult]:
        if not messages:
            return []
        now = self.clock.now()
        k = self.keys

        # 1. What is known already: each message, each parent, each platform thread, any reply that arrived
        # before the message itself, and the person behind each customer identity.
        lookups: list[str] = []
        for m in messages:
            lookups.append(k.message_index(m.message_id))
            lookups.append(k.awaiting(m.message_id))
            if m.in_reply_to_id:
                lookups.append(k.message_index(message_id(m.channel, m.in_reply_to_id)))
                lookups.append(k.awaiting(message_id(m.channel, m.in_reply_to_id)))
            if m.platform_thread_id:
                lookups.append(k.thread(m.channel, m.brand_account_id, m.platform_thread_id))
            if not is_outbound(m):
                lookups.append(k.identity(identity_of(m.channel, m.author.id)))
        lookups = list(dict.fromkeys(lookups))
        known = {key: _text(v) for key, v in zip(lookups, await self._get_many(lookups), strict=True) if v}
        persons = {
            m.message_id: known.get(k.identity(identity_of(m.channel, m.author.id)))
            or identity_of(m.channel, m.author.id)
            for m in messages
            if not is_outbound(m)
        }
        public = await self._open_public(messages, known, persons, now)

        # 2. Place every message in sent order (batch order on ties), so a reply finds a parent anywhere in
        # the batch.
        placed: dict[str, _Placement] = {}
        threads: dict[str, str] = {}  # thread key -> conversation id, claimed by this batch
        awaiting: dict[str, str] = {}  # awaiting key of an unknown parent -> its reply's conversation
        parents: dict[str, str] = {}  # awaiting key -> the parent's message id
        opened: set[str] = set()  # conversations this batch opens
        merges: dict[str, str] = {}  # a stored conversation -> the one it merges into
        for _, m in sorted(enumerate(messages), key=lambda im: (self._sent(im[1], now), im[0])):
            if m.message_id in placed:
                continue
            existing = known.get(k.message_index(m.message_id))
            parent = message_id(m.channel, m.in_reply_to_id) if m.in_reply_to_id else ""
            parent_unknown = bool(parent) and parent not in placed and k.message_index(parent) not in known
            if existing:
                p = _Placement(m, existing, existing=True)
            else:
                p = _Placement(m, self._joins(m, known, placed, threads, awaiting), existing=False)
                thread_key = k.thread(m.channel, m.brand_account_id, m.platform_thread_id)
                if not p.conversation_id and m.message_id in public:
                    # A DM continuing the customer's open public conversation joins it, marked private.
                    p.conversation_id = public[m.message_id]
                    if m.platform_thread_id:
                        threads[thread_key] = p.conversation_id
                if not p.conversation_id:
                    p.conversation_id = conversation_id_for(m.message_id)
                    p.new_conversation = True
                    p.held = parent_unknown
                    opened.add(p.conversation_id)
                    if m.platform_thread_id:
                        threads[thread_key] = p.conversation_id
                        p.thread_key = thread_key
                if parent_unknown:
                    awaiting.setdefault(k.awaiting(parent), p.conversation_id)
                    parents[k.awaiting(parent)] = parent
            p.person = persons.get(m.message_id, "")
            placed[m.message_id] = p
            # Replies that arrived before this message: their conversation becomes this one's.
            waiting = awaiting.get(k.awaiting(m.message_id)) or known.get(k.awaiting(m.message_id), "")
            if waiting and waiting != p.conversation_id:
                if waiting in opened:  # opened by this batch: nothing stored yet, re-point it
                    self._repoint(placed, threads, awaiting, opened, waiting, p.conversation_id)
                    awaiting.pop(k.awaiting(m.message_id), None)
                else:
                    merges[waiting] = p.conversation_id
        order = [placed[m.message_id] for m in messages]

        # 3. Claim each new message's index, each new thread and each awaited parent, unless a concurrent
        # call got there first. A message and the replies waiting for it share a hash slot, so a reply that
        # registers its wait at the same moment its parent is claimed is seen by one side or the other.
        fresh = [p for p in placed.values() if not p.existing]
        async with lua.pipeline(self.redis) as pipe:
            for key, cid in threads.items():
                pipe.set(key, cid, nx=True, get=True)
            for p in fresh:
                mid = p.message.message_id
                await self._claim(
                    keys=[k.message_index(mid), k.awaiting(mid)], args=[p.conversation_id], client=pipe
                )
            for key, cid in awaiting.items():  # the first reply to wait for a parent keeps the place
                await self._await(
                    keys=[k.message_index(parents[key]), key], args=[cid, AWAITING_TTL_SECONDS], client=pipe
                )
            replies = await pipe.execute()
        moved: dict[str, str] = {}  # a conversation this call meant to open -> the one that won the race
        won_threads = replies[: len(threads)]
        claims = replies[len(threads) : len(threads) + len(fresh)]
        waits = [[_text(v) for v in reply] for reply in replies[len(threads) + len(fresh) :]]
        # A parent threaded meanwhile is joined; a reply that waited first keeps the place.
        for cid, winner in [
            *zip(threads.values(), won_threads, strict=False),
            *((cid, winner) for cid, (_, winner) in zip(awaiting.values(), waits, strict=True)),
        ]:
            if winner and _text(winner) != cid and cid in opened:
                moved.setdefault(cid, _text(winner))
        overwrite: list[_Placement] = []
        waited: dict[str, str] = {}  # message id -> a waiting reply's conversation this call did not know of
        for p, (winner, waiting) in zip(fresh, ([_text(v) for v in c] for c in claims), strict=True):
            if winner:  # threaded meanwhile by another call: its answer stands
                p.conversation_id, p.existing, p.new_conversation = winner, True, False
                if p.conversation_id != conversation_id_for(p.message.message_id):
                    moved.setdefault(conversation_id_for(p.message.message_id), p.conversation_id)
            else:
                p.claimed = True
                if waiting and not known.get(k.awaiting(p.message.message_id)):
                    waited[p.message.message_id] = waiting
        self._follow(placed, moved, overwrite)
        # Replies that registered their wait after the lookup: their conversations merge into this one.
        for mid, waiting in waited.items():
            if waiting not in opened and waiting != placed[mid].conversation_id:
                merges.setdefault(waiting, placed[mid].conversation_id)
        merges = {src: moved.get(dst, dst) for src, dst in merges.items() if src != moved.get(dst, dst)}

        # 4. Read the conversations that existed before this call: owner, state, recent customer turns.
        meta = await self._read_meta(placed, overwrite, now)
        cids = list(dict.fromkeys(p.conversation_id for p in placed.values()))
        existing_cids = [c for c in cids if c in meta]
        earliest: dict[str, float] = {}
        for p in placed.values():
            sent = self._sent(p.message, now)
            earliest[p.conversation_id] = min(sent, earliest.get(p.conversation_id, sent))
        history: dict[str, list[str]] = {}
        if existing_cids:
            async with lua.pipeline(self.redis) as pipe:
                for cid in existing_cids:
                    # Customer turns before the earliest message of this batch in the conversation.
                    before = repr(earliest[cid])
                    await self._context(
                        keys=[k.inbound(cid), k.texts(cid)], args=[before, CONTEXT_TURNS], client=pipe
                    )
                out = await pipe.execute()
            for cid, texts in zip(existing_cids, out, strict=True):
                history[cid] = [_text(t) for t in reversed(texts)]

        # Roles and context, in the conversation's time order within the batch.
        owners = {cid: meta.get(cid, {}).get("owner", "") for cid in cids}
        turns: dict[str, list[tuple[float, str]]] = {cid: [] for cid in cids}
        batch_order = {id(p): i for i, p in enumerate(placed.values())}
        for p in sorted(placed.values(), key=lambda q: (self._sent(q.message, now), batch_order[id(q)])):
            m, cid = p.message, p.conversation_id
            sent = self._sent(m, now)
            earlier = [text for t, text in turns[cid] if t < sent]
            p.context = (history.get(cid, []) + earlier)[-CONTEXT_TURNS:]
            if is_outbound(m):
                p.role = ROLE_BRAND
            else:
                if not owners[cid]:
                    owners[cid] = m.author.id
                p.role = ROLE_OWNER if m.author.id == owners[cid] else ROLE_PARTICIPANT
                turns[cid].append((sent, m.text))

        # 5. Write: every placed message (re-writing one already threaded is harmless and repairs a crash
        # between claim and write), the indexes, the customer profiles, and the events of what is new.
        events: list[EventRecord] = []
        by_cid: dict[str, list[_Placement]] = {}
        for p in placed.values():
            by_cid.setdefault(p.conversation_id, []).append(p)
        script_at: dict[str, int] = {}  # conversation id -> position of its script's reply
        held_before = {cid for cid, row in meta.items() if row.get("held")}
        async with lua.pipeline(self.redis) as pipe:
            for p in overwrite:
                pipe.set(k.message_index(p.message.message_id), p.conversation_id)
                if p.thread_key:
                    pipe.set(p.thread_key, p.conversation_id)
            for cid, group in by_cid.items():
                opener = next((p for p in group if p.new_conversation), group[0])
                owner_person = meta.get(cid, {}).get("owner_person") or next(
                    (p.person for p in group if p.role == ROLE_OWNER), ""
                )
                held = opener.new_conversation and opener.held
                args: list[str | bytes | float] = [
                    repr(now),
                    opener.message.channel,
                    opener.message.brand_account_id,
                    repr(self._sent(opener.message, now)),
                    STATE_NEW,
                    len(group),
                    1 if held else 0,
                    opener.previous,
                    owner_person,
                    opener.thread_key,
                ]
                for p in group:
                    args += self._message_args(p, now)
                script_at[cid] = len(pipe)
                await self._thread(keys=k.thread_script_keys(cid), args=args, client=pipe)
                sent_open = self._sent(opener.message, now)
                if owner_person:
                    pipe.zadd(k.profile_conversations(owner_person), {cid: sent_open}, nx=True)
                for p in group:
                    self._profile_writes(pipe, p, cid, owner_person, now)
                if held or cid in held_before:
                    if held:
                        pipe.zadd(k.held(), {cid: now}, nx=True)
                    continue
                # New messages move the conversation up the lists; a re-thread only restores a missing entry.
                touched = any(p.claimed for p in group)
                flag = {"gt": True} if touched else {"nx": True}
                pipe.zadd(k.index_all(), {cid: now}, **flag)
                pipe.zadd(k.index_channel(opener.message.channel), {cid: now}, **flag)
                pipe.zadd(k.index_opened(), {cid: sent_open}, nx=True)
                if any(p.new_conversation and p.claimed for p in group):
                    pipe.zadd(k.index_state(STATE_NEW), {cid: now})
                    attrs = {"channel": CHANNEL_NAMES.get(opener.message.channel, "")}
                    if opener.previous:
                        attrs["previous_conversation_id"] = opener.previous
                    events.append(
                        EventRecord("conversation.opened", cid, opener.message.message_id, now, attrs)
                    )
                elif touched:
                    state = int(meta.get(cid, {}).get("state") or 0)
                    pipe.zadd(k.index_state(state), {cid: now}, xx=True, gt=True)
            for p in placed.values():
                if p.claimed:
                    events.append(
                        EventRecord(
                            "message.threaded", p.conversation_id, p.message.message_id, now, {"role": p.role}
                        )
                    )
            add_to_pipeline(pipe, self.keys.keys, events, self.settings.events_maxlen)
            written = await pipe.execute()
        states: dict[str, tuple[int, bool, str]] = {}
        changes: list[tuple[str, list[str]]] = []
        refused: dict[str, str] = {}  # a conversation merged away before this call wrote it -> where it went
        for cid, at in script_at.items():
            reply = [_text(v) for v in written[at]]
            if reply[0] == "merged":
                refused[cid] = reply[1]
                continue
            state, held, moved_by, *flat = reply
            states[cid] = (int(state or STATE_NEW), bool(held), moved_by)
            if flat:
                changes.append((cid, flat))
        await self._publish_changes(changes, {cid: held for cid, (_, held, _) in states.items()})
        redirected = await self._redirect(by_cid, refused) if refused else {}

        # 6. Merge the conversations of replies that arrived before this batch's messages.
        final: dict[str, str] = {}
        for src, dst in merges.items():
            if await self._merge(src, dst):
                final[src] = dst
        if merges:
            async with lua.pipeline(self.redis) as pipe:
                for p in placed.values():
                    mid = p.message.message_id
                    if (known.get(k.awaiting(mid)) or waited.get(mid)) in merges:
                        pipe.delete(k.awaiting(p.message.message_id))
                await pipe.execute()

        brand_replies = await self._brand_replies(order, placed, known)
        results = []
        for p in order:
            if p.message.message_id in redirected:
                results.append(redirected[p.message.message_id])
                continue
            cid = final.get(p.conversation_id, p.conversation_id)
            state, held, moved_by = states.get(cid) or states[p.conversation_id]
            results.append(
                conversations_pb2.ThreadResult(
                    message_id=p.message.message_id,
                    conversation_id=cid,
                    opened_conversation=cid == conversation_id_for(p.message.message_id),
                    role=p.role,
                    state=state,
                    context=p.context,
                    held=held,
                    customer_tier="" if is_outbound(p.message) else self.tiers.tier(p.person, p.message),
                    moved_to_private=moved_by == p.message.message_id,
                    brand_reply=brand_replies.get(p.message.message_id, ""),
                )
            )
        return results

    async def _redirect(
        self, groups: dict[str, list[_Placement]], refused: dict[str, str]
    ) -> dict[str, conversations_pb2.ThreadResult]:
        """Thread again, where it went, the messages of each conversation merged away between this call's
        claim and its write (thread.lua wrote nothing into it); what the call listed it in is undone."""
        k = self.keys
        async with lua.pipeline(self.redis) as pipe:
            for cid, into in refused.items():
                for index in (k.held(), k.index_all(), k.index_opened(), k.index_state(STATE_NEW)):
                    pipe.zrem(index, cid)
                for p in groups[cid]:
                    pipe.zrem(k.index_channel(p.message.channel), cid)
                    if p.person:
                        pipe.zrem(k.profile_conversations(p.person), cid)
                    pipe.set(k.message_index(p.message.message_id), into)
                    if p.thread_key:
                        pipe.set(p.thread_key, into)
            await pipe.execute()
        again = await self.thread([p.message for cid in refused for p in groups[cid]])
        return {result.message_id: result for result in again}

    async def _brand_replies(
        self, order: list[_Placement], placed: dict[str, _Placement], known: dict[str, str]
    ) -> dict[str, str]:
        """For each customer message that answers a brand message, that brand message's text (the classifier
        reads "here it is" differently after "please DM us your order number"). One round trip at most."""
        out: dict[str, str] = {}
        stored: list[tuple[str, str, str]] = []  # (message id, parent's conversation, parent id)
        for p in order:
            m = p.message
            if is_outbound(m) or not m.in_reply_to_id:
                continue
            parent = message_id(m.channel, m.in_reply_to_id)
            if parent in placed:
                if is_outbound(placed[parent].message):
                    out[m.message_id] = placed[parent].message.text
            elif parent_cid := known.get(self.keys.message_index(parent)):
                stored.append((m.message_id, parent_cid, parent))
        if stored:
            async with lua.pipeline(self.redis) as pipe:
                for _, parent_cid, parent in stored:
                    pipe.hget(self.keys.bodies(parent_cid), parent)
                bodies = await pipe.execute()
            for (mid, _, _), body in zip(stored, bodies, strict=True):
                if body:
                    parent_message = common_pb2.InboundMessage.FromString(body)
                    if is_outbound(parent_message):
                        out[mid] = parent_message.text
        return out

    def _message_args(self, p: _Placement, now: float) -> list[str | bytes | float]:
        m = p.message
        return [
            m.message_id,
            repr(self._sent(m, now)),
            2 if is_outbound(m) else 1,
            p.role,
            m.SerializeToString(),
            m.text,
            m.author.id,
            m.author.SerializeToString(),
            1 if p.claimed else 0,
            m.visibility,
        ]

    def _profile_writes(self, pipe: Any, p: _Placement, cid: str, owner_person: str, now: float) -> None:
        """The customer's reach and identities, and their latest public exchange (a DM may continue it)."""
        k, m = self.keys, p.message
        sent = self._sent(m, now)
        if not is_outbound(m):
            fields = {"handle": m.author.handle, "verified": int(m.author.verified)}
            if m.author.follower_count:
                fields["followers"] = m.author.follower_count
            pipe.hset(k.profile(p.person), mapping=fields)
            pipe.sadd(k.profile_identities(p.person), identity_of(m.channel, m.author.id))
        person = p.person if p.role == ROLE_OWNER else owner_person if p.role == ROLE_BRAND else ""
        if person and m.visibility == common_pb2.VISIBILITY_PUBLIC:
            pipe.set(k.last_public(person), f"{cid} {sent!r}")

    async def _open_public(
        self,
        messages: Sequence[common_pb2.InboundMessage],
        known: dict[str, str],
        persons: dict[str, str],
        now: float,
    ) -> dict[str, str]:
        """The open public conversation each new customer DM continues, if any: the same person, the same
        brand account, a public exchange within the window."""
        k = self.keys
        candidates = [
            m
            for m in messages
            if m.visibility == common_pb2.VISIBILITY_PRIVATE
            and not is_outbound(m)
            and k.message_index(m.message_id) not in known
            and not (m.in_reply_to_id and k.message_index(message_id(m.channel, m.in_reply_to_id)) in known)
            and not (
                m.platform_thread_id
                and k.thread(m.channel, m.brand_account_id, m.platform_thread_id) in known
            )
        ]
        if not candidates:
            return {}
        people = list(dict.fromkeys(persons[m.message_id] for m in candidates))
        last = dict(zip(people, await self._get_many([k.last_public(p) for p in people]), strict=True))
        found: dict[str, tuple[str, float]] = {}
        for person, raw in last.items():
            if raw:
                cid, at = _text(raw).split(" ")
                found[person] = (cid, float(at))
        if not found:
            return {}
        async with lua.pipeline(self.redis) as pipe:
            for cid, _ in found.values():
                pipe.hmget(k.meta(cid), ["state", "brand_account_id", "merged_into"])
            rows = dict(zip(found, await pipe.execute(), strict=True))
        window = self.settings.conversations_private_window_seconds
        out = {}
        for m in candidates:
            person = persons[m.message_id]
            if person not in found:
                continue
            cid, at = found[person]
            state, brand, merged = (_text(v) for v in rows[person])
            if merged or brand != m.brand_account_id or int(state or 0) in CLOSED_STATES:
                continue
            if 0 <= self._sent(m, now) - at <= window:
                out[m.message_id] = cid
        return out

    @staticmethod
    def _repoint(
        placed: dict[str, _Placement],
        threads: dict[str, str],
        awaiting: dict[str, str],
        opened: set[str],
        old: str,
        new: str,
    ) -> None:
        """A conversation this batch was about to open joins another (its awaited parent arrived)."""
        for p in placed.values():
            if p.conversation_id == old:
                p.conversation_id, p.new_conversation, p.held = new, False, False
        for table in (threads, awaiting):
            for key, cid in table.items():
                if cid == old:
                    table[key] = new
        opened.discard(old)

    @staticmethod
    def _follow(placed: dict[str, _Placement], moved: dict[str, str], overwrite: list[_Placement]) -> None:
        for p in placed.values():
            target = moved.get(p.conversation_id)
            if target:
                p.conversation_id, p.new_conversation = target, False
                if p.claimed:
                    overwrite.append(p)

    async def _read_meta(
        self, placed: dict[str, _Placement], overwrite: list[_Placement], now: float
    ) -> dict[str, dict[str, str]]:
        """The stored conversations the batch joins, following merges; a customer coming back after the
        reopen window starts a new conversation linked to the resolved one."""
        k = self.keys
        fields = ["owner", "state", "resolved_at", "merged_into", "owner_person", "held"]
        meta: dict[str, dict[str, str]] = {}
        for _ in range(4):  # a merge chain is short; each round follows one step
            todo = list(
                dict.fromkeys(
                    p.conversation_id
                    for p in placed.values()
                    if not p.new_conversation and p.conversation_id not in meta
                )
            )
            if not todo:
                break
            async with lua.pipeline(self.redis) as pipe:
                for cid in todo:
                    pipe.hmget(k.meta(cid), fields)
                rows = await pipe.execute()
            into: dict[str, str] = {}
            for cid, row in zip(todo, rows, strict=True):
                values = dict(zip(fields, (_text(v) for v in row), strict=True))
                if values["merged_into"]:
                    into[cid] = values["merged_into"]
                elif values["state"]:
                    meta[cid] = values
                else:  # claimed by a call whose writes are not stored yet: write it as new
                    meta[cid] = values
            self._follow(placed, into, overwrite)
        window = self.settings.conversations_reopen_window_seconds
        successor: dict[str, str] = {}
        for p in sorted(placed.values(), key=lambda q: self._sent(q.message, now)):
            row = meta.get(p.conversation_id)
            if not row or not p.claimed or is_outbound(p.message) or p.new_conversation:
                continue
            late = now - float(row["resolved_at"] or 0) > window
            if row["state"] != str(STATE_RESOLVED) or row["owner"] != p.message.author.id or not late:
                continue
            old, m = p.conversation_id, p.message
            if old not in successor:
                successor[old] = conversation_id_for(m.message_id)
                p.new_conversation, p.previous = True, old
                if m.platform_thread_id:
                    p.thread_key = k.thread(m.channel, m.brand_account_id, m.platform_thread_id)
            p.conversation_id = successor[old]
            overwrite.append(p)
        return meta

    def _joins(
        self,
        m: common_pb2.InboundMessage,
        known: dict[str, str],
        placed: dict[str, _Placement],
        threads: dict[str, str],
        awaiting: dict[str, str],
    ) -> str:
        """The conversation a new message joins; '' opens a new one.

        In order: its parent's (or, parent unknown, that of an earlier reply waiting for the same parent),
        that of its platform thread.
        """
        k = self.keys
        if m.in_reply_to_id:
            parent = message_id(m.channel, m.in_reply_to_id)
            if parent in placed:
                return placed[parent].conversation_id
            if k.message_index(parent) in known:
                return known[k.message_index(parent)]
            # Another reply to the same unknown parent is already waiting for it: join that one.
            sibling = k.awaiting(parent)
            if sibling in awaiting or sibling in known:
                return awaiting.get(sibling) or known[sibling]
        if m.platform_thread_id:
            key = k.thread(m.channel, m.brand_account_id, m.platform_thread_id)
            return threads.get(key) or known.get(key, "")
        return ""

    async def _publish_changes(self, changes: list[tuple[str, list[str]]], held: dict[str, bool]) -> None:
        """Publish state changes (old, new, at triples per conversation) and keep the state index."""
        if not changes:
            return
        k = self.keys
        events = []
        async with lua.pipeline(self.redis) as pipe:
            for cid, flat in changes:
                for j in range(0, len(flat), 3):
                    old, new, at = int(flat[j] or 0), int(flat[j + 1]), float(flat[j + 2])
                    events.append(
                        EventRecord("conversation.state_changed", cid, "", at, {"from": old, "to": new})
                    )
                    pipe.zrem(k.index_state(old), cid)
                if not held.get(cid):
                    pipe.zadd(k.index_state(int(flat[-2])), {cid: float(flat[-1])})
            add_to_pipeline(pipe, self.keys.keys, events, self.settings.events_maxlen)
            await pipe.execute()
        steps = {cid: [(int(f[j] or 0), int(f[j + 1])) for j in range(0, len(f), 3)] for cid, f in changes}
        await retention.apply(self.redis, self.keys, self.settings, steps)

    async def _merge(self, src: str, dst: str) -> bool:
        """Move every message and decision of `src` into `dst` (the reply chain joins them), leaving `src`
        as a pointer to `dst`. Idempotent: a merged conversation is not merged again. A `src` not written yet
        becomes the pointer at once, so the Thread about to write it goes to `dst` instead (thread.lua)."""
        for _ in range(MERGE_ATTEMPTS):
            src, dst = await self._current(src), await self._current(dst)
            outcome = await self._merge_once(src, dst)
            if outcome is not None:
                return outcome
        raise Aborted(f"conversation {src} kept changing while it was merged; retry")

    async def _merge_once(self, src: str, dst: str) -> bool | None:
        """One pass of `_merge`: None when `src` or `dst` changed under it (read again)."""
        k = self.keys
        async with lua.pipeline(self.redis) as pipe:
            pipe.hgetall(k.meta(src))
            pipe.hgetall(k.bodies(src))
            pipe.hgetall(k.triage(src))
            pipe.hgetall(k.routing(src))
            pipe.hgetall(k.applied(src))
            pipe.zrange(k.agents(src), 0, -1, withscores=True)
            pipe.hmget(k.meta(dst), ["owner", "held", "channel", "state"])
            meta, bodies, triage, routing, applied, agents, target = await pipe.execute()
        meta = {_text(a): _text(b) for a, b in meta.items()}
        if meta.get("merged_into") or src == dst or not target[2]:
            return False
        now = self.clock.now()
        owner, dst_held = _text(target[0]), bool(target[1])
        placements = []
        for raw in bodies.values():
            m = common_pb2.InboundMessage.FromString(raw)
            placements.append(_Placement(m, dst, existing=True))
        placements.sort(key=lambda p: self._sent(p.message, now))
        for p in placements:
            if is_outbound(p.message):
                p.role = ROLE_BRAND
            else:
                owner = owner or p.message.author.id
                p.role = ROLE_OWNER if p.message.author.id == owner else ROLE_PARTICIPANT
        async with lua.pipeline(self.redis) as pipe:
            args: list[str | bytes | float] = [repr(now), 0, "", repr(now), STATE_NEW, len(placements)]
            args += [0, "", "", ""]
            for p in placements:
                args += self._message_args(p, now)
            await self._thread(keys=k.thread_script_keys(dst), args=args, client=pipe)
            for name, table in (("triage", triage), ("routing", routing), ("applied", applied)):
                if table:
                    pipe.hset(getattr(k, name)(dst), mapping=table)
            if agents:
                pipe.zadd(k.agents(dst), dict(agents), nx=True)
            for name in ("intent", "topic", "team", "agent", "sla_due_at"):
                if meta.get(name):
                    pipe.hsetnx(k.meta(dst), name, meta[name])
            for p in placements:
                pipe.set(k.message_index(p.message.message_id), dst)
            if meta.get("thread_key"):
                pipe.set(meta["thread_key"], dst)
            copied = await pipe.execute()
        if _text(copied[0][0]) == "merged":
            return None  # `dst` itself was merged meanwhile: follow it
        # Retire `src` only if nothing was written into it since it was read, else copy again.
        retire_args = [meta.get("rev", ""), dst, AWAITING_TTL_SECONDS]
        if not await self._retire(keys=[k.meta(src), *k.parts(src)], args=retire_args):
            return None
        async with lua.pipeline(self.redis) as pipe:
            for index in (k.index_all(), k.index_channel(int(meta.get("channel") or 0)), k.index_opened()):
                pipe.zrem(index, src)
            pipe.zrem(k.index_state(int(meta.get("state") or 0)), src)
            pipe.zrem(k.held(), src)
            if meta.get("owner_person"):
                pipe.zrem(k.profile_conversations(meta["owner_person"]), src)
            if not dst_held:
                pipe.zadd(k.index_all(), {dst: now}, gt=True)
                pipe.zadd(k.index_channel(int(_text(target[2]))), {dst: now}, gt=True)
            event = EventRecord(
                "conversation.merged", src, "", now, {"into": dst, "messages": len(placements)}
            )
            add_to_pipeline(pipe, self.keys.keys, [event], self.settings.events_maxlen)
            await pipe.execute()
        return True

    async def _current(self, cid: str) -> str:
        """The conversation `cid` is now: itself, or the one it was merged into."""
        for _ in range(8):  # a merge chain is short
            into = _text(await self.redis.hget(self.keys.meta(cid), "merged_into"))
            if not into:
                break
            cid = into
        return cid

    async def sweep_held(self) -> int:
        """Open the held conversations whose parent did not arrive in time; returns how many."""
        k = self.keys
        now = self.clock.now()
        cutoff = now - self.settings.conversations_held_timeout_seconds
        cids = [_text(c) for c in await self.redis.zrangebyscore(k.held(), "-inf", repr(cutoff))]
        if not cids:
            return 0
        fields = ["held", "merged_into", "channel", "opened_at", "state"]
        async with lua.pipeline(self.redis) as pipe:
            for cid in cids:
                pipe.hmget(k.meta(cid), fields)
            rows = await pipe.execute()
        released = 0
        events = []
        async with lua.pipeline(self.redis) as pipe:
            for cid, row in zip(cids, rows, strict=True):
                held, merged, channel, opened_at, state = (_text(v) for v in row)
                pipe.zrem(k.held(), cid)
                if not held or merged or not channel:
                    continue
                released += 1
                pipe.hdel(k.meta(cid), "held")
                pipe.zadd(k.index_all(), {cid: now}, gt=True)
                pipe.zadd(k.index_channel(int(channel)), {cid: now}, gt=True)
                pipe.zadd(k.index_opened(), {cid: float(opened_at)}, nx=True)
                pipe.zadd(k.index_state(int(state or STATE_NEW)), {cid: now})
                events.append(
                    EventRecord(
                        "conversation.opened",
                        cid,
                        "",
                        now,
                        {"channel": CHANNEL_NAMES.get(int(channel), ""), "reason": "parent did not arrive"},
                    )
                )
            add_to_pipeline(pipe, self.keys.keys, events, self.settings.events_maxlen)
            await pipe.execute()
        return released

    # ---- lifecycle events from the other services --------------------------------------------------------

    async def apply_events(self, entries: Sequence[tuple[str, EventRecord]]) -> int:
        """Apply lifecycle events (event id, event); returns how many moved a conversation. Each event
        applies once, by its id."""
        pending = []
        for event_id, event in entries:
            args = _event_args(event)
            if args is not None and event.conversation_id:
                pending.append((event.conversation_id, [event_id, *args]))
        moved = 0
        changes: list[tuple[str, list[str]]] = []
        for _ in range(4):  # follow merges: an event may name a conversation merged into another
            if not pending:
                break
            async with lua.pipeline(self.redis) as pipe:
                for cid, args in pending:
                    await self._event(keys=self.keys.event_script_keys(cid), args=args, client=pipe)
                replies = await pipe.execute()
            retry = []
            for (cid, args), reply in zip(pending, replies, strict=True):
                reply = [_text(v) for v in reply]
                if reply and reply[0] == "merged":
                    retry.append((reply[1], args))
                elif len(reply) == 3:
                    moved += 1
                    changes.append((cid, [reply[1], reply[2], args[2]]))
            pending = retry
        if changes:
            async with lua.pipeline(self.redis) as pipe:
                for cid, _ in changes:
                    pipe.hget(self.keys.meta(cid), "held")
                held = {cid: bool(h) for (cid, _), h in zip(changes, await pipe.execute(), strict=True)}
            await self._publish_changes(changes, held)
        return moved

    # ---- customers ---------------------------------------------------------------------------------------

    async def _person(self, identity: str) -> str:
        return _text(await self.redis.get(self.keys.identity(identity))) or identity

    async def link_identities(self, identity: str, other: str) -> str:
        """Make `other` (and every identity already linked to it) part of the customer of `identity`."""
        k = self.keys
        person, absorbed = await self._person(identity), await self._person(other)
        if person == absorbed:
            return person
        async with lua.pipeline(self.redis) as pipe:
            pipe.smembers(k.profile_identities(absorbed))
            pipe.hgetall(k.profile(absorbed))
            pipe.hgetall(k.profile(person))
            pipe.zrange(k.profile_conversations(absorbed), 0, -1, withscores=True)
            pipe.get(k.last_public(absorbed))
            pipe.get(k.last_public(person))
            ids, theirs, ours, convs, their_public, our_public = await pipe.execute()
        ids = {_text(i) for i in ids} | {other}
        theirs = {_text(a): _text(b) for a, b in theirs.items()}
        ours = {_text(a): _text(b) for a, b in ours.items()}
        merged = {**theirs, **ours}
        merged["followers"] = str(max(int(theirs.get("followers") or 0), int(ours.get("followers") or 0)))
        merged["verified"] = str(max(int(theirs.get("verified") or 0), int(ours.get("verified") or 0)))
        async with lua.pipeline(self.redis) as pipe:
            pipe.set(k.identity(identity), person)
            for i in ids:
                pipe.set(k.identity(i), person)
            pipe.sadd(k.profile_identities(person), identity, *ids)
            pipe.hset(k.profile(person), mapping=merged)
            if convs:
                pipe.zadd(k.profile_conversations(person), dict(convs), nx=True)
            if their_public and (
                not our_public
                or float(_text(their_public).split(" ")[1]) > float(_text(our_public).split(" ")[1])
            ):
                pipe.set(k.last_public(person), their_public)
            pipe.delete(
                k.profile(absorbed),
                k.profile_identities(absorbed),
                k.profile_conversations(absorbed),
                k.last_public(absorbed),
            )
            await pipe.execute()
        return person

    async def profile(
        self, identity: str = "", person: str = "", limit: int = 50
    ) -> conversations_pb2.CustomerProfile:
        k = self.keys
        person = person or await self._person(identity)
        async with lua.pipeline(self.redis) as pipe:
            pipe.hgetall(k.profile(person))
            pipe.smembers(k.profile_identities(person))
            pipe.zrevrange(k.profile_conversations(person), 0, limit - 1, withscores=True)
            fields, ids, convs = await pipe.execute()
        if not fields and not ids:
            raise NotFound(f"no customer with identity {identity or person}")
        fields = {_text(a): _text(b) for a, b in fields.items()}
        out = conversations_pb2.CustomerProfile(
            person_id=person,
            follower_count=int(fields.get("followers") or 0),
            verified=fields.get("verified") == "1",
        )
        for raw in sorted(_text(i) for i in ids):
            channel, _, author_id = raw.partition(":")
            out.identities.add(channel=CHANNEL_BY_NAME.get(channel, 0), author_id=author_id)
        out.tier = self.tiers.for_profile(out)
        if convs:
            async with lua.pipeline(self.redis) as pipe:
                for cid, _ in convs:
                    pipe.hmget(k.meta(_text(cid)), ["channel", "intent", "state", "merged_into"])
                rows = await pipe.execute()
            for (cid, opened), (channel, intent, state, merged) in zip(convs, rows, strict=True):
                if merged or not channel:
                    continue
                out.conversations.add(
                    conversation_id=_text(cid),
                    channel=int(_text(channel)),
                    intent=int(_text(intent) or 0),
                    state=int(_text(state) or 0),
                    opened_at=to_timestamp(opened),
                )
        return out

    # ---- outcomes ----------------------------------------------------------------------------------------

    async def record_outcomes(self, outcomes: Sequence[conversations_pb2.Outcome]) -> int:
        """Store each message's triage and routing and move its conversation; replays change nothing."""
        if not outcomes:
            return 0
        k = self.keys
        async with lua.pipeline(self.redis) as pipe:
            for o in outcomes:
                pipe.hmget(k.meta(o.conversation_id), ["channel", "merged_into"])
                pipe.get(k.message_index(o.message_id))
            checks = await pipe.execute()
        violations = []
        resolved = []
        for i, o in enumerate(outcomes):
            (channel, merged), owner = [_text(v) for v in checks[2 * i]], _text(checks[2 * i + 1])
            if not channel and not merged:
                raise NotFound(f"conversation {o.conversation_id} not found")
            if merged and owner != o.conversation_id:
                # The conversation was merged into another (its reply chain joined them): follow it.
                o = conversations_pb2.Outcome()
                o.CopyFrom(outcomes[i])
                o.conversation_id = owner
            elif owner != o.conversation_id:
                violations.append(
                    (
                        f"outcomes[{i}].message_id",
                        f"message {o.message_id} is not in conversation {o.conversation_id}",
                    )
                )
            resolved.append(o)
        if violations:
            raise InvalidArgument(violations)
        outcomes = resolved

        now = self.clock.now()
        by_cid: dict[str, list[conversations_pb2.Outcome]] = {}
        for o in outcomes:
            by_cid.setdefault(o.conversation_id, []).append(o)
        async with lua.pipeline(self.redis) as pipe:
            for cid, group in by_cid.items():
                args: list[str | bytes | int] = [len(group)]
                for o in group:
                    routing, triage = o.routing, o.triage
                    state = STATE_FOR_ACTION.get(routing.action) if o.HasField("routing") else None
                    at = from_timestamp(routing.decided_at) if routing.HasField("decided_at") else now
                    args += [
                        o.message_id,
                        triage.SerializeToString() if o.HasField("triage") else b"",
                        routing.SerializeToString() if o.HasField("routing") else b"",
                        str(state) if state else "",
                        str(triage.intent) if triage.intent else "",
                        triage.topic,
                        routing.team,
                        routing.agent_id,
                        repr(at),
                        1 if routing.action == common_pb2.ROUTE_ACTION_BOT_REPLY else 0,
                        repr(from_timestamp(routing.sla_due_at)) if routing.HasField("sla_due_at") else "",
                    ]
                await self._outcome(keys=k.outcome_script_keys(cid), args=args, client=pipe)
            changed = await pipe.execute()

        events = []
        steps: dict[str, list[tuple[int, int]]] = {}
        async with lua.pipeline(self.redis) as pipe:
            for cid, reply in zip(by_cid, changed, strict=True):
                channel, updated, held, *flat = [_text(v) for v in reply]
                steps[cid] = [(int(flat[j + 1]), int(flat[j + 2])) for j in range(0, len(flat), 4)]
                if held:  # not listed until its parent arrives or the sweep opens it
                    updated = ""
                if updated:
                    pipe.zadd(k.index_all(), {cid: float(updated)}, gt=True)
                    pipe.zadd(k.index_channel(int(channel)), {cid: float(updated)}, gt=True)
                for j in range(0, len(flat), 4):
                    mid, old, new, at = flat[j], int(flat[j + 1]), int(flat[j + 2]), float(flat[j + 3])
                    pipe.zrem(k.index_state(old), cid)
                    events.append(
                        EventRecord("conversation.state_changed", cid, mid, at, {"from": old, "to": new})
                    )
                if flat and not held:
                    pipe.zadd(k.index_state(int(flat[-2])), {cid: float(updated)})
            add_to_pipeline(pipe, self.keys.keys, events, self.settings.events_maxlen)
            await pipe.execute()
        await retention.apply(self.redis, self.keys, self.settings, steps)
        return len(outcomes)

    # ---- reading -----------------------------------------------------------------------------------------

    async def conversation_of(self, message_id: str) -> str:
        """The conversation a threaded message belongs to (NotFound before it is threaded)."""
        found = await self.redis.get(self.keys.message_index(message_id))
        if not found:
            raise NotFound(f"message {message_id} is in no conversation")
        return _text(found)

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
            pipe.hgetall(k.bodies(cid))
            pipe.hgetall(k.roles(cid))
            pipe.hgetall(k.triage(cid))
            pipe.hgetall(k.routing(cid))
            pipe.lrange(k.transitions(cid), 0, -1)
            pipe.zrange(k.agents(cid), 0, -1)
            pipe.lrange(k.corrections(cid), 0, -1)
            meta, ids, bodies, roles, triages, routings, transitions, agents, fixes = await pipe.execute()
        if not meta:
            raise NotFound(f"conversation {cid} not found")
        meta = {_text(a): b for a, b in meta.items()}
        if meta.get("merged_into"):  # its reply chain joined another conversation
            return await self.get(_text(meta["merged_into"]))
        conv = conversations_pb2.Conversation(
            conversation_id=cid,
            channel=int(_text(meta.get("channel")) or 0),
            brand_account_id=_text(meta.get("brand_account_id")),
            state=int(_text(meta.get("state")) or 0),
            opened_at=to_timestamp(float(_text(meta.get("opened_at")) or 0)),
            updated_at=to_timestamp(float(_text(meta.get("updated_at")) or 0)),
            intent=int(_text(meta.get("intent")) or 0),
            topic=_text(meta.get("topic")),
        )
        if meta.get("owner_author"):
            conv.owner.ParseFromString(meta["owner_author"])
        seen: set[tuple[int, str]] = set()
        visibilities = []
        for raw_id in ids:
            item = conv.messages.add(role=int(_text(roles.get(raw_id)) or 0))
            item.message.ParseFromString(bodies.get(raw_id, b""))
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
        text_meta = {a: _text(b) for a, b in meta.items() if a != "owner_author"}
        conv.moved_to_private = bool(text_meta.get("moved_to_private")) or conv.moved_to_private
        conv.reopen_count = int(text_meta.get("reopen_count") or 0)
        conv.previous_conversation_id = text_meta.get("previous", "")
        conv.agents.extend(_text(a) for a in agents)
        conv.corrections.extend(corrections.from_json(raw) for raw in fixes)
        conv.metrics.CopyFrom(conversation_metrics(text_meta, len(ids), len(agents), self.clock.now()))
        if text_meta.get("owner_person"):
            with contextlib.suppress(NotFound):
                conv.profile.CopyFrom(await self.profile(person=text_meta["owner_person"]))
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

        `owner_handle` and `team` filter while reading the index (a search, not a hot path): it reads on until
        it has a page of matches or the index ends.
        """
        handle = owner_handle.lstrip("@").casefold()
        k = self.keys
        cursor = _decode_token(page_token)
        source = k.index_state(state) if state else k.index_channel(channel) if channel else k.index_all()
        out: list[tuple[conversations_pb2.ConversationSummary, tuple[float, str]]] = []
        chunk = max(page_size * 2, 32)
        offset = 0
        top = repr(cursor[0]) if cursor else "+inf"
        more = True
        # One extra match tells whether there is a next page.
        while len(out) <= page_size and more:
            entries = await self.redis.zrevrangebyscore(
                source, top, "-inf", start=offset, num=chunk, withscores=True
            )
            more = len(entries) == chunk
            offset += len(entries)
            entries = [(_text(m), s) for m, s in entries]
            if cursor:  # equal times are ordered by id, descending
                entries = [(m, s) for m, s in entries if s < cursor[0] or (s == cursor[0] and m < cursor[1])]
            if not entries:
                continue
            async with lua.pipeline(self.redis) as pipe:
                for cid, _ in entries:
                    pipe.hgetall(k.meta(cid))
                    pipe.zcard(k.messages(cid))
                rows = await pipe.execute()
            for j, (cid, score) in enumerate(entries):
                if not rows[2 * j]:
                    continue  # expired after closing, or erased: the index entry outlives the record
                meta = {_text(a): b for a, b in rows[2 * j].items()}
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

    async def metrics(
        self, start: float, end: float, group_by: str = ""
    ) -> list[conversations_pb2.MetricsGroup]:
        """Metrics of the conversations opened in [start, end), one group per value of `group_by`."""
        if group_by not in GROUP_BY:
            raise InvalidArgument([("group_by", f"must be one of {', '.join(repr(g) for g in GROUP_BY)}")])
        k = self.keys
        now = self.clock.now()
        # The opened-time index bounds the read to the conversations of the window.
        cids = [_text(c) for c in await self.redis.zrangebyscore(k.index_opened(), start, f"({end!r}")]
        async with lua.pipeline(self.redis) as pipe:
            for cid in cids:
                pipe.hmget(k.meta(cid), METRIC_FIELDS)
                pipe.zcard(k.messages(cid))
                pipe.zcard(k.agents(cid))
                pipe.llen(k.corrections(cid))
            rows = await pipe.execute()
        groups: dict[str, list[conversations_pb2.ConversationMetrics]] = {}
        fixed: dict[str, int] = {}
        abandoned: dict[str, int] = {}
        for j in range(len(cids)):
            row = {f: _text(v) for f, v in zip(METRIC_FIELDS, rows[4 * j], strict=True) if v is not None}
            if not row.get("channel"):
                continue
            key = _group_key(group_by, row)
            abandoned[key] = abandoned.get(key, 0) + is_abandoned(row)
            groups.setdefault(key, []).append(
                conversation_metrics(row, rows[4 * j + 1], rows[4 * j + 2], now)
            )
            fixed[key] = fixed.get(key, 0) + rows[4 * j + 3]
        out = []
        for key, items in sorted(groups.items()):

            def dist(name: str, values: list[conversations_pb2.ConversationMetrics] = items) -> Any:
                return distribution(getattr(m, name) for m in values if m.HasField(name))

            out.append(
                conversations_pb2.MetricsGroup(
                    key=key,
                    conversations=len(items),
                    first_response_seconds=dist("first_response_seconds"),
                    bot_first_response_seconds=dist("bot_first_response_seconds"),
                    human_first_response_seconds=dist("human_first_response_seconds"),
                    handling_seconds=distribution(m.handling_seconds for m in items if m.agents_touched),
                    resolution_seconds=dist("resolution_seconds"),
                    messages=distribution(float(m.messages) for m in items),
                    agents_touched=distribution(float(m.agents_touched) for m in items),
                    reopened=sum(1 for m in items if m.reopen_count),
                    moved_to_private=sum(1 for m in items if m.moved_to_private),
                    sla_met=sum(1 for m in items if m.sla == conversations_pb2.SLA_STATUS_MET),
                    sla_missed=sum(1 for m in items if m.sla == conversations_pb2.SLA_STATUS_MISSED),
                    triage_corrections=fixed[key],
                    abandoned=abandoned[key],
                )
            )
        return out


def _event_args(event: EventRecord) -> list[str] | None:
    """The event.lua arguments for a lifecycle event (after the event id), None for other events."""
    kind = event.type
    attrs = event.attributes
    at = f"{event.at:.6f}"
    if kind in EVENT_STATES:
        agent = str(attrs.get("agent_id") or "") if kind == "conversation.assigned" else ""
        team = str(attrs.get("team") or "")
        return [str(EVENT_STATES[kind]), at, kind, agent, team, "0", "0"]
    if kind == "reply.sent":
        sent_by = str(attrs.get("sent_by") or "")
        if sent_by == "bot":
            return ["", at, kind, "", "", "0", "1"]
        if sent_by:  # an agent answered: the conversation now waits on the customer
            return [str(STATE_WAITING), at, f"reply by {sent_by}", sent_by, "", "1", "0"]
    return None


def is_abandoned(meta: dict[str, str]) -> bool:
    """Sent to a team, then closed without a single reply from the brand (the customer gave up)."""
    return bool(
        meta.get("team")
        and int(meta.get("state") or 0) == STATE_RESOLVED
        and not meta.get("first_response_at")
    )


def conversation_metrics(
    meta: dict[str, str], messages: int, agents: int, now: float
) -> conversations_pb2.ConversationMetrics:
    """One conversation's metrics from its record (durations from the first customer message)."""
    out = conversations_pb2.ConversationMetrics(
        messages=messages,
        agents_touched=agents,
        reopen_count=int(meta.get("reopen_count") or 0),
        moved_to_private=bool(meta.get("moved_to_private")),
    )
    first_in = float(meta["first_inbound_at"]) if meta.get("first_inbound_at") else None
    if first_in is not None:
        for name, f in (
            ("first_response_seconds", "first_response_at"),
            ("bot_first_response_seconds", "bot_first_response_at"),
            ("human_first_response_seconds", "human_first_response_at"),
        ):
            if meta.get(f):
                setattr(out, name, float(meta[f]) - first_in)
    state = int(meta.get("state") or 0)
    out.handling_seconds = float(meta.get("handling") or 0)
    if state == STATE_ASSIGNED and meta.get("work_since"):
        out.handling_seconds += max(0.0, now - float(meta["work_since"]))
    if state == STATE_RESOLVED and meta.get("resolved_at"):
        start = first_in if first_in is not None else float(meta.get("opened_at") or 0)
        out.resolution_seconds = float(meta["resolved_at"]) - start
    if meta.get("sla_due_at"):
        due = float(meta["sla_due_at"])
        out.sla_due_at.CopyFrom(to_timestamp(due))
        answers = [float(meta[f]) for f in ("human_first_response_at", "resolved_at") if meta.get(f)]
        if answers:
            out.sla = (
                conversations_pb2.SLA_STATUS_MET
                if min(answers) <= due
                else conversations_pb2.SLA_STATUS_MISSED
            )
        else:
            out.sla = (
                conversations_pb2.SLA_STATUS_MISSED if now > due else conversations_pb2.SLA_STATUS_PENDING
            )
    return out


def _group_key(group_by: str, row: dict[str, str]) -> str:
    if not group_by:
        return "all"
    value = row.get(group_by, "")
    if group_by == "channel":
        return CHANNEL_NAMES.get(int(value or 0), "unspecified")
    if group_by == "intent":
        return INTENT_NAMES.get(int(value or 0), "unspecified")
    return value or "none"


def distribution(values: Iterable[float]) -> conversations_pb2.Distribution:
    """Count, mean and nearest-rank percentiles (the smallest value with at least p% at or below it)."""
    ordered = sorted(values)
    if not ordered:
        return conversations_pb2.Distribution()

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return conversations_pb2.Distribution(
        count=len(ordered), mean=sum(ordered) / len(ordered), p50=rank(50), p90=rank(90), p99=rank(99)
    )


def _summary(cid: str, meta: dict[str, bytes], count: int) -> conversations_pb2.ConversationSummary:
    s = conversations_pb2.ConversationSummary(
        conversation_id=cid,
        channel=int(_text(meta.get("channel")) or 0),
        state=int(_text(meta.get("state")) or 0),
        message_count=count,
        opened_at=to_timestamp(float(_text(meta.get("opened_at")) or 0)),
        updated_at=to_timestamp(float(_text(meta.get("updated_at")) or 0)),
        intent=int(_text(meta.get("intent")) or 0),
        topic=_text(meta.get("topic")),
        team=_text(meta.get("team")),
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
        return float(score), str(cid)
    except (ValueError, TypeError, binascii.Error) as error:
        raise InvalidArgument([("page_token", "not a token returned by ListConversations")]) from error
