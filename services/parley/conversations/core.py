"""Threading, the conversation record, listing and metrics: the core the servicer and tests call.

Threading a batch takes four round trips whatever its size: look up what is already known, claim each new
message (SET NX on its index), read the conversations it joins, then write. Conversation ids derive from the
opening message id, so two callers threading the same message agree without a lock.

State belongs to routing (RecordOutcomes). A brand message sets the first response time but does not move the
state: it can arrive before the routing outcome of the message it answers, and a later APPENDED outcome would
then leave a conversation wrongly waiting on the customer.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from parley.clock import Clock, from_timestamp, to_timestamp
from parley.config import Settings
from parley.events import EventRecord, add_to_pipeline
from parley.messages import CHANNEL_NAMES, INTENT_NAMES, message_id
from parley.rpc import InvalidArgument, NotFound
from parley.store import Keys, Redis
from parley.v1 import common_pb2, conversations_pb2

from .store import CONTEXT_SCRIPT, OUTCOME_SCRIPT, THREAD_SCRIPT, ConversationKeys, conversation_id_for

CONTEXT_TURNS = 5
# How long a reply that arrived before its parent keeps a place for the parent.
AWAITING_TTL_SECONDS = 7 * 24 * 3600
GROUP_BY = ("", "channel", "intent", "topic", "team")

ROLE_OWNER = conversations_pb2.PARTICIPANT_ROLE_OWNER
ROLE_PARTICIPANT = conversations_pb2.PARTICIPANT_ROLE_PARTICIPANT
ROLE_BRAND = conversations_pb2.PARTICIPANT_ROLE_BRAND
STATE_NEW = conversations_pb2.CONVERSATION_STATE_NEW

# The state a routing action puts the conversation in; APPENDED (and unknown actions) leave it as it is.
STATE_FOR_ACTION = {
    common_pb2.ROUTE_ACTION_BOT_REPLY: conversations_pb2.CONVERSATION_STATE_BOT,
    common_pb2.ROUTE_ACTION_QUEUED: conversations_pb2.CONVERSATION_STATE_QUEUED,
    common_pb2.ROUTE_ACTION_ASSIGNED: conversations_pb2.CONVERSATION_STATE_ASSIGNED,
    common_pb2.ROUTE_ACTION_NO_ACTION: conversations_pb2.CONVERSATION_STATE_CLOSED_NO_ACTION,
}


def _text(value: bytes | None) -> str:
    return value.decode() if value else ""


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


class Conversations:
    def __init__(self, settings: Settings, redis: Redis, keys: Keys, clock: Clock) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = ConversationKeys(keys)
        self.clock = clock

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
        async with self.redis.pipeline(transaction=False) as pipe:
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

        # 1. What is known already: each message, each parent, each platform thread, and any reply that
        # arrived before the message itself.
        lookups: list[str] = []
        for m in messages:
            lookups.append(k.message_index(m.message_id))
            lookups.append(k.awaiting(m.message_id))
            if m.in_reply_to_id:
                lookups.append(k.message_index(message_id(m.channel, m.in_reply_to_id)))
                lookups.append(k.awaiting(message_id(m.channel, m.in_reply_to_id)))
            if m.platform_thread_id:
                lookups.append(k.thread(m.channel, m.brand_account_id, m.platform_thread_id))
        lookups = list(dict.fromkeys(lookups))
        known = {key: _text(v) for key, v in zip(lookups, await self._get_many(lookups), strict=True) if v}

        # 2. Place every message in sent order (batch order on ties), so a reply finds a parent anywhere in
        # the batch.
        placed: dict[str, _Placement] = {}
        threads: dict[str, str] = {}  # thread key -> conversation id, opened by this batch
        awaiting: dict[str, str] = {}  # awaiting key of an unknown parent -> its reply's conversation
        for _, m in sorted(enumerate(messages), key=lambda im: (self._sent(im[1], now), im[0])):
            if m.message_id in placed:
                continue
            existing = known.get(k.message_index(m.message_id))
            if existing:
                p = _Placement(m, existing, existing=True)
            else:
                p = _Placement(m, self._joins(m, known, placed, threads, awaiting), existing=False)
                if not p.conversation_id:
                    p.conversation_id = conversation_id_for(m.message_id)
                    p.new_conversation = True
                    if m.platform_thread_id:
                        threads[k.thread(m.channel, m.brand_account_id, m.platform_thread_id)] = (
                            p.conversation_id
                        )
                parent = message_id(m.channel, m.in_reply_to_id) if m.in_reply_to_id else ""
                if parent and parent not in placed and k.message_index(parent) not in known:
                    awaiting.setdefault(k.awaiting(parent), p.conversation_id)
            placed[m.message_id] = p
        order = [placed[m.message_id] for m in messages]

        # 3. Claim each new message's index and each new thread, unless a concurrent call got there first.
        fresh = [p for p in placed.values() if not p.existing]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, cid in threads.items():
                pipe.set(key, cid, nx=True, get=True)
            for p in fresh:
                pipe.set(k.message_index(p.message.message_id), p.conversation_id, nx=True, get=True)
            for key, cid in awaiting.items():  # the first reply to wait for a parent keeps the place
                pipe.set(key, cid, nx=True, ex=AWAITING_TTL_SECONDS)
            replies = await pipe.execute()
        moved: dict[str, str] = {}  # a conversation this call meant to open -> the one that won the race
        for (_key, cid), winner in zip(threads.items(), replies[: len(threads)], strict=True):
            if winner and _text(winner) != cid:
                moved[cid] = _text(winner)
        overwrite: list[_Placement] = []
        for p, winner in zip(fresh, replies[len(threads) : len(threads) + len(fresh)], strict=True):
            if winner:  # threaded meanwhile by another call: its answer stands
                p.conversation_id, p.existing, p.new_conversation = _text(winner), True, False
                if p.conversation_id != conversation_id_for(p.message.message_id):
                    moved.setdefault(conversation_id_for(p.message.message_id), p.conversation_id)
            else:
                p.claimed = True
        for p in fresh:
            target = moved.get(p.conversation_id)
            if target:
                p.conversation_id, p.new_conversation = target, False
                if p.claimed:
                    overwrite.append(p)

        # 4. Read the conversations that existed before this call: owner, state, recent customer turns.
        cids = list(dict.fromkeys(p.conversation_id for p in placed.values()))
        opened_here = {p.conversation_id for p in placed.values() if p.new_conversation}
        existing_cids = [c for c in cids if c not in opened_here]
        earliest: dict[str, float] = {}
        for p in placed.values():
            sent = self._sent(p.message, now)
            earliest[p.conversation_id] = min(sent, earliest.get(p.conversation_id, sent))
        meta: dict[str, tuple[str, str]] = {}
        history: dict[str, list[str]] = {}
        if existing_cids:
            async with self.redis.pipeline(transaction=False) as pipe:
                for cid in existing_cids:
                    pipe.hmget(k.meta(cid), ["owner", "state"])
                for cid in existing_cids:
                    # Customer turns before the earliest message of this batch in the conversation.
                    before = repr(earliest[cid])
                    pipe.eval(CONTEXT_SCRIPT, 2, k.inbound(cid), k.texts(cid), before, CONTEXT_TURNS)
                out = await pipe.execute()
            for cid, (owner, state) in zip(existing_cids, out[: len(existing_cids)], strict=True):
                meta[cid] = (_text(owner), _text(state))
            for cid, texts in zip(existing_cids, out[len(existing_cids) :], strict=True):
                history[cid] = [_text(t) for t in reversed(texts)]

        # Roles and context, in the conversation's time order within the batch.
        owners = {cid: meta.get(cid, ("", ""))[0] for cid in cids}
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
        # between claim and write), the indexes, and the events of what is new.
        events: list[EventRecord] = []
        by_cid: dict[str, list[_Placement]] = {}
        for p in placed.values():
            by_cid.setdefault(p.conversation_id, []).append(p)
        script_at: dict[str, int] = {}  # conversation id -> position of its script's reply
        async with self.redis.pipeline(transaction=False) as pipe:
            for p in overwrite:
                pipe.set(k.message_index(p.message.message_id), p.conversation_id)
            for cid, group in by_cid.items():
                opener = next((p for p in group if p.new_conversation), group[0])
                args: list[str | bytes | float] = [
                    repr(now),
                    opener.message.channel,
                    opener.message.brand_account_id,
                    repr(self._sent(opener.message, now)),
                    STATE_NEW,
                    len(group),
                ]
                for p in group:
                    m = p.message
                    args += [
                        m.message_id,
                        repr(self._sent(m, now)),
                        2 if is_outbound(m) else 1,
                        p.role,
                        m.SerializeToString(),
                        m.text,
                        m.author.id,
                        m.author.SerializeToString(),
                        1 if p.claimed else 0,
                    ]
                script_at[cid] = len(pipe)
                pipe.eval(THREAD_SCRIPT, 7, *k.thread_script_keys(cid), *args)
                # New messages move the conversation up the lists; a re-thread only restores a missing entry.
                touched = any(p.claimed for p in group)
                flag = {"gt": True} if touched else {"nx": True}
                pipe.zadd(k.index_all(), {cid: now}, **flag)
                pipe.zadd(k.index_channel(opener.message.channel), {cid: now}, **flag)
                pipe.zadd(k.index_opened(), {cid: self._sent(opener.message, now)}, nx=True)
                if any(p.new_conversation and p.claimed for p in group):
                    pipe.zadd(k.index_state(STATE_NEW), {cid: now})
                    events.append(
                        EventRecord(
                            "conversation.opened",
                            cid,
                            opener.message.message_id,
                            now,
                            {"channel": CHANNEL_NAMES.get(opener.message.channel, "")},
                        )
                    )
                elif touched:
                    pipe.zadd(
                        k.index_state(int(meta.get(cid, ("", "0"))[1] or 0)), {cid: now}, xx=True, gt=True
                    )
            for p in placed.values():
                if p.claimed:
                    events.append(
                        EventRecord(
                            "message.threaded", p.conversation_id, p.message.message_id, now, {"role": p.role}
                        )
                    )
            add_to_pipeline(pipe, self.keys.keys, events, self.settings.events_maxlen)
            written = await pipe.execute()
        states = {cid: int(_text(written[at]) or STATE_NEW) for cid, at in script_at.items()}

        return [
            conversations_pb2.ThreadResult(
                message_id=p.message.message_id,
                conversation_id=p.conversation_id,
                opened_conversation=p.conversation_id == conversation_id_for(p.message.message_id),
                role=p.role,
                state=states[p.conversation_id],
                context=p.context,
            )
            for p in order
        ]

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
        that of a reply to it which arrived first, that of its platform thread.
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
        waiting = k.awaiting(m.message_id)
        if waiting in awaiting or waiting in known:
            return awaiting.get(waiting) or known[waiting]
        if m.platform_thread_id:
            key = k.thread(m.channel, m.brand_account_id, m.platform_thread_id)
            return threads.get(key) or known.get(key, "")
        return ""

    # ---- outcomes ----------------------------------------------------------------------------------------

    async def record_outcomes(self, outcomes: Sequence[conversations_pb2.Outcome]) -> int:
        """Store each message's triage and routing and move its conversation; replays change nothing."""
        if not outcomes:
            return 0
        k = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            for o in outcomes:
                pipe.exists(k.meta(o.conversation_id))
                pipe.get(k.message_index(o.message_id))
            checks = await pipe.execute()
        violations = []
        for i, o in enumerate(outcomes):
            exists, owner = checks[2 * i], _text(checks[2 * i + 1])
            if not exists:
                raise NotFound(f"conversation {o.conversation_id} not found")
            if owner != o.conversation_id:
                violations.append(
                    (
                        f"outcomes[{i}].message_id",
                        f"message {o.message_id} is not in conversation {o.conversation_id}",
                    )
                )
        if violations:
            raise InvalidArgument(violations)

        now = self.clock.now()
        by_cid: dict[str, list[conversations_pb2.Outcome]] = {}
        for o in outcomes:
            by_cid.setdefault(o.conversation_id, []).append(o)
        async with self.redis.pipeline(transaction=False) as pipe:
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
                    ]
                pipe.eval(OUTCOME_SCRIPT, 5, *k.outcome_script_keys(cid), *args)
            changed = await pipe.execute()

        events = []
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid, reply in zip(by_cid, changed, strict=True):
                channel, updated, *flat = [_text(v) for v in reply]
                if updated:
                    pipe.zadd(k.index_all(), {cid: float(updated)}, gt=True)
                    pipe.zadd(k.index_channel(int(channel)), {cid: float(updated)}, gt=True)
                for j in range(0, len(flat), 4):
                    mid, old, new, at = flat[j], int(flat[j + 1]), int(flat[j + 2]), float(flat[j + 3])
                    pipe.zrem(k.index_state(old), cid)
                    events.append(
                        EventRecord("conversation.state_changed", cid, mid, at, {"from": old, "to": new})
                    )
                if flat:
                    pipe.zadd(k.index_state(int(flat[-2])), {cid: float(updated)})
            add_to_pipeline(pipe, self.keys.keys, events, self.settings.events_maxlen)
            await pipe.execute()
        return len(outcomes)

    # ---- reading -----------------------------------------------------------------------------------------

    async def get(self, conversation_id: str) -> conversations_pb2.Conversation:
        k = self.keys
        cid = conversation_id
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(k.meta(cid))
            pipe.zrange(k.messages(cid), 0, -1)
            pipe.hgetall(k.bodies(cid))
            pipe.hgetall(k.roles(cid))
            pipe.hgetall(k.triage(cid))
            pipe.hgetall(k.routing(cid))
            pipe.lrange(k.transitions(cid), 0, -1)
            meta, ids, bodies, roles, triages, routings, transitions = await pipe.execute()
        if not meta:
            raise NotFound(f"conversation {cid} not found")
        meta = {_text(a): b for a, b in meta.items()}
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
        return conv

    async def list(
        self, state: int = 0, channel: int = 0, page_size: int = 50, page_token: str = ""
    ) -> tuple[list[conversations_pb2.ConversationSummary], str]:
        """Conversations by most recently updated; the token is the (time, id) of the last one returned."""
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
            async with self.redis.pipeline(transaction=False) as pipe:
                for cid, _ in entries:
                    pipe.hgetall(k.meta(cid))
                    pipe.zcard(k.messages(cid))
                rows = await pipe.execute()
            for j, (cid, score) in enumerate(entries):
                meta = {_text(a): b for a, b in rows[2 * j].items()}
                summary = _summary(cid, meta, rows[2 * j + 1])
                # The index may lag the record under concurrent writes: the record decides.
                if (state and summary.state != state) or (channel and summary.channel != channel):
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
        cids = [_text(c) for c in await self.redis.zrangebyscore(k.index_opened(), start, f"({end!r}")]
        fields = ["channel", "intent", "topic", "team", "first_inbound_at", "first_response_at"]
        fields += ["bot_first_response_at", "human_first_response_at"]
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in cids:
                pipe.hmget(k.meta(cid), fields)
                pipe.zcard(k.messages(cid))
            rows = await pipe.execute()
        groups: dict[str, dict[str, list[float]]] = {}
        for j in range(len(cids)):
            row = dict(zip(fields, (_text(v) for v in rows[2 * j]), strict=True))
            key = _group_key(group_by, row)
            g = groups.setdefault(key, {"n": [], "first": [], "bot": [], "human": [], "messages": []})
            g["n"].append(1)
            g["messages"].append(float(rows[2 * j + 1]))
            first_in = row["first_inbound_at"]
            for name, f in (
                ("first", "first_response_at"),
                ("bot", "bot_first_response_at"),
                ("human", "human_first_response_at"),
            ):
                if first_in and row[f]:
                    g[name].append(float(row[f]) - float(first_in))
        return [
            conversations_pb2.MetricsGroup(
                key=key,
                conversations=len(g["n"]),
                first_response_seconds=distribution(g["first"]),
                bot_first_response_seconds=distribution(g["bot"]),
                human_first_response_seconds=distribution(g["human"]),
                messages=distribution(g["messages"]),
            )
            for key, g in sorted(groups.items())
        ]


def _group_key(group_by: str, row: dict[str, str]) -> str:
    if not group_by:
        return "all"
    value = row[group_by]
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
