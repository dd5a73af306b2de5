"""RouterService over real gRPC: the contract, its errors and the assignment stream."""

import asyncio

import grpc
import pytest
from router_testkit import known_conversations, make_item

from parley.router.policy import DEFAULT_POLICY_FILE, PolicyError
from parley.router.server import create_server
from parley.rpc import channel, field_violations
from parley.v1 import common_pb2, router_pb2, router_pb2_grpc


@pytest.fixture(autouse=True)
async def conversations(redis, keys):
    # Route takes only conversations the conversations service opened.
    await known_conversations(redis, keys, "c1", "c2", "c9")


async def invalid(call) -> list[str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return [field for field, _ in field_violations(error.value)]


async def test_route_claim_resolve_round_trip(stub):
    routed = await stub.Route(
        router_pb2.RouteRequest(
            items=[make_item("c1", "x:1", "urgent"), make_item("c2", "x:2", "question", bot_confidence=0.9)]
        )
    )
    assert [d.action for d in routed.decisions] == [
        common_pb2.ROUTE_ACTION_QUEUED,
        common_pb2.ROUTE_ACTION_BOT_REPLY,
    ]
    assert routed.decisions[0].team == "priority" and routed.decisions[0].reason
    again = await stub.Route(router_pb2.RouteRequest(items=[make_item("c1", "x:1", "urgent")]))
    assert again.decisions[0] == routed.decisions[0]

    queues = {q.team: q for q in (await stub.ListQueues(router_pb2.ListQueuesRequest())).queues}
    assert queues["priority"].depth == 1

    await stub.SetPresence(
        router_pb2.SetPresenceRequest(agent_id="sue", presence=router_pb2.PRESENCE_AWAY, teams=["priority"])
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Claim(router_pb2.ClaimRequest(agent_id="sue"))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    online = await stub.SetPresence(
        router_pb2.SetPresenceRequest(agent_id="sue", presence=router_pb2.PRESENCE_ONLINE, capacity=2)
    )
    assert [a.conversation_id for a in online.assignments] == ["c1"]
    nothing = await stub.Claim(router_pb2.ClaimRequest(agent_id="sue"))
    assert not nothing.claimed

    declined = await stub.Decline(router_pb2.DeclineRequest(agent_id="sue", conversation_id="c1"))
    assert declined.team == "priority"
    claimed = await stub.Claim(router_pb2.ClaimRequest(agent_id="sue", conversation_id="c1"))
    assert claimed.claimed and claimed.assignment.team == "priority"
    resolved = await stub.Resolve(router_pb2.ResolveRequest(conversation_id="c1", agent_id="sue"))
    assert resolved.resolved_at.seconds > 0

    staffing = await stub.GetStaffing(
        router_pb2.GetStaffingRequest(service_level=0.8, target_answer_seconds=20)
    )
    (priority,) = [q for q in staffing.queues if q.team == "priority"]
    assert priority.arrivals_per_hour == 1 and priority.agents_needed >= 1 and priority.agents_online == 1


async def test_transfer_and_escalate(stub):
    await stub.Route(router_pb2.RouteRequest(items=[make_item("c1", "x:1", "complaint", topic="weather")]))
    moved = await stub.Transfer(router_pb2.TransferRequest(conversation_id="c1", to_team="billing"))
    assert moved.decision.team == "billing"
    up = await stub.Escalate(router_pb2.EscalateRequest(conversation_id="c1", reason="manager"))
    assert (up.decision.team, up.decision.tier) == ("priority", "supervisor")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Escalate(router_pb2.EscalateRequest(conversation_id="c1"))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Escalate(router_pb2.EscalateRequest(conversation_id="never"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Claim(router_pb2.ClaimRequest(agent_id="nobody"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_invalid_arguments_name_each_field(stub):
    bad_item = make_item("", "x:1", "urgent")
    bad_item.triage.intent = common_pb2.INTENT_UNSPECIFIED
    fields = await invalid(
        stub.Route(router_pb2.RouteRequest(items=[make_item("c1", "x:1", "urgent"), bad_item]))
    )
    assert fields == ["items[1].conversation_id", "items[1].triage.intent"]
    assert await invalid(stub.Route(router_pb2.RouteRequest())) == ["items"]
    assert await invalid(
        stub.SetPresence(
            router_pb2.SetPresenceRequest(agent_id="", teams=["first_line", "nowhere"], capacity=-1)
        )
    ) == ["agent_id", "presence", "teams[1]", "capacity"]
    assert await invalid(stub.Transfer(router_pb2.TransferRequest(conversation_id="c1"))) == ["to_team"]
    assert await invalid(
        stub.GetStaffing(router_pb2.GetStaffingRequest(service_level=1.5, target_answer_seconds=-1))
    ) == ["service_level", "target_answer_seconds"]
    assert await invalid(stub.Claim(router_pb2.ClaimRequest(conversation_id="x" * 300))) == [
        "agent_id",
        "conversation_id",
    ]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in stub.WatchAssignments(router_pb2.WatchAssignmentsRequest(agent_id="")):
            pass
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error.value)] == ["agent_id"]


async def test_watch_assignments_receives_an_assignment_made_on_arrival(stub):
    await stub.SetPresence(
        router_pb2.SetPresenceRequest(
            agent_id="ann", presence=router_pb2.PRESENCE_ONLINE, teams=["billing"], capacity=3
        )
    )
    stream = stub.WatchAssignments(router_pb2.WatchAssignmentsRequest(agent_id="ann"))
    first = asyncio.ensure_future(stream.read())
    routed = await stub.Route(
        router_pb2.RouteRequest(items=[make_item("c9", "x:9", "complaint", topic="billing")])
    )
    # ann is online with free capacity: the conversation goes straight to her.
    (decision,) = routed.decisions
    assert (decision.action, decision.agent_id) == (common_pb2.ROUTE_ACTION_ASSIGNED, "ann")
    assert not (await stub.Claim(router_pb2.ClaimRequest(agent_id="ann"))).claimed
    received = await asyncio.wait_for(first, 10)
    assert received.assignment.conversation_id == "c9"
    assert received.assignment.agent_id == "ann" and received.assignment.team == "billing"
    assert not received.assignment.withdrawn
    # Transferred away from ann: her stream is told it is no longer hers.
    await stub.Transfer(
        router_pb2.TransferRequest(conversation_id="c9", to_team="first_line", reason="misfiled")
    )
    withdrawn = (await asyncio.wait_for(stream.read(), 10)).assignment
    assert (withdrawn.conversation_id, withdrawn.withdrawn) == ("c9", True)
    assert "misfiled" in withdrawn.reason
    stream.cancel()


async def test_watch_for_an_unknown_agent_is_not_found(stub):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in stub.WatchAssignments(router_pb2.WatchAssignmentsRequest(agent_id="ghost")):
            pass
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_server_loads_the_policy_file_from_settings(settings, redis, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "tiers: [first_line]\ndefault_team: desk\nteams: [{name: desk, tier: first_line}]\n"
        "rules: [{name: everything, then: {action: queue, team: desk}}]\n"
        "sla: [{name: p4, min_priority: 0, first_response_seconds: 60}]\nbot: {after_reply_team: desk}\n"
    )
    running = await create_server(settings.model_copy(update={"policy_file": policy}), "127.0.0.1:0")
    try:
        async with channel(settings, f"127.0.0.1:{running.port}") as ch:
            stub = router_pb2_grpc.RouterServiceStub(ch)
            routed = await stub.Route(router_pb2.RouteRequest(items=[make_item("c1", "x:1", "urgent")]))
            assert (routed.decisions[0].team, routed.decisions[0].rule) == ("desk", "everything")
    finally:
        await running.stop(0.1)
    policy.write_text("tiers: [first_line]\nteams: []\n")
    with pytest.raises(PolicyError) as error:
        await create_server(settings.model_copy(update={"policy_file": policy}), "127.0.0.1:0")
    assert "teams" in [field for field, _ in error.value.problems]


async def test_routing_audit_and_policy_reload_over_grpc(settings, redis, tmp_path):
    path = tmp_path / "policy.yaml"
    text = DEFAULT_POLICY_FILE.read_text()
    path.write_text(text)
    running = await create_server(settings.model_copy(update={"policy_file": path}), "127.0.0.1:0")
    try:
        async with channel(settings, f"127.0.0.1:{running.port}") as ch:
            stub = router_pb2_grpc.RouterServiceStub(ch)
            await stub.SetPresence(
                router_pb2.SetPresenceRequest(
                    agent_id="ann", presence=router_pb2.PRESENCE_ONLINE, teams=["billing"], skills=["refunds"]
                )
            )
            await stub.Route(
                router_pb2.RouteRequest(items=[make_item("c1", "x:1", "complaint", topic="refunds")])
            )
            audit = await stub.GetRoutingAudit(router_pb2.GetRoutingAuditRequest(conversation_id="c1"))
            assert [e.kind for e in audit.entries] == ["route", "assign"]
            assert (
                audit.entries[1].candidates[0].agent_id == "ann"
                and audit.entries[1].candidates[0].skill_match
            )
            assert await invalid(stub.GetRoutingAudit(router_pb2.GetRoutingAuditRequest())) == [
                "conversation_id"
            ]
            assert await invalid(
                stub.SetPresence(router_pb2.SetPresenceRequest(agent_id="a", presence=1, skills=["a,b"]))
            ) == ["skills[0]"]

            unchanged = await stub.ReloadPolicy(router_pb2.ReloadPolicyRequest())
            assert not unchanged.reloaded and unchanged.source == str(path)
            path.write_text(text.replace("  - name: praise\n", "  - name: kudos\n"))
            changed = await stub.ReloadPolicy(router_pb2.ReloadPolicyRequest())
            assert changed.reloaded and changed.rules == 8
            path.write_text(text.replace("after_reply_team: first_line", "after_reply_team: nobody"))
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.ReloadPolicy(router_pb2.ReloadPolicyRequest())
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            ((field, description),) = field_violations(error.value)
            assert field == "bot.after_reply_team" and description.startswith("line ")
            routed = await stub.Route(router_pb2.RouteRequest(items=[make_item("c2", "x:2", "praise")]))
            assert routed.decisions[0].rule == "kudos"  # the last good policy is still in force
    finally:
        await running.stop(0.1)


# Route validates like a public RPC: no phantom conversations, no invented enum values.


async def refused(call) -> list[tuple[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return field_violations(error.value)


async def test_an_unknown_conversation_is_refused_and_never_assigned(stub):
    await stub.SetPresence(
        router_pb2.SetPresenceRequest(agent_id="sue", presence=router_pb2.PRESENCE_ONLINE, capacity=5)
    )
    phantom = make_item("phantom", "x:9", "urgent")
    fields = await refused(
        stub.Route(router_pb2.RouteRequest(items=[make_item("c1", "x:1", "urgent"), phantom]))
    )
    assert [f for f, _ in fields] == ["items[1].conversation_id"]
    assert "unknown conversation" in fields[0][1]
    # Nothing of the batch was queued or assigned.
    queues = (await stub.ListQueues(router_pb2.ListQueuesRequest())).queues
    assert sum(q.depth for q in queues) == 0
    claimed = await stub.Claim(router_pb2.ClaimRequest(agent_id="sue"))
    assert not claimed.claimed


@pytest.mark.parametrize(
    "field, spoil",
    [
        ("items[0].triage.intent", lambda item: setattr(item.triage, "intent", 99)),
        ("items[0].message.channel", lambda item: setattr(item.message, "channel", 99)),
        ("items[0].message.visibility", lambda item: setattr(item.message, "visibility", 99)),
        ("items[0].message.direction", lambda item: setattr(item.message, "direction", 99)),
        ("items[0].triage.scores[0].intent", lambda item: item.triage.scores.add(intent=99, probability=1)),
    ],
)
async def test_an_undefined_enum_value_is_refused_by_name(stub, field, spoil):
    item = make_item("c1", "x:1", "urgent")
    spoil(item)
    fields = await refused(stub.Route(router_pb2.RouteRequest(items=[item])))
    assert [f for f, _ in fields] == [field]
    assert "99 is not a defined" in fields[0][1]
