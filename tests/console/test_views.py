"""The console's pure core: API responses in, view models and HTML out, checked without any server."""

from __future__ import annotations

import re

from parley.clock import to_timestamp
from parley.console import pages, views
from parley.console.client import ConversationData, FloorData, PipelineData, TrafficData
from parley.console.conversation import conversation_view
from parley.v1 import common_pb2, conversations_pb2, dispatch_pb2, ingestion_pb2, router_pb2

T0 = 1_800_000_000.0
EVIL = '<script>alert(1)</script><img src=x onerror=alert(2)> & "quotes"'


def summary(cid: str, handle: str = "ann", team: str = "billing") -> conversations_pb2.ConversationSummary:
    return conversations_pb2.ConversationSummary(
        conversation_id=cid,
        channel=common_pb2.CHANNEL_X,
        state=conversations_pb2.CONVERSATION_STATE_QUEUED,
        owner=common_pb2.Author(id="1", handle=handle),
        message_count=2,
        intent=common_pb2.INTENT_COMPLAINT,
        topic="billing",
        team=team,
    )


def floor_data() -> FloorData:
    return FloorData(
        queues=[
            router_pb2.QueueStatus(
                team="billing",
                depth=4,
                oldest_wait_seconds=185,
                sla_at_risk=1,
                agents_online=2,
                sla_breached=0,
                agents_available=1,
                agents_away=1,
                occupancy=0.75,
            ),
            router_pb2.QueueStatus(team="priority", depth=1, oldest_wait_seconds=4000, sla_breached=1),
            router_pb2.QueueStatus(team="travel", agents_online=3, agents_available=3),
        ],
        staffing=[
            router_pb2.QueueStaffing(team="billing", agents_needed=3, arrivals_per_hour=12.5),
            router_pb2.QueueStaffing(team="priority", agents_needed=0),
            router_pb2.QueueStaffing(team="travel", agents_needed=1),
        ],
        today_by_team=[
            conversations_pb2.MetricsGroup(
                key="billing",
                conversations=10,
                sla_met=6,
                sla_missed=2,
                abandoned=1,
                human_first_response_seconds=conversations_pb2.Distribution(count=8, mean=95),
            )
        ],
        recent=[summary("cv-1", handle=EVIL)],
    )


def test_floor_rows_carry_queue_figures_and_todays_service():
    view = views.floor_view(floor_data())
    billing, priority, travel = view.queues
    assert (billing.depth, billing.sla_at_risk, billing.agents_online) == (4, 1, 2)
    assert (billing.agents_available, billing.agents_away, billing.occupancy) == (1, 1, "75%")
    assert billing.longest_wait == "3m 05s"
    assert billing.service_level_today == "75%"  # 6 met of 8 answered or missed
    assert billing.average_speed_of_answer == "1m 35s"
    assert billing.abandonment == "10%"
    assert (billing.agents_needed, billing.staffing_advice, billing.status) == (3, "1 more needed", "warn")
    assert priority.status == "bad" and priority.longest_wait == "1h 06m"
    assert priority.service_level_today == views.DASH and priority.occupancy == views.DASH
    assert (travel.staffing_advice, travel.status, travel.longest_wait) == ("2 spare", "ok", views.DASH)
    assert (view.waiting, view.at_risk, view.breached) == (5, 1, 1)


def test_durations_and_percentages():
    assert [views.duration(s) for s in (None, 0, 59.6, 60, 3599, 3600, 90_000)] == [
        "—",
        "0s",
        "1m 00s",
        "1m 00s",
        "59m 59s",
        "1h 00m",
        "1d 1h",
    ]
    assert views.percent(1, 3) == "33%" and views.percent(1, 0) == views.DASH


