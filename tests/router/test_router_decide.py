"""The routing decision as pure functions over the policy and a conversation's router state: no Redis."""

from router_testkit import make_item

from parley.router.decide import Candidate, decide, hold_for, rank
from parley.router.policy import load_policy
from parley.v1 import common_pb2

NOW = 1_700_000_000.0
POLICY = load_policy()


def test_a_new_message_is_queued_with_the_state_it_sets():
    decision, fields, _ = decide(POLICY, make_item("c1", "x:1", "complaint", topic="billing"), {}, NOW)
    assert (decision.action, decision.team, decision.rule) == (
        common_pb2.ROUTE_ACTION_QUEUED,
        "billing",
        "complaint_by_topic",
    )
    assert fields["state"] == "queued" and fields["team"] == "billing" and fields["enqueued_at"] == NOW
    assert fields["sla_due"] == decision.sla_due_at.ToSeconds()


def test_a_message_joining_a_waiting_conversation_only_raises_its_priority():
    state = {"state": "queued", "team": "first_line", "priority": "5", "enqueued_at": str(NOW - 60)}
    decision, fields, _ = decide(POLICY, make_item("c1", "x:2", "urgent"), state, NOW)
    assert decision.action == common_pb2.ROUTE_ACTION_APPENDED and decision.team == "first_line"
    assert fields["priority"] > 5 and set(fields) == {"priority", "sla_due"}
    calmer, fields, _ = decide(POLICY, make_item("c1", "x:3", "praise"), {**state, "priority": "90"}, NOW)
    assert calmer.priority == 90 and "raised" not in calmer.reason


def test_the_bot_answers_once_then_a_person_takes_over():
    item = make_item("c1", "x:1", "question", bot_confidence=0.9)
    first, fields, _ = decide(POLICY, item, {}, NOW)
    assert first.action == common_pb2.ROUTE_ACTION_BOT_REPLY and fields["bot_replied"] == 1
    again, _, _ = decide(
        POLICY, make_item("c1", "x:2", "question", bot_confidence=0.9), {"bot_replied": "1"}, NOW
    )
    assert again.action == common_pb2.ROUTE_ACTION_QUEUED


def test_agents_rank_eligible_then_previous_then_skilled_then_least_loaded():
    agents = [
        ("busy", {"presence": "online", "capacity": "1"}, 1),
        ("skilled", {"presence": "online", "capacity": "4", "skills": "billing"}, 2),
        ("light", {"presence": "online", "capacity": "4"}, 0),
        ("before", {"presence": "online", "capacity": "4"}, 3),
    ]
    state = {"topic": "billing", "last_agent": "before"}
    assert [c.agent_id for c in rank(agents, state)] == ["before", "skilled", "light", "busy"]


def test_a_reopened_conversation_waits_for_its_previous_agent_only_within_the_grace_period():
    away = Candidate("ann", "offline", 0, 2, skill_match=False, sticky=True, declined=False)
    profiles = {"ann": {"teams": "first_line"}}
    grace = POLICY.presence.offline_grace_seconds
    held = hold_for(POLICY, "first_line", [away], profiles, {"ann": NOW - 1}, NOW)
    assert held is not None and held[0] is away and "grace period" in held[1]
    assert hold_for(POLICY, "first_line", [away], profiles, {"ann": NOW - grace - 1}, NOW) is None
    assert hold_for(POLICY, "billing", [away], profiles, {"ann": NOW - 1}, NOW) is None  # not her team


def test_a_message_flagged_for_urgent_review_goes_to_the_priority_queue_whatever_its_intent():
    for intent in ("question", "complaint", "praise", "other"):
        item = make_item("c1", "x:1", intent, topic="billing", bot_confidence=0.99)
        item.triage.urgent_review = True
        decision, fields, _ = decide(POLICY, item, {}, NOW)
        assert (decision.action, decision.team, decision.rule) == (
            common_pb2.ROUTE_ACTION_QUEUED,
            "priority",
            "urgent_review",
        ), intent
        assert "bot_replied" not in fields
    unflagged, _, _ = decide(POLICY, make_item("c1", "x:1", "question", bot_confidence=0.99), {}, NOW)
    assert unflagged.action == common_pb2.ROUTE_ACTION_BOT_REPLY
