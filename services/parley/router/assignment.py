"""Giving conversations to agents: capacity reservations, the claim, recording an assignment (state,
capacity, feed, audit, event), withdrawing one, and handing an agent what waits for them."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

from parley import lua
from parley.clock import from_timestamp
from parley.events import EventRecord, add_to_pipeline
from parley.router.base import Ground, Part
from parley.router.common import (
    AUDIT_CANDIDATES,
    CLAIM_ATTEMPTS,
    FEED_MAXLEN,
    RESERVING,
    decode_hash,
    flat,
    text_of,
)
from parley.router.decide import Candidate, rank
from parley.router.queues import Queues
from parley.rpc import FailedPrecondition
from parley.v1 import common_pb2, router_pb2

log = logging.getLogger("parley.router")


class Assignments(Part):
    """Conversations given to agents: capacity reserved first, the queue entry taken second, the assignment
    recorded last (and given back when it may not be)."""

    def __init__(self, ground: Ground, queues: Queues) -> None:
        super().__init__(ground)
        self.queues = queues

    async def _read_agents(self, team: str, extra: set[str]) -> list[tuple[str, dict[str, str], int]]:
        """(agent id, profile, load) of the team's online agents and of `extra` agents (previous ones)."""
        members = {text_of(m) for m in await self.redis.smembers(self.k.online(team))} | (extra - {""})
        agents = sorted(members)
        async with lua.pipeline(self.redis) as pipe:
            for agent_id in agents:
                pipe.hgetall(self.k.agent(agent_id))
                pipe.scard(self.k.active(agent_id))
            raw = await pipe.execute()
        out = []
        for n, agent_id in enumerate(agents):
            profile = decode_hash(raw[2 * n])
            if profile:
                out.append((agent_id, profile, int(raw[2 * n + 1])))
        return out

    async def _candidates(self, team: str, state: dict[str, str]) -> list[Candidate]:
        """The team's online agents (and the conversation's previous agent), best first."""
        return rank(await self._read_agents(team, {state.get("last_agent", "")}), state)

    async def reserve_capacity(self, agent_id: str) -> str:
        # The time in the token lets the loop give back a reservation whose claimer died before its journal.
        token = f"{RESERVING}{self.clock.now():.3f}:{uuid.uuid4().hex}"
        result = await self.scripts.reserve(
            keys=[self.k.agent(agent_id), self.k.active(agent_id)], args=[token]
        )
        if result == -1:
            raise FailedPrecondition(f"agent {agent_id} is not online")
        if result == 0:
            raise FailedPrecondition(f"agent {agent_id} is at capacity")
        return token

    async def assign(
        self,
        agent_id: str,
        cid: str,
        token: str,
        how: str,
        candidates: list[Candidate] | None = None,
        chosen: Candidate | None = None,
        why: str = "",
        held: bool = False,
    ) -> router_pb2.Assignment | None:
        """Record a conversation already removed from its queue as the agent's: state, capacity, feed, audit
        and event. None when the claim was revoked by `recover_claims` (its capacity is released)."""
        now = self.clock.now()
        state = decode_hash(await self.redis.hgetall(self.k.state(cid)))
        state.update(state="assigned", agent=agent_id, assigned_at=str(now))
        assignment = self.assignment(cid, agent_id, state)
        assignment.reason = (
            f"{how}: {agent_id} from {state.get('team', '')} at priority {assignment.priority:g}"
        )
        assignment.reason += f"; {why}" if why else ""
        fields = {
            "state": "assigned",
            "agent": agent_id,
            "last_agent": agent_id,
            "assigned_at": now,
            "reason": assignment.reason,
        }
        # On a cluster, the capacity reserved and the queue entry taken (other slots) are on a replica before
        # the assignment is recorded, and the record before the agent's capacity and feed count it: a failover
        # never keeps a later step of an assignment without the earlier ones.
        await self.replicas.confirm()
        recorded = await self.scripts.assign(keys=[self.k.state(cid)], args=[token, *flat(fields)])
        await self.replicas.confirm()
        if not recorded:
            await self.redis.srem(self.k.active(agent_id), token)
            await self.queues.give_back(state.get("team", ""), cid, token)
            return None
        await self.complete(cid, token, assignment, how, candidates, chosen, held)
        if state.get("team"):
            # The claim's journal closes last: while it is open, a router that died before `complete` is
            # finished by `Loop.recover_claims`.
            await self.redis.hdel(self.k.taking(state["team"]), cid)
        return assignment

    async def complete(
        self,
        cid: str,
        token: str,
        assignment: router_pb2.Assignment,
        how: str,
        candidates: list[Candidate] | None = None,
        chosen: Candidate | None = None,
        held: bool = False,
    ) -> None:
        """Count a recorded assignment in the agent's capacity and feed, with its audit and event, each once
        per claim token (so the claimer and a recovery of its claim may both call it); on a cluster, on a
        replica before returning, so the claim's journal never closes before its assignment counts."""
        agent_id = assignment.agent_id
        now = from_timestamp(assignment.assigned_at)
        notes = {chosen.agent_id: f"chosen: {chosen.note()}"} if chosen else {}
        audit = router_pb2.RoutingAudit(
            kind="assign",
            at=assignment.assigned_at,
            action=common_pb2.ROUTE_ACTION_ASSIGNED,
            team=assignment.team,
            agent_id=agent_id,
            priority=assignment.priority,
            candidates=[c.to_proto(notes.get(c.agent_id, "")) for c in (candidates or [])[:AUDIT_CANDIDATES]],
            why=assignment.reason,
        )
        async with lua.pipeline(self.redis) as pipe:
            await self.scripts.commit(
                keys=[self.k.active(agent_id), self.k.feed(agent_id), self.k.assigned_once(agent_id, token)],
                args=[token, cid, assignment.SerializeToString(), FEED_MAXLEN, lua.ONCE_KEPT_SECONDS],
                client=pipe,
            )
            pipe.hsetnx(self.k.audit(cid), f"assign:{token}", audit.SerializeToString())
            event = EventRecord(
                "conversation.assigned",
                cid,
                "",
                now,
                {
                    "agent_id": agent_id,
                    "team": assignment.team,
                    "priority": assignment.priority,
                    "how": how,
                    "why": assignment.reason,
                    "sticky": held or bool(chosen and chosen.sticky),
                    "held": held,
                    "skill_match": bool(chosen and chosen.skill_match),
                    "candidates": len(candidates or []),
                },
            )
            # Once per claim token, as the feed entry: recording the same assignment again writes neither.
            add_to_pipeline(
                pipe, self.keys, [event], self.settings.events_maxlen, once=f"{cid}:assign:{token}"
            )
            await pipe.execute()
        await self.replicas.confirm()

    async def withdraw(self, agent_id: str, cid: str, state: Mapping[str, str], why: str) -> bool:
        """Take a conversation off an agent and push a withdrawn assignment to their feed, atomically. False
        when the agent no longer had it (nothing is written)."""
        withdrawn = self.assignment(cid, agent_id, dict(state))
        withdrawn.reason, withdrawn.withdrawn = why, True
        args = [cid, withdrawn.SerializeToString(), FEED_MAXLEN]
        return bool(
            await self.scripts.withdraw(keys=[self.k.active(agent_id), self.k.feed(agent_id)], args=args)
        )

    async def _assign_waiting(
        self, team: str, cid: str, how: str
    ) -> tuple[router_pb2.Assignment | None, bool]:
        """Give a waiting conversation to the best eligible agent: (assignment, whether any agent of the team
        is online with free capacity). None with True means another router or agent took the conversation
        first, or the free agents declined it."""
        state = decode_hash(await self.redis.hgetall(self.k.state(cid)))
        candidates = await self._candidates(team, state)
        eligible = [c for c in candidates if c.eligible]
        entry = text_of(await self.redis.hget(self.k.held(team), cid) or "")
        if entry and float(entry.rsplit("|", 1)[1]) > self.clock.now():
            holder = entry.rsplit("|", 1)[0]
            eligible = [c for c in eligible if c.agent_id == holder]  # reserved for its previous agent
        for chosen in eligible:
            try:
                token = await self.reserve_capacity(chosen.agent_id)
            except FailedPrecondition:
                chosen.load = chosen.capacity  # filled up since it was read
                continue
            if not await self.queues.take_from(team, cid, chosen.agent_id, token):
                await self.redis.srem(self.k.active(chosen.agent_id), token)
                return None, True
            why = f"chosen: {chosen.note()}; {len(eligible)} of {len(candidates)} agents eligible"
            assignment = await self.assign(chosen.agent_id, cid, token, how, candidates, chosen, why)
            return assignment, True
        return None, any(c.presence == "online" and c.load < c.capacity for c in candidates)

    async def _assign_planned(
        self, team: str, cid: str, chosen: Candidate, candidates: list[Candidate], how: str
    ) -> router_pb2.Assignment | None:
        """Assign to the agent a batch plan chose; if that agent filled up meanwhile, choose afresh."""
        try:
            token = await self.reserve_capacity(chosen.agent_id)
        except FailedPrecondition:
            return (await self._assign_waiting(team, cid, how))[0]
        if not await self.queues.take_from(team, cid, chosen.agent_id, token):
            await self.redis.srem(self.k.active(chosen.agent_id), token)
            return None
        eligible = sum(c.eligible for c in candidates)
        why = f"chosen: {chosen.note()}; {eligible} of {len(candidates)} agents eligible"
        return await self.assign(chosen.agent_id, cid, token, how, candidates, chosen, why)

    async def claim(self, agent_id: str, conversation_id: str = "") -> router_pb2.Assignment | None:
        """Give the agent a given waiting conversation, or the best waiting one of their teams (None when
        there is none). Capacity is reserved first; removing the conversation from its queue decides who
        owns it, so two agents never get the same conversation."""
        agent = await self.agent_profile(agent_id)
        if conversation_id:
            state = await self.routed_state(conversation_id)
            if state["state"] == "assigned" and state.get("agent") == agent_id:
                return self.assignment(conversation_id, agent_id, state)  # a retried claim
            if state["state"] != "queued":
                raise FailedPrecondition(f"conversation {conversation_id} is {state['state']}, not waiting")
        token = await self.reserve_capacity(agent_id)
        taken: tuple[str, str] | None = None
        try:
            if conversation_id:
                code = await self.queues._take_code(state["team"], conversation_id, agent_id, token)
                if code == 1:
                    taken = (state["team"], conversation_id)
                elif code == -1:
                    holder = text_of(await self.redis.hget(self.k.held(state["team"]), conversation_id) or "")
                    raise FailedPrecondition(
                        f"conversation {conversation_id} is held for its previous agent "
                        f"{holder.rsplit('|', 1)[0]} for now"
                    )
                else:
                    raise FailedPrecondition(
                        f"conversation {conversation_id} was just taken by another agent"
                    )
            else:
                # Peek to choose the team, then take that team's best atomically: a racing claim may take
                # the peeked one first, and this one then gets the next best of the same team.
                for _ in range(CLAIM_ATTEMPTS):
                    best = await self.queues._best_waiting(agent["teams"], agent_id)
                    if best is None:
                        break
                    cid = await self.queues._take_best(best[0], agent_id, token)
                    if cid is not None:
                        taken = (best[0], cid)
                        break
            if taken is None:
                return None
            assignment = await self.assign(agent_id, taken[1], token, "claimed")
            if assignment is None and conversation_id:
                raise FailedPrecondition(f"the claim of {conversation_id} expired; retry")
            return assignment
        finally:
            if taken is None:
                await self.redis.srem(self.k.active(agent_id), token)

    async def fill(self, agent_id: str) -> list[router_pb2.Assignment]:
        """Hand the agent the conversations held for them, then the best waiting conversations of their teams,
        until full or nothing waits."""
        handed = await self.hand_held(agent_id)
        while True:
            try:
                assignment = await self.claim(agent_id)
            except FailedPrecondition:
                break  # at capacity, or no longer online
            if assignment is None:
                break
            handed.append(assignment)
        return handed

    async def hand_held(self, agent_id: str) -> list[router_pb2.Assignment]:
        """Give the agent the conversations held for them, while they have room."""
        handed: list[router_pb2.Assignment] = []
        for raw in sorted(await self.redis.smembers(self.k.holds(agent_id))):
            member = text_of(raw)
            team, cid = member.split("|", 1)
            entry = text_of(await self.redis.hget(self.k.held(team), cid) or "")
            try:
                token = await self.reserve_capacity(agent_id)
            except FailedPrecondition:
                break  # no room (or not online): the hold stays
            taken = await self.queues.take_from(team, cid, agent_id, token)
            # Taken, or no longer waiting for this agent: either way the index entry is done.
            await self.redis.srem(self.k.holds(agent_id), member)
            if not taken:
                await self.redis.srem(self.k.active(agent_id), token)
                continue
            waited = ""
            if entry:
                since = float(entry.rsplit("|", 1)[1]) - self.policy.assignment.sticky_hold_seconds
                waited = f" after a hold of {max(0.0, self.clock.now() - since):g}s"
            why = f"handled this conversation before; it was held for them{waited}"
            assignment = await self.assign(agent_id, cid, token, "returned to its agent", why=why, held=True)
            if assignment is not None:
                handed.append(assignment)
        return handed

    async def _offline_since(self, agent_ids: list[str]) -> dict[str, float]:
        """When each of these agents went offline, for those still within the grace period's bookkeeping."""
        if not agent_ids:
            return {}
        async with lua.pipeline(self.redis) as pipe:
            for agent_id in agent_ids:
                pipe.zscore(self.k.offline(), agent_id)
            scores = await pipe.execute()
        return {a: float(t) for a, t in zip(agent_ids, scores, strict=True) if t is not None}
