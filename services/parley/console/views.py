"""The console's pure core: API responses in, view models out (plain strings and numbers, no HTML).

Every page is built by one function here from what the client fetched, so tests call them directly with
protobuf messages. Text from customers stays raw here; `pages` escapes it when it writes HTML.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from parley.clock import from_timestamp
from parley.console.client import ConversationData, FloorData, PipelineData, TrafficData
from parley.messages import CHANNEL_NAMES, INTENT_NAMES
from parley.v1 import common_pb2, conversations_pb2, dispatch_pb2, router_pb2

STATE_NAMES = {
    value: name.removeprefix("CONVERSATION_STATE_").lower().replace("_", " ")
    for name, value in conversations_pb2.ConversationState.items()
}
ROLE_NAMES = {1: "customer", 2: "participant", 3: "brand"}
ACTION_NAMES = {1: "bot reply", 2: "queued", 3: "assigned", 4: "no action", 5: "appended"}
DELIVERY_NAMES = {
    value: name.removeprefix("DELIVERY_STATUS_").lower().replace("_", " ")
    for name, value in dispatch_pb2.DeliveryStatus.items()
}
DASH = "—"


# ----------------------------------------------------------------------------------------- formatting


def duration(seconds: float | None) -> str:
    """45s, 3m 05s, 2h 10m, 3d 4h; a dash when unknown."""
    if seconds is None:
        return DASH
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86_400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86_400}d {s % 86_400 // 3600}h"


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else DASH


def clock_time(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) if seconds else DASH


def stamp(ts: object) -> str:
    return clock_time(from_timestamp(ts))  # type: ignore[arg-type]


def channel_name(value: int) -> str:
    return CHANNEL_NAMES.get(value, "unspecified")


def intent_name(value: int) -> str:
    return INTENT_NAMES.get(value, DASH)


# ----------------------------------------------------------------------------------------- floor


@dataclass(frozen=True)
class QueueRow:
    team: str
    depth: int
    oldest_wait_seconds: float
    sla_at_risk: int
    sla_breached: int
    service_level_today: str
    average_speed_of_answer: str
    abandonment: str
    agents_online: int
    agents_available: int
    agents_away: int
    occupancy: str
    agents_needed: int | None
    staffing_advice: str
    arrivals_per_hour: str
    # ok, warn (something at risk or understaffed) or bad (an SLA breached)
    status: str

    @property
    def longest_wait(self) -> str:
        return duration(self.oldest_wait_seconds) if self.depth else DASH


@dataclass(frozen=True)
class ConversationRow:
    conversation_id: str
    customer: str
    channel: str
    state: str
    intent: str
    topic: str
    team: str
    messages: int
    updated: str


@dataclass(frozen=True)
class FloorView:
    queues: list[QueueRow]
    recent: list[ConversationRow]
    waiting: int
    at_risk: int
    breached: int
    agents_online: int


def staffing_advice(needed: int, online: int) -> str:
    if needed > online:
        return f"{needed - online} more needed"
    if needed < online:
        return f"{online - needed} spare"
    return "as needed"


def floor_view(data: FloorData) -> FloorView:
    staffing = {s.team: s for s in data.staffing}
    today = {g.key: g for g in data.today_by_team}
    rows = []
    for q in data.queues:
        staff = staffing.get(q.team)
        metrics = today.get(q.team)
        answered = metrics.sla_met + metrics.sla_missed if metrics else 0
        understaffed = staff is not None and staff.agents_needed > q.agents_online
        rows.append(
            QueueRow(
                team=q.team,
                depth=q.depth,
                oldest_wait_seconds=q.oldest_wait_seconds,
                sla_at_risk=q.sla_at_risk,
                sla_breached=q.sla_breached,
                service_level_today=percent(metrics.sla_met, answered) if metrics else DASH,
                average_speed_of_answer=duration(metrics.human_first_response_seconds.mean)
                if metrics and metrics.human_first_response_seconds.count
                else DASH,
                abandonment=percent(metrics.abandoned, metrics.conversations) if metrics else DASH,
                agents_online=q.agents_online,
                agents_available=q.agents_available,
                agents_away=q.agents_away,
                occupancy=percent(q.occupancy, 1) if q.agents_online else DASH,
                agents_needed=staff.agents_needed if staff else None,
                staffing_advice=staffing_advice(staff.agents_needed, q.agents_online) if staff else DASH,
                arrivals_per_hour=f"{staff.arrivals_per_hour:.1f}" if staff else DASH,
                status="bad" if q.sla_breached else "warn" if q.sla_at_risk or understaffed else "ok",
            )
        )
    return FloorView(
        queues=rows,
        recent=[conversation_row(s) for s in data.recent],
        waiting=sum(q.depth for q in data.queues),
        at_risk=sum(q.sla_at_risk for q in data.queues),
        breached=sum(q.sla_breached for q in data.queues),
        agents_online=max((q.agents_online for q in data.queues), default=0),
    )


def conversation_row(s: conversations_pb2.ConversationSummary) -> ConversationRow:
    return ConversationRow(
        conversation_id=s.conversation_id,
        customer=s.owner.handle or s.owner.display_name or s.owner.id,
        channel=channel_name(s.channel),
        state=STATE_NAMES.get(s.state, DASH),
        intent=intent_name(s.intent),
        topic=s.topic or DASH,
        team=s.team or DASH,
        messages=s.message_count,
        updated=stamp(s.updated_at),
    )


# ----------------------------------------------------------------------------------------- traffic


@dataclass(frozen=True)
class DistributionRow:
    name: str
    count: int
    mean: str
    p50: str
    p90: str
    p99: str
    p50_seconds: float = 0.0
    p90_seconds: float = 0.0
    p99_seconds: float = 0.0


@dataclass(frozen=True)
class Series:
    """Counts per time bucket for each value of one dimension (channel, intent or topic)."""

    dimension: str
    bucket_labels: list[str]
    counts: dict[str, list[int]]


@dataclass(frozen=True)
class TrafficView:
    conversations: int
    sample: int
    volume: list[Series]
    bot_answered: int
    bot_abstained: int
    timings: list[DistributionRow]
    reopen_rate: str
    reopened: int
    moved_to_private: int
    moved_rate: str
    breakdowns: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


def distribution_row(name: str, d: conversations_pb2.Distribution) -> DistributionRow:
    known = d.count > 0
    return DistributionRow(
        name=name,
        count=d.count,
        mean=duration(d.mean) if known else DASH,
        p50=duration(d.p50) if known else DASH,
        p90=duration(d.p90) if known else DASH,
        p99=duration(d.p99) if known else DASH,
        p50_seconds=d.p50,
        p90_seconds=d.p90,
        p99_seconds=d.p99,
    )


def volume_series(conversations: list[conversations_pb2.Conversation], buckets: int = 12) -> list[Series]:
    """Customer messages per time bucket by channel, intent and topic, over the span of the messages."""
    inbound = [
        item
        for c in conversations
        for item in c.messages
        if item.message.direction != common_pb2.DIRECTION_OUTBOUND
    ]
    times = [from_timestamp(item.message.sent_at) for item in inbound]
    if not times:
        return [Series(d, [], {}) for d in ("channel", "intent", "topic")]
    start, end = min(times), max(times)
    width = max((end - start) / buckets, 1.0)
    labels = [clock_time(start + i * width)[5:16] for i in range(buckets)]
    out = []
    for dimension in ("channel", "intent", "topic"):
        counts: dict[str, list[int]] = {}
        for item, at in zip(inbound, times, strict=True):
            if dimension == "channel":
                key = channel_name(item.message.channel)
            elif dimension == "intent":
                key = intent_name(item.triage.intent) if item.HasField("triage") else "untriaged"
            else:
                key = item.triage.topic or "none"
            slot = min(int((at - start) / width), buckets - 1)
            counts.setdefault(key, [0] * buckets)[slot] += 1
        out.append(Series(dimension, labels, dict(sorted(counts.items()))))
    return out


def bot_considered(triage: common_pb2.Triage) -> bool:
    """A question, or a message the knowledge base had an answer candidate for: the bot's to answer."""
    return triage.intent == common_pb2.INTENT_QUESTION or bool(triage.bot_answer.answer_id)


