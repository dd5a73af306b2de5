"""The conversation lifecycle moved by the other services' events, and the publishing of state changes.

The router's and dispatch's events (applied by the follower) set ASSIGNED, WAITING_ON_CUSTOMER (an agent
replied), QUEUED (escalated, transferred, declined) and RESOLVED. `apply_events` and `_event_args` are where
those events are decoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from parley import lua
from parley.config import Settings
from parley.events import EventRecord, add_to_pipeline
from parley.store import Redis
from parley.v1 import conversations_pb2

from . import retention
from .scripts import Scripts
from .store import ConversationKeys, as_text

STATE_QUEUED = conversations_pb2.CONVERSATION_STATE_QUEUED
STATE_ASSIGNED = conversations_pb2.CONVERSATION_STATE_ASSIGNED
STATE_WAITING = conversations_pb2.CONVERSATION_STATE_WAITING_ON_CUSTOMER
STATE_RESOLVED = conversations_pb2.CONVERSATION_STATE_RESOLVED

# The state each lifecycle event of the router and dispatch moves a conversation to.
EVENT_STATES = {
    "conversation.assigned": STATE_ASSIGNED,
    "conversation.resolved": STATE_RESOLVED,
    "conversation.escalated": STATE_QUEUED,
    "conversation.transferred": STATE_QUEUED,
    "conversation.declined": STATE_QUEUED,
    "conversation.requeued": STATE_QUEUED,
}
MERGE_HOPS = 4  # a merge chain is short


async def publish_state_changes(
    redis: Redis,
    keys: ConversationKeys,
    settings: Settings,
    changes: Sequence[tuple[str, list[str]]],
    held: Mapping[str, bool],
) -> None:
    """Publish state changes ((old, new, at) triples per conversation), keep the state index (a held
    conversation is listed nowhere) and the retention TTLs."""
    if not changes:
        return
    events = []
    async with lua.pipeline(redis) as pipe:
        for cid, flat in changes:
            for j in range(0, len(flat), 3):
                old, new, at = int(flat[j] or 0), int(flat[j + 1]), float(flat[j + 2])
                events.append(
                    EventRecord("conversation.state_changed", cid, "", at, {"from": old, "to": new})
                )
                pipe.write("ZREM", keys.index_state(old, cid), cid)
            if not held.get(cid):
                pipe.write("ZADD", keys.index_state(int(flat[-2]), cid), repr(float(flat[-1])), cid)
        add_to_pipeline(pipe, keys.keys, events, settings.events_maxlen)
        await pipe.execute()
    steps = {cid: [(int(f[j] or 0), int(f[j + 1])) for j in range(0, len(f), 3)] for cid, f in changes}
    await retention.apply(redis, keys, settings, steps)


class LifecycleEvents:
    def __init__(self, settings: Settings, redis: Redis, keys: ConversationKeys, scripts: Scripts) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.scripts = scripts

    async def apply_events(self, entries: Sequence[tuple[str, EventRecord]]) -> int:
        """Apply lifecycle events (event id, event); returns how many moved a conversation. Each event
        applies once, by its id."""
        pending = []
        for event_id, event in entries:
            args = _event_args(event)
            if args is not None and event.conversation_id:
                pending.append((event.conversation_id, [event_id, *args]))
        return await self._apply(pending)

    async def _apply(self, pending: list[tuple[str, list[str]]]) -> int:
        """Run event.lua for each (conversation, arguments), following merges; publish what moved."""
        moved = 0
        changes: list[tuple[str, list[str]]] = []
        for _ in range(MERGE_HOPS):  # an event may name a conversation merged into another
            if not pending:
                break
            async with lua.pipeline(self.redis) as pipe:
                for cid, args in pending:
                    await self.scripts.event(keys=self.keys.event_script_keys(cid), args=args, client=pipe)
                replies = await pipe.execute()
            retry = []
            for (cid, args), raw in zip(pending, replies, strict=True):
                reply = [as_text(v) for v in raw]
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
            await publish_state_changes(self.redis, self.keys, self.settings, changes, held)
        return moved


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
