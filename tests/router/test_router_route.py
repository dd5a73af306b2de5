"""Routing rules, priority, idempotency, the bot's one reply, and appending to a conversation in progress."""

import asyncio

import pytest
from router_testkit import events_of, make_item

from parley import lua
from parley.clock import from_timestamp
from parley.router.common import PENDING
from parley.router.core import Router
from parley.router.keys import RouterKeys
from parley.router.policy import load_policy, parse_policy
from parley.store import Keys, Redis, Replicas, connect
from parley.v1 import common_pb2

QUEUED = common_pb2.ROUTE_ACTION_QUEUED
BOT = common_pb2.ROUTE_ACTION_BOT_REPLY
NONE = common_pb2.ROUTE_ACTION_NO_ACTION
APPENDED = common_pb2.ROUTE_ACTION_APPENDED


async def route_one(router: Router, *args, **kwargs) -> common_pb2.RoutingDecision:
    (decision,) = await router.route([make_item(*args, **kwargs)])
    return decision


@pytest.mark.parametrize(
    ("intent", "kwargs", "action", "team", "rule"),
    [
        ("urgent", {"topic": "billing", "bot_confidence": 0.99}, QUEUED, "priority", "urgent"),
        ("complaint", {"topic": "billing", "bot_confidence": 0.99}, QUEUED, "billing", "complaint_by_topic"),
        ("complaint", {"topic": "delivery"}, QUEUED, "orders_delivery", "complaint_by_topic"),
        ("complaint", {"topic": "login"}, QUEUED, "account_access", "complaint_by_topic"),
        ("complaint", {"topic": "flights"}, QUEUED, "travel", "complaint_by_topic"),
        ("complaint", {"topic": "app"}, QUEUED, "technical", "complaint_by_topic"),
        ("complaint", {"topic": "weather"}, QUEUED, "first_line", "complaint_first_line"),
        ("complaint", {"topic": "general"}, QUEUED, "first_line", "complaint_first_line"),
        ("question", {"bot_confidence": 0.9}, BOT, "", "question_bot"),
        (
            "question",
            {"bot_confidence": 0.9, "bot_channels": (common_pb2.CHANNEL_X,)},
            BOT,
            "",
            "question_bot",
        ),
        ("question", {"bot_confidence": 0.5}, QUEUED, "first_line", "question_first_line"),
        (
            "question",
            {"bot_confidence": 0.9, "bot_channels": (common_pb2.CHANNEL_WHATSAPP,)},
            QUEUED,
            "first_line",
            "question_first_line",
        ),
        ("question", {}, QUEUED, "first_line", "question_first_line"),
        ("praise", {}, QUEUED, "first_line", "praise"),
        ("other", {"bot_confidence": 0.99}, NONE, "", "other"),
    ],
)
async def test_each_rule(router: Router, intent, kwargs, action, team, rule):
    decision = await route_one(router, "c1", "x:1", intent, **kwargs)
    assert (decision.action, decision.team, decision.rule) == (action, team, rule)
    assert decision.reason and decision.conversation_id == "c1" and decision.message_id == "x:1"
    if action == QUEUED:
        assert decision.tier == router.policy.team(team).tier
        assert decision.priority > 0
    if action == BOT:
        assert decision.bot_reply_text and decision.bot_answer_id == "kb-1"


async def test_queued_decision_puts_the_conversation_in_its_team_queue_with_an_sla(
    router: Router, redis: Redis, keys: Keys, clock
):
    decision = await route_one(router, "c1", "x:1", "urgent", public=True, followers=10_000)
    k = RouterKeys(keys)
    assert await redis.zscore(k.queue("priority"), "c1") == decision.priority
    # 80 urgent + 10 public + 3 per decade of followers (4 decades)
    assert decision.priority == pytest.approx(80 + 10 + 12, abs=0.01)
    assert from_timestamp(decision.sla_due_at) == pytest.approx(clock.now() + 900)


async def test_rule_conditions_on_visibility_followers_and_confidence(settings, redis, keys, clock):
    data = load_policy().model_dump()
    data["rules"] = [
        {
            "name": "reach",
            "when": {"visibility": "public", "min_followers": 1000},
            "then": {"action": "queue", "team": "priority"},
        },
        {
            "name": "sure_complaint",
            "when": {"intents": ["complaint"], "min_confidence": 0.8},
            "then": {"action": "queue", "team": "technical"},
        },
        {
            "name": "billing_topic",
            "when": {"topics": ["billing"]},
            "then": {"action": "queue", "team": "billing"},
        },
        {"name": "rest", "then": {"action": "no_action"}},
    ]
    router = Router(settings, redis, keys, clock, parse_policy(data))
    cases = [
        (make_item("a", "x:a", "praise", public=True, followers=5000), "reach"),
        (make_item("b", "x:b", "praise", public=False, followers=5000), "rest"),
        (make_item("c", "x:c", "praise", public=True, followers=10), "rest"),
        (make_item("d", "x:d", "complaint", confidence=0.9), "sure_complaint"),
        (make_item("e", "x:e", "complaint", confidence=0.7, topic="billing"), "billing_topic"),
    ]
    decisions = await router.route([item for item, _ in cases])
    assert [d.rule for d in decisions] == [rule for _, rule in cases]


