"""Conversation metrics: each conversation's from its record, and distributions over the conversations
opened in a window, grouped by channel, intent, topic or team."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from parley import lua
from parley.clock import Clock, to_timestamp
from parley.messages import channel_name, intent_name
from parley.recent import Recent
from parley.rpc import InvalidArgument
from parley.store import Redis
from parley.v1 import conversations_pb2

from .scripts import Scripts
from .store import ConversationKeys, as_text

GROUP_BY = ("", "channel", "intent", "topic", "team")
METRIC_FIELDS = [
    "channel",
    "intent",
    "topic",
    "team",
    "state",
    "opened_at",
    "first_inbound_at",
    "first_response_at",
    "bot_first_response_at",
    "human_first_response_at",
    "handling",
    "work_since",
    "resolved_at",
    "reopen_count",
    "moved_to_private",
    "sla_due_at",
]
STATE_ASSIGNED = conversations_pb2.CONVERSATION_STATE_ASSIGNED
STATE_RESOLVED = conversations_pb2.CONVERSATION_STATE_RESOLVED


# Conversations read per round trip: bounds the pipeline and the replies held at once, whatever the window.
READ_CHUNK = 2_000


@dataclass(frozen=True)
class Entry:
    """One conversation of a window: its group under each grouping, its metrics, what the groups count."""

    groups: dict[str, str]  # group_by -> this conversation's group
    metrics: conversations_pb2.ConversationMetrics
    abandoned: bool
    corrections: int


class MetricsReader:
    def __init__(self, redis: Redis, keys: ConversationKeys, clock: Clock, scripts: Scripts) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.scripts = scripts
        self.chunk = READ_CHUNK
        # Calls for the same window while it is being read share that read (the console asks for several
        # groupings of one window at once); nothing is kept once it is done.
        self.reads: Recent[list[Entry]] = Recent(0.0)

    async def metrics(
        self, start: float, end: float | None, group_by: str = ""
    ) -> list[conversations_pb2.MetricsGroup]:
        """Metrics of the conversations opened in [start, end) (end None: up to now), one group per value of
        `group_by`."""
        if group_by not in GROUP_BY:
            raise InvalidArgument([("group_by", f"must be one of {', '.join(repr(g) for g in GROUP_BY)}")])
        entries = await self.reads.get(lambda: self._read(start, end), key=(start, end))
        groups: dict[str, list[Entry]] = {}
        for entry in entries:
            groups.setdefault(entry.groups[group_by], []).append(entry)
        return [_group(key, members) for key, members in sorted(groups.items())]

    async def _read(self, start: float, end: float | None) -> list[Entry]:
        k = self.keys
        now = self.clock.now()
        upper = now + 1 if end is None else end  # as before: a conversation sent from the future is left out
        # The opened-time index bounds the read to the conversations of the window.
        async with lua.pipeline(self.redis) as pipe:
            for index in k.opened_partitions():
                pipe.zrangebyscore(index, start, f"({upper!r}")
            found = await pipe.execute()
        cids = [as_text(c) for part in found for c in part]
        fields = len(METRIC_FIELDS)
        entries = []
        for first in range(0, len(cids), self.chunk):
            # One script call per conversation: its record's fields and its three counts.
            async with lua.pipeline(self.redis) as pipe:
                for cid in cids[first : first + self.chunk]:
                    keys = [k.meta(cid), k.messages(cid), k.agents(cid), k.corrections(cid)]
                    await self.scripts.metrics(keys=keys, args=METRIC_FIELDS, client=pipe)
                rows = await pipe.execute()
            for raw in rows:
                row = {f: as_text(v) for f, v in zip(METRIC_FIELDS, raw, strict=False) if v is not None}
                if not row.get("channel"):
                    continue
                messages, agents, corrections = raw[fields : fields + 3]
                entries.append(
                    Entry(
                        {g: _group_key(g, row) for g in GROUP_BY},
                        conversation_metrics(row, messages, agents, now),
                        is_abandoned(row),
                        corrections,
                    )
                )
        return entries


def _group(key: str, members: list[Entry]) -> conversations_pb2.MetricsGroup:
    items = [e.metrics for e in members]

    def dist(name: str) -> conversations_pb2.Distribution:
        return distribution(getattr(m, name) for m in items if m.HasField(name))

    return conversations_pb2.MetricsGroup(
        key=key,
        conversations=len(items),
        first_response_seconds=dist("first_response_seconds"),
        bot_first_response_seconds=dist("bot_first_response_seconds"),
        human_first_response_seconds=dist("human_first_response_seconds"),
        handling_seconds=distribution(m.handling_seconds for m in items if m.agents_touched),
        resolution_seconds=dist("resolution_seconds"),
        messages=distribution(float(m.messages) for m in items),
        agents_touched=distribution(float(m.agents_touched) for m in items),
        reopened=sum(1 for m in items if m.reopen_count),
        moved_to_private=sum(1 for m in items if m.moved_to_private),
        sla_met=sum(1 for m in items if m.sla == conversations_pb2.SLA_STATUS_MET),
        sla_missed=sum(1 for m in items if m.sla == conversations_pb2.SLA_STATUS_MISSED),
        triage_corrections=sum(e.corrections for e in members),
        abandoned=sum(1 for e in members if e.abandoned),
    )


def is_abandoned(meta: dict[str, str]) -> bool:
    """Sent to a team, then closed without a single reply from the brand (the customer gave up)."""
    return bool(
        meta.get("team")
        and int(meta.get("state") or 0) == STATE_RESOLVED
        and not meta.get("first_response_at")
    )


def conversation_metrics(
    meta: dict[str, str], messages: int, agents: int, now: float
) -> conversations_pb2.ConversationMetrics:
    """One conversation's metrics from its record (durations from the first customer message)."""
    out = conversations_pb2.ConversationMetrics(
        messages=messages,
        agents_touched=agents,
        reopen_count=int(meta.get("reopen_count") or 0),
        moved_to_private=bool(meta.get("moved_to_private")),
    )
    first_in = float(meta["first_inbound_at"]) if meta.get("first_inbound_at") else None
    if first_in is not None:
        for name, f in (
            ("first_response_seconds", "first_response_at"),
            ("bot_first_response_seconds", "bot_first_response_at"),
            ("human_first_response_seconds", "human_first_response_at"),
        ):
            if meta.get(f):
                setattr(out, name, float(meta[f]) - first_in)
    state = int(meta.get("state") or 0)
    out.handling_seconds = float(meta.get("handling") or 0)
    if state == STATE_ASSIGNED and meta.get("work_since"):
        out.handling_seconds += max(0.0, now - float(meta["work_since"]))
    if state == STATE_RESOLVED and meta.get("resolved_at"):
        start = first_in if first_in is not None else float(meta.get("opened_at") or 0)
        out.resolution_seconds = float(meta["resolved_at"]) - start
    if meta.get("sla_due_at"):
        due = float(meta["sla_due_at"])
        out.sla_due_at.CopyFrom(to_timestamp(due))
        answers = [float(meta[f]) for f in ("human_first_response_at", "resolved_at") if meta.get(f)]
        if answers:
            out.sla = (
                conversations_pb2.SLA_STATUS_MET
                if min(answers) <= due
                else conversations_pb2.SLA_STATUS_MISSED
            )
        else:
            out.sla = (
                conversations_pb2.SLA_STATUS_MISSED if now > due else conversations_pb2.SLA_STATUS_PENDING
            )
    return out


def _group_key(group_by: str, row: dict[str, str]) -> str:
    if not group_by:
        return "all"
    value = row.get(group_by, "")
    if group_by == "channel":
        return channel_name(int(value or 0), "unspecified")
    if group_by == "intent":
        return intent_name(int(value or 0), "unspecified")
    return value or "none"


def distribution(values: Iterable[float]) -> conversations_pb2.Distribution:
    """Count, mean and nearest-rank percentiles (the smallest value with at least p% at or below it)."""
    ordered = sorted(values)
    if not ordered:
        return conversations_pb2.Distribution()

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return conversations_pb2.Distribution(
        count=len(ordered), mean=sum(ordered) / len(ordered), p50=rank(50), p90=rank(90), p99=rank(99)
    )
