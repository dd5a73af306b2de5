"""The router core: routing decisions, team queues, the agent desk (claim, decline, transfer, escalate,
resolve, presence), queue status and staffing.

State per conversation (hash under the conversation's tag): state (queued, assigned, bot, resolved,
merged), team, tier, priority, sla_due, enqueued_at, agent, assigned_at, reason (of the assignment), topic,
language, bot_replied, resolved_at, last_agent (for sticky assignment), declined_by, sla_alerted (the
deadline already escalated for), claim_token / revoked (claim recovery), merged_into / merge_action (a
merged conversation: a pointer Route follows, see `merges`), version.

A reopened conversation whose previous agent is busy, away or briefly offline waits for them (the sticky
hold): its queue entry is reserved for that agent in the team's `held` hash, written with the entry itself,
and the queue scripts give it to nobody else until the hold ends.

Taking a conversation away from an agent (re-queue after the grace period, transfer, escalation, merge)
pushes a withdrawn assignment to their feed in the same step.

`tick()` is the background step: policy reload, recovery of half-done claims, presence grace expiry, SLA
escalation, the end of sticky holds, ageing and backlog draining. The server runs it in a loop; tests call it
with a manual clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from parley import lua
from parley.clock import Clock, from_timestamp, to_timestamp
from parley.config import Settings
from parley.events import EventRecord, add_to_pipeline
from parley.router import erlang
from parley.router.keys import RouterKeys
from parley.router.policy import (
    VISIBILITY_NAMES,
    Policy,
    PolicyError,
    Rule,
    intent_name,
    load_policy,
    policy_path,
)
from parley.router.roster import roster_of_team
from parley.rpc import Aborted, FailedPrecondition, InvalidArgument, NotFound
from parley.store import Keys, Redis
from parley.v1 import common_pb2, router_pb2

PRESENCES = ("online", "away", "offline")
HUMAN_ONLY_INTENTS = ("urgent", "complaint")
FEED_MAXLEN = 1000
# Capacity held for a claim in flight is a member of the agent's active set named "reserving:<at>:<id>".
RESERVING = "reserving:"
# A state field per Route decision whose effects are not written yet ("pending:<message id>" = decided at).
PENDING = "pending:"
ROUTE_ATTEMPTS = 5
CLAIM_ATTEMPTS = 20
ASSIGN_CONCURRENCY = 32
DRAIN_PER_TEAM = 200
AUDIT_CANDIDATES = 20

log = logging.getLogger(__name__)


def _float(text: str) -> float:
    """A number written by this module, 0 for anything else (an entry from before times were written)."""
    try:
        return float(text)
    except ValueError:
        return 0.0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def _flat(fields: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for name, value in fields.items():
        out += [name, str(value)]
    return out


def _moved(item: router_pb2.RouteItem, conversation_id: str) -> router_pb2.RouteItem:
    moved = router_pb2.RouteItem()
    moved.CopyFrom(item)
    moved.conversation_id = conversation_id
    return moved


@dataclass
class Candidate:
    """An agent considered for an assignment, with what the choice looked at."""

    agent_id: str
    presence: str
    load: int
    capacity: int
    skill_match: bool
    sticky: bool
    declined: bool

    @property
    def eligible(self) -> bool:
        return self.presence == "online" and self.load < self.capacity and not self.declined

    def rank(self) -> tuple[Any, ...]:
        # Eligible first; then the agent who had the conversation, skills, the lightest relative load.
        return (
            not self.eligible,
            not self.sticky,
            not self.skill_match,
            self.load / max(1, self.capacity),
            self.load,
            self.agent_id,
        )

    def note(self) -> str:
        if self.declined:
            return "declined this conversation"
        if self.presence != "online":
            return f"{self.presence}"
        if self.load >= self.capacity:
            return f"at capacity ({self.load}/{self.capacity})"
        why = ["handled this conversation before"] if self.sticky else []
        why += ["has a matching skill"] if self.skill_match else []
        return "; ".join([*why, f"load {self.load}/{self.capacity}"])

    def to_proto(self, note: str = "") -> router_pb2.AuditCandidate:
        return router_pb2.AuditCandidate(
            agent_id=self.agent_id,
            presence=self.presence,
            load=self.load,
            capacity=self.capacity,
            skill_match=self.skill_match,
            sticky=self.sticky,
            eligible=self.eligible,
            note=note or self.note(),
        )


@dataclass(frozen=True)
class Hold:
    """A newly queued conversation reserved for its previous agent, and why."""

    team: str
    decision: common_pb2.RoutingDecision
    agent: Candidate
    candidates: list[Candidate]
    why: str
    until: float


@dataclass
class NewPlan:
    """How one Route batch's newly queued conversations are handed out: (team, decision, chosen agent,
    candidates) to assign now, and holds by message id."""

    plans: list[tuple[str, common_pb2.RoutingDecision, Candidate, list[Candidate]]]
    holds: dict[str, Hold]


@dataclass(frozen=True)
class Match:
    """The outcome of the policy for one message."""

    rule: str
    action: str  # queue, bot or no_action
    team: str = ""
    offset: float = 0.0
    why: str = ""


class Router:
    def __init__(
        self, settings: Settings, redis: Redis, keys: Keys, clock: Clock, policy: Policy | None = None
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.k = RouterKeys(keys)
        self.clock = clock
        self.policy_source = policy_path(settings.policy_file)
        self._policy_mtime = self._mtime()
        self.policy = policy or load_policy(settings.policy_file)
        self._route = lua.register(redis, "parley.router", "route")
        self._set_state = lua.register(redis, "parley.router", "set_state")
        self._enqueue = lua.register(redis, "parley.router", "enqueue")
        self._take = lua.register(redis, "parley.router", "take")
        self._best = lua.register(redis, "parley.router", "best")
        self._reserve = lua.register(redis, "parley.router", "reserve")
        self._commit = lua.register(redis, "parley.router", "commit")
        self._age = lua.register(redis, "parley.router", "age")
        self._assign_script = lua.register(redis, "parley.router", "assign")
        self._revoke = lua.register(redis, "parley.router", "revoke")
        self._settle = lua.register(redis, "parley.router", "settle")
        self._unhold = lua.register(redis, "parley.router", "unhold")
        self._withdraw_script = lua.register(redis, "parley.router", "withdraw")
        self._release = lua.register(redis, "parley.router", "release")

    def _mtime(self) -> int:
        try:
            return self.policy_source.stat().st_mtime_ns
        except OSError:
            return 0

    def reload_policy(self, force: bool = False) -> bool:
        """Re-read the policy file if it changed on disk (always when `force`); True when the policy in force
        changed. A bad file is refused: the running policy stays, the problems are logged, and with `force`
        raised as InvalidArgument."""
        mtime = self._mtime()
        if not force and mtime == self._policy_mtime:
            return False
        self._policy_mtime = mtime  # a bad file is reported once, not on every tick
        try:
            policy = load_policy(self.policy_source)
        except PolicyError as error:
            log.warning("policy not reloaded, the running one stays: %s", error)
            if force:
                raise InvalidArgument(error.problems) from None
            return False
        except OSError as error:
            log.warning("policy not reloaded: %s", error)
            if force:
                raise FailedPrecondition(f"cannot read {self.policy_source}: {error}") from None
            return False
        if policy == self.policy:
            return False
        self.policy = policy
        log.info("policy reloaded from %s", self.policy_source)
        return True

    # ----------------------------------------------------------------------------------------------- policy

    def _bot_may_answer(self, item: router_pb2.RouteItem) -> tuple[bool, str]:
        answer = item.triage.bot_answer
        if not item.triage.HasField("bot_answer") or answer.abstained or not answer.text:
            return False, "the bot has no answer"
        if answer.confidence < self.policy.bot.min_confidence:
            return False, f"bot confidence {answer.confidence:.2f} < {self.policy.bot.min_confidence:.2f}"
        # An empty list places no restriction on channels.
        if answer.allowed_channels and item.message.channel not in answer.allowed_channels:
            return False, "the bot answer is not allowed on this channel"
        return True, f"bot answer {answer.answer_id or '?'} at confidence {answer.confidence:.2f}"

    def _conditions_hold(self, rule: Rule, item: router_pb2.RouteItem, intent: str) -> bool:
        when = rule.when
        if when.intents and intent not in when.intents:
            return False
        if when.topics and item.triage.topic not in when.topics:
            return False
        if when.visibility and VISIBILITY_NAMES.get(item.message.visibility) != when.visibility:
            return False
        if item.message.author.follower_count < when.min_followers:
            return False
        if when.languages and item.triage.language not in when.languages:
            return False
        if when.customer_tiers and (item.customer_tier or "standard") not in when.customer_tiers:
            return False
        reasons = set(item.triage.urgency_reasons)
        if when.urgency_reasons and not (
            reasons and ("any" in when.urgency_reasons or reasons & set(when.urgency_reasons))
        ):
            return False
        return self._confidence(item) >= when.min_confidence

    @staticmethod
    def _confidence(item: router_pb2.RouteItem) -> float:
        """The probability of the message's intent; 1 when the classifier gave no scores."""
        for score in item.triage.scores:
            if score.intent == item.triage.intent:
                return score.probability
        return 1.0

    def match(self, item: router_pb2.RouteItem, bot_allowed: bool) -> Match:
        """The first rule that holds. Bot rules hold only when the bot may answer; topic rules only when a
        team takes the topic. Skipped bot rules are noted in `why`, for the decision's reason."""
        intent = intent_name(item.triage.intent)
        skipped: list[str] = []
        for rule in self.policy.rules:
            if not self._conditions_hold(rule, item, intent):
                continue
            then = rule.then
            if then.action == "bot":
                ok, why = self._bot_may_answer(item)
                if not bot_allowed:
                    skipped.append(f"{rule.name} skipped: the bot does not answer here")
                    continue
                if not ok:
                    skipped.append(f"{rule.name} skipped: {why}")
                    continue
                return Match(rule.name, "bot", why=why)
            if then.action == "no_action":
                return Match(rule.name, "no_action", why="; ".join(skipped))
            if then.team_by_topic:
                team = self.policy.team_for_topic(item.triage.topic)
                if team is None:
                    continue
                return Match(
                    rule.name, "queue", team.name, then.priority_offset, f"team for topic {team.name}"
                )
            return Match(rule.name, "queue", then.team or "", then.priority_offset, "; ".join(skipped))
        return Match("", "no_action", why="no rule matched")

    def priority_parts(self, item: router_pb2.RouteItem, offset: float = 0.0) -> dict[str, float]:
        return self.policy.priority_parts(
            intent_name(item.triage.intent),
            item.message.visibility == common_pb2.VISIBILITY_PUBLIC,
            item.message.author.follower_count,
            item.customer_tier,
            offset,
        )

    def priority(self, item: router_pb2.RouteItem, offset: float = 0.0) -> float:
        return self.policy.priority_of(
            intent_name(item.triage.intent),
            item.message.visibility == common_pb2.VISIBILITY_PUBLIC,
            item.message.author.follower_count,
            item.customer_tier,
            offset,
        )

    # ----------------------------------------------------------------------------------------------- route

    def _decide(
        self, item: router_pb2.RouteItem, state: dict[str, str], now: float
    ) -> tuple[common_pb2.RoutingDecision, dict[str, Any], float]:
        """The decision for one message and the conversation state fields it sets."""
        cid, intent = item.conversation_id, intent_name(item.triage.intent)
        decision = common_pb2.RoutingDecision(
            conversation_id=cid, message_id=item.message.message_id, decided_at=to_timestamp(now)
        )
        current = state.get("state", "")
        if current in ("queued", "assigned"):
            match = self.match(item, bot_allowed=False)
            old = float(state.get("priority", 0))
            priority = max(old, self.priority(item, match.offset))
            since = float(state.get("enqueued_at", now))
            due = min(
                float(state.get("sla_due", "inf")),
                since + self.policy.sla_band(priority).first_response_seconds,
            )
            team, agent = state.get("team", ""), state.get("agent", "")
            where = f"agent {agent} of {team}" if current == "assigned" else f"the {team} queue"
            reason = f"the conversation is already with {where}; the message joined it"
            if priority > old:
                reason += f"; priority raised from {old:g} to {priority:g} ({intent})"
            decision.MergeFrom(
                common_pb2.RoutingDecision(
                    action=common_pb2.ROUTE_ACTION_APPENDED,
                    team=team,
                    tier=state.get("tier", ""),
                    agent_id=agent if current == "assigned" else "",
                    priority=priority,
                    rule=match.rule,
                    reason=reason,
                    sla_due_at=to_timestamp(due),
                )
            )
            return decision, {"priority": priority, "sla_due": due}, match.offset

        bot_allowed = intent not in HUMAN_ONLY_INTENTS and state.get("bot_replied") != "1"
        match = self.match(item, bot_allowed)
        if match.action == "no_action" and current == "bot":
            # The customer wrote again after the bot's one reply: a person takes it from here.
            match = Match(
                "after_bot_reply",
                "queue",
                self.policy.bot.after_reply_team,
                why="the customer wrote again after the bot's reply",
            )
        priority = self.priority(item, match.offset)
        decision.priority = priority
        decision.rule = match.rule
        if match.action == "bot":
            answer = item.triage.bot_answer
            decision.action = common_pb2.ROUTE_ACTION_BOT_REPLY
            decision.bot_reply_text = answer.text
            decision.bot_answer_id = answer.answer_id
            decision.reason = f"{intent} answered by the bot: {match.why}"
            return decision, {"state": "bot", "bot_replied": 1, "topic": item.triage.topic}, match.offset
        if match.action == "no_action":
            decision.action = common_pb2.ROUTE_ACTION_NO_ACTION
            decision.reason = f"nothing to act on ({intent})" + (f"; {match.why}" if match.why else "")
            return decision, {}, match.offset
        team = self.policy.team(match.team)
        assert team is not None  # policy validation guarantees rule teams exist
        band = self.policy.sla_band(priority)
        due = now + band.first_response_seconds
        decision.action = common_pb2.ROUTE_ACTION_QUEUED
        decision.team, decision.tier = team.name, team.tier
        decision.sla_due_at.CopyFrom(to_timestamp(due))
        decision.reason = (
            f"{intent} queued for {team.name} ({team.tier}) by rule {match.rule}"
            + (f"; {match.why}" if match.why else "")
            + f"; priority {priority:g}, SLA {band.name} ({band.first_response_seconds:g}s first response)"
        )
        fields = {
            "state": "queued",
            "team": team.name,
            "tier": team.tier,
            "priority": priority,
            "sla_due": due,
            "enqueued_at": now,
            "agent": "",
            "topic": item.triage.topic,
            "language": item.triage.language,
            "declined_by": "",
        }
        return decision, fields, match.offset

    async def route(self, items: list[router_pb2.RouteItem]) -> list[common_pb2.RoutingDecision]:
        """One decision per item, in order. Idempotent per message id: a decision already stored is returned
        as it was, with no second queue entry and no second event.

        A decision is stored first (SET NX) and its effects (queue entry, event) written after; a decision
        whose effects were never marked applied, older than `claim_idle_ms`, belongs to a router that died in
        between, and the next call for that message writes them."""
        results: list[common_pb2.RoutingDecision | None] = [None] * len(items)
        items = list(items)
        pending = list(range(len(items)))
        lease = self.settings.claim_idle_ms / 1000
        for _ in range(ROUTE_ATTEMPTS):
            if not pending:
                break
            now = self.clock.now()
            async with lua.pipeline(self.redis) as pipe:
                for i in pending:
                    cid, mid = items[i].conversation_id, items[i].message.message_id
                    pipe.get(self.k.decision(cid, mid))
                    pipe.exists(self.k.applied(cid, mid))
                    pipe.hgetall(self.k.state(cid))
                    pipe.get(self.k.decided_in(mid))
                read = await pipe.execute()
            read = await self._decided_elsewhere(items, pending, read)
            # Messages of one conversation in one batch are decided in order against a running state.
            states: dict[str, dict[str, str]] = {}
            merged: list[int] = []
            plans = []
            to_apply = []
            for n, i in enumerate(pending):
                stored, applied, raw_state = read[4 * n : 4 * n + 3]
                if stored is not None:
                    results[i] = common_pb2.RoutingDecision.FromString(stored)
                    if not applied and now - from_timestamp(results[i].decided_at) >= lease:
                        to_apply.append(results[i])
                    continue
                cid = items[i].conversation_id
                if cid not in states and (raw_state.get(b"merged_into") or raw_state.get(b"merging_into")):
                    merged.append(i)  # not decided before the merge: routed in the surviving conversation
                    continue
                state = states.setdefault(cid, _decode(raw_state))
                decision, fields, offset = self._decide(items[i], state, now)
                audit = router_pb2.RoutingAudit(
                    kind="route",
                    message_id=decision.message_id,
                    at=decision.decided_at,
                    rule=decision.rule,
                    action=decision.action,
                    team=decision.team,
                    agent_id=decision.agent_id,
                    priority=decision.priority,
                    priority_parts=self.priority_parts(items[i], offset),
                    why=decision.reason,
                )
                plans.append((i, state.get("version", "0"), decision, fields, audit))
                state.update({k: str(v) for k, v in fields.items()})
                state["version"] = str(int(state.get("version", "0")) + 1)
            async with lua.pipeline(self.redis) as pipe:
                for i, version, decision, fields, audit in plans:
                    cid = items[i].conversation_id
                    ttl = self.settings.dedupe_ttl_seconds
                    pipe.set(self.k.decided_in(decision.message_id), cid, nx=True, ex=ttl)
                    args = [
                        version,
                        decision.SerializeToString(),
                        self.settings.dedupe_ttl_seconds,
                        f"route:{decision.message_id}",
                        audit.SerializeToString(),
                        PENDING + decision.message_id,
                        from_timestamp(decision.decided_at),
                        *_flat(fields),
                    ]
                    await self._route(
                        keys=[
                            self.k.state(cid),
                            self.k.decision(cid, decision.message_id),
                            self.k.audit(cid),
                        ],
                        args=args,
                        client=pipe,
                    )
                outcomes = (await pipe.execute())[1::2]
            pending = []
            fresh = []
            for (i, _, decision, _, _), (code, payload) in zip(plans, outcomes, strict=True):
                if code == 0:
                    results[i] = decision
                    to_apply.append(decision)
                    fresh.append(i)
                elif code == 1:
                    results[i] = common_pb2.RoutingDecision.FromString(payload)
                elif code == 3:
                    merged.append(i)  # fenced by a merge since it was read
                else:
                    pending.append(i)
            if merged:
                where = await self.current(sorted({items[i].conversation_id for i in merged}))
                for i in merged:
                    items[i] = _moved(items[i], where[items[i].conversation_id])
                pending += merged
            # Newly queued conversations go straight to an agent when one fits, or wait for their previous
            # agent: planned before the queue entries are written, so a hold is written with its entry.
            queued = {i: d for i in fresh if (d := results[i]) and d.action == common_pb2.ROUTE_ACTION_QUEUED}
            plan = await self._plan_new(list(queued.values()), states)
            await self._apply_route_effects(to_apply, now, plan.holds)
            if queued:
                assigned = await self._assign_new(plan)
                for i, decision in queued.items():
                    results[i] = assigned.get(decision.message_id, decision)
        if pending:
            raise Aborted("conversations kept changing while routing; retry")
        return [r for r in results if r is not None]

    async def _decided_elsewhere(
        self, items: list[router_pb2.RouteItem], pending: list[int], read: list[Any]
    ) -> list[Any]:
        """`read` (decision, applied, state, decided in: four per pending item) with the decision and applied
        mark taken from the conversation a message was first routed in, where that is another one (the
        message moved there by a merge since): a retried batch gets its one decision back."""
        elsewhere = {}
        for n, i in enumerate(pending):
            first = _text(read[4 * n + 3])
            if read[4 * n] is None and first and first != items[i].conversation_id:
                elsewhere[n] = first
        if not elsewhere:
            return read
        mid = {n: items[pending[n]].message.message_id for n in elsewhere}
        async with lua.pipeline(self.redis) as pipe:
            for n, cid in elsewhere.items():
                pipe.get(self.k.decision(cid, mid[n]))
                pipe.exists(self.k.applied(cid, mid[n]))
            found = await pipe.execute()
        read = list(read)
        for j, n in enumerate(elsewhere):
            if found[2 * j] is not None:
                read[4 * n], read[4 * n + 1] = found[2 * j], found[2 * j + 1]
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
                orig: _text(done or going)
                for (orig, _), (done, going) in zip(out.items(), into, strict=True)
                if done or going
            }
            if not moved:
                break
            out.update(moved)
        return out

    async def _apply_route_effects(
        self, decisions: list[common_pb2.RoutingDecision], now: float, holds: Mapping[str, Hold] | None = None
    ) -> None:
        """Queue entries (reserved for the previous agent where `holds` says so), arrival counts and
        `conversation.routed` events of newly stored decisions."""
        if not decisions:
            return
        window = self.policy.staffing.window_seconds
        events = []
        arrivals: dict[str, dict[str, float]] = {}
        async with lua.pipeline(self.redis) as pipe:
            for decision in decisions:
                cid, team, due = decision.conversation_id, decision.team, from_timestamp(decision.sla_due_at)
                if decision.action == common_pb2.ROUTE_ACTION_QUEUED:
                    since = from_timestamp(decision.decided_at)
                    hold = (holds or {}).get(decision.message_id)
                    if hold is not None:
                        # The agent's index first: it is what finds the hold when their room frees.
                        pipe.sadd(self.k.holds(hold.agent.agent_id), f"{team}|{cid}")
                    entry = f"{hold.agent.agent_id}|{hold.until}" if hold else ""
                    await self._enqueue_on(pipe, team, cid, decision.priority, since, due, "add", entry)
                    arrivals.setdefault(team, {})[f"{cid}|{decision.message_id}"] = since
                elif decision.action == common_pb2.ROUTE_ACTION_APPENDED and not decision.agent_id:
                    # Lifts the waiting entry only if it is still waiting and only upwards.
                    await self._enqueue_on(pipe, team, cid, decision.priority, 0, due, "raise")
                events.append(
                    EventRecord(
                        "conversation.routed",
                        cid,
                        decision.message_id,
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
                )
            for team, entries in arrivals.items():
                pipe.zadd(self.k.arrivals(team), entries)
                pipe.zremrangebyscore(self.k.arrivals(team), "-inf", now - window)
            add_to_pipeline(pipe, self.keys, events, self.settings.events_maxlen)
            await pipe.execute()
        # Only once the effects are written: a merge waits for a pending decision, never for a lost one.
        async with lua.pipeline(self.redis) as pipe:
            for decision in decisions:
                cid, mid = decision.conversation_id, decision.message_id
                pipe.set(self.k.applied(cid, mid), 1, ex=self.settings.dedupe_ttl_seconds)
                pipe.hdel(self.k.state(cid), PENDING + mid)
            await pipe.execute()

    async def settle_route_effects(self, conversation_id: str, state: Mapping[str, str]) -> bool:
        """Whether every Route decision stored for the conversation has its effects written (True), finishing
        those of a router that died before writing them (older than `claim_idle_ms`); False while a live Route
        is still writing some."""
        pending = {name[len(PENDING) :]: _float(at) for name, at in state.items() if name.startswith(PENDING)}
        if not pending:
            return True
        mids = sorted(pending)
        async with lua.pipeline(self.redis) as pipe:
            for mid in mids:
                pipe.get(self.k.decision(conversation_id, mid))
                pipe.exists(self.k.applied(conversation_id, mid))
            read = await pipe.execute()
        now, lease = self.clock.now(), self.settings.claim_idle_ms / 1000
        done, stale, live = [], [], False
        for n, mid in enumerate(mids):
            stored, applied = read[2 * n], read[2 * n + 1]
            if applied or stored is None:
                done.append(mid)
            elif now - pending[mid] >= lease:
                stale.append(common_pb2.RoutingDecision.FromString(stored))
            else:
                live = True
        if done:
            await self.redis.hdel(self.k.state(conversation_id), *(PENDING + mid for mid in done))
        await self._apply_route_effects(stale, now)
        return not live

    async def _enqueue_on(
        self,
        pipe: Any,
        team: str,
        cid: str,
        priority: float,
        since: float,
        due: float,
        mode: str = "add",
        hold: str = "",
    ) -> None:
        k = self.k
        await self._enqueue(
            keys=[k.queue(team), k.since(team), k.due(team), k.base(team), k.held(team)],
            args=[cid, priority, since, due, mode, hold],
            client=pipe,
        )

    async def _read_agents(self, team: str, extra: set[str]) -> list[tuple[str, dict[str, str], int]]:
        """(agent id, profile, load) of the team's online agents and of `extra` agents (previous ones)."""
        members = {_text(m) for m in await self.redis.smembers(self.k.online(team))} | (extra - {""})
        agents = sorted(members)
        async with lua.pipeline(self.redis) as pipe:
            for agent_id in agents:
                pipe.hgetall(self.k.agent(agent_id))
                pipe.scard(self.k.active(agent_id))
            raw = await pipe.execute()
        out = []
        for n, agent_id in enumerate(agents):
            profile = _decode(raw[2 * n])
            if profile:
                out.append((agent_id, profile, int(raw[2 * n + 1])))
        return out

    @staticmethod
    def _rank(
        agents: list[tuple[str, dict[str, str], int]],
        state: dict[str, str],
        loads: dict[str, int] | None = None,
    ) -> list[Candidate]:
        """Candidates for one conversation, best first (`loads` overrides the loads read)."""
        wanted = {state.get("topic", ""), state.get("language", "")} - {""}
        declined = set(state.get("declined_by", "").split(",")) - {""}
        sticky = state.get("last_agent", "")
        out = [
            Candidate(
                agent_id=agent_id,
                presence=profile.get("presence", "offline"),
                load=(loads or {}).get(agent_id, load),
                capacity=int(profile.get("capacity", "1")),
                skill_match=bool(wanted & (set(profile.get("skills", "").split(",")) - {""})),
                sticky=agent_id == sticky,
                declined=agent_id in declined,
            )
            for agent_id, profile, load in agents
        ]
        return sorted(out, key=Candidate.rank)

    async def _candidates(self, team: str, state: dict[str, str]) -> list[Candidate]:
        """The team's online agents (and the conversation's previous agent), best first."""
        return self._rank(await self._read_agents(team, {state.get("last_agent", "")}), state)

    async def _assign_planned(
        self, team: str, cid: str, chosen: Candidate, candidates: list[Candidate], how: str
    ) -> router_pb2.Assignment | None:
        """Assign to the agent a batch plan chose; if that agent filled up meanwhile, choose afresh."""
        try:
            token = await self._reserve_capacity(chosen.agent_id)
        except FailedPrecondition:
            return (await self._assign_waiting(team, cid, how))[0]
        if not await self._take_from(team, cid, chosen.agent_id, token):
            await self.redis.srem(self.k.active(chosen.agent_id), token)
            return None
        eligible = sum(c.eligible for c in candidates)
        why = f"chosen: {chosen.note()}; {eligible} of {len(candidates)} agents eligible"
        return await self._assign(chosen.agent_id, cid, token, how, candidates, chosen, why)

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
            agents = await self._read_agents(team, extra)
            if not agents:
                continue
            loads = {agent_id: load for agent_id, _, load in agents}
            offline_at = await self._offline_since(
                [a for a, profile, _ in agents if a in extra and profile.get("presence") == "offline"]
            )
            profiles = {agent_id: profile for agent_id, profile, _ in agents}
            for decision in group:
                state = states.get(decision.conversation_id, {})
                candidates = self._rank(agents, state, loads)
                chosen = next((c for c in candidates if c.eligible), None)
                held = self._hold_for(team, candidates, profiles, offline_at)
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
        ):
            async with gate:
                return await self._assign_planned(
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
            await self._hand_held(agent_id)  # room may have freed since the agent was read
        return out

    async def _offline_since(self, agent_ids: list[str]) -> dict[str, float]:
        """When each of these agents went offline, for those still within the grace period's bookkeeping."""
        if not agent_ids:
            return {}
        async with lua.pipeline(self.redis) as pipe:
            for agent_id in agent_ids:
                pipe.zscore(self.k.offline(), agent_id)
            scores = await pipe.execute()
        return {a: float(t) for a, t in zip(agent_ids, scores, strict=True) if t is not None}

    def _hold_for(
        self,
        team: str,
        candidates: list[Candidate],
        profiles: Mapping[str, Mapping[str, str]],
        offline_at: Mapping[str, float],
    ) -> tuple[Candidate, str] | None:
        """The previous agent to reserve a reopened conversation for, and why: one of the team's agents who
        has not declined it, and who is free (why is empty: they are given it at once), busy, away, or offline
        within the presence grace period. None when the hold does not apply."""
        if self.policy.assignment.sticky_hold_seconds <= 0:
            return None
        sticky = next((c for c in candidates if c.sticky), None)
        if sticky is None or sticky.declined:
            return None
        if team not in profiles.get(sticky.agent_id, {}).get("teams", "").split(","):
            return None  # the reopened conversation now needs a team its previous agent is not in
        if sticky.eligible:
            return sticky, ""  # they take it at once; the hold keeps others off it until they do
        if sticky.presence == "online":
            return sticky, f"at capacity ({sticky.load}/{sticky.capacity})"
        if sticky.presence == "away":
            return sticky, "away"
        since = offline_at.get(sticky.agent_id)
        grace = self.policy.presence.offline_grace_seconds
        if since is not None and self.clock.now() - since < grace:
            return sticky, f"offline for {self.clock.now() - since:g}s, within the {grace:g}s grace period"
        return None

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

    async def _release_hold(self, team: str, cid: str, entry: str, reason: str) -> bool:
        """End a hold (if it is still the one read): the conversation becomes an ordinary queue entry."""
        if not await self._unhold(keys=[self.k.held(team)], args=[cid, entry]):
            return False
        agent_id = entry.rsplit("|", 1)[0]
        now = self.clock.now()
        audit = router_pb2.RoutingAudit(
            kind="hold_released",
            at=to_timestamp(now),
            action=common_pb2.ROUTE_ACTION_QUEUED,
            team=team,
            agent_id=agent_id,
            why=reason,
        )
        event = EventRecord(
            "conversation.hold_released", cid, "", now, {"team": team, "agent_id": agent_id, "reason": reason}
        )
        async with lua.pipeline(self.redis) as pipe:
            pipe.srem(self.k.holds(agent_id), f"{team}|{cid}")
            pipe.hset(self.k.audit(cid), f"hold_released:{now:.6f}", audit.SerializeToString())
            add_to_pipeline(pipe, self.keys, [event], self.settings.events_maxlen)
            await pipe.execute()
        return True

    async def _hand_held(self, agent_id: str) -> list[router_pb2.Assignment]:
        """Give the agent the conversations held for them, while they have room."""
        handed: list[router_pb2.Assignment] = []
        for raw in sorted(await self.redis.smembers(self.k.holds(agent_id))):
            member = _text(raw)
            team, cid = member.split("|", 1)
            entry = _text(await self.redis.hget(self.k.held(team), cid) or "")
            try:
                token = await self._reserve_capacity(agent_id)
            except FailedPrecondition:
                break  # no room (or not online): the hold stays
            taken = await self._take_from(team, cid, agent_id, token)
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
            assignment = await self._assign(agent_id, cid, token, "returned to its agent", why=why, held=True)
            if assignment is not None:
                handed.append(assignment)
        return handed

    async def release_holds(self) -> int:
        """Holds that ended (their time is up, or their agent has been offline beyond the grace period):
        the conversations become ordinary queue entries, which the drain then hands out."""
        now, grace = self.clock.now(), self.policy.presence.offline_grace_seconds
        teams = [t.name for t in self.policy.teams]
        async with lua.pipeline(self.redis) as pipe:
            for team in teams:
                pipe.hgetall(self.k.held(team))
            tables = await pipe.execute()
        gone: dict[str, bool] = {}
        released = 0
        for team, table in zip(teams, tables, strict=True):
            for raw_cid, raw_entry in table.items():
                cid, entry = _text(raw_cid), _text(raw_entry)
                agent_id, until = entry.rsplit("|", 1)
                if float(until) <= now:
                    reason = f"the hold for agent {agent_id} ran out; any agent of {team} may take it"
                else:
                    if agent_id not in gone:
                        presence = _text(await self.redis.hget(self.k.agent(agent_id), "presence") or "")
                        since = await self.redis.zscore(self.k.offline(), agent_id)
                        gone[agent_id] = presence in ("", "offline") and (
                            since is None or now - float(since) >= grace
                        )
                    if not gone[agent_id]:
                        continue
                    reason = f"agent {agent_id} has been offline for more than {grace:g}s"
                released += await self._release_hold(team, cid, entry, reason)
        return released

    async def _assign_waiting(
        self, team: str, cid: str, how: str
    ) -> tuple[router_pb2.Assignment | None, bool]:
        """Give a waiting conversation to the best eligible agent: (assignment, whether any agent of the team
        is online with free capacity). None with True means another router or agent took the conversation
        first, or the free agents declined it."""
        state = _decode(await self.redis.hgetall(self.k.state(cid)))
        candidates = await self._candidates(team, state)
        eligible = [c for c in candidates if c.eligible]
        entry = _text(await self.redis.hget(self.k.held(team), cid) or "")
        if entry and float(entry.rsplit("|", 1)[1]) > self.clock.now():
            holder = entry.rsplit("|", 1)[0]
            eligible = [c for c in eligible if c.agent_id == holder]  # reserved for its previous agent
        for chosen in eligible:
            try:
                token = await self._reserve_capacity(chosen.agent_id)
            except FailedPrecondition:
                chosen.load = chosen.capacity  # filled up since it was read
                continue
            if not await self._take_from(team, cid, chosen.agent_id, token):
                await self.redis.srem(self.k.active(chosen.agent_id), token)
                return None, True
            why = f"chosen: {chosen.note()}; {len(eligible)} of {len(candidates)} agents eligible"
            assignment = await self._assign(chosen.agent_id, cid, token, how, candidates, chosen, why)
            return assignment, True
        return None, any(c.presence == "online" and c.load < c.capacity for c in candidates)

    # ----------------------------------------------------------------------------------------------- agents

    async def _agent(self, agent_id: str) -> dict[str, Any]:
        raw = _decode(await self.redis.hgetall(self.k.agent(agent_id)))
        if not raw:
            raise NotFound(f"agent {agent_id} has never set a presence")
        return {
            "presence": raw.get("presence", "offline"),
            "teams": [t for t in raw.get("teams", "").split(",") if t],
            "capacity": int(raw.get("capacity", "1")),
        }

    async def _state(self, cid: str) -> dict[str, str]:
        state = _decode(await self.redis.hgetall(self.k.state(cid)))
        if not state.get("state"):
            raise NotFound(f"conversation {cid} has not been routed to a team")
        into = state.get("merged_into") or state.get("merging_into")
        if into:
            raise FailedPrecondition(f"conversation {cid} was merged into {into}")
        return state

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
        old = _decode(await self.redis.hgetall(self.k.agent(agent_id)))
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
        return await self._fill(agent_id) if presence == "online" else []

    async def _fill(self, agent_id: str) -> list[router_pb2.Assignment]:
        """Hand the agent the conversations held for them, then the best waiting conversations of their teams,
        until full or nothing waits."""
        handed = await self._hand_held(agent_id)
        while True:
            try:
                assignment = await self.claim(agent_id)
            except FailedPrecondition:
                break  # at capacity, or no longer online
            if assignment is None:
                break
            handed.append(assignment)
        return handed

    async def _reserve_capacity(self, agent_id: str) -> str:
        # The time in the token lets the loop give back a reservation whose claimer died before its journal.
        token = f"{RESERVING}{self.clock.now():.3f}:{uuid.uuid4().hex}"
        result = await self._reserve(keys=[self.k.agent(agent_id), self.k.active(agent_id)], args=[token])
        if result == -1:
            raise FailedPrecondition(f"agent {agent_id} is not online")
        if result == 0:
            raise FailedPrecondition(f"agent {agent_id} is at capacity")
        return token

    async def _best_waiting(self, teams: list[str], agent_id: str) -> tuple[str, str] | None:
        """(team, conversation id) of the best waiting conversation the agent may take (none held for
        another agent): highest priority, then longest wait."""
        now = self.clock.now()
        async with lua.pipeline(self.redis) as pipe:
            for team in teams:
                await self._best(keys=self.k.team_keys(team), args=["peek", agent_id, "", now], client=pipe)
            tops = await pipe.execute()
        candidates = [
            (float(top[1]), -float(top[2]), team, _text(top[0]))
            for team, top in zip(teams, tops, strict=True)
            if top
        ]
        if not candidates:
            return None
        _, _, team, cid = max(candidates)
        return team, cid

    async def _take_from(self, team: str, cid: str, agent_id: str = "", token: str = "") -> bool:
        """Remove a waiting conversation; with an agent, journal the claim until the assignment exists."""
        return await self._take_code(team, cid, agent_id, token) == 1

    async def _take_code(self, team: str, cid: str, agent_id: str = "", token: str = "") -> int:
        """TAKE's answer: 1 taken, 0 not waiting, -1 held for another agent."""
        args = [cid, agent_id, token, self.clock.now()]
        return int(await self._take(keys=self.k.team_keys(team), args=args))

    async def _take_best(self, team: str, agent_id: str, token: str) -> str | None:
        best = await self._best(keys=self.k.team_keys(team), args=["take", agent_id, token, self.clock.now()])
        return _text(best[0]) if best else None

    async def claim(self, agent_id: str, conversation_id: str = "") -> router_pb2.Assignment | None:
        """Give the agent a given waiting conversation, or the best waiting one of their teams (None when
        there is none). Capacity is reserved first; removing the conversation from its queue decides who
        owns it, so two agents never get the same conversation."""
        agent = await self._agent(agent_id)
        if conversation_id:
            state = await self._state(conversation_id)
            if state["state"] == "assigned" and state.get("agent") == agent_id:
                return self._assignment(conversation_id, agent_id, state)  # a retried claim
            if state["state"] != "queued":
                raise FailedPrecondition(f"conversation {conversation_id} is {state['state']}, not waiting")
        token = await self._reserve_capacity(agent_id)
        taken: tuple[str, str] | None = None
        try:
            if conversation_id:
                code = await self._take_code(state["team"], conversation_id, agent_id, token)
                if code == 1:
                    taken = (state["team"], conversation_id)
                elif code == -1:
                    holder = _text(await self.redis.hget(self.k.held(state["team"]), conversation_id) or "")
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
                    best = await self._best_waiting(agent["teams"], agent_id)
                    if best is None:
                        break
                    cid = await self._take_best(best[0], agent_id, token)
                    if cid is not None:
                        taken = (best[0], cid)
                        break
            if taken is None:
                return None
            assignment = await self._assign(agent_id, taken[1], token, "claimed")
            if assignment is None and conversation_id:
                raise FailedPrecondition(f"the claim of {conversation_id} expired; retry")
            return assignment
        finally:
            if taken is None:
                await self.redis.srem(self.k.active(agent_id), token)

    async def _assign(
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
        state = _decode(await self.redis.hgetall(self.k.state(cid)))
        state.update(state="assigned", agent=agent_id, assigned_at=str(now))
        assignment = self._assignment(cid, agent_id, state)
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
        recorded = await self._assign_script(keys=[self.k.state(cid)], args=[token, *_flat(fields)])
        if not recorded:
            await self.redis.srem(self.k.active(agent_id), token)
            await self._give_back(state.get("team", ""), cid, token)
            return None
        notes = {chosen.agent_id: f"chosen: {chosen.note()}"} if chosen else {}
        audit = router_pb2.RoutingAudit(
            kind="assign",
            at=to_timestamp(now),
            action=common_pb2.ROUTE_ACTION_ASSIGNED,
            team=assignment.team,
            agent_id=agent_id,
            priority=assignment.priority,
            candidates=[c.to_proto(notes.get(c.agent_id, "")) for c in (candidates or [])[:AUDIT_CANDIDATES]],
            why=assignment.reason,
        )
        async with lua.pipeline(self.redis) as pipe:
            await self._commit(
                keys=[self.k.active(agent_id), self.k.feed(agent_id)],
                args=[token, cid, assignment.SerializeToString(), FEED_MAXLEN],
                client=pipe,
            )
            if state.get("team"):
                pipe.hdel(self.k.taking(state["team"]), cid)
            pipe.hset(self.k.audit(cid), f"assign:{token}", audit.SerializeToString())
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
            add_to_pipeline(pipe, self.keys, [event], self.settings.events_maxlen)
            await pipe.execute()
        return assignment

    async def _give_back(self, team: str, cid: str, token: str) -> None:
        """A claim that may not be recorded (revoked, or its conversation is being merged away) puts the
        conversation back in its queue at once, rather than after `claim_idle_ms` (`recover_claims`)."""
        if not team:
            return
        entry = _text(await self.redis.hget(self.k.taking(team), cid) or "")
        if entry and entry.split("|")[1] == token:
            await self._settle(keys=self.k.team_keys(team), args=[cid, entry, 1])

    @staticmethod
    def _assignment(cid: str, agent_id: str, state: dict[str, str]) -> router_pb2.Assignment:
        return router_pb2.Assignment(
            conversation_id=cid,
            agent_id=agent_id,
            team=state.get("team", ""),
            priority=float(state.get("priority", 0)),
            assigned_at=to_timestamp(float(state.get("assigned_at", 0))),
            sla_due_at=to_timestamp(float(state.get("sla_due", 0))),
            reason=state.get("reason", ""),
        )

    async def _detach(self, cid: str, state: dict[str, str], withdraw: str = "") -> None:
        """Take a conversation out of its queue or off its agent, failing if someone moved it first. With
        `withdraw` (why), the agent's feed is told in the same step that the conversation left them."""
        if state["state"] == "queued":
            if not await self._take_from(state["team"], cid):
                raise FailedPrecondition(f"conversation {cid} was just taken by an agent; retry")
        elif state["state"] == "assigned":
            if withdraw:
                taken = await self._withdraw(state["agent"], cid, state, withdraw)
            else:
                taken = await self.redis.srem(self.k.active(state["agent"]), cid)
            if not taken:
                raise FailedPrecondition(f"conversation {cid} is no longer with agent {state['agent']}")

    async def _withdraw(self, agent_id: str, cid: str, state: Mapping[str, str], why: str) -> bool:
        """Take a conversation off an agent and push a withdrawn assignment to their feed, atomically. False
        when the agent no longer had it (nothing is written)."""
        withdrawn = self._assignment(cid, agent_id, dict(state))
        withdrawn.reason, withdrawn.withdrawn = why, True
        args = [cid, withdrawn.SerializeToString(), FEED_MAXLEN]
        return bool(
            await self._withdraw_script(keys=[self.k.active(agent_id), self.k.feed(agent_id)], args=args)
        )

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
            await self._set_state(
                keys=[self.k.state(cid)],
                args=_flat(
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
            await self._enqueue_on(pipe, team.name, cid, priority, since, due)
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
        state = await self._state(conversation_id)
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
        await self._hand_held(agent_id)  # the freed room goes to a conversation waiting for this agent
        return state["team"]

    async def transfer(
        self, conversation_id: str, to_team: str = "", to_agent_id: str = "", reason: str = ""
    ) -> common_pb2.RoutingDecision:
        if bool(to_team) == bool(to_agent_id):
            raise InvalidArgument([("to_team", "give exactly one of to_team, to_agent_id")])
        if to_team and not self.policy.team(to_team):
            raise InvalidArgument([("to_team", f"unknown team {to_team!r}")])
        state = await self._state(conversation_id)
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
        await self._agent(to_agent_id)
        token = await self._reserve_capacity(to_agent_id)
        away = state["state"] == "assigned" and state.get("agent") != to_agent_id
        try:
            await self._detach(
                conversation_id, state, withdraw=f"{why}; transferred to agent {to_agent_id}" if away else ""
            )
        except FailedPrecondition:
            await self.redis.srem(self.k.active(to_agent_id), token)
            raise
        assignment = await self._assign(to_agent_id, conversation_id, token, "transferred", why=reason)
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
        state = state or await self._state(conversation_id)
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
        state = await self._state(conversation_id)
        if state["state"] == "resolved":
            return float(state["resolved_at"])
        if agent_id and state.get("agent") != agent_id:
            raise FailedPrecondition(f"conversation {conversation_id} is not assigned to agent {agent_id}")
        await self._detach(conversation_id, state)
        now = self.clock.now()
        async with lua.pipeline(self.redis) as pipe:
            await self._set_state(
                keys=[self.k.state(conversation_id)],
                args=_flat({"state": "resolved", "resolved_at": now, "agent": ""}),
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
            await self._fill(state["agent"])  # the freed capacity takes the next waiting conversation
        return now

    # ----------------------------------------------------------------------------------------------- views

    async def list_queues(self) -> list[router_pb2.QueueStatus]:
        now = self.clock.now()
        teams = [t.name for t in self.policy.teams]
        async with lua.pipeline(self.redis) as pipe:
            for team in teams:
                pipe.zcard(self.k.queue(team))
                pipe.zrange(self.k.since(team), 0, 0, withscores=True)
                pipe.zcount(self.k.due(team), "-inf", now + self.policy.sla_at_risk_seconds)
                pipe.scard(self.k.online(team))
                pipe.zcount(self.k.due(team), "-inf", now)
            raw = await pipe.execute()
        roster = await self._roster()
        out = []
        for n, team in enumerate(teams):
            depth, oldest, at_risk, online, breached = raw[5 * n : 5 * n + 5]
            staff = roster_of_team(roster, team)
            out.append(
                router_pb2.QueueStatus(
                    team=team,
                    depth=depth,
                    oldest_wait_seconds=max(0.0, now - oldest[0][1]) if oldest else 0.0,
                    sla_at_risk=at_risk,
                    agents_online=online,
                    sla_breached=breached,
                    agents_available=staff.available,
                    agents_away=staff.away,
                    occupancy=staff.occupancy,
                )
            )
        return out

    async def _roster(self) -> list[tuple[dict[str, str], int]]:
        """Every agent's profile and the number of conversations they hold, in two round trips."""
        agents = sorted(_text(a) for a in await self.redis.smembers(self.k.agents()))
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent_id in agents:
                pipe.hgetall(self.k.agent(agent_id))
                pipe.scard(self.k.active(agent_id))
            raw = await pipe.execute()
        return [(_decode(raw[2 * i]), int(raw[2 * i + 1])) for i in range(len(agents))]

    async def get_staffing(
        self, service_level: float, target_answer_seconds: float
    ) -> list[router_pb2.QueueStaffing]:
        """Agents needed per team (Erlang C) from the arrivals of the trailing window and the mean
        handling time of resolved conversations (the policy's default until there is one)."""
        problems = []
        if not 0 < service_level < 1:
            problems.append(("service_level", "must be between 0 and 1, exclusive"))
        if target_answer_seconds < 0:
            problems.append(("target_answer_seconds", "must not be negative"))
        if problems:
            raise InvalidArgument(problems)
        now, window = self.clock.now(), self.policy.staffing.window_seconds
        teams = [t.name for t in self.policy.teams]
        async with lua.pipeline(self.redis) as pipe:
            for team in teams:
                pipe.zcount(self.k.arrivals(team), f"({now - window}", "+inf")
                pipe.hgetall(self.k.handled(team))
                pipe.scard(self.k.online(team))
            raw = await pipe.execute()
        out = []
        for n, team in enumerate(teams):
            arrivals, handled, online = raw[3 * n], _decode(raw[3 * n + 1]), raw[3 * n + 2]
            count = int(handled.get("count", 0))
            aht = (
                float(handled["seconds"]) / count if count else self.policy.staffing.default_handling_seconds
            )
            rate = arrivals / window
            agents, level = erlang.agents_needed(rate, aht, target_answer_seconds, service_level)
            out.append(
                router_pb2.QueueStaffing(
                    team=team,
                    arrivals_per_hour=rate * 3600,
                    mean_handling_seconds=aht,
                    agents_needed=agents,
                    expected_service_level=level,
                    agents_online=online,
                )
            )
        return out

    async def watch(self, agent_id: str, poll_ms: int = 100) -> AsyncIterator[router_pb2.Assignment]:
        """The agent's current assignments, then each new one as it is made (the feed is polled every
        `poll_ms` with non-blocking reads: a blocking one would hold a pooled connection per watcher)."""
        await self._agent(agent_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.smembers(self.k.active(agent_id))
            pipe.xrevrange(self.k.feed(agent_id), count=1)
            active, last = await pipe.execute()
        position = _text(last[0][0]) if last else "0-0"
        for cid in sorted(_text(m) for m in active if not _text(m).startswith(RESERVING)):
            state = _decode(await self.redis.hgetall(self.k.state(cid)))
            yield self._assignment(cid, agent_id, state)
        while True:
            entries = await self.redis.xread({self.k.feed(agent_id): position}, count=100)
            if not entries:
                await asyncio.sleep(poll_ms / 1000)
            for _, messages in entries or []:
                for entry_id, fields in messages:
                    position = _text(entry_id)
                    yield router_pb2.Assignment.FromString(fields[b"assignment"])

    # ----------------------------------------------------------------------------------------------- audit

    async def get_audit(self, conversation_id: str) -> list[router_pb2.RoutingAudit]:
        """Every decision about the conversation, oldest first."""
        raw = await self.redis.hgetall(self.k.audit(conversation_id))
        if not raw:
            raise NotFound(f"conversation {conversation_id} has no routing decisions")
        entries = [router_pb2.RoutingAudit.FromString(v) for v in raw.values()]
        # At one instant: the route, then a hold placed or ended, then what followed from them.
        order = {"route": 0, "hold": 1, "hold_released": 2}
        return sorted(entries, key=lambda e: (from_timestamp(e.at), order.get(e.kind, 3)))

    # ----------------------------------------------------------------------------------------------- loop

    async def tick(self) -> dict[str, int]:
        """One step of the background loop; what it did, by kind."""
        return {
            "policy_reloaded": int(self.reload_policy()),
            "claims_recovered": await self.recover_claims(),
            "reservations_released": await self.release_stale_reservations(),
            "requeued_offline": await self.expire_offline(),
            "sla_at_risk": await self.escalate_at_risk(),
            "holds_released": await self.release_holds(),
            "aged": await self.age_queues(),
            "drained": await self.drain(),
        }

    async def recover_claims(self) -> int:
        """Claims journaled longer than `claim_idle_ms` ago whose claimer died before recording the
        assignment: the conversation goes back to its queue (the claim is revoked, so a late claimer
        cannot record it); if the assignment was recorded, the agent's capacity entry is completed instead."""
        lease = self.settings.claim_idle_ms / 1000
        now = self.clock.now()
        teams = [t.name for t in self.policy.teams]
        async with lua.pipeline(self.redis) as pipe:
            for team in teams:
                pipe.hgetall(self.k.taking(team))
            journals = await pipe.execute()
        recovered = 0
        for team, journal in zip(teams, journals, strict=True):
            for raw_cid, raw_entry in journal.items():
                cid, entry = _text(raw_cid), _text(raw_entry)
                agent_id, token, at, *_ = entry.rsplit("|", 5)
                if now - float(at) < lease:
                    continue
                done = await self._revoke(keys=[self.k.state(cid)], args=[token, agent_id])
                settled = await self._settle(keys=self.k.team_keys(team), args=[cid, entry, 0 if done else 1])
                if not settled:
                    continue  # another router settled it
                async with lua.pipeline(self.redis) as pipe:
                    pipe.srem(self.k.active(agent_id), token)
                    if done:
                        pipe.sadd(self.k.active(agent_id), cid)
                    else:
                        event = EventRecord(
                            "conversation.requeued",
                            cid,
                            "",
                            now,
                            {"team": team, "agent_id": agent_id, "reason": "the claim was never recorded"},
                        )
                        add_to_pipeline(pipe, self.keys, [event], self.settings.events_maxlen)
                    await pipe.execute()
                recovered += 0 if done else 1
        return recovered

    async def release_stale_reservations(self) -> int:
        """Capacity reserved longer than `claim_idle_ms` ago by a claimer that never wrote its claim journal
        (it died in between): given back. A reservation named in a journal is `recover_claims`' to settle."""
        lease = self.settings.claim_idle_ms / 1000
        now = self.clock.now()
        agents = sorted(_text(a) for a in await self.redis.smembers(self.k.agents()))
        teams = [t.name for t in self.policy.teams]
        async with lua.pipeline(self.redis) as pipe:
            for agent_id in agents:
                pipe.smembers(self.k.active(agent_id))
            for team in teams:
                pipe.hvals(self.k.taking(team))
            raw = await pipe.execute()
        # Journal entries are "agent|token|at|base|since|due".
        journaled = {_text(entry).split("|")[1] for entries in raw[len(agents) :] for entry in entries}
        released = 0
        for agent_id, members in zip(agents, raw[: len(agents)], strict=False):
            for token in (_text(m) for m in members):
                if not token.startswith(RESERVING) or token in journaled:
                    continue
                at = token[len(RESERVING) :].split(":", 1)[0]
                if now - _float(at) < lease:
                    continue
                released += await self._release(keys=[self.k.active(agent_id)], args=[token])
        return released

    async def expire_offline(self) -> int:
        """Agents offline for longer than the grace period: their open conversations go back to their queues
        with the priority, enqueue time and deadline they had."""
        now = self.clock.now()
        grace = self.policy.presence.offline_grace_seconds
        gone = [_text(a) for a in await self.redis.zrangebyscore(self.k.offline(), "-inf", now - grace)]
        requeued = 0
        for agent_id in gone:
            profile = _decode(await self.redis.hgetall(self.k.agent(agent_id)))
            if profile.get("presence") == "offline":
                for raw in await self.redis.smembers(self.k.active(agent_id)):
                    cid = _text(raw)
                    if cid.startswith(RESERVING):
                        continue
                    state = _decode(await self.redis.hgetall(self.k.state(cid)))
                    if state.get("state") != "assigned" or state.get("agent") != agent_id:
                        await self.redis.srem(self.k.active(agent_id), cid)  # a stale entry
                        continue
                    why = f"agent offline for more than {grace:g}s: back in the {state['team']} queue"
                    try:
                        await self._detach(cid, state, withdraw=why)
                    except FailedPrecondition:
                        continue
                    event = EventRecord(
                        "conversation.requeued",
                        cid,
                        "",
                        now,
                        {
                            "team": state["team"],
                            "agent_id": agent_id,
                            "reason": f"agent offline for more than {grace:g}s",
                        },
                    )
                    await self._requeue(
                        cid, state, state["team"], float(state["priority"]), float(state["sla_due"]), event
                    )
                    requeued += 1
            await self.redis.zrem(self.k.offline(), agent_id)
        return requeued

    async def escalate_at_risk(self) -> int:
        """Waiting conversations whose first-response deadline is within `sla_at_risk_seconds`: once per
        deadline, a `conversation.sla_at_risk` event for supervisors and a move to the next tier."""
        now, policy = self.clock.now(), self.policy
        horizon = now + policy.sla_at_risk_seconds
        teams = [t.name for t in policy.teams]
        async with lua.pipeline(self.redis) as pipe:
            for team in teams:
                pipe.zrangebyscore(self.k.due(team), "-inf", horizon, start=0, num=DRAIN_PER_TEAM)
            at_risk = await pipe.execute()
        flagged = 0
        for team, members in zip(teams, at_risk, strict=True):
            for raw in members:
                cid = _text(raw)
                state = _decode(await self.redis.hgetall(self.k.state(cid)))
                if state.get("state") != "queued" or state.get("team") != team:
                    continue
                if state.get("sla_alerted") == state.get("sla_due"):
                    continue
                due_in = float(state["sla_due"]) - now
                entry = _text(await self.redis.hget(self.k.held(team), cid) or "")
                if entry:
                    # The SLA comes first: nobody waits for one agent at the cost of the deadline.
                    await self._release_hold(
                        team, cid, entry, f"SLA at risk (due in {due_in:.0f}s): the hold ends"
                    )
                target = policy.escalation_target(team, state.get("topic", ""))
                mark = {"sla_alerted": state["sla_due"]}
                escalated_to = ""
                if target is not None and policy.escalation.on_sla_risk:
                    try:
                        await self.escalate(cid, f"SLA at risk: due in {due_in:.0f}s", state, mark)
                        escalated_to = target.name
                    except FailedPrecondition:
                        continue  # taken by an agent meanwhile
                else:
                    await self._set_state(keys=[self.k.state(cid)], args=_flat(mark))
                event = EventRecord(
                    "conversation.sla_at_risk",
                    cid,
                    "",
                    now,
                    {"team": team, "due_in_seconds": round(due_in, 3), "escalated_to": escalated_to},
                )
                async with lua.pipeline(self.redis) as pipe:
                    add_to_pipeline(pipe, self.keys, [event], self.settings.events_maxlen)
                    await pipe.execute()
                flagged += 1
        return flagged

    async def age_queues(self) -> int:
        """Rescore every waiting conversation: base priority plus time waited and SLA pressure."""
        w = self.policy.priority
        async with lua.pipeline(self.redis) as pipe:
            for team in self.policy.teams:
                k = self.k
                await self._age(
                    keys=[k.queue(team.name), k.since(team.name), k.due(team.name), k.base(team.name)],
                    args=[self.clock.now(), w.ageing_per_minute, w.ageing_max, w.sla_pressure],
                    client=pipe,
                )
            counts = await pipe.execute()
        return int(sum(counts))

    async def drain(self) -> int:
        """Hand waiting conversations, best first, to online agents with free capacity. A conversation that
        only its declining agents could take is skipped, not a block for the ones behind it."""
        teams = [t.name for t in self.policy.teams]
        async with lua.pipeline(self.redis) as pipe:
            for team in teams:
                pipe.scard(self.k.online(team))
                pipe.zrevrange(self.k.queue(team), 0, DRAIN_PER_TEAM - 1, withscores=True)
                pipe.zrange(self.k.since(team), 0, -1, withscores=True)
            raw = await pipe.execute()
        handed = 0
        for n, team in enumerate(teams):
            online, waiting, since = raw[3 * n : 3 * n + 3]
            if not online or not waiting:
                continue
            enqueued = {_text(m): t for m, t in since}
            order = sorted(waiting, key=lambda e: (-e[1], enqueued.get(_text(e[0]), 0.0)))
            for member, _ in order:
                assignment, anyone_free = await self._assign_waiting(
                    team, _text(member), "assigned from the queue"
                )
                if assignment is not None:
                    handed += 1
                elif not anyone_free:
                    break
        return handed
