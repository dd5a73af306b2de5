"""Newly queued conversations of one Route batch: planned over the agents read once, assigned at once, or
held for their previous agent (the sticky hold) with its audit and event."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from parley import lua
from parley.clock import to_timestamp
from parley.events import EventRecord, add_to_pipeline
from parley.router.assignment import Assignments
from parley.router.base import Ground, Part
from parley.router.common import (
    ASSIGN_CONCURRENCY,
    AUDIT_CANDIDATES,
)
from parley.router.decide import Candidate, Hold, NewPlan, hold_for, rank
from parley.router.queues import Queues
from parley.v1 import common_pb2, router_pb2

log = logging.getLogger("parley.router")


class Arrivals(Part):
    """How one Route batch's newly queued conversations reach agents: planned over the agents read once."""

    def __init__(self, ground: Ground, queues: Queues, assignments: Assignments) -> None:
        super().__init__(ground)
        self.queues = queues
        self.assignments = assignments

    async def _plan_new(
        self, decisions: list[common_pb2.RoutingDecision], states: dict[str, dict[str, str]]
    ) -> NewPlan:
        """Who takes each newly queued conversation of one Route batch: an agent who fits now, or its
        previous agent, for whom it is held. The agents of each team are read once and the batch is
        planned against loads counted as it goes (so a batch spreads over the agents like one-by-one
        arrivals would)."""
        by_team: dict[str, list[common_pb2.RoutingDecision]] = {}
        for decision in decisions:
            by_team.setdefault(decision.team, []).append(decision)
        plans = []
        holds: dict[str, Hold] = {}
        now = self.clock.now()
        for team, group in by_team.items():
            extra = {states.get(d.conversation_id, {}).get("last_agent", "") for d in group}
            agents = await self.assignments._read_agents(team, extra)
            if not agents:
                continue
            loads = {agent_id: load for agent_id, _, load in agents}
            offline_at = await self.assignments._offline_since(
                [a for a, profile, _ in agents if a in extra and profile.get("presence") == "offline"]
            )
            profiles = {agent_id: profile for agent_id, profile, _ in agents}
            for decision in group:
                state = states.get(decision.conversation_id, {})
                candidates = rank(agents, state, loads)
                chosen = next((c for c in candidates if c.eligible), None)
                held = hold_for(self.policy, team, candidates, profiles, offline_at, self.clock.now())
                if held is not None:
                    until = now + self.policy.assignment.sticky_hold_seconds
                    holds[decision.message_id] = Hold(team, decision, held[0], candidates, held[1], until)
                if chosen is not None and (held is None or chosen is held[0]):
                    loads[chosen.agent_id] += 1
                    plans.append((team, decision, chosen, candidates))
        return NewPlan(plans, holds)

    async def _assign_new(self, plan: NewPlan) -> dict[str, common_pb2.RoutingDecision]:
        """Run a batch plan: the assignments concurrently, each still reserving capacity and taking the
        conversation atomically; the holds (already in the queue) get their audit, event and reason."""
        plans = plan.plans
        gate = asyncio.Semaphore(ASSIGN_CONCURRENCY)

        async def run(
            team: str, decision: common_pb2.RoutingDecision, chosen: Candidate, candidates: list[Candidate]
        ) -> router_pb2.Assignment | None:
            async with gate:
                return await self.assignments._assign_planned(
                    team, decision.conversation_id, chosen, candidates, "assigned on arrival"
                )

        done = await asyncio.gather(*(run(*plan) for plan in plans))
        out: dict[str, common_pb2.RoutingDecision] = {}
        async with lua.pipeline(self.redis) as pipe:
            for (_, decision, _, _), assignment in zip(plans, done, strict=True):
                if assignment is None:
                    continue
                assigned = common_pb2.RoutingDecision()
                assigned.CopyFrom(decision)
                assigned.action = common_pb2.ROUTE_ACTION_ASSIGNED
                assigned.agent_id = assignment.agent_id
                assigned.reason = decision.reason + f"; {assignment.reason}"
                # The stored decision follows, so a retried Route returns ASSIGNED too.
                pipe.set(
                    self.k.decision(decision.conversation_id, decision.message_id),
                    assigned.SerializeToString(),
                    xx=True,
                    keepttl=True,
                )
                out[decision.message_id] = assigned
            await pipe.execute()
        for hold in plan.holds.values():
            cid = hold.decision.conversation_id
            if hold.decision.message_id in out or not await self.redis.hexists(self.k.held(hold.team), cid):
                # Its agent took it at once: the hold only kept others off it meanwhile.
                await self.redis.srem(self.k.holds(hold.agent.agent_id), f"{hold.team}|{cid}")
                continue
            if not hold.why:
                hold = dataclasses.replace(hold, why="no longer free (filled up meanwhile)")
            out[hold.decision.message_id] = await self._announce_hold(hold)
        for agent_id in sorted({hold.agent.agent_id for hold in plan.holds.values()}):
            await self.assignments.hand_held(agent_id)  # room may have freed since the agent was read
        return out

    async def _announce_hold(self, hold: Hold) -> common_pb2.RoutingDecision:
        """Audit, event and the stored decision of a conversation queued on hold for its previous agent."""
        team, decision, candidates, until = hold.team, hold.decision, hold.candidates, hold.until
        cid, agent_id, why = decision.conversation_id, hold.agent.agent_id, hold.why
        now = self.clock.now()
        reason = (
            f"held for agent {agent_id}, who handled this conversation before and is {why}, "
            f"for up to {self.policy.assignment.sticky_hold_seconds:g}s"
        )
        held = common_pb2.RoutingDecision()
        held.CopyFrom(decision)
        held.reason = decision.reason + f"; {reason}"
        audit = router_pb2.RoutingAudit(
            kind="hold",
            at=to_timestamp(now),
            action=common_pb2.ROUTE_ACTION_QUEUED,
            team=team,
            agent_id=agent_id,
            priority=decision.priority,
            candidates=[c.to_proto() for c in candidates[:AUDIT_CANDIDATES]],
            why=reason,
        )
        event = EventRecord(
            "conversation.held",
            cid,
            decision.message_id,
            now,
            {"team": team, "agent_id": agent_id, "until": until, "why": reason},
        )
        async with lua.pipeline(self.redis) as pipe:
            pipe.set(
                self.k.decision(cid, decision.message_id), held.SerializeToString(), xx=True, keepttl=True
            )
            pipe.hset(self.k.audit(cid), f"hold:{decision.message_id}", audit.SerializeToString())
            add_to_pipeline(pipe, self.keys, [event], self.settings.events_maxlen)
            await pipe.execute()
        return held
