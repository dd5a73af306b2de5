"""The escalation policy: teams, ordered routing rules, SLA bands, bot and priority settings, read from YAML.

Rules are tried in order and the first whose conditions all hold decides. A `bot` rule holds only when the bot
may answer (see `Router`), so the next rule (usually a human queue) catches everything else.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parley import messages
from parley.v1 import common_pb2

DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.yaml")

IntentName = Literal["praise", "question", "complaint", "urgent", "other"]
VISIBILITY_NAMES = {common_pb2.VISIBILITY_PUBLIC: "public", common_pb2.VISIBILITY_PRIVATE: "private"}


class PolicyError(ValueError):
    """A policy that does not load: one (field path, description) pair per problem."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "policy") -> None:
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(f"{path}: {text}" for path, text in problems))


class _Strict(BaseModel):
    # Unknown keys are errors: a misspelt condition must not silently match everything.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Team(_Strict):
    name: str = Field(min_length=1)
    tier: str = Field(min_length=1)
    # The triage topics this team takes (used by rules with `team_by_topic`).
    topics: list[str] = []
    # Where Escalate sends a conversation of this team; default: the first team of the next tier.
    escalate_to: str | None = None


class When(_Strict):
    """Conditions of a rule; all given ones must hold. Empty lists mean any."""

    intents: list[IntentName] = []
    topics: list[str] = []
    visibility: Literal["public", "private"] | None = None
    min_followers: int = Field(default=0, ge=0)
    # The classifier's probability for the message's intent.
    min_confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    # The classifier's language codes (for example en, es); a message with no language matches none.
    languages: list[str] = []
    # The customer's value tier from their profile; an empty tier counts as "standard".
    customer_tiers: list[str] = []
    # Any of the classifier's urgency reasons (for example safety, fraud, legal); `any` matches any reason.
    urgency_reasons: list[str] = []
    # The classifier's urgent-review flag: urgent, or possibly urgent at its operating point, any intent.
    urgent_review: bool | None = None


class Then(_Strict):
    action: Literal["queue", "bot", "no_action"]
    team: str | None = None
    # Queue with the team whose `topics` include the message's topic; the rule does not match if none does.
    team_by_topic: bool = False
    # Added to the computed priority (negative for low-priority work such as praise).
    priority_offset: float = 0.0


class Rule(_Strict):
    name: str = Field(min_length=1)
    when: When = When()
    then: Then


class SlaBand(_Strict):
    name: str = Field(min_length=1)
    # The band applies to priorities at or above this; the highest matching band wins.
    min_priority: float = Field(ge=0)
    first_response_seconds: float = Field(gt=0)


class BotSettings(_Strict):
    min_confidence: float = Field(default=0.6, ge=0.0, le=1.0)
    # Where a conversation goes when the customer writes again after the bot's one reply.
    after_reply_team: str = "first_line"


class PriorityWeights(_Strict):
    intent: dict[IntentName, float] = {
        "urgent": 80,
        "complaint": 50,
        "question": 30,
        "praise": 10,
        "other": 0,
    }
    public: float = 10.0
    # Points per factor of ten followers, capped: 10k followers adds 4 * followers_per_decade.
    followers_per_decade: float = 3.0
    followers_max: float = 20.0
    customer_tier: dict[str, float] = {}
    # Added on each escalation.
    escalation: float = 10.0
    # Ageing, so that low priority work does not starve: points per minute waited, up to a cap ...
    ageing_per_minute: float = Field(default=0.5, ge=0)
    ageing_max: float = Field(default=30.0, ge=0)
    # ... and up to this many points as the SLA deadline comes closer (linear over the SLA window).
    sla_pressure: float = Field(default=20.0, ge=0)


class PresenceSettings(_Strict):
    # An agent offline this long has their open conversations put back in their queues.
    offline_grace_seconds: float = Field(default=120.0, ge=0)


class AssignmentSettings(_Strict):
    # A reopened conversation whose previous agent is busy, away or offline within the grace period is
    # reserved for them this long (0: never) before any agent of the team may take it.
    sticky_hold_seconds: float = Field(default=120.0, ge=0)


