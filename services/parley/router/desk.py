"""The agent desk: presence, decline, transfer, escalation and resolution of a conversation."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from parley import lua
from parley.clock import to_timestamp
from parley.events import EventRecord, add_to_pipeline
from parley.router.assignment import Assignments
from parley.router.base import Ground, Part
from parley.router.common import (
    PRESENCES,
    as_float,
    decode_hash,
    flat,
    text_of,
)
from parley.router.queues import Queues
from parley.rpc import FailedPrecondition, InvalidArgument
from parley.v1 import common_pb2, router_pb2

log = logging.getLogger("parley.router")

# Times a desk action reads the state again when it changed between the read and the mark.
MARK_ATTEMPTS = 5


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

    # A desk action that moves a conversation (decline, transfer, escalate, resolve) touches the
    # conversation's slot and its agent's or queue's slot, so it cannot be one script on a cluster. It goes in
    # three steps, each safe to repeat: its intent is marked in the conversation's state (`leaving`: the
    # action, the agent it leaves, its arguments, a token), the conversation leaves its agent or queue, and
    # the final state replaces the mark. A retried call that finds its own mark finishes it; the loop
    # (`finish_marks`) finishes marks older than `claim_idle_ms`; merges and claims wait while one is there.

    async def _mark(
        self, cid: str, state: dict[str, str], action: str, args: Mapping[str, Any], claim: str = ""
    ) -> dict[str, str] | None:
        """Record the intent; the state as marked, or None when it changed meanwhile (read it again)."""
        now = self.clock.now()
        token = f"{now:.6f}:{uuid.uuid4().hex}"
        arguments = json.dumps({**args, "from": state["state"]}, sort_keys=True)
        # Indexed first, so no mark is ever out of the loop's sight.
        await self.redis.zadd(self.k.leaving(), {cid: now})
        code, payload = await self.scripts.leave(
            keys=[self.k.state(cid)],
            args=[state.get("version", "0"), action, state.get("agent", ""), token, now, arguments, claim],
        )
        if int(code) == 3:
            raise FailedPrecondition(f"conversation {cid} is being merged into {text_of(payload)}")
        if int(code) != 0:
            return None
        # On a cluster, each step is on a replica before the next touches another slot (as an assignment's).
        await self.replicas.confirm()
        return {
            **state,
            "leaving": action,
            "leaving_agent": state.get("agent", ""),
            "leaving_token": token,
            "leaving_at": str(now),
            "leaving_since": str(now),
            "leaving_args": arguments,
            "leaving_claim": claim,
        }

    async def _take_over(self, cid: str, state: dict[str, str]) -> dict[str, str]:
        """Become the one finishing a mark found in the state (refused if someone else just did)."""
        now = self.clock.now()
        token = f"{now:.6f}:{uuid.uuid4().hex}"
        if not await self.scripts.relet(keys=[self.k.state(cid)], args=[state["leaving_token"], token, now]):
            raise FailedPrecondition(f"a {state['leaving']} of conversation {cid} is being finished; retry")
        return {**state, "leaving_token": token, "leaving_at": str(now)}

    async def _other_mark(self, cid: str, state: dict[str, str]) -> None:
        """Another action's mark stands in the way: finished if its router died, else refused."""
        if self.clock.now() - as_float(state["leaving_at"]) < self.settings.claim_idle_ms / 1000:
            raise FailedPrecondition(f"a {state['leaving']} of conversation {cid} is in progress; retry")
        await self.finish(cid, state)

    async def finish(self, cid: str, state: dict[str, str]) -> Any:
        """Finish the desk action marked in the state read: what the action itself returns."""
        return await self._complete(cid, await self._take_over(cid, state))

    async def _complete(self, cid: str, marked: dict[str, str]) -> Any:
        args = json.loads(marked["leaving_args"])
        action = marked["leaving"]
        if action == "resolve":
            result: Any = await self._resolve_marked(cid, marked, args)
        elif action == "decline":
            result = await self._decline_marked(cid, marked, args)
        elif action == "transfer":
            result = await self._transfer_marked(cid, marked, args)
        elif action == "requeue":
            result = await self._requeue_marked(cid, marked, args)
        else:
            result = await self._escalate_marked(cid, marked, args)
        await self.scripts.unlist(keys=[self.k.leaving()], args=[cid, marked["leaving_since"]])
        return result

    @staticmethod
    def _action_id(cid: str, marked: dict[str, str]) -> str:
        """One desk action on one conversation, whoever finishes it: its mark's time outlives a take-over."""
        return f"{cid}:{marked['leaving']}:{marked['leaving_since']}"

    async def _let_go(self, cid: str, marked: dict[str, str], was: str, withdraw: str = "") -> None:
        """The second step: the marked conversation leaves its queue or agent. Done already is fine (the mark
        says it is this action's to move); a claim that took it from the queue before the mark wins, and the
        mark is dropped."""
        agent = marked["leaving_agent"]
        if was == "queued":
            taken = await self.queues.take_from(marked["team"], cid)
            if not taken and await self.redis.hexists(self.k.taking(marked["team"]), cid):
                await self.scripts.left(keys=[self.k.state(cid)], args=[marked["leaving_token"]])
                await self.scripts.unlist(keys=[self.k.leaving()], args=[cid, marked["leaving_since"]])
                raise FailedPrecondition(f"conversation {cid} was just taken by an agent; retry")
        elif was == "assigned" and agent:
            if withdraw:
                await self.assignments.withdraw(agent, cid, marked, withdraw)
            else:
                await self.redis.srem(self.k.active(agent), cid)
        await self.replicas.confirm()

    async def _begin(
        self,
        cid: str,
        action: str,
        check: Callable[[dict[str, str]], Mapping[str, Any]],
        same: Callable[[dict[str, str]], bool],
        state: dict[str, str] | None = None,
        claim: str = "",
    ) -> Any:
        """Mark and finish an action, or finish this same action's mark left by a call that died; `check`
        refuses a state the action does not apply to (else gives the action's arguments), `same` tells a mark
        of this very call."""
        for _ in range(MARK_ATTEMPTS):
            state = state or await self.routed_state(cid)
            if state.get("leaving"):
                if state["leaving"] == action and same(state):
                    return await self.finish(cid, state)
                await self._other_mark(cid, state)
                state = None
                continue
            args = check(state)
            marked = await self._mark(cid, state, action, args, claim)
            if marked is not None:
                return await self._complete(cid, marked)
            state = None
        raise FailedPrecondition(f"conversation {cid} keeps changing; retry")

    async def _requeue(
        self,
        cid: str,
        marked: dict[str, str],
        team_name: str,
        priority: float,
        due: float,
        event: EventRecord,
        extra: Mapping[str, Any] | None = None,
    ) -> common_pb2.RoutingDecision:
        """The last step of a desk action that puts the conversation it let go of in a team's queue, keeping
        its enqueue time: the queued state in place of the action's mark (only while the mark is still this
        call's), the queue entry, the audit and the event."""
        team = self.policy.team(team_name)
        assert team is not None
        now = self.clock.now()
        since = float(marked.get("enqueued_at", now))
        audit = router_pb2.RoutingAudit(
            kind=event.type.removeprefix("conversation."),
            at=to_timestamp(now),
            action=common_pb2.ROUTE_ACTION_QUEUED,
            team=team.name,
            priority=priority,
            why="; ".join(f"{k}={v}" for k, v in event.attributes.items() if v not in ("", None)),
        )
        async with lua.pipeline(self.redis) as pipe:
            fields = flat(
                {
                    "state": "queued",
                    "team": team.name,
                    "tier": team.tier,
                    "agent": "",
                    "priority": priority,
                    "sla_due": due,
                    **(extra or {}),
                }
            )
            token = marked["leaving_token"]
            await self.scripts.left(keys=[self.k.state(cid)], args=[token, *fields], client=pipe)
            self.queues.add_on(pipe, team.name, cid, priority, since, due)
            # The rest lies outside the state's slot, where the mark's token cannot fence it: keyed by the
            # action (its mark's time), so a stalled call that goes on after the loop finished it writes
            # nothing twice.
            pipe.hset(
                self.k.audit(cid),
                f"{audit.kind}:{float(marked['leaving_since']):.6f}",
                audit.SerializeToString(),
            )
            add_to_pipeline(
                pipe, self.keys, [event], self.settings.events_maxlen, once=self._action_id(cid, marked)
            )
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

        def check(state: dict[str, str]) -> Mapping[str, Any]:
            if state["state"] != "assigned" or state.get("agent") != agent_id:
                raise FailedPrecondition(
                    f"conversation {conversation_id} is not assigned to agent {agent_id}"
                )
            return {"reason": reason}

        team: str = await self._begin(
            conversation_id,
            "decline",
            check,
            lambda state: state["leaving_agent"] == agent_id,
        )
        return team

    async def _decline_marked(self, cid: str, marked: dict[str, str], args: dict[str, Any]) -> str:
        agent_id = marked["leaving_agent"]
        await self._let_go(cid, marked, args["from"])
        event = EventRecord(
            "conversation.declined",
            cid,
            "",
            self.clock.now(),
            {"agent_id": agent_id, "team": marked["team"], "reason": args["reason"]},
        )
        declined = ",".join(sorted({*marked.get("declined_by", "").split(","), agent_id} - {""}))
        await self._requeue(
            cid,
            marked,
            marked["team"],
            float(marked["priority"]),
            float(marked["sla_due"]),
            event,
            {"declined_by": declined},
        )
        await self.assignments.hand_held(agent_id)  # the freed room goes to a conversation waiting for them
        return marked["team"]

    async def requeue_offline(
        self, agent_id: str, conversation_id: str, grace: float, state: dict[str, str] | None = None
    ) -> str:
        """An agent offline beyond the grace period loses the conversation: back in its team's queue with the
        priority, enqueue time and deadline it had. A desk action like the others (marked first), so a router
        that dies half-way never leaves it with nobody and in no queue. `state`: the conversation's state as
        the caller just read it (read here otherwise)."""

        def check(state: dict[str, str]) -> Mapping[str, Any]:
            if state["state"] != "assigned" or state.get("agent") != agent_id:
                raise FailedPrecondition(f"conversation {conversation_id} is not with agent {agent_id}")
            return {"reason": f"agent offline for more than {grace:g}s"}

        team: str = await self._begin(
            conversation_id, "requeue", check, lambda state: state["leaving_agent"] == agent_id, state
        )
        return team

    async def _requeue_marked(self, cid: str, marked: dict[str, str], args: dict[str, Any]) -> str:
        agent_id, team = marked["leaving_agent"], marked["team"]
        withdraw = f"{args['reason']}: back in the {team} queue"
        await self._let_go(cid, marked, args["from"], withdraw=withdraw)
        attrs = {"team": team, "agent_id": agent_id, "reason": args["reason"]}
        event = EventRecord("conversation.requeued", cid, "", self.clock.now(), attrs)
        priority, due = float(marked["priority"]), float(marked["sla_due"])
        await self._requeue(cid, marked, team, priority, due, event)
        return team

    async def transfer(
        self, conversation_id: str, to_team: str = "", to_agent_id: str = "", reason: str = ""
    ) -> common_pb2.RoutingDecision:
        if bool(to_team) == bool(to_agent_id):
            raise InvalidArgument([("to_team", "give exactly one of to_team, to_agent_id")])
        if to_team and not self.policy.team(to_team):
            raise InvalidArgument([("to_team", f"unknown team {to_team!r}")])
        args = {"to_team": to_team, "to_agent": to_agent_id, "reason": reason}

        def check(state: dict[str, str]) -> Mapping[str, Any]:
            if state["state"] not in ("queued", "assigned"):
                raise FailedPrecondition(
                    f"conversation {conversation_id} is {state['state']}; nothing to transfer"
                )
            return args

        def same(state: dict[str, str]) -> bool:
            theirs = json.loads(state["leaving_args"])
            return all(theirs.get(name) == value for name, value in args.items())

        token = ""
        if to_agent_id:
            await self.agent_profile(to_agent_id)
            state = await self.routed_state(conversation_id)
            if state.get("leaving") == "transfer" and same(state):
                # A retry of a transfer cut short: the capacity it reserved is held by its mark.
                finished: common_pb2.RoutingDecision = await self.finish(conversation_id, state)
                return finished
            token = await self.assignments.reserve_capacity(to_agent_id)
        try:
            decision: common_pb2.RoutingDecision = await self._begin(
                conversation_id, "transfer", check, same, claim=token
            )
        finally:
            # Once marked, the reservation is the mark's (recorded, or finished later); otherwise (refused,
            # or this call finished an earlier call's mark, which has its own) it is given back.
            if token and not await self._holds_claim(conversation_id, token):
                await self.redis.srem(self.k.active(to_agent_id), token)
        return decision

    async def _holds_claim(self, cid: str, token: str) -> bool:
        """Whether a desk mark of the conversation still holds this capacity reservation."""
        return text_of(await self.redis.hget(self.k.state(cid), "leaving_claim") or "") == token

    async def _transfer_marked(
        self, cid: str, marked: dict[str, str], args: dict[str, Any]
    ) -> common_pb2.RoutingDecision:
        now = self.clock.now()
        why = f"transferred from {marked['team']}" + (f": {args['reason']}" if args["reason"] else "")
        if args["to_team"]:
            to_team = args["to_team"]
            await self._let_go(cid, marked, args["from"], withdraw=f"{why}; transferred to {to_team}")
            event = EventRecord(
                "conversation.transferred", cid, "", now, {"from": marked["team"], "team": to_team}
            )
            decision = await self._requeue(
                cid,
                marked,
                to_team,
                float(marked["priority"]),
                float(marked["sla_due"]),
                event,
            )
            decision.rule, decision.reason = "transfer", why
            return decision
        to_agent, claim = args["to_agent"], marked["leaving_claim"]
        recorded = marked["state"] == "assigned" and marked.get("claim_token") == claim
        if not recorded:
            away = args["from"] == "assigned" and marked["leaving_agent"] != to_agent
            withdraw = f"{why}; transferred to agent {to_agent}" if away else ""
            await self._let_go(cid, marked, args["from"], withdraw=withdraw)
        if not recorded or not await self.redis.sismember(self.k.active(to_agent), cid):
            # A transfer recorded but cut short before the agent's capacity counted it is recorded again.
            given = await self.assignments.assign(to_agent, cid, claim, "transferred", why=args["reason"])
            if given is None:
                raise FailedPrecondition(f"conversation {cid} could not be recorded with agent {to_agent}")
        await self.scripts.left(keys=[self.k.state(cid)], args=[marked["leaving_token"]])
        state = decode_hash(await self.redis.hgetall(self.k.state(cid)))
        assignment = self.assignment(cid, to_agent, state)
        return common_pb2.RoutingDecision(
            conversation_id=cid,
            action=common_pb2.ROUTE_ACTION_ASSIGNED,
            team=assignment.team,
            tier=state.get("tier", ""),
            agent_id=to_agent,
            priority=assignment.priority,
            rule="transfer",
            reason=f"{why} to agent {to_agent}",
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

        def check(state: dict[str, str]) -> Mapping[str, Any]:
            if state["state"] not in ("queued", "assigned"):
                raise FailedPrecondition(
                    f"conversation {conversation_id} is {state['state']}; nothing to escalate"
                )
            target = self.policy.escalation_target(state["team"], state.get("topic", ""))
            if target is None:
                raise FailedPrecondition(f"{state['team']} is already the top tier")
            return {"reason": reason, "extra": dict(extra or {}), "target": target.name}

        decision: common_pb2.RoutingDecision = await self._begin(
            conversation_id,
            "escalate",
            check,
            lambda state: json.loads(state["leaving_args"]).get("reason") == reason,
            state=state,
        )
        return decision

    async def _escalate_marked(
        self, cid: str, marked: dict[str, str], args: dict[str, Any]
    ) -> common_pb2.RoutingDecision:
        target = self.policy.team(args["target"])
        assert target is not None
        reason = args["reason"]
        await self._let_go(
            cid,
            marked,
            args["from"],
            withdraw=f"escalated to {target.name} ({target.tier})" + (f": {reason}" if reason else ""),
        )
        now = self.clock.now()
        priority = float(marked["priority"]) + self.policy.priority.escalation
        due = min(float(marked["sla_due"]), now + self.policy.sla_band(priority).first_response_seconds)
        event = EventRecord(
            "conversation.escalated",
            cid,
            "",
            now,
            {
                "from": marked["team"],
                "team": target.name,
                "tier": target.tier,
                "priority": priority,
                "reason": reason,
            },
        )
        decision = await self._requeue(cid, marked, target.name, priority, due, event, args["extra"])
        decision.rule = "escalate"
        decision.reason = (
            f"escalated from {marked['team']} ({marked.get('tier', '')}) to {target.name} ({target.tier})"
        )
        decision.reason += f": {reason}" if reason else ""
        return decision

    async def resolve(self, conversation_id: str, agent_id: str = "") -> float:
        """Close conversation and free the agent's capacity. Idempotent: returns the first resolve time."""
        state = await self.routed_state(conversation_id)
        if state["state"] == "resolved":
            return float(state["resolved_at"])

        def check(state: dict[str, str]) -> Mapping[str, Any]:
            if agent_id and state.get("agent") != agent_id:
                raise FailedPrecondition(
                    f"conversation {conversation_id} is not assigned to agent {agent_id}"
                )
            return {}

        resolved_at: float = await self._begin(
            conversation_id,
            "resolve",
            check,
            lambda state: agent_id in ("", state["leaving_agent"]),
            state=state,
        )
        return resolved_at

    async def _resolve_marked(self, cid: str, marked: dict[str, str], args: dict[str, Any]) -> float:
        await self._let_go(cid, marked, args["from"])
        agent = marked["leaving_agent"]
        now = self.clock.now()
        async with lua.pipeline(self.redis) as pipe:
            await self.scripts.left(
                keys=[self.k.state(cid)],
                args=[marked["leaving_token"], *flat({"state": "resolved", "resolved_at": now, "agent": ""})],
                client=pipe,
            )
            action = self._action_id(cid, marked)
            if args["from"] == "assigned":
                # Handling time feeds staffing: time from assignment to resolution (counted once, as the
                # event below is written once: see `_requeue`).
                handled = max(0.0, now - float(marked.get("assigned_at", now)))
                totals, team = self.k.handled(marked["team"]), marked["team"]
                increments = [("HINCRBYFLOAT", totals, "seconds", handled), ("HINCRBY", totals, "count", 1)]
                pipe.once(self.k.handled_once(team, action), increments)
            event = EventRecord(
                "conversation.resolved",
                cid,
                "",
                now,
                {"agent_id": agent, "team": marked.get("team", "")},
            )
            add_to_pipeline(pipe, self.keys, [event], self.settings.events_maxlen, once=action)
            await pipe.execute()
        if args["from"] == "assigned" and agent:
            await self.assignments.fill(agent)  # the freed capacity takes the next waiting conversation
        return now
