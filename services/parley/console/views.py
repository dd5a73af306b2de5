"""The console's pure core: API responses in, view models out (plain strings and numbers, no HTML).

Every page is built by one function here from what the client fetched, so tests call them directly with
protobuf messages. Text from customers stays raw here; `pages` escapes it when it writes HTML.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from google.protobuf.timestamp_pb2 import Timestamp

from parley.clock import from_timestamp
from parley.console.client import FloorData, PipelineData, TrafficData
from parley.messages import CHANNEL_NAMES, INTENT_NAMES
from parley.v1 import common_pb2, conversations_pb2, dispatch_pb2

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


def stamp(ts: Timestamp) -> str:
    return clock_time(from_timestamp(ts))


def channel_name(value: common_pb2.Channel) -> str:
    return CHANNEL_NAMES.get(value, "unspecified")


def intent_name(value: common_pb2.Intent) -> str:
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
class WorkerRow:
    name: str
    pending: int
    idle: str
    # ok, or warn when it has not read for longer than a pending entry may idle before it is re-claimed
    status: str


@dataclass(frozen=True)
class PipelineView:
    workers: list[WorkerRow]
    partitions: list[PartitionRow]
    backlog: int
    dead_letters: list[DeadLetterRow]
    dead_letter_count: int
    health: list[tuple[str, str]]
    all_serving: bool


def pipeline_view(data: PipelineData, claim_idle_seconds: float = 30.0) -> PipelineView:
    status = data.pipeline
    return PipelineView(
        workers=[
            WorkerRow(
                w.name,
                w.pending,
                duration(w.idle_seconds),
                "warn" if w.idle_seconds > claim_idle_seconds else "ok",
            )
            for w in status.workers
        ],
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