async def test_rerouting_a_message_returns_the_stored_decision_without_a_second_effect(
    router: Router, redis: Redis, keys: Keys, clock
):
    k = RouterKeys(keys)
    first = await route_one(router, "c1", "x:1", "complaint", topic="billing")
    clock.advance(60)
    again = await router.route([make_item("c1", "x:1", "complaint", topic="billing")] * 2)
    assert again == [first, first]
    assert await redis.zcard(k.queue("billing")) == 1
    routed = await events_of(redis, keys, "conversation.routed")
    assert len(routed) == 1
    assert routed[0]["attrs"] == {
        "action": "ROUTE_ACTION_QUEUED",
        "team": "billing",
        "tier": "specialist",
        "rule": "complaint_by_topic",
        "priority": first.priority,
        "why": first.reason,
    }


async def test_the_bot_answers_once_per_conversation(router: Router, redis: Redis, keys: Keys):
    first = await route_one(router, "c1", "x:1", "question", bot_confidence=0.95)
    second = await route_one(router, "c1", "x:2", "question", bot_confidence=0.95)
    assert first.action == BOT
    assert (second.action, second.team) == (QUEUED, "first_line")
    assert "does not answer" in second.reason
    # Another conversation still gets its one bot reply.
    assert (await route_one(router, "c2", "x:3", "question", bot_confidence=0.95)).action == BOT


async def test_any_message_after_the_bot_reply_goes_to_a_person(router: Router):
    await route_one(router, "c1", "x:1", "question", bot_confidence=0.95)
    after = await route_one(router, "c1", "x:2", "other")
    assert (after.action, after.team, after.rule) == (QUEUED, "first_line", "after_bot_reply")


async def test_a_conversation_in_a_queue_is_appended_to_and_its_priority_rises(
    router: Router, redis: Redis, keys: Keys
):
    k = RouterKeys(keys)
    complaint = await route_one(router, "c1", "x:1", "complaint", topic="billing")
    urgent = await route_one(router, "c1", "x:2", "urgent", topic="billing")
    assert urgent.action == APPENDED and urgent.team == "billing"
    assert urgent.priority > complaint.priority
    assert from_timestamp(urgent.sla_due_at) < from_timestamp(complaint.sla_due_at)
    assert await redis.zcard(k.queue("billing")) == 1
    assert await redis.zscore(k.queue("billing"), "c1") == urgent.priority
    assert await redis.zcard(k.queue("priority")) == 0
    # A lower-priority follow-up never lowers it.
    praise = await route_one(router, "c1", "x:3", "praise")
    assert praise.action == APPENDED and praise.priority == urgent.priority


async def test_messages_of_one_conversation_in_one_batch_are_decided_in_order(router: Router, redis, keys):
    decisions = await router.route(
        [
            make_item("c1", "x:1", "complaint", topic="travel"),
            make_item("c1", "x:2", "complaint", topic="travel"),
        ]
    )
    assert [d.action for d in decisions] == [QUEUED, APPENDED]
    assert await redis.zcard(RouterKeys(keys).queue("travel")) == 1


async def test_priority_orders_reach_visibility_and_customer_tier(router: Router):
    quiet = await route_one(router, "a", "x:a", "complaint", topic="billing")
    loud = await route_one(router, "b", "x:b", "complaint", topic="billing", public=True, followers=50_000)
    vip = await route_one(router, "c", "x:c", "complaint", topic="billing", customer_tier="vip")
    praise = await route_one(router, "d", "x:d", "praise")
    assert praise.priority < quiet.priority < vip.priority < loud.priority


async def test_concurrent_routes_of_one_message_queue_once(settings, redis, keys, clock):
    clients = [connect(settings) for _ in range(4)]
    try:
        routers = [Router(settings, c, keys, clock) for c in clients]
        item = make_item("c1", "x:1", "complaint", topic="billing")
        results = await asyncio.gather(*(r.route([item]) for r in routers for _ in range(3)))
    finally:
        for c in clients:
            await c.aclose()
    assert len({d[0].SerializeToString() for d in results}) == 1
    assert len(await events_of(redis, keys, "conversation.routed")) == 1


