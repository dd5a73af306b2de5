"""The agent desk: presence, decline, transfer, escalation and resolution of a conversation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from parley import lua
from parley.clock import to_timestamp
from parley.events import EventRecord, add_to_pipeline
from parley.router.assignment import Assignments
from parley.router.base import Ground, Part
from parley.router.common import (
    PRESENCES,
    decode_hash,
    flat,
)
from parley.router.queues import Queues
from parley.rpc import FailedPrecondition, InvalidArgument
from parley.v1 import common_pb2, router_pb2

log = logging.getLogger("parley.router")


class Desk(Part):
    """What agents and supervisors do to a conversation: presence, decline, transfer, escalate, resolve."""

    def __init__(self, ground: Ground, queues: Queues, assignments: Assignments) -> None:
        super().__init__(ground)
        self.queues = queues
        self.assignments = assignments

    async def set_presence(
        self,
        agent_id: str,
        presence: str,
        teams: list[str] | None = None,
        capacity: int | None = None,
        skills: list[str] | None = None,
    ) -> list[router_pb2.Assignment]:
        """Record presence (teams, capacity and skills unchanged when None); an agent coming online with free
        capacity is handed the best waiting conversations of their teams. Going offline starts the grace
        period after which the agent's open conversations are re-queued (`expire_offline`)."""
        problems = [
            (f"teams[{i}]", f"unknown team {t!r}")
            for i, t in enumerate(teams or [])
            if not self.policy.team(t)
        ]
        if presence not in PRESENCES:
            problems.append(("presence", f"must be one of {', '.join(PRESENCES)}"))
        if capacity is not None and capacity < 0:
            problems.append(("capacity", "must not be negative"))
        if problems:
            raise InvalidArgument(problems)
        old = decode_hash(await self.redis.hgetall(self.k.agent(agent_id)))
        old_teams = [t for t in old.get("teams", "").split(",") if t]
        new_teams = list(teams) if teams else old_teams
        fields = {"presence": presence, "teams": ",".join(new_teams)}
        fields["capacity"] = str(capacity if capacity else old.get("capacity", "1"))
        fields["skills"] = ",".join(skills) if skills else old.get("skills", "")
        async with lua.pipeline(self.redis) as pipe:
            pipe.hset(self.k.agent(agent_id), mapping=fields)
            pipe.sadd(self.k.agents(), agent_id)
            if presence == "offline":
                pipe.zadd(self.k.offline(), {agent_id: self.clock.now()}, nx=True)
            else:
                pipe.zrem(self.k.offline(), agent_id)
            for team in set(old_teams) - set(new_teams):
                pipe.srem(self.k.online(team), agent_id)
            for team in new_teams:
                if presence == "online":
                    pipe.sadd(self.k.online(team), agent_id)
                else:
                    pipe.srem(self.k.online(team), agent_id)
            await pipe.execute()
        return await self.assignments.fill(agent_id) if presence == "online" else []

    async def _detach(self, cid: str, state: dict[str, str], withdraw: str = "") -> None:
        """Take a conversation out of its queue or off its agent, failing if someone moved it first. With
        `withdraw` (why), the agent's feed is told in the same step that the conversation left them."""
        if state["state"] == "queued":
            if not await self.queues.take_from(state["team"], cid):
                raise FailedPrecondition(f"conversation {cid} was just taken by an agent; retry")
        elif state["state"] == "assigned":
            if withdraw:
                taken = await self.assignments.withdraw(state["agent"], cid, state, withdraw)
            else:
                taken = bool(await self.redis.srem(self.k.active(state["agent"]), cid))
            if not taken:
                raise FailedPrecondition(f"conversation {cid} is no longer with agent {state['agent']}")

    async def _requeue(
        self,
        cid: str,
        state: dict[str, str],
        team_name: str,
        priority: float,
        due: float,
        event: EventRecord,
        extra: Mapping[str, Any] | None = None,
    ) -> common_pb2.RoutingDecision:
        """Put a detached conversation in a team's queue, keeping its enqueue time; audit and event too."""
        team = self.policy.team(team_name)
        assert team is not None
        now = self.clock.now()
        since = float(state.get("enqueued_at", now))
        audit = router_pb2.RoutingAudit(
            kind=event.type.removeprefix("conversation."),
            at=to_timestamp(now),
            action=common_pb2.ROUTE_ACTION_QUEUED,
            team=team.name,
            priority=priority,
            why="; ".join(f"{k}={v}" for k, v in event.attributes.items() if v not in ("", None)),
        )
        async with lua.pipeline(self.redis) as pipe:
            await self.scripts.set_state(
                keys=[self.k.state(cid)],
                args=flat(
                    {
                        "state": "queued",
                        "team": team.name,
                        "tier": team.tier,
                        "agent": "",
                        "priority": priority,
                        "sla_due": due,
                        **(extra or {}),
                    }
                ),
                client=pipe,
            )
            await self.queues.enqueue_on(pipe, team.name, cid, priority, since, due)
            pipe.hset(self.k.audit(cid), f"{audit.kind}:{now:.6f}", audit.SerializeToString())
            add_to_pipeline(pipe, self.keys, [event], self.settings.events_maxlen)
            await pipe.execute()
        return common_pb2.RoutingDecision(
            conversation_id=cid,
            action=common_pb2.ROUTE_ACTION_QUEUED,
            team=team.name,
            tier=team.tier,
            priority=priority,
            sla_due_at=to_timestamp(due),
            decided_at=to_timestamp(self.clock.now()),
        )

    async def decline(self, agent_id: str, conversation_id: str, reason: str = "") -> str:
        """The agent hands the conversation back; it returns to its team's queue keeping its wait and SLA."""
        state = await self.routed_state(conversation_id)
        if state["state"] != "assigned" or state.get("agent") != agent_id:
            raise FailedPrecondition(f"conversation {conversation_id} is not assigned to agent {agent_id}")
        await self._detach(conversation_id, state)
        event = EventRecord(
            "conversation.declined",
            conversation_id,
            "",
            self.clock.now(),
            {"agent_id": agent_id, "team": state["team"], "reason": reason},
        )
        declined = ",".join(sorted({*state.get("declined_by", "").split(","), agent_id} - {""}))
        await self._requeue(
            conversation_id,
            state,
            state["team"],
            float(state["priority"]),
            float(state["sla_due"]),
            event,
            {"declined_by": declined},
        )
        await self.assignments.hand_held(
            agent_id
        )  # the freed room goes to a conversation waiting for this agent
        return state["team"]

    async def transfer(
        self, conversation_id: str, to_team: str = "", to_agent_id: str = "", reason: str = ""
    ) -> common_pb2.RoutingDecision:
        if bool(to_team) == bool(to_agent_id):
            raise InvalidArgument([("to_team", "give exactly one of to_team, to_agent_id")])
        if to_team and not self.policy.team(to_team):
            raise InvalidArgument([("to_team", f"unknown team {to_team!r}")])
        state = await self.routed_state(conversation_id)
        if state["state"] not in ("queued", "assigned"):
            raise FailedPrecondition(
                f"conversation {conversation_id} is {state['state']}; nothing to transfer"
            )
        now = self.clock.now()
        why = f"transferred from {state['team']}" + (f": {reason}" if reason else "")
        if to_team:
            await self._detach(conversation_id, state, withdraw=f"{why}; transferred to {to_team}")
            event = EventRecord(
                "conversation.transferred", conversation_id, "", now, {"from": state["team"], "team": to_team}
            )
            decision = await self._requeue(
                conversation_id, state, to_team, float(state["priority"]), float(state["sla_due"]), event
            )
            decision.rule, decision.reason = "transfer", why
            return decision
        await self.agent_profile(to_agent_id)
        token = await self.assignments.reserve_capacity(to_agent_id)
        away = state["state"] == "assigned" and state.get("agent") != to_agent_id
        try:
            await self._detach(
                conversation_id, state, withdraw=f"{why}; transferred to agent {to_agent_id}" if away else ""
            )
        except FailedPrecondition:
            await self.redis.srem(self.k.active(to_agent_id), token)
            raise
        assignment = await self.assignments.assign(
            to_agent_id, conversation_id, token, "transferred", why=reason
        )
        if assignment is None:  # no journaled claim to revoke: a merge fenced the conversation meanwhile
            raise FailedPrecondition(f"conversation {conversation_id} is being merged; retry")
        return common_pb2.RoutingDecision(
            conversation_id=conversation_id,
            action=common_pb2.ROUTE_ACTION_ASSIGNED,
            team=assignment.team,
            tier=state.get("tier", ""),
            agent_id=to_agent_id,
            priority=assignment.priority,
            rule="transfer",
            reason=f"{why} to agent {to_agent_id}",
            sla_due_at=assignment.sla_due_at,
            decided_at=to_timestamp(now),
        )

    async def escalate(
        self,
        conversation_id: str,
        reason: str = "",
        state: dict[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> common_pb2.RoutingDecision:
        """Move a waiting or assigned conversation to the next tier's team at a higher priority."""
        state = state or await self.routed_state(conversation_id)
        if state["state"] not in ("queued", "assigned"):
            raise FailedPrecondition(
                f"conversation {conversation_id} is {state['state']}; nothing to escalate"
            )
        target = self.policy.escalation_target(state["team"], state.get("topic", ""))
        if target is None:
            raise FailedPrecondition(f"{state['team']} is already the top tier")
        await self._detach(
            conversation_id,
            state,
            withdraw=f"escalated to {target.name} ({target.tier})" + (f": {reason}" if reason else ""),
        )
        now = self.clock.now()
        priority = float(state["priority"]) + self.policy.priority.escalation
        due = min(float(state["sla_due"]), now + self.policy.sla_band(priority).first_response_seconds)
        event = EventRecord(
            "conversation.escalated",
            conversation_id,
            "",
            now,
            {
                "from": state["team"],
                "team": target.name,
                "tier": target.tier,
                "priority": priority,
                "reason": reason,
            },
        )
        decision = await self._requeue(conversation_id, state, target.name, priority, due, event, extra)
        decision.rule = "escalate"
        decision.reason = (
            f"escalated from {state['team']} ({state.get('tier', '')}) to {target.name} ({target.tier})"
        )
        decision.reason += f": {reason}" if reason else ""
        return decision

    async def resolve(self, conversation_id: str, agent_id: str = "") -> float:
        """Close conversation and free the agent's capacity. Idempotent: returns the first resolve time."""
        state = await self.routed_state(conversation_id)
        if state["state"] == "resolved":
            return float(state["resolved_at"])
        if agent_id and state.get("agent") != agent_id:
            raise FailedPrecondition(f"conversation {conversation_id} is not assigned to agent {agent_id}")
        await self._detach(conversation_id, state)
        now = self.clock.now()
        async with lua.pipeline(self.redis) as pipe:
            await self.scripts.set_state(
                keys=[self.k.state(conversation_id)],
                args=flat({"state": "resolved", "resolved_at": now, "agent": ""}),
                client=pipe,
            )
            if state["state"] == "assigned":
                # Handling time feeds staffing: time from assignment to resolution.
                handled = max(0.0, now - float(state.get("assigned_at", now)))
                pipe.hincrbyfloat(self.k.handled(state["team"]), "seconds", handled)
                pipe.hincrby(self.k.handled(state["team"]), "count", 1)
            event = EventRecord(
                "conversation.resolved",
                conversation_id,
                "",
                now,
                {"agent_id": state.get("agent", ""), "team": state.get("team", "")},
            )
            add_to_pipeline(pipe, self.keys, [event], self.settings.events_maxlen)
            await pipe.execute()
        if state["state"] == "assigned":
            await self.assignments.fill(
                state["agent"]
            )  # the freed capacity takes the next waiting conversation
        return now
