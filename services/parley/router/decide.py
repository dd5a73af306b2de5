"""The routing decision, with no Redis: which rule holds for a message, its priority, the decision and the
state fields it sets, how agents rank for a conversation, and whether a reopened conversation waits for its
previous agent. The rest of the router reads the state these functions look at and writes what they return."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from parley.clock import to_timestamp
from parley.router.policy import VISIBILITY_NAMES, Policy, Rule, intent_name
from parley.v1 import common_pb2, router_pb2

HUMAN_ONLY_INTENTS = ("urgent", "complaint")


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


def bot_may_answer(policy: Policy, item: router_pb2.RouteItem) -> tuple[bool, str]:
    answer = item.triage.bot_answer
    if not item.triage.HasField("bot_answer") or answer.abstained or not answer.text:
        return False, "the bot has no answer"
    if answer.confidence < policy.bot.min_confidence:
        return False, f"bot confidence {answer.confidence:.2f} < {policy.bot.min_confidence:.2f}"
    # An empty list places no restriction on channels.
    if answer.allowed_channels and item.message.channel not in answer.allowed_channels:
        return False, "the bot answer is not allowed on this channel"
    return True, f"bot answer {answer.answer_id or '?'} at confidence {answer.confidence:.2f}"


def conditions_hold(rule: Rule, item: router_pb2.RouteItem, intent: str) -> bool:
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
    if when.urgent_review is not None and item.triage.urgent_review != when.urgent_review:
        return False
    reasons = set(item.triage.urgency_reasons)
    if when.urgency_reasons and not (
        reasons and ("any" in when.urgency_reasons or reasons & set(when.urgency_reasons))
    ):
        return False
    return confidence(item) >= when.min_confidence


def confidence(item: router_pb2.RouteItem) -> float:
    """The probability of the message's intent; 1 when the classifier gave no scores."""
    for score in item.triage.scores:
        if score.intent == item.triage.intent:
            return score.probability
    return 1.0


def match_rule(policy: Policy, item: router_pb2.RouteItem, bot_allowed: bool) -> Match:
    """The first rule that holds. Bot rules hold only when the bot may answer; topic rules only when a
    team takes the topic. Skipped bot rules are noted in `why`, for the decision's reason."""
    intent = intent_name(item.triage.intent)
    skipped: list[str] = []
    for rule in policy.rules:
        if not conditions_hold(rule, item, intent):
            continue
        then = rule.then
        if then.action == "bot":
            ok, why = bot_may_answer(policy, item)
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
            team = policy.team_for_topic(item.triage.topic)
            if team is None:
                continue
            return Match(rule.name, "queue", team.name, then.priority_offset, f"team for topic {team.name}")
        return Match(rule.name, "queue", then.team or "", then.priority_offset, "; ".join(skipped))
    return Match("", "no_action", why="no rule matched")


def priority_parts(policy: Policy, item: router_pb2.RouteItem, offset: float = 0.0) -> dict[str, float]:
    return policy.priority_parts(
        intent_name(item.triage.intent),
        item.message.visibility == common_pb2.VISIBILITY_PUBLIC,
        item.message.author.follower_count,
        item.customer_tier,
        offset,
    )


def priority_of(policy: Policy, item: router_pb2.RouteItem, offset: float = 0.0) -> float:
    return policy.priority_of(
        intent_name(item.triage.intent),
        item.message.visibility == common_pb2.VISIBILITY_PUBLIC,
        item.message.author.follower_count,
        item.customer_tier,
        offset,
    )


def _appended(
    policy: Policy,
    item: router_pb2.RouteItem,
    state: dict[str, str],
    now: float,
    decision: common_pb2.RoutingDecision,
) -> tuple[common_pb2.RoutingDecision, dict[str, Any], float]:
    """A message joining a conversation already waiting or with an agent: it may raise the priority."""
    intent, current = intent_name(item.triage.intent), state.get("state", "")
    match = match_rule(policy, item, bot_allowed=False)
    old = float(state.get("priority", 0))
    priority = max(old, priority_of(policy, item, match.offset))
    since = float(state.get("enqueued_at", now))
    due = min(
        float(state.get("sla_due", "inf")),
        since + policy.sla_band(priority).first_response_seconds,
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


def decide(
    policy: Policy, item: router_pb2.RouteItem, state: dict[str, str], now: float
) -> tuple[common_pb2.RoutingDecision, dict[str, Any], float]:
    """The decision for one message against the conversation's router state, the state fields it sets, and the
    priority offset of the rule that held."""
    cid, intent = item.conversation_id, intent_name(item.triage.intent)
    decision = common_pb2.RoutingDecision(
        conversation_id=cid, message_id=item.message.message_id, decided_at=to_timestamp(now)
    )
    current = state.get("state", "")
    if current in ("queued", "assigned"):
        return _appended(policy, item, state, now, decision)

    bot_allowed = intent not in HUMAN_ONLY_INTENTS and state.get("bot_replied") != "1"
    match = match_rule(policy, item, bot_allowed)
    if match.action == "no_action" and current == "bot":
        # The customer wrote again after the bot's one reply: a person takes it from here.
        match = Match(
            "after_bot_reply",
            "queue",
            policy.bot.after_reply_team,
            why="the customer wrote again after the bot's reply",
        )
    priority = priority_of(policy, item, match.offset)
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
    team = policy.team(match.team)
    assert team is not None  # policy validation guarantees rule teams exist
    band = policy.sla_band(priority)
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


def rank(
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


def hold_for(
    policy: Policy,
    team: str,
    candidates: list[Candidate],
    profiles: Mapping[str, Mapping[str, str]],
    offline_at: Mapping[str, float],
    now: float,
) -> tuple[Candidate, str] | None:
    """The previous agent to reserve a reopened conversation for, and why: one of the team's agents who
    has not declined it, and who is free (why is empty: they are given it at once), busy, away, or offline
    within the presence grace period. None when the hold does not apply."""
    if policy.assignment.sticky_hold_seconds <= 0:
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
    grace = policy.presence.offline_grace_seconds
    if since is not None and now - since < grace:
        return sticky, f"offline for {now - since:g}s, within the {grace:g}s grace period"
    return None