class EscalationSettings(_Strict):
    # A waiting conversation whose deadline is within `sla_at_risk_seconds` moves to the next tier once.
    on_sla_risk: bool = True


class StaffingSettings(_Strict):
    # Arrivals are counted over this trailing window.
    window_seconds: float = Field(default=3600.0, gt=0)
    # Handling time assumed until a team has resolved conversations to measure.
    default_handling_seconds: float = Field(default=300.0, gt=0)


class Policy(_Strict):
    version: int = 1
    # Escalation order, lowest first.
    tiers: list[str] = Field(min_length=1)
    default_team: str
    teams: list[Team] = Field(min_length=1)
    rules: list[Rule] = Field(min_length=1)
    sla: list[SlaBand] = Field(min_length=1)
    # A waiting conversation counts as at risk when its first-response deadline is this close.
    sla_at_risk_seconds: float = Field(default=300.0, ge=0)
    bot: BotSettings = BotSettings()
    priority: PriorityWeights = PriorityWeights()
    staffing: StaffingSettings = StaffingSettings()
    presence: PresenceSettings = PresenceSettings()
    assignment: AssignmentSettings = AssignmentSettings()
    escalation: EscalationSettings = EscalationSettings()

    def team(self, name: str) -> Team | None:
        return next((t for t in self.teams if t.name == name), None)

    def team_for_topic(self, topic: str) -> Team | None:
        return next((t for t in self.teams if topic and topic in t.topics), None)

    def escalation_target(self, team_name: str, topic: str = "") -> Team | None:
        """The team one tier up from `team_name`, or None at the top tier.

        `escalate_to` wins; else, tier by tier upwards, the team taking `topic`, or the tier's only team.
        """
        team = self.team(team_name)
        if team is None:
            return None
        if team.escalate_to:
            return self.team(team.escalate_to)
        for tier in self.tiers[self.tiers.index(team.tier) + 1 :]:
            candidates = [t for t in self.teams if t.tier == tier]
            by_topic = next((t for t in candidates if topic and topic in t.topics), None)
            if by_topic is not None:
                return by_topic
            if len(candidates) == 1:
                return candidates[0]
        return None

    def sla_band(self, priority: float) -> SlaBand:
        eligible = [b for b in self.sla if priority >= b.min_priority] or [
            min(self.sla, key=lambda b: b.min_priority)
        ]
        return max(eligible, key=lambda b: b.min_priority)

    def priority_parts(
        self, intent: str, public: bool, followers: int, customer_tier: str, offset: float = 0.0
    ) -> dict[str, float]:
        """The terms of a conversation's base priority, for the audit."""
        w = self.priority
        return {
            "intent": w.intent.get(cast(IntentName, intent), 0.0),
            "public": w.public if public else 0.0,
            "reach": round(
                min(w.followers_max, w.followers_per_decade * math.log10(1 + max(0, followers))), 3
            ),
            "customer_tier": w.customer_tier.get(customer_tier or "standard", 0.0),
            "rule_offset": offset,
        }

    def priority_of(
        self, intent: str, public: bool, followers: int, customer_tier: str, offset: float = 0.0
    ) -> float:
        """Intent base + public bonus + log-scaled reach + customer tier + rule offset, never below 0.
        Time waited and time left on the SLA are added while the conversation waits (`ageing`)."""
        parts = self.priority_parts(intent, public, followers, customer_tier, offset)
        return round(max(0.0, sum(parts.values())), 3)

    def ageing(self, waited: float, window: float) -> float:
        """Points a waiting conversation gains after `waited` seconds of an SLA window of `window` seconds."""
        w = self.priority
        pressure = w.sla_pressure * min(1.0, max(0.0, waited / window)) if window > 0 else 0.0
        return min(w.ageing_max, w.ageing_per_minute * max(0.0, waited) / 60) + pressure


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _cross_checks(policy: Policy) -> list[tuple[str, str]]:
    """What pydantic cannot see: names that must refer to each other."""
    problems: list[tuple[str, str]] = []
    names = [t.name for t in policy.teams]
    for i, team in enumerate(policy.teams):
        if names.count(team.name) > 1 and names.index(team.name) != i:
            problems.append((f"teams[{i}].name", f"duplicate team {team.name!r}"))
        if team.tier not in policy.tiers:
            problems.append((f"teams[{i}].tier", f"unknown tier {team.tier!r}; tiers are {policy.tiers}"))
        if team.escalate_to is not None and team.escalate_to not in names:
            problems.append((f"teams[{i}].escalate_to", f"unknown team {team.escalate_to!r}"))
    if policy.default_team not in names:
        problems.append(("default_team", f"unknown team {policy.default_team!r}"))
    if policy.bot.after_reply_team not in names:
        problems.append(("bot.after_reply_team", f"unknown team {policy.bot.after_reply_team!r}"))
    rule_names: set[str] = set()
    for i, rule in enumerate(policy.rules):
        if rule.name in rule_names:
            problems.append((f"rules[{i}].name", f"duplicate rule {rule.name!r}"))
        rule_names.add(rule.name)
        then = rule.then
        if then.action == "queue":
            if bool(then.team) == then.team_by_topic:
                problems.append(
                    (f"rules[{i}].then.team", "a queue rule needs exactly one of team, team_by_topic")
                )
            elif then.team and then.team not in names:
                problems.append((f"rules[{i}].then.team", f"unknown team {then.team!r}"))
        elif then.team or then.team_by_topic:
            problems.append((f"rules[{i}].then.team", f"action {then.action!r} takes no team"))
    return problems


