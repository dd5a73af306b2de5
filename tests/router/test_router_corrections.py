"""CorrectTriage on the desk API, over real gRPC: who may correct, what is stored, and where it shows."""

import grpc
import pytest
from conversations.builders import store_messages_as_earlier_versions_did
from router_testkit import events_of, make_item

from parley.clock import ManualClock, to_timestamp
from parley.conversations.core import Conversations
from parley.conversations.store import conversation_id_for
from parley.corrections import hand_labels
from parley.rpc import field_violations
from parley.v1 import common_pb2, conversations_pb2, router_pb2

T0 = 1_700_000_000.0


async def assigned_conversation(settings, redis, keys, stub) -> tuple[Conversations, str]:
    """A conversation of one customer message, triaged `question`/`billing`, assigned to agent sue."""
    core = Conversations(settings, redis, keys, ManualClock(T0))
    message = common_pb2.InboundMessage(
        channel=common_pb2.CHANNEL_X,
        visibility=common_pb2.VISIBILITY_PUBLIC,
        platform_message_id="1",
        message_id="x:1",
        brand_account_id="brand-1",
        author=common_pb2.Author(id="alice", handle="alice"),
        text="someone keeps using my card, what do I do",
        sent_at=to_timestamp(T0),
        direction=common_pb2.DIRECTION_INBOUND,
    )
    [threaded] = await core.thread([message])
    cid = threaded.conversation_id
    assert cid == conversation_id_for("x:1")
    await core.record_outcomes(
        [
            conversations_pb2.Outcome(
                conversation_id=cid,
                message_id="x:1",
                triage=common_pb2.Triage(
                    message_id="x:1", intent=common_pb2.INTENT_QUESTION, topic="billing", urgent_review=False
                ),
                routing=common_pb2.RoutingDecision(
                    conversation_id=cid,
                    message_id="x:1",
                    action=common_pb2.ROUTE_ACTION_QUEUED,
                    decided_at=to_timestamp(T0 + 1),
                ),
            )
        ]
    )
    routed = await stub.Route(router_pb2.RouteRequest(items=[make_item(cid, "x:1", "complaint")]))
    team = routed.decisions[0].team
    online = await stub.SetPresence(
        router_pb2.SetPresenceRequest(agent_id="sue", presence=router_pb2.PRESENCE_ONLINE, teams=[team])
    )
    assert [a.conversation_id for a in online.assignments] == [cid]
    return core, cid


async def test_agent_corrects_own_conversation_supervisor_any(settings, redis, keys, stub):
    core, cid = await assigned_conversation(settings, redis, keys, stub)
    fix = router_pb2.CorrectTriageRequest(
        conversation_id=cid, message_id="x:1", agent_id="bob", intent=common_pb2.INTENT_URGENT
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.CorrectTriage(fix)  # bob is not the assigned agent
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    fix.agent_id = "sue"
    first = (await stub.CorrectTriage(fix)).correction
    assert (first.intent, first.corrected_by, first.by_supervisor) == (common_pb2.INTENT_URGENT, "sue", False)
    assert (first.previous_intent, first.previous_topic) == (common_pb2.INTENT_QUESTION, "billing")
    assert first.corrected_at.seconds > 0 and not first.HasField("urgent")
    again = (await stub.CorrectTriage(fix)).correction  # a retried call records nothing new
    assert again == first

    boss = router_pb2.CorrectTriageRequest(
        conversation_id=cid,
        message_id="x:1",
        agent_id="boss",
        supervisor=True,
        topic="account_access",
        urgent=True,
    )
    second = (await stub.CorrectTriage(boss)).correction
    assert second.by_supervisor and second.topic == "account_access" and second.urgent

    conv = await core.get(cid)
    assert [(c.corrected_by, c.intent, c.topic) for c in conv.corrections] == [
        ("sue", common_pb2.INTENT_URGENT, ""),
        ("boss", common_pb2.INTENT_UNSPECIFIED, "account_access"),
    ]
    [group] = await core.metrics(T0 - 1, T0 + 10)
    assert group.triage_corrections == 2
    assert len(await events_of(redis, keys, "triage.corrected")) == 2

    # Exported as one hand label: the latest correction, the classifier's intent replaced by what the
    # supervisor judged (urgent), the corrected topic, and who made it.
    [label] = await hand_labels(redis, keys)
    assert (label["id"], label["intent"], label["topic"]) == ("x:1", "urgent", "account_access")
    assert label["text"] == "someone keeps using my card, what do I do"
    assert label["source"].startswith("desk correction by supervisor boss")
    # A message stored by an earlier version (body apart from its role) is exported the same.
    await store_messages_as_earlier_versions_did(redis, keys, cid)
    assert await hand_labels(redis, keys) == [label]


async def test_bad_corrections_are_refused_with_the_field(settings, redis, keys, stub):
    _, cid = await assigned_conversation(settings, redis, keys, stub)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.CorrectTriage(
            router_pb2.CorrectTriageRequest(conversation_id=cid, message_id="x:1", agent_id="sue")
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error.value)] == ["intent"]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.CorrectTriage(
            router_pb2.CorrectTriageRequest(
                conversation_id=cid, message_id="x:1", agent_id="sue", topic="weather"
            )
        )
    assert [f for f, _ in field_violations(error.value)] == ["topic"]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.CorrectTriage(
            router_pb2.CorrectTriageRequest(message_id="x:1", intent=common_pb2.INTENT_OTHER)
        )
    assert {f for f, _ in field_violations(error.value)} == {"conversation_id", "agent_id"}
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.CorrectTriage(
            router_pb2.CorrectTriageRequest(
                conversation_id=cid, message_id="x:9", agent_id="sue", intent=common_pb2.INTENT_OTHER
            )
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