def traffic_view(data: TrafficData) -> TrafficView:
    overall = data.overall
    answered = abstained = 0
    for c in data.conversations:
        for item in c.messages:
            if item.routing.action == common_pb2.ROUTE_ACTION_BOT_REPLY:
                answered += 1
            elif bot_considered(item.triage):
                abstained += 1
    return TrafficView(
        conversations=overall.conversations,
        sample=len(data.conversations),
        volume=volume_series(data.conversations),
        bot_answered=answered,
        bot_abstained=abstained,
        timings=[
            distribution_row("first response (any)", overall.first_response_seconds),
            distribution_row("first response, bot", overall.bot_first_response_seconds),
            distribution_row("first response, human", overall.human_first_response_seconds),
            distribution_row("handling", overall.handling_seconds),
            distribution_row("resolution", overall.resolution_seconds),
        ],
        reopen_rate=percent(overall.reopened, overall.conversations),
        reopened=overall.reopened,
        moved_to_private=overall.moved_to_private,
        moved_rate=percent(overall.moved_to_private, overall.conversations),
        breakdowns={
            dimension: sorted(((g.key, g.conversations) for g in groups), key=lambda kv: -kv[1])
            for dimension, groups in data.groups.items()
        },
    )


# ----------------------------------------------------------------------------------------- conversation