async def test_a_decision_stored_by_a_router_that_died_gets_its_effects_written_once(
    router: Router, redis: Redis, keys: Keys, clock, monkeypatch
):
    k = RouterKeys(keys)
    write_effects = router.routing.apply_route_effects

    async def die(*args, **kwargs):
        raise ConnectionError("router died after storing its decision")

    monkeypatch.setattr(router.routing, "apply_route_effects", die)
    with pytest.raises(ConnectionError):
        await route_one(router, "c1", "x:1", "complaint", topic="billing")
    monkeypatch.setattr(router.routing, "apply_route_effects", write_effects)

    # The call that stored it failed and will not come back: the next call for the message writes them at
    # once (waiting out a lease would let the worker ack a message whose conversation no queue holds).
    stored = await route_one(router, "c1", "x:1", "complaint", topic="billing")
    assert stored.action == QUEUED
    assert await redis.zscore(k.queue("billing"), "c1") == stored.priority
    assert not await redis.hexists(k.state("c1"), PENDING + "x:1")
    clock.advance(router.settings.claim_idle_ms / 1000)
    assert await route_one(router, "c1", "x:1", "complaint", topic="billing") == stored
    assert len(await events_of(redis, keys, "conversation.routed")) == 1


async def test_effects_written_again_after_a_failover_took_back_their_end_are_made_once(
    router: Router, redis: Redis, keys: Keys, clock
):
    """A failover can keep a decision's queue entry and event (other masters) and take back the state change
    that said they were written (its `pending:` field back): the next call writes the effects again, and
    their own marks keep them from being made twice, even after an agent took the conversation from the
    queue."""
    k = RouterKeys(keys)
    stored = await route_one(router, "c1", "x:1", "complaint", topic="billing")
    assert await router.queues.take_from("billing", "c1")
    await redis.hset(k.state("c1"), PENDING + "x:1", str(from_timestamp(stored.decided_at)))
    clock.advance(router.settings.claim_idle_ms / 1000)

    assert await route_one(router, "c1", "x:1", "complaint", topic="billing") == stored
    assert await redis.zscore(k.queue("billing"), "c1") is None
    assert len(await events_of(redis, keys, "conversation.routed")) == 1
    assert not await redis.hexists(k.state("c1"), PENDING + "x:1")


async def test_a_decision_is_kept_before_its_effects_and_its_effects_before_it_stops_being_pending(
    router: Router, redis: Redis, keys: Keys, monkeypatch
):
    """On a cluster each step waits for replicas (`Replicas.confirm`) before the next writes elsewhere, so a
    failover never keeps a later step without the earlier ones: seen here at each wait."""
    k = RouterKeys(keys)
    seen = []

    async def confirm() -> int:
        seen.append(
            (
                await redis.exists(k.decision("c1", "x:1")),
                len(await events_of(redis, keys, "conversation.routed")),
                await redis.zcard(k.queue("billing")),
                await redis.hexists(k.state("c1"), PENDING + "x:1"),
            )
        )
        return 1

    monkeypatch.setattr(router.routing.replicas, "confirm", confirm)
    # As on a cluster with replicas to wait for (one server runs the last steps in one call, in order).
    monkeypatch.setattr(Replicas, "enabled", property(lambda self: True))
    await route_one(router, "c1", "x:1", "complaint", topic="billing")
    # decision, event, queue entry, still pending
    assert seen[:3] == [(1, 0, 0, 1), (1, 1, 1, 1), (1, 1, 1, 0)]


async def test_a_message_routed_for_the_first_time_is_looked_up_in_its_own_conversation_only(
    router: Router, monkeypatch
):
    """A message with no earlier decision has nowhere else to look: no command names another conversation
    (a missing "first routed in" once read as the conversation "None", two wasted commands a message)."""
    named: list[str] = []
    init = lua.Pipeline.__init__

    def noting(self: lua.Pipeline, redis: Redis) -> None:
        init(self, redis)
        queue = self._pipe.execute_command  # every command a pipeline queues, plain or cluster

        def note(*args, **options):
            if len(args) > 1:
                named.append(str(args[1]))
            return queue(*args, **options)

        self._pipe.execute_command = note

    monkeypatch.setattr(lua.Pipeline, "__init__", noting)
    await route_one(router, "c1", "x:1", "complaint", topic="billing")
    conversations = {key.split("router:conv:", 1)[1].split("}")[0] for key in named if "router:conv:{" in key}
    assert conversations == {"{c1"}
