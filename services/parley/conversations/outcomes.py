"""Routing outcomes: each message's triage and routing stored with its conversation, which moves to BOT,
QUEUED, ASSIGNED or CLOSED_NO_ACTION the first time a message's outcome is seen (replays change nothing)."""

from __future__ import annotations

from collections.abc import Sequence

from parley import lua
from parley.clock import Clock, from_timestamp
from parley.config import Settings
from parley.events import EventRecord, add_to_pipeline
from parley.rpc import InvalidArgument, NotFound
from parley.store import Redis
from parley.v1 import common_pb2, conversations_pb2

from . import retention
from .scripts import Scripts
from .store import ConversationKeys, as_text

Outcome = conversations_pb2.Outcome

# The state a routing action puts the conversation in; APPENDED (and unknown actions) leave it as it is.
STATE_FOR_ACTION = {
    common_pb2.ROUTE_ACTION_BOT_REPLY: conversations_pb2.CONVERSATION_STATE_BOT,
    common_pb2.ROUTE_ACTION_QUEUED: conversations_pb2.CONVERSATION_STATE_QUEUED,
    common_pb2.ROUTE_ACTION_ASSIGNED: conversations_pb2.CONVERSATION_STATE_ASSIGNED,
    common_pb2.ROUTE_ACTION_NO_ACTION: conversations_pb2.CONVERSATION_STATE_CLOSED_NO_ACTION,
}


class Outcomes:
    def __init__(
        self, settings: Settings, redis: Redis, keys: ConversationKeys, clock: Clock, scripts: Scripts
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.scripts = scripts

    async def record(self, outcomes: Sequence[Outcome]) -> int:
        """Store each message's triage and routing and move its conversation; replays change nothing."""
        if not outcomes:
            return 0
        outcomes = await self._where(outcomes)
        by_cid: dict[str, list[Outcome]] = {}
        for o in outcomes:
            by_cid.setdefault(o.conversation_id, []).append(o)
        now = self.clock.now()
        async with lua.pipeline(self.redis) as pipe:
            for cid, group in by_cid.items():
                args: list[str | bytes | int] = [len(group)]
                for o in group:
                    args += _outcome_args(o, now)
                await self.scripts.outcome(keys=self.keys.outcome_script_keys(cid), args=args, client=pipe)
            changed = await pipe.execute()
        await self._publish(list(by_cid), changed)
        return len(outcomes)

    async def _where(self, outcomes: Sequence[Outcome]) -> list[Outcome]:
        """The outcomes, each naming the conversation its message is in now (one merged away is followed);
        InvalidArgument for a message that is not in the conversation named."""
        k = self.keys
        async with lua.pipeline(self.redis) as pipe:
            for o in outcomes:
                pipe.hmget(k.meta(o.conversation_id), ["channel", "merged_into"])
                pipe.get(k.message_index(o.message_id))
            checks = await pipe.execute()
        owners = [as_text(checks[2 * i + 1]) for i in range(len(outcomes))]
        stale = await self._stale_placements(outcomes, owners)
        violations = []
        resolved = []
        for i, o in enumerate(outcomes):
            (channel, merged), owner = [as_text(v) for v in checks[2 * i]], as_text(checks[2 * i + 1])
            if not channel and not merged:
                raise NotFound(f"conversation {o.conversation_id} not found")
            if merged and owner != o.conversation_id:
                # The conversation was merged into another (its reply chain joined them): follow it.
                o = Outcome()
                o.CopyFrom(outcomes[i])
                o.conversation_id = owner
            elif owner != o.conversation_id and i not in stale:
                violations.append(
                    (
                        f"outcomes[{i}].message_id",
                        f"message {o.message_id} is not in conversation {o.conversation_id}",
                    )
                )
            resolved.append(o)
        if violations:
            raise InvalidArgument(violations)
        return resolved

    async def _stale_placements(self, outcomes: Sequence[Outcome], owners: list[str]) -> set[int]:
        """The outcomes whose message index (its own hash slot) is missing or names a conversation that does
        not exist, while the conversation named holds the message: a Redis Cluster failover lost the writes
        of one slot that were not replicated yet. The index is set to the conversation holding the message."""
        k = self.keys
        suspect = [i for i, o in enumerate(outcomes) if owners[i] != o.conversation_id]
        if not suspect:
            return set()
        async with lua.pipeline(self.redis) as pipe:
            for i in suspect:
                o = outcomes[i]
                pipe.zscore(k.messages(o.conversation_id), o.message_id)
                pipe.exists(
                    k.meta(owners[i] or o.conversation_id), k.messages(owners[i] or o.conversation_id)
                )
            found = await pipe.execute()
        stale = set()
        for n, i in enumerate(suspect):
            held, owner_exists = found[2 * n], found[2 * n + 1]
            if held is not None and (not owners[i] or not owner_exists):
                stale.add(i)
        if stale:
            async with lua.pipeline(self.redis) as pipe:
                for i in stale:
                    pipe.set(k.message_index(outcomes[i].message_id), outcomes[i].conversation_id)
                await pipe.execute()
        return stale

    async def _publish(self, cids: list[str], replies: list[list[bytes]]) -> None:
        """List the conversations outcome.lua updated (a held one stays unlisted), publish their state
        changes and keep their retention TTLs."""
        k = self.keys
        events = []
        steps: dict[str, list[tuple[int, int]]] = {}
        async with lua.pipeline(self.redis) as pipe:
            for cid, reply in zip(cids, replies, strict=True):
                channel, updated, held, *flat = [as_text(v) for v in reply]
                steps[cid] = [(int(flat[j + 1]), int(flat[j + 2])) for j in range(0, len(flat), 4)]
                if held:  # not listed until its parent arrives or the sweep opens it
                    updated = ""
                if updated:
                    pipe.write("ZADD", k.index_all(cid), "GT", updated, cid)
                    pipe.write("ZADD", k.index_channel(int(channel), cid), "GT", updated, cid)
                for j in range(0, len(flat), 4):
                    mid, old, new, at = flat[j], int(flat[j + 1]), int(flat[j + 2]), float(flat[j + 3])
                    pipe.write("ZREM", k.index_state(old, cid), cid)
                    events.append(
                        EventRecord("conversation.state_changed", cid, mid, at, {"from": old, "to": new})
                    )
                if flat and not held:
                    pipe.write("ZADD", k.index_state(int(flat[-2]), cid), updated, cid)
            add_to_pipeline(pipe, k.keys, events, self.settings.events_maxlen)
            await pipe.execute()
        await retention.apply(self.redis, k, self.settings, steps)


def _outcome_args(o: Outcome, now: float) -> list[str | bytes | int]:
    """outcome.lua's 11 values for one outcome."""
    routing, triage = o.routing, o.triage
    state = STATE_FOR_ACTION.get(routing.action) if o.HasField("routing") else None
    at = from_timestamp(routing.decided_at) if routing.HasField("decided_at") else now
    return [
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