def _lines(node: yaml.Node | None, prefix: tuple[int | str, ...] = ()) -> dict[tuple[int | str, ...], int]:
    """The 1-based line of every key and item of a YAML document, by its location."""
    out: dict[tuple[int | str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            loc = (*prefix, key.value)
            out[loc] = key.start_mark.line + 1
            out.update(_lines(value, loc))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*prefix, i)] = item.start_mark.line + 1
            out.update(_lines(item, (*prefix, i)))
    return out


def _line_of(lines: dict[tuple[int | str, ...], int], loc: tuple[int | str, ...]) -> int | None:
    """The line of `loc`, or of its nearest parent present in the file (a missing field's mapping)."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _loc(path: str) -> tuple[int | str, ...]:
    """`rules[0].then.team` -> ("rules", 0, "then", "team")."""
    out: list[int | str] = []
    for part in path.replace("]", "").replace("[", ".").split("."):
        if part:
            out.append(int(part) if part.isdigit() else part)
    return tuple(out)


def parse_policy(
    data: object, source: str = "policy", lines: dict[tuple[int | str, ...], int] | None = None
) -> Policy:
    """Validate a parsed policy; with `lines` (from the YAML), each problem names its line too."""

    def located(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
        out = []
        for path, text in problems:
            line = _line_of(lines or {}, _loc(path))
            out.append((path, f"line {line}: {text}" if line else text))
        return out

    try:
        policy = Policy.model_validate(data)
    except ValidationError as error:
        problems = [(_path(e["loc"]) or "(root)", e["msg"]) for e in error.errors()]
        raise PolicyError(located(problems), source) from None
    problems = _cross_checks(policy)
    if problems:
        raise PolicyError(located(problems), source)
    return policy


def parse_policy_text(text: str, source: str = "policy") -> Policy:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise PolicyError(
            [("(yaml)", where + str(getattr(error, "problem", None) or error))], source
        ) from None
    return parse_policy(data, source, _lines(node))


def policy_path(path: Path | str | None = None) -> Path:
    return Path(path) if path else DEFAULT_POLICY_FILE


def load_policy(path: Path | str | None = None) -> Policy:
    """Load and validate a policy file (the shipped default when `path` is None)."""
    path = policy_path(path)
    return parse_policy_text(path.read_text(encoding="utf-8"), str(path))


def intent_name(intent: int) -> str:
    return messages.intent_name(intent, "other")
