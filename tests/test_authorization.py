"""The authorization table against the real servers: every RPC has a row, and each row lets in the scopes it
names (and an agent on their own conversations) and refuses every other caller with PERMISSION_DENIED."""

from __future__ import annotations

import re
import uuid

import grpc
import pytest
from auth_kit import (
    AUTH_ERRORS,
    SERVICE_OF,
    assign,
    call,
    method_descriptor,
    opened,
    request_class,
    route_item,
    servers,
    token,
)

from parley import authz
from parley.authz import AGENT, RULES, SCOPES, Own
from parley.config import Settings
from parley.v1 import (
    classifier_pb2,
    common_pb2,
    conversations_pb2,
    dispatch_pb2,
    ingestion_pb2,
    router_pb2,
)

PROTO_MODULES = (ingestion_pb2, conversations_pb2, classifier_pb2, router_pb2, dispatch_pb2, common_pb2)


def declared_methods() -> set[str]:
    return {
        f"/{service.full_name}/{method.name}"
        for module in PROTO_MODULES
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }


def test_every_declared_rpc_has_exactly_one_row() -> None:
    declared = declared_methods()
    assert declared - set(RULES) == set(), "RPCs without an authorization row in parley.authz.RULES"
    assert set(RULES) - declared == set(), "rows for RPCs that no proto declares"


def test_agent_rules_only_on_calls_with_one_request_to_check() -> None:
    for method, rule in RULES.items():
        if rule.agent is not None:
            assert not method_descriptor(method).client_streaming, method
        # `internal` is never granted together with the desk scopes' agent shortcut to a client.
        if authz.INTERNAL in rule.scopes:
            assert rule.agent is None or method.endswith("/SendReply"), method


def reply(reply_id: str, conversation_id: str, sent_by: str) -> dispatch_pb2.Reply:
    return dispatch_pb2.Reply(
        reply_id=reply_id,
        conversation_id=conversation_id,
        channel=common_pb2.CHANNEL_X,
        visibility=common_pb2.VISIBILITY_PRIVATE,
        in_reply_to_id="1001",
        brand_account_id="brand-1",
        recipient=common_pb2.Author(id="user-1", handle="@customer"),
        text="Thanks, we are on it.",
        sent_by=sent_by,
    )


def agent_requests(
    method: str, own: Own, ana: str, bo: str, ids: dict[str, str]
) -> tuple[object, list[object]]:
    """For an agent row: a request that is ana's own, and requests that are not."""
    make = request_class(method)
    name = method.rsplit("/", 1)[1]
    if own is Own.SELF:
        return make(agent_id=ana), [make(agent_id=bo)]
    if own is Own.PRESENCE:
        online = router_pb2.PRESENCE_ONLINE
        return make(agent_id=ana, presence=online), [
            make(agent_id=bo, presence=online),
            make(agent_id=ana, presence=online, teams=["vip"]),
            make(agent_id=ana, presence=online, capacity=9),
        ]
    if own is Own.CLAIM:
        return make(agent_id=ana, conversation_id=ids["waiting"]), [
            make(agent_id=bo),
            make(agent_id=ana, conversation_id=ids["bo"]),
        ]
    if own is Own.REPLIES:
        return make(replies=[reply(f"r-{uuid.uuid4().hex[:6]}", ids["ana"], ana)]), [
            make(replies=[reply("r-foreign", ids["bo"], ana)]),
            make(replies=[reply("r-spoofed", ids["ana"], bo)]),
        ]
    if own is Own.SENT:
        return make(reply_id=ids["reply_ana"]), [make(reply_id=ids["reply_bo"])]
    fields = {"to_team": "billing"} if name == "Transfer" else {}
    with_agent = "agent_id" in make.DESCRIPTOR.fields_by_name
    mine = make(conversation_id=ids["ana"], **fields, **({"agent_id": ana} if with_agent else {}))
    foreign = [make(conversation_id=ids["bo"], **fields)]
    if with_agent:
        foreign.append(make(conversation_id=ids["ana"], agent_id=bo))
    return mine, foreign