def message(
    pid: str, at: float, channel: int = common_pb2.CHANNEL_X, outbound: bool = False
) -> common_pb2.InboundMessage:
    return common_pb2.InboundMessage(
        channel=channel,
        platform_message_id=pid,
        message_id=f"x:{pid}",
        author=common_pb2.Author(id="1", handle="ann"),
        text=f"text {pid}",
        sent_at=to_timestamp(at),
        direction=common_pb2.DIRECTION_OUTBOUND if outbound else common_pb2.DIRECTION_INBOUND,
    )


def triaged(m: common_pb2.InboundMessage, intent: int, topic: str, **routing: object):
    item = conversations_pb2.ConversationMessage(
        message=m, triage=common_pb2.Triage(message_id=m.message_id, intent=intent, topic=topic)
    )
    if routing:
        item.routing.CopyFrom(common_pb2.RoutingDecision(**routing))  # type: ignore[arg-type]
    return item


def test_volume_counts_customer_messages_per_bucket_and_dimension():
    conversation = conversations_pb2.Conversation(
        messages=[
            triaged(message("1", T0), common_pb2.INTENT_QUESTION, "hours"),
            triaged(message("2", T0 + 50), common_pb2.INTENT_COMPLAINT, "billing"),
            conversations_pb2.ConversationMessage(message=message("3", T0 + 60, outbound=True)),
            triaged(
                message("4", T0 + 100, common_pb2.CHANNEL_MESSENGER), common_pb2.INTENT_QUESTION, "hours"
            ),
        ]
    )
    channel, intent, topic = views.volume_series([conversation], buckets=4)
    assert channel.counts == {"messenger": [0, 0, 0, 1], "x": [1, 0, 1, 0]}
    assert intent.counts == {"complaint": [0, 0, 1, 0], "question": [1, 0, 0, 1]}
    assert topic.counts == {"billing": [0, 0, 1, 0], "hours": [1, 0, 0, 1]}
    assert len(channel.bucket_labels) == 4
    assert views.volume_series([], buckets=4)[0].counts == {}


def test_traffic_counts_bot_answers_and_abstentions_and_rates():
    bot = common_pb2.ROUTE_ACTION_BOT_REPLY
    conversation = conversations_pb2.Conversation(
        messages=[
            triaged(message("1", T0), common_pb2.INTENT_QUESTION, "hours", action=bot),
            triaged(message("2", T0), common_pb2.INTENT_QUESTION, "hours", action=2),  # abstained
            triaged(message("3", T0), common_pb2.INTENT_COMPLAINT, "billing", action=2),  # not the bot's
        ]
    )
    overall = conversations_pb2.MetricsGroup(
        key="all",
        conversations=8,
        reopened=2,
        moved_to_private=1,
        bot_first_response_seconds=conversations_pb2.Distribution(count=1, mean=4, p50=4, p90=4, p99=4),
    )
    groups = {"channel": [conversations_pb2.MetricsGroup(key="x", conversations=8)]}
    view = views.traffic_view(TrafficData(overall, groups, [conversation]))
    assert (view.bot_answered, view.bot_abstained) == (1, 1)
    assert (view.reopen_rate, view.moved_rate, view.conversations) == ("25%", "12%", 8)
    bot_row = next(t for t in view.timings if t.name == "first response, bot")
    assert (bot_row.count, bot_row.p90) == (1, "4s")
    assert view.breakdowns == {"channel": [("x", 8)]}
    html = pages.traffic_page(view)
    assert html.count("<svg") >= 2