@dataclass(frozen=True)
class TriageView:
    intent: str
    model_intent: str
    scores: list[tuple[str, float]]
    topic: str
    urgency_reasons: list[str]
    entities: list[tuple[str, str]]
    model_version: str
    features: list[tuple[str, float]]
    rules_fired: list[str]
    bot_answer: str
    language: str


@dataclass(frozen=True)
class DecisionView:
    action: str
    team: str
    agent: str
    priority: str
    rule: str
    reason: str
    sla_due: str
    bot_reply: str


@dataclass(frozen=True)
class DeliveryView:
    reply_id: str
    status: str
    attempts: int
    error: str
    platform_ids: list[str]
    private_reply_id: str


@dataclass(frozen=True)
class MessageView:
    message_id: str
    at: str
    author: str
    role: str
    visibility: str
    direction: str
    text: str
    triage: TriageView | None
    decision: DecisionView | None
    deliveries: list[DeliveryView]


@dataclass(frozen=True)
class AuditView:
    kind: str
    at: str
    message_id: str
    rule: str
    action: str
    team: str
    agent: str
    priority: str
    priority_parts: list[tuple[str, float]]
    candidates: list[dict[str, str]]
    why: str


@dataclass(frozen=True)
class ConversationView:
    conversation_id: str
    channel: str
    state: str
    intent: str
    topic: str
    opened: str
    updated: str
    moved_to_private: bool
    reopen_count: int
    agents: list[str]
    participants: list[tuple[str, str]]
    profile: list[tuple[str, str]]
    past_conversations: list[tuple[str, str, str]]
    messages: list[MessageView]
    audit: list[AuditView]
    metrics: list[tuple[str, str]]


def triage_view(t: common_pb2.Triage) -> TriageView:
    bot = t.bot_answer
    if bot.answer_id or bot.text:
        answer = f"{'abstained' if bot.abstained else 'answer'} {bot.answer_id} ({bot.confidence:.2f})"
    else:
        answer = DASH
    return TriageView(
        intent=intent_name(t.intent),
        model_intent=intent_name(t.model_intent),
        scores=sorted(((intent_name(s.intent), s.probability) for s in t.scores), key=lambda s: -s[1]),
        topic=f"{t.topic} ({t.topic_confidence:.2f})" if t.topic else DASH,
        urgency_reasons=list(t.urgency_reasons),
        entities=[(e.type, e.text) for e in t.entities],
        model_version=t.explanation.model_version,
        features=[(f.name, f.weight) for f in t.explanation.top_features],
        rules_fired=list(t.explanation.rules_fired),
        bot_answer=answer,
        language=t.language or DASH,
    )


def decision_view(d: common_pb2.RoutingDecision) -> DecisionView:
    return DecisionView(
        action=ACTION_NAMES.get(d.action, DASH),
        team=d.team or DASH,
        agent=d.agent_id or DASH,
        priority=f"{d.priority:.1f}",
        rule=d.rule or DASH,
        reason=d.reason,
        sla_due=stamp(d.sla_due_at) if d.HasField("sla_due_at") else DASH,
        bot_reply=d.bot_reply_text,
    )


def delivery_view(d: dispatch_pb2.Delivery) -> DeliveryView:
    return DeliveryView(
        reply_id=d.reply_id,
        status=DELIVERY_NAMES.get(d.status, DASH),
        attempts=d.attempts,
        error=d.error,
        platform_ids=list(d.platform_message_ids),
        private_reply_id=d.private_reply_id,
    )


def audit_view(entry: router_pb2.RoutingAudit) -> AuditView:
    return AuditView(
        kind=entry.kind,
        at=stamp(entry.at),
        message_id=entry.message_id,
        rule=entry.rule or DASH,
        action=ACTION_NAMES.get(entry.action, DASH),
        team=entry.team or DASH,
        agent=entry.agent_id or DASH,
        priority=f"{entry.priority:.1f}",
        priority_parts=sorted(entry.priority_parts.items()),
        candidates=[
            {
                "agent": c.agent_id,
                "presence": c.presence,
                "load": f"{c.load}/{c.capacity}",
                "skill": "yes" if c.skill_match else "no",
                "sticky": "yes" if c.sticky else "no",
                "eligible": "yes" if c.eligible else "no",
                "note": c.note,
            }
            for c in entry.candidates
        ],
        why=entry.why,
    )