async def agent_state(settings: Settings, addresses: dict[str, str], ana: str, bo: str) -> dict[str, str]:
    """A conversation assigned to ana, one to bo, one waiting in their team, and a reply sent by each."""
    suffix = uuid.uuid4().hex[:6]
    ids = {"ana": f"c-ana-{suffix}", "bo": f"c-bo-{suffix}", "waiting": f"c-wait-{suffix}"}
    await assign(settings, addresses["router"], ana, ids["ana"])
    await assign(settings, addresses["router"], bo, ids["bo"])
    internal = token(settings, "setup", authz.INTERNAL)
    await opened(settings, ids["waiting"])
    waiting = router_pb2.RouteRequest(items=[route_item(ids["waiting"], f"x:{ids['waiting']}")])
    assert (await call(settings, addresses["router"], "/parley.v1.RouterService/Route", waiting, internal))[
        0
    ] == (grpc.StatusCode.OK)
    if "dispatch" in addresses:
        ids |= {"reply_ana": f"r-ana-{suffix}", "reply_bo": f"r-bo-{suffix}"}
        sent = dispatch_pb2.SendReplyRequest(
            replies=[reply(ids["reply_ana"], ids["ana"], ana), reply(ids["reply_bo"], ids["bo"], bo)]
        )
        code, details = await call(
            settings, addresses["dispatch"], "/parley.v1.DispatchService/SendReply", sent, internal
        )
        assert code == grpc.StatusCode.OK, details
    return ids


@pytest.mark.parametrize("method", sorted(RULES), ids=lambda m: m.rsplit(".", 1)[1].replace("/", "."))
async def test_row(settings: Settings, method: str) -> None:
    rule = RULES[method]
    service = SERVICE_OF[method.split("/")[1]]
    needed = [service, "router"] if rule.agent else [service]
    async with servers(settings, *needed) as addresses:
        address = addresses[service]
        # Allowed: each scope of the row (an empty request then fails validation or succeeds, never auth).
        for scope in sorted(rule.scopes):
            code, details = await call(
                settings, address, method, None, token(settings, f"who-{scope}", scope)
            )
            assert code not in AUTH_ERRORS, (scope, code, details)
        # Refused: a token with every other scope.
        others = sorted(set(SCOPES) - rule.scopes - {AGENT})
        if others:
            code, details = await call(settings, address, method, None, token(settings, "other", *others))
            assert code == grpc.StatusCode.PERMISSION_DENIED, (others, code, details)
            assert "needs scope" in details and all(s in details for s in rule.scopes), details
        ana, bo = f"ana-{uuid.uuid4().hex[:6]}", f"bo-{uuid.uuid4().hex[:6]}"
        agent_token = token(settings, ana, AGENT)
        if rule.agent is None:
            code, details = await call(settings, address, method, None, agent_token)
            assert code == grpc.StatusCode.PERMISSION_DENIED, (code, details)
            return
        ids = await agent_state(settings, addresses, ana, bo)
        mine, foreign = agent_requests(method, rule.agent, ana, bo, ids)
        code, details = await call(settings, address, method, mine, agent_token)
        assert code not in AUTH_ERRORS, (mine, code, details)
        for request in foreign:
            code, details = await call(settings, address, method, request, agent_token)
            assert code == grpc.StatusCode.PERMISSION_DENIED, (request, code, details)
            assert ana in details, details


def readme_table() -> dict[str, tuple[set[str], bool, bool]]:
    """The README's authorization table: method -> (scopes with a tick, agent allowed, audited)."""
    from parley.config import REPO_ROOT

    rows: dict[str, tuple[set[str], bool, bool]] = {}
    for line in (REPO_ROOT / "README.md").read_text().splitlines():
        if not line.startswith("| `") or "Service/" not in line:
            continue
        first, ingest, agent, supervisor, admin, internal, audited = [c.strip() for c in line.split("|")[1:8]]
        names = re.findall(r"`([^`]+)`", first)
        service, _, method = names[0].partition("/")
        ticks = {"ingest": ingest, "supervisor": supervisor, "admin": admin, "internal": internal}
        for name in [method, *names[1:]]:
            rows[f"/parley.v1.{service}/{name}"] = (
                {s for s, c in ticks.items() if c},
                bool(agent),
                bool(audited),
            )
    return rows


def test_readme_table_is_the_table() -> None:
    documented = readme_table()
    assert set(documented) == set(RULES)
    for method, rule in RULES.items():
        assert documented[method] == (set(rule.scopes), rule.agent is not None, rule.changes), method