def conversation_data() -> ConversationData:
    m = message("1", T0)
    m.text = EVIL
    m.author.handle = EVIL
    item = conversations_pb2.ConversationMessage(
        message=m,
        role=conversations_pb2.PARTICIPANT_ROLE_OWNER,
        triage=common_pb2.Triage(
            intent=common_pb2.INTENT_QUESTION,
            scores=[
                common_pb2.IntentScore(intent=common_pb2.INTENT_COMPLAINT, probability=0.2),
                common_pb2.IntentScore(intent=common_pb2.INTENT_QUESTION, probability=0.7),
            ],
            entities=[common_pb2.Entity(type="order_number", text=EVIL)],
            urgency_reasons=[EVIL],
            bot_answer=common_pb2.BotAnswer(answer_id="hours", confidence=0.9),
        ),
        routing=common_pb2.RoutingDecision(
            action=common_pb2.ROUTE_ACTION_BOT_REPLY, rule="bot_question", bot_reply_text=EVIL, reason=EVIL
        ),
    )
    audit = router_pb2.RoutingAudit(
        kind="route",
        message_id="x:1",
        rule="bot_question",
        priority_parts={"intent": 10.0},
        candidates=[router_pb2.AuditCandidate(agent_id="sue", capacity=2, load=1, eligible=True, note=EVIL)],
        why=EVIL,
    )
    delivery = dispatch_pb2.Delivery(
        reply_id="bot:x:1",
        status=dispatch_pb2.DELIVERY_STATUS_SENT,
        attempts=1,
        platform_message_ids=["777"],
    )
    conversation = conversations_pb2.Conversation(
        conversation_id="cv-1",
        messages=[item],
        participants=[conversations_pb2.Participant(author=m.author, role=1)],
        profile=conversations_pb2.CustomerProfile(person_id="x:1", tier=EVIL),
    )
    return ConversationData(conversation, [audit], {"bot:x:1": delivery})


def test_conversation_view_has_triage_decision_audit_and_delivery():
    view = conversation_view(conversation_data())
    (m,) = view.messages
    assert m.triage is not None and m.triage.scores[0] == ("question", 0.7)
    assert m.triage.bot_answer == "answer hours (0.90)"
    assert m.decision is not None and (m.decision.action, m.decision.rule) == ("bot reply", "bot_question")
    assert [(d.reply_id, d.status, d.platform_ids) for d in m.deliveries] == [("bot:x:1", "sent", ["777"])]
    (audit,) = view.audit
    assert audit.candidates[0]["load"] == "1/2" and audit.priority_parts == [("intent", 10.0)]


def test_every_page_escapes_customer_text():
    html = "".join(
        [
            pages.conversation_page(conversation_view(conversation_data())),
            pages.floor_page(views.floor_view(floor_data())),
            pages.list_page(EVIL, [views.conversation_row(summary("cv-2", EVIL))], EVIL, EVIL),
            pages.pipeline_page(
                views.pipeline_view(
                    PipelineData(
                        ingestion_pb2.GetPipelineResponse(
                            dead_letters=[
                                ingestion_pb2.DeadLetter(
                                    message_id=EVIL, reason=EVIL, message=message("9", T0)
                                )
                            ]
                        ),
                        {"router": "serving"},
                    )
                ),
                EVIL,
            ),
        ]
    )
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The only tags are the console's own: no script but its own file, no image, no event handler.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/console.js" defer>'] * 4
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(2)&gt; &amp; &quot;quotes&quot;" in html  # shown as text


def test_pipeline_view_flags_a_worker_idle_past_the_claim_time():
    status = ingestion_pb2.GetPipelineResponse(
        partitions=[
            ingestion_pb2.PartitionStatus(partition=0, backlog=3, pending=1, lag=2, oldest_age_seconds=75)
        ],
        workers=[
            ingestion_pb2.PipelineWorker(name="w-live", pending=1, idle_seconds=0.2),
            ingestion_pb2.PipelineWorker(name="w-dead", pending=5, idle_seconds=400),
        ],
        dead_letter_count=7,
    )
    view = views.pipeline_view(PipelineData(status, {"router": "serving", "dispatch": "not_serving"}), 30)
    assert [(w.name, w.status, w.idle) for w in view.workers] == [
        ("w-live", "ok", "0s"),
        ("w-dead", "warn", "6m 40s"),
    ]
    assert (view.backlog, view.partitions[0].oldest, view.dead_letter_count) == (3, "1m 15s", 7)
    assert view.all_serving is False
