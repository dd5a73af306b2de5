"""The router's effects after a chaos run, counted from Redis: conversations queued twice or given to two
agents, and capacity that does not match the conversations agents hold.

Every key is named by `RouterKeys` (team queues and agents' active sets are found by scanning for the key that
`RouterKeys` gives a wildcard name), and the values are read as `router/core.py` documents them: a queue is a
sorted set of conversation ids, an agent's active set holds the conversations they have plus "reserving:..."
tokens for claims in flight, the feed is a stream of serialized `Assignment`s (`withdrawn` set when one is
taken away), the claim journal a hash per team, the conversation state a hash (`state`, `agent`, `team`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from parley.router.common import RESERVING
from parley.router.keys import RouterKeys
from parley.store import Keys
from parley.v1 import router_pb2

_WILD = "\x00"

# The counts that fail a run (reservations_left is reported as part of leaked_capacity, not added again).
FAILING_COUNTS = (
    "duplicate_queue_entries",
    "queued_while_assigned",
    "waiting_in_no_queue",
    "duplicate_assignments",
    "duplicate_assignments_in_feeds",
    "leaked_capacity",
    "unrecorded_assignments",
    "claims_in_flight",
)
COUNTS = ("assignments", "reservations_left", *FAILING_COUNTS)


def router_clean(counts: object) -> bool:
    """No failing count on `counts` (a RouterEffects or a chaos Report, which carries the same fields)."""
    return not any(getattr(counts, name) for name in FAILING_COUNTS)


@dataclass
class RouterEffects:
    assignments: int = 0  # assignment entries in the agents' feeds (withdrawals not counted)
    duplicate_queue_entries: int = 0  # queue entries beyond one per waiting conversation
    queued_while_assigned: int = 0  # conversations waiting in a queue while an agent holds them
    waiting_in_no_queue: int = 0  # conversations the router says wait in a team's queue, not in it nor taken
    duplicate_assignments: int = 0  # agents beyond one holding a conversation at the end
    duplicate_assignments_in_feeds: int = 0  # an assignment made while another was not yet released
    leaked_capacity: int = 0  # active-set entries that are no conversation the agent holds (reservations too)
    reservations_left: int = 0  # of which: reservations of claims that never finished
    unrecorded_assignments: int = 0  # conversations assigned to an agent that their active set does not count
    claims_in_flight: int = 0  # claim journal entries never settled
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return router_clean(self)

    def note(self, kind: str, example: str) -> None:
        found = self.examples.setdefault(kind, [])
        if len(found) < 5:
            found.append(example)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


async def named_keys(redis: Any, name_of: Callable[[str], str]) -> AsyncIterator[tuple[str, str]]:
    """(name, key) of every key `name_of(name)` would give, found by scanning with the name as wildcard."""
    before, after = name_of(_WILD).split(_WILD)
    pattern = _glob_escape(before) + "*" + _glob_escape(after)
    seen: set[str] = set()
    async for raw in redis.scan_iter(match=pattern, count=1000):
        key = raw.decode() if isinstance(raw, bytes) else raw
        if key in seen or not key.startswith(before) or not key.endswith(after):
            continue
        seen.add(key)
        yield key[len(before) : len(key) - len(after)], key


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def router_effects(
    redis: Any, keys: Keys, resolved: Mapping[str, list[tuple[int, int]]] | None = None
) -> RouterEffects:
    """Count the router's duplicate and leaked effects. `resolved` gives, per conversation, the stream ids (as
    (ms, seq)) of its `conversation.resolved` events: a resolution releases an assignment as a withdrawal in
    the feed does."""
    rk = RouterKeys(keys)
    effects = RouterEffects()

    queues_of: dict[str, list[str]] = defaultdict(list)
    async for team, key in named_keys(redis, rk.queue):
        for member in await redis.zrange(key, 0, -1):
            queues_of[_text(member)].append(team)

    agents = {_text(a) for a in await redis.smembers(rk.agents())}
    async for agent_id, _ in named_keys(redis, rk.active):
        agents.add(agent_id)
    active_of: dict[str, set[str]] = {}
    for agent_id in sorted(agents):
        active_of[agent_id] = {_text(m) for m in await redis.smembers(rk.active(agent_id))}

    holders: dict[str, list[str]] = defaultdict(list)
    for agent_id, members in active_of.items():
        for member in members:
            if member.startswith(RESERVING):
                effects.reservations_left += 1
                effects.leaked_capacity += 1
                effects.note("reservations_left", f"{agent_id}: {member}")
            else:
                holders[member].append(agent_id)

    conversations = sorted(set(queues_of) | set(holders))
    states: dict[str, dict[str, str]] = {}
    for cid in conversations:
        raw = await redis.hmget(rk.state(cid), ["state", "agent", "team"])
        states[cid] = {k: _text(v) for k, v in zip(("state", "agent", "team"), raw, strict=True) if v}

    for cid, teams in queues_of.items():
        if len(teams) > 1:
            effects.duplicate_queue_entries += len(teams) - 1
            effects.note("duplicate_queue_entries", f"{cid} in {sorted(teams)}")
        if cid in holders or states[cid].get("state") == "assigned":
            effects.queued_while_assigned += 1
            effects.note("queued_while_assigned", f"{cid} in {sorted(teams)}, with {holders.get(cid)}")

    for cid, agent_ids in holders.items():
        if len(agent_ids) > 1:
            effects.duplicate_assignments += len(agent_ids) - 1
            effects.note("duplicate_assignments", f"{cid} with {sorted(agent_ids)}")
        state = states[cid]
        for agent_id in agent_ids:
            if state.get("state") != "assigned" or state.get("agent") != agent_id:
                effects.leaked_capacity += 1
                effects.note("leaked_capacity", f"{agent_id} counts {cid} ({state.get('state', 'no state')})")

    # Conversations whose state names an agent: found through the agents' feeds (every assignment is in one).
    feeds: dict[str, list[tuple[tuple[int, int], router_pb2.Assignment]]] = {}
    for agent_id in sorted(agents):
        feeds[agent_id] = [
            (_stream_id(entry_id), router_pb2.Assignment.FromString(fields[b"assignment"]))
            for entry_id, fields in await redis.xrange(rk.feed(agent_id))
            if b"assignment" in fields
        ]
    effects.assignments = sum(not a.withdrawn for entries in feeds.values() for _, a in entries)
    fed = {a.conversation_id for entries in feeds.values() for _, a in entries}
    for cid in sorted(fed - set(states)):
        raw = await redis.hmget(rk.state(cid), ["state", "agent", "team"])
        states[cid] = {k: _text(v) for k, v in zip(("state", "agent", "team"), raw, strict=True) if v}
    for cid, state in states.items():
        agent_id = state.get("agent", "")
        if state.get("state") == "assigned" and agent_id and cid not in active_of.get(agent_id, set()):
            effects.unrecorded_assignments += 1
            effects.note("unrecorded_assignments", f"{cid} assigned to {agent_id}, not in their active set")

    _count_feed_duplicates(effects, feeds, resolved or {})

    taken: dict[str, set[str]] = {}
    async for team, key in named_keys(redis, rk.taking):
        journal = await redis.hgetall(key)
        taken[team] = {_text(cid) for cid in journal}
        effects.claims_in_flight += len(journal)
        for cid in list(journal)[:5]:
            effects.note("claims_in_flight", f"{_text(cid)} in {team}")

    async for cid, key in named_keys(redis, rk.state):
        waiting, team = (_text(v) if v else "" for v in await redis.hmget(key, ["state", "team"]))
        if waiting == "queued" and team not in queues_of.get(cid, ()) and cid not in taken.get(team, ()):
            effects.waiting_in_no_queue += 1
            effects.note("waiting_in_no_queue", f"{cid} waiting for {team or 'no team'}")
    return effects


def _stream_id(entry_id: Any) -> tuple[int, int]:
    ms, seq = _text(entry_id).split("-")
    return int(ms), int(seq)


def _count_feed_duplicates(
    effects: RouterEffects,
    feeds: Mapping[str, list[tuple[tuple[int, int], router_pb2.Assignment]]],
    resolved: Mapping[str, list[tuple[int, int]]],
) -> None:
    """Replay every conversation's assignments, withdrawals and resolutions in time order: an assignment while
    the conversation is still with an agent (the same or another) is a duplicate. On a tie in time a release
    counts first (different streams' ids are comparable only to the millisecond)."""
    timeline: dict[str, list[tuple[int, int, int, str]]] = defaultdict(list)
    for agent_id, entries in feeds.items():
        for (ms, seq), assignment in entries:
            kind = 0 if assignment.withdrawn else 1
            timeline[assignment.conversation_id].append((ms, kind, seq, agent_id))
    for cid, ids in resolved.items():
        if cid in timeline:
            timeline[cid].extend((ms, -1, seq, "") for ms, seq in ids)
    for cid, steps in timeline.items():
        with_agents: set[str] = set()
        for _, kind, _, agent_id in sorted(steps):
            if kind == -1:
                with_agents.clear()
            elif kind == 0:
                with_agents.discard(agent_id)
            else:
                if with_agents:
                    effects.duplicate_assignments_in_feeds += 1
                    held_by = sorted(with_agents)
                    effects.note("duplicate_assignments_in_feeds", f"{cid} to {agent_id}, held by {held_by}")
                with_agents.add(agent_id)
