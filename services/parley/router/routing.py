"""Route: one stored decision per message (idempotent), its effects (queue entry, event) written after it,
the merged conversations a message is redirected from, and the effects a dead router left pending."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from parley import lua
from parley.clock import from_timestamp
from parley.events import EventRecord, add_to_pipeline
from parley.router import common
from parley.router.assignment import Assignments
from parley.router.base import Ground, Part
from parley.router.common import (
    PENDING,
    as_float,
    decode_hash,
    flat,
    moved_to,
    text_of,
)
from parley.router.decide import Hold, decide, priority_parts
from parley.router.holds import Arrivals
from parley.router.queues import Queues
from parley.rpc import Aborted
from parley.v1 import common_pb2, router_pb2

log = logging.getLogger("parley.router")

# Seconds to wait, times the attempt, before deciding again the messages whose conversation was busy.
RETRY_PAUSE = 0.005
# How long the marks of a decision's effects are kept once it is no longer pending: far longer than one call
# (cut at `rpc_timeout_seconds`), the longest a writer that read the decision as pending takes to write them.
EFFECT_MARKS_KEPT_SECONDS = 60


# Per item read: its stored decision (bytes or None), whether that decision's effects are all written, and
# its conversation's state as read (a hash of bytes).
ReadItem = tuple[bytes | None, bool, dict[bytes, bytes]]
# (item index, state version read, decision, state fields it sets, audit entry)
PlannedDecision = tuple[int, str, common_pb2.RoutingDecision, dict[str, Any], router_pb2.RoutingAudit]


@dataclasses.dataclass
class RouteBatch:
    """One pass over a Route batch: the running state per conversation, the decisions to store, the items
    whose conversation was merged away, and the stored decisions whose effects are to be written."""

    states: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    plans: list[PlannedDecision] = dataclasses.field(default_factory=list)
    merged: list[int] = dataclasses.field(default_factory=list)
    to_apply: list[common_pb2.RoutingDecision] = dataclasses.field(default_factory=list)
    busy: list[int] = dataclasses.field(default_factory=list)  # a desk action is moving their conversation


class Routing(Part):
    """Route: one stored decision per message, then its effects; a merged conversation's messages follow."""

    def __init__(self, ground: Ground, queues: Queues, assignments: Assignments, arrivals: Arrivals) -> None:
        super().__init__(ground)
        self.queues = queues
        self.assignments = assignments
        self.arrivals = arrivals

    async def route(self, items: list[router_pb2.RouteItem]) -> list[common_pb2.RoutingDecision]:
        """One decision per item, in order. Idempotent per message id: a decision already stored is returned
        as it was, with no second queue entry and no second event.

        A decision is stored first (SET NX) and its effects (queue entry, event) written after, each effect
        at most once (`apply_route_effects`); a decision found still pending (its call failed, or its router
        died, in between) has its effects written by the call that finds it."""
        results: list[common_pb2.RoutingDecision | None] = [None] * len(items)
        items = list(items)
        pending = list(range(len(items)))
        for attempt in range(common.ROUTE_ATTEMPTS):
            if not pending:
                break
            if attempt:
                await asyncio.sleep(RETRY_PAUSE * attempt)  # a desk action or another Route is finishing
            now = self.clock.now()
            batch = self._plan_batch(items, pending, await self._read_batch(items, pending), now, results)
            outcomes = await self._store(items, batch.plans)
            pending, fresh = list(batch.busy), []
            for (i, _, decision, _, _), (code, payload) in zip(batch.plans, outcomes, strict=True):
                if code == 0:
                    results[i] = decision
                    batch.to_apply.append(decision)
                    fresh.append(i)
                elif code == 1:
                    results[i] = common_pb2.RoutingDecision.FromString(payload)
                elif code == 3:
                    batch.merged.append(i)  # fenced by a merge since it was read
                else:
                    pending.append(i)
            if batch.merged:
                where = await self.current(sorted({items[i].conversation_id for i in batch.merged}))
                for i in batch.merged:
                    items[i] = moved_to(items[i], where[items[i].conversation_id])
                pending += batch.merged
            if batch.to_apply:
                # On a cluster, the decisions (and the state they set) are on a replica before any effect in
                # another slot: a failover never keeps an event or a queue entry of a decision it took back.
                await self.replicas.confirm()
            # Newly queued conversations go straight to an agent when one fits, or wait for their previous
            # agent: planned before the queue entries are written, so a hold is written with its entry.
            queued = {i: d for i in fresh if (d := results[i]) and d.action == common_pb2.ROUTE_ACTION_QUEUED}
            plan = await self.arrivals._plan_new(list(queued.values()), batch.states)
            await self.apply_route_effects(batch.to_apply, now, plan.holds)
            if queued:
                assigned = await self.arrivals._assign_new(plan)
                for i, decision in queued.items():
                    results[i] = assigned.get(decision.message_id, decision)
        if pending:
            raise Aborted(
                "conversations kept changing, or a desk action kept moving them, while routing; retry"
            )
        return [r for r in results if r is not None]

    async def _read_batch(self, items: list[router_pb2.RouteItem], pending: list[int]) -> list[ReadItem]:
        """Per pending item: its stored decision, whether its effects are all written, and the conversation's
        state. A decision's effects are pending while its conversation's state has its `pending:` field."""
        cids = list(dict.fromkeys(items[i].conversation_id for i in pending))
        mids = [items[i].message.message_id for i in pending]
        # The decision and first-routed marks of every message as one MGET on a single server (a GET each
        # on a cluster, which splits them by node), each conversation's state once.
        strings = [
            self.k.decision(items[i].conversation_id, mid) for i, mid in zip(pending, mids, strict=True)
        ]
        strings += [self.k.decided_in(mid) for mid in mids]
        async with lua.pipeline(self.redis) as pipe:
            for cid in cids:
                pipe.hgetall(self.k.state(cid))
            if self.settings.redis_cluster:
                for key in strings:
                    pipe.get(key)
            else:
                pipe.mget(strings)
            read = await pipe.execute()
        states = dict(zip(cids, read[: len(cids)], strict=True))
        values = read[len(cids) :] if self.settings.redis_cluster else read[len(cids)]
        out = []
        for n, i in enumerate(pending):
            state = states[items[i].conversation_id]
            out.append((values[n], (PENDING + mids[n]).encode() not in state, state))
        first = {n: text_of(values[len(pending) + n]) for n in range(len(pending))}
        return await self._decided_elsewhere(items, pending, out, first)

    def _plan_batch(
        self,
        items: list[router_pb2.RouteItem],
        pending: list[int],
        read: list[ReadItem],
        now: float,
        results: list[common_pb2.RoutingDecision | None],
    ) -> RouteBatch:
        """Decide each pending item not decided before. Messages of one conversation in one batch are decided
        in order against a running state; stored decisions go straight to `results`."""
        batch = RouteBatch()
        for i, (stored, written, raw_state) in zip(pending, read, strict=True):
            if stored is not None:
                results[i] = found = common_pb2.RoutingDecision.FromString(stored)
                if not written:
                    batch.to_apply.append(found)  # each effect is written once, whoever else is writing it
                continue
            cid = items[i].conversation_id
            if cid not in batch.states and (raw_state.get(b"merged_into") or raw_state.get(b"merging_into")):
                batch.merged.append(i)  # not decided before the merge: routed in the surviving conversation
                continue
            if cid not in batch.states and raw_state.get(b"leaving"):
                batch.busy.append(i)  # decided once the desk action has left its final state
                continue
            state = batch.states.setdefault(cid, decode_hash(raw_state))
            decision, fields, offset = decide(self.policy, items[i], state, now)
            audit = router_pb2.RoutingAudit(
                kind="route",
                message_id=decision.message_id,
                at=decision.decided_at,
                rule=decision.rule,
                action=decision.action,
                team=decision.team,
                agent_id=decision.agent_id,
                priority=decision.priority,
                priority_parts=priority_parts(self.policy, items[i], offset),
                why=decision.reason,
            )
            batch.plans.append((i, state.get("version", "0"), decision, fields, audit))
            state.update({k: str(v) for k, v in fields.items()})
            state["version"] = str(int(state.get("version", "0")) + 1)
        return batch

    async def _store(self, items: list[router_pb2.RouteItem], plans: list[PlannedDecision]) -> list[Any]:
        """Store each planned decision (ROUTE.lua): its {code, payload}."""
        ttl = self.settings.dedupe_ttl_seconds
        async with lua.pipeline(self.redis) as pipe:
            for i, version, decision, fields, audit in plans:
                cid, mid = items[i].conversation_id, decision.message_id
                pipe.set(self.k.decided_in(mid), cid, nx=True, ex=ttl)
                args = [
                    version,
                    decision.SerializeToString(),
                    ttl,
                    f"route:{mid}",
                    audit.SerializeToString(),
                    PENDING + mid,
                    from_timestamp(decision.decided_at),
                    *flat(fields),
                ]
                keys = [self.k.state(cid), self.k.decision(cid, mid), self.k.audit(cid)]
                await self.scripts.route(keys=keys, args=args, client=pipe)
            return (await pipe.execute())[1::2]

    async def _decided_elsewhere(
        self,
        items: list[router_pb2.RouteItem],
        pending: list[int],
        read: list[ReadItem],
        first: dict[int, str],
    ) -> list[ReadItem]:
        """`read` with the decision, and whether its effects are written, taken from the conversation a
        message was first routed in (`first`), where that is another one (the message moved there by a merge
        since): a retried batch gets its one decision back."""
        elsewhere = {
            n: first[n]
            for n, i in enumerate(pending)
            if read[n][0] is None and first[n] and first[n] != items[i].conversation_id
        }
        if not elsewhere:
            return read
        mid = {n: items[pending[n]].message.message_id for n in elsewhere}
        async with lua.pipeline(self.redis) as pipe:
            for n, cid in elsewhere.items():
                pipe.get(self.k.decision(cid, mid[n]))
                pipe.hexists(self.k.state(cid), PENDING + mid[n])
            found = await pipe.execute()
        read = list(read)
        for j, n in enumerate(elsewhere):
            if found[2 * j] is not None:
                read[n] = (found[2 * j], not found[2 * j + 1], read[n][2])
        return read

    async def current(self, cids: list[str]) -> dict[str, str]:
        """Each conversation id -> the conversation it is now: itself, or the one it was (or is being) merged
        into."""
        out = {cid: cid for cid in cids}
        for _ in range(4):  # a merge chain is short; each round follows one step
            async with lua.pipeline(self.redis) as pipe:
                for cid in out.values():
                    pipe.hmget(self.k.state(cid), ["merged_into", "merging_into"])
                into = await pipe.execute()
            moved = {
                orig: text_of(done or going)
                for (orig, _), (done, going) in zip(out.items(), into, strict=True)
                if done or going
            }
            if not moved:
                break
            out.update(moved)
        return out

    async def apply_route_effects(
        self, decisions: list[common_pb2.RoutingDecision], now: float, holds: Mapping[str, Hold] | None = None
    ) -> None:
        """Queue entries (reserved for the previous agent where `holds` says so), arrival counts and
        `conversation.routed` events of stored decisions; then each decision's `pending:` field leaves its
        conversation's state, which says its effects are all written.

        Each queue entry and event is written at most once, by a mark in its own slot set in the same step:
        a second writer (the call that finds a decision still pending, or a merge settling it) may follow a
        first that wrote some effects and then failed, died, or had its state change taken back by a
        failover (on a cluster the effects are on other masters than the state). The pending field leaves
        only once the effects are on a replica, so no failover keeps that without them."""
        if not decisions:
            return
        window = self.policy.staffing.window_seconds
        marks: list[str] = []
        arrivals: dict[str, dict[str, float]] = {}
        async with lua.pipeline(self.redis) as pipe:
            for decision in decisions:
                cid, mid = decision.conversation_id, decision.message_id
                team, due = decision.team, from_timestamp(decision.sla_due_at)
                if decision.action == common_pb2.ROUTE_ACTION_QUEUED:
                    since = from_timestamp(decision.decided_at)
                    hold = (holds or {}).get(mid)
                    if hold is not None:
                        # The agent's index first: it is what finds the hold when their room frees.
                        pipe.sadd(self.k.holds(hold.agent.agent_id), f"{team}|{cid}")
                    entry = f"{hold.agent.agent_id}|{hold.until}" if hold else ""
                    marks.append(self.k.enqueued_once(team, cid, mid))
                    self.queues.add_on(pipe, team, cid, decision.priority, since, due, entry, once=marks[-1])
                    arrivals.setdefault(team, {})[f"{cid}|{mid}"] = since
                elif decision.action == common_pb2.ROUTE_ACTION_APPENDED and not decision.agent_id:
                    # Lifts the waiting entry only if it is still waiting and only upwards: safe to repeat.
                    await self.queues.raise_on(pipe, team, cid, decision.priority, due)
                event = EventRecord(
                    "conversation.routed",
                    cid,
                    mid,
                    now,
                    {
                        "action": common_pb2.RouteAction.Name(decision.action),
                        "team": decision.team,
                        "tier": decision.tier,
                        "rule": decision.rule,
                        "priority": decision.priority,
                        "why": decision.reason,
                    },
                )
                marks += add_to_pipeline(
                    pipe, self.keys, [event], self.settings.events_maxlen, once=f"{cid}:route:{mid}"
                )
            for team, entries in arrivals.items():
                scored = [word for member, since in entries.items() for word in (since, member)]
                pipe.write("ZADD", self.k.arrivals(team), *scored)
                pipe.write("ZREMRANGEBYSCORE", self.k.arrivals(team), "-inf", now - window)
            if not self.replicas.enabled:
                # One server runs a pipeline's writes in order, after its other commands: the effects are
                # written before the decisions stop being pending, with nothing to wait for in between.
                self._settle_effects(pipe, decisions, marks)
            await pipe.execute()
        if not self.replicas.enabled:
            return
        # Only once every effect has landed (on a cluster, the commands above run on several nodes at once):
        # a merge waits while a decision is pending.
        await self.replicas.confirm()
        async with lua.pipeline(self.redis) as pipe:
            self._settle_effects(pipe, decisions, [])
            await pipe.execute()
        await self.replicas.confirm()
        async with lua.pipeline(self.redis) as pipe:
            self._settle_effects(pipe, [], marks)
            await pipe.execute()

    def _settle_effects(
        self, pipe: lua.Pipeline, decisions: list[common_pb2.RoutingDecision], marks: list[str]
    ) -> None:
        """Each decision's `pending:` field leaves its conversation's state (its effects are all written);
        then the effects' marks are kept only `EFFECT_MARKS_KEPT_SECONDS` more, not a day each: a writer that
        read a decision as pending before this writes its effects within one call of that read."""
        for decision in decisions:
            pipe.write("HDEL", self.k.state(decision.conversation_id), PENDING + decision.message_id)
        for mark in marks:
            pipe.write("EXPIRE", mark, EFFECT_MARKS_KEPT_SECONDS)

    async def settle_route_effects(self, conversation_id: str, state: Mapping[str, str]) -> bool:
        """Whether every Route decision stored for the conversation has its effects written (True), finishing
        those of a router that died before writing them (older than `claim_idle_ms`); False while a live Route
        is still writing some."""
        pending = {
            name[len(PENDING) :]: as_float(at) for name, at in state.items() if name.startswith(PENDING)
        }
        if not pending:
            return True
        mids = sorted(pending)
        async with lua.pipeline(self.redis) as pipe:
            for mid in mids:
                pipe.get(self.k.decision(conversation_id, mid))
            read = await pipe.execute()
        now, lease = self.clock.now(), self.settings.claim_idle_ms / 1000
        done, stale, live = [], [], False
        for mid, stored in zip(mids, read, strict=True):
            if stored is None:
                done.append(mid)  # the decision expired
            elif now - pending[mid] < lease:
                live = True  # its router is writing the effects
            else:
                stale.append(common_pb2.RoutingDecision.FromString(stored))
        if done:
            await self.redis.hdel(self.k.state(conversation_id), *(PENDING + mid for mid in done))
        await self.apply_route_effects(stale, now)
        return not live
