"""The conversation page's view model: the thread with each message's triage, decision and deliveries, the
routing audit, participants and the customer's profile (pure: API responses in, plain values out)."""

from __future__ import annotations

from dataclasses import dataclass

from parley.console.client import ConversationData
from parley.console.views import (
    ACTION_NAMES,
    DASH,
    DELIVERY_NAMES,
    ROLE_NAMES,
    STATE_NAMES,
    channel_name,
    duration,
    intent_name,
    stamp,
)
from parley.v1 import common_pb2, conversations_pb2, dispatch_pb2, router_pb2


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