def conversation_view(data: ConversationData) -> ConversationView:
    c = data.conversation
    messages = []
    for item in c.messages:
        m = item.message
        reply_id = f"bot:{m.message_id}"
        found = [data.deliveries[reply_id]] if reply_id in data.deliveries else []
        found += [data.deliveries[d.private_reply_id] for d in found if d.private_reply_id in data.deliveries]
        messages.append(
            MessageView(
                message_id=m.message_id,
                at=stamp(m.sent_at),
                author=m.author.handle or m.author.display_name or m.author.id,
                role=ROLE_NAMES.get(item.role, DASH),
                visibility="private" if m.visibility == common_pb2.VISIBILITY_PRIVATE else "public",
                direction="outbound" if m.direction == common_pb2.DIRECTION_OUTBOUND else "inbound",
                text=m.text,
                triage=triage_view(item.triage) if item.HasField("triage") else None,
                decision=decision_view(item.routing) if item.HasField("routing") else None,
                deliveries=[delivery_view(d) for d in found],
            )
        )
    p = c.profile
    metrics = c.metrics
    return ConversationView(
        conversation_id=c.conversation_id,
        channel=channel_name(c.channel),
        state=STATE_NAMES.get(c.state, DASH),
        intent=intent_name(c.intent),
        topic=c.topic or DASH,
        opened=stamp(c.opened_at),
        updated=stamp(c.updated_at),
        moved_to_private=c.moved_to_private,
        reopen_count=c.reopen_count,
        agents=list(c.agents),
        participants=[
            (x.author.handle or x.author.display_name or x.author.id, ROLE_NAMES.get(x.role, DASH))
            for x in c.participants
        ],
        profile=[
            ("person", p.person_id or DASH),
            (
                "identities",
                ", ".join(f"{channel_name(i.channel)}:{i.author_id}" for i in p.identities) or DASH,
            ),
            ("followers", f"{p.follower_count:,}"),
            ("verified", "yes" if p.verified else "no"),
            ("tier", p.tier or DASH),
        ],
        past_conversations=[
            (pc.conversation_id, intent_name(pc.intent), STATE_NAMES.get(pc.state, DASH))
            for pc in p.conversations
            if pc.conversation_id != c.conversation_id
        ],
        messages=messages,
        audit=[audit_view(a) for a in data.audit],
        metrics=[
            ("first response", duration(_optional(metrics, "first_response_seconds"))),
            ("bot first response", duration(_optional(metrics, "bot_first_response_seconds"))),
            ("human first response", duration(_optional(metrics, "human_first_response_seconds"))),
            ("handling", duration(metrics.handling_seconds) if metrics.agents_touched else DASH),
            ("resolution", duration(_optional(metrics, "resolution_seconds"))),
            ("SLA", conversations_pb2.SlaStatus.Name(metrics.sla).removeprefix("SLA_STATUS_").lower()),
        ],
    )


def _optional(message: conversations_pb2.ConversationMetrics, name: str) -> float | None:
    return getattr(message, name) if message.HasField(name) else None


# ----------------------------------------------------------------------------------------- pipeline


@dataclass(frozen=True)
class PartitionRow:
    partition: int
    backlog: int
    pending: int
    lag: int
    oldest: str


@dataclass(frozen=True)
class DeadLetterRow:
    message_id: str
    partition: int
    stage: str
    reason: str
    channel: str
    author: str
    text: str


@dataclass(frozen=True)
class PipelineView:
    partitions: list[PartitionRow]
    backlog: int
    dead_letters: list[DeadLetterRow]
    dead_letter_count: int
    health: list[tuple[str, str]]
    all_serving: bool


def pipeline_view(data: PipelineData) -> PipelineView:
    status = data.pipeline
    return PipelineView(
        partitions=[
            PartitionRow(
                p.partition,
                p.backlog,
                p.pending,
                p.lag,
                duration(p.oldest_age_seconds) if p.backlog else DASH,
            )
            for p in status.partitions
        ],
        backlog=sum(p.backlog for p in status.partitions),
        dead_letters=[
            DeadLetterRow(
                message_id=d.message_id,
                partition=d.partition,
                stage=d.stage or DASH,
                reason=d.reason,
                channel=channel_name(d.message.channel),
                author=d.message.author.handle or d.message.author.id,
                text=d.message.text,
            )
            for d in status.dead_letters
        ],
        dead_letter_count=status.dead_letter_count,
        health=sorted(data.health.items()),
        all_serving=all(v == "serving" for v in data.health.values()),
    )
