"""Who may call what: one row per RPC, from its full method name to the scopes that grant it.

A token's scopes are `ingest`, `agent`, `supervisor`, `admin` and `internal`. A row lists the scopes that
grant the call for anyone; `agent` says how an agent token may make it on its own behalf (and the call is
then checked against what the router stores); `changes` marks calls that change state, which the audit
trail records when a person (agent, supervisor, admin) makes them. Adding an RPC means adding its row here:
a test fails for any RPC of the protos without one. The README's Security section shows this table.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from parley.v1 import dispatch_pb2

if TYPE_CHECKING:
    from parley.dispatch.outbox import DispatchKeys
    from parley.router.keys import RouterKeys
    from parley.store import Redis

INGEST, AGENT, SUPERVISOR, ADMIN, INTERNAL = "ingest", "agent", "supervisor", "admin", "internal"
SCOPES = (INGEST, AGENT, SUPERVISOR, ADMIN, INTERNAL)
# Scopes held by people: their state-changing calls go to the audit trail.
PEOPLE = frozenset({AGENT, SUPERVISOR, ADMIN})


class Own(enum.Enum):
    """How an agent token shows that a call is its own."""

    SELF = "agent_id is the caller"
    PRESENCE = "agent_id is the caller, and teams, capacity and skills are left as a supervisor set them"
    ASSIGNED = "the conversation is assigned to the caller (and agent_id, when given, is the caller)"
    CLAIM = "agent_id is the caller; a given conversation waits in one of their teams or is theirs"
    REPLIES = "every reply is sent_by the caller on a conversation assigned to them"
    SENT = "the delivery is of a reply the caller sent"


@dataclass(frozen=True)
class Rule:
    scopes: frozenset[str]
    agent: Own | None = None
    changes: bool = False

    def granting(self, scopes: Iterable[str]) -> str:
        """The scope of the caller that grants the call ("" when none does); a service's own wins."""
        held = set(scopes)
        for scope in (INTERNAL, INGEST, ADMIN, SUPERVISOR):
            if scope in held and scope in self.scopes:
                return scope
        return AGENT if AGENT in held and self.agent is not None else ""

    def needs(self) -> str:
        """The scopes that would grant the call, for a refusal's message."""
        names = sorted(self.scopes) + ([f"{AGENT} ({self.agent.value})"] if self.agent else [])
        return " or ".join(names)


def rule(*scopes: str, agent: Own | None = None, changes: bool = False) -> Rule:
    return Rule(frozenset(scopes), agent, changes)


DESK = (SUPERVISOR, ADMIN)

RULES: dict[str, Rule] = {
    "/parley.v1.IngestionService/Ingest": rule(INGEST, ADMIN, changes=True),
    "/parley.v1.IngestionService/IngestStream": rule(INGEST, ADMIN, changes=True),
    "/parley.v1.IngestionService/WatchEvents": rule(*DESK),
    "/parley.v1.IngestionService/GetPipeline": rule(*DESK),
    "/parley.v1.IngestionService/RequeueDeadLetter": rule(*DESK, changes=True),
    "/parley.v1.ConversationsService/Thread": rule(INTERNAL, changes=True),
    "/parley.v1.ConversationsService/RecordOutcomes": rule(INTERNAL, changes=True),
    "/parley.v1.ConversationsService/GetConversation": rule(*DESK, agent=Own.ASSIGNED),
    "/parley.v1.ConversationsService/BatchGetConversations": rule(*DESK),
    "/parley.v1.ConversationsService/ListConversations": rule(*DESK),
    "/parley.v1.ConversationsService/GetMetrics": rule(*DESK),
    "/parley.v1.ConversationsService/GetProfile": rule(*DESK),
    "/parley.v1.ConversationsService/LinkIdentities": rule(ADMIN, changes=True),
    "/parley.v1.ConversationsService/EraseCustomer": rule(ADMIN, changes=True),
    "/parley.v1.ConversationsService/ListAuditRecords": rule(*DESK),
    "/parley.v1.ClassifierService/Classify": rule(INTERNAL),
    "/parley.v1.ClassifierService/Answer": rule(ADMIN),
    "/parley.v1.ClassifierService/ModelInfo": rule(ADMIN),
    "/parley.v1.RouterService/Route": rule(INTERNAL, changes=True),
    "/parley.v1.RouterService/WatchAssignments": rule(*DESK, agent=Own.SELF),
    "/parley.v1.RouterService/Claim": rule(*DESK, agent=Own.CLAIM, changes=True),
    "/parley.v1.RouterService/Decline": rule(*DESK, agent=Own.ASSIGNED, changes=True),
    "/parley.v1.RouterService/Transfer": rule(*DESK, agent=Own.ASSIGNED, changes=True),
    "/parley.v1.RouterService/Escalate": rule(*DESK, agent=Own.ASSIGNED, changes=True),
    "/parley.v1.RouterService/Resolve": rule(*DESK, agent=Own.ASSIGNED, changes=True),
    "/parley.v1.RouterService/SetPresence": rule(*DESK, agent=Own.PRESENCE, changes=True),
    "/parley.v1.RouterService/ListQueues": rule(*DESK),
    "/parley.v1.RouterService/GetStaffing": rule(*DESK),
    "/parley.v1.RouterService/GetRoutingAudit": rule(*DESK),
    "/parley.v1.RouterService/ReloadPolicy": rule(ADMIN, changes=True),
    "/parley.v1.RouterService/CorrectTriage": rule(*DESK, agent=Own.ASSIGNED, changes=True),
    "/parley.v1.DispatchService/SendReply": rule(INTERNAL, *DESK, agent=Own.REPLIES, changes=True),
    "/parley.v1.DispatchService/GetDelivery": rule(*DESK, agent=Own.SENT),
    "/parley.v1.DispatchService/EraseReplies": rule(INTERNAL, changes=True),
}

# Open to every caller, token or not: liveness probes, and reflection when a setting turns it on.
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


class Ownership:
    """Answers "is this call the agent's own?" from what the router stores about each conversation (its
    route state: state, team, agent) and the agent's profile (teams), with one Redis round trip."""

    def __init__(self, redis: Redis, router_keys: RouterKeys, dispatch_keys: DispatchKeys) -> None:
        self.redis = redis
        self.router_keys = router_keys
        self.dispatch_keys = dispatch_keys

    async def refusal(self, own: Own, agent_id: str, request: Any) -> str:  # any request message
        """Why `agent_id` may not make this call ("" when it may)."""
        given = getattr(request, "agent_id", "")
        if given != agent_id and (given or own in (Own.SELF, Own.PRESENCE, Own.CLAIM)):
            return f"an agent token acts only for itself: agent_id must be {agent_id!r}"
        if own is Own.PRESENCE and (request.teams or request.capacity or request.skills):
            return f"agent {agent_id!r} may set their presence only (teams, capacity, skills: a supervisor)"
        if own is Own.ASSIGNED:
            return await self._assigned(agent_id, [request.conversation_id])
        if own is Own.CLAIM and request.conversation_id:
            return await self._claimable(agent_id, request.conversation_id)
        if own is Own.REPLIES:
            foreign = [r.reply_id for r in request.replies if r.sent_by != agent_id]
            if foreign:
                return f"replies {foreign[:5]} must have sent_by {agent_id!r}"
            return await self._assigned(agent_id, sorted({r.conversation_id for r in request.replies}))
        if own is Own.SENT:
            return await self._sent(agent_id, request.reply_id)
        return ""

    async def _assigned(self, agent_id: str, conversation_ids: list[str]) -> str:
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in conversation_ids:
                pipe.hget(self.router_keys.state(cid), "agent")
            agents = await pipe.execute()
        others = [
            cid for cid, agent in zip(conversation_ids, agents, strict=True) if _text(agent) != agent_id
        ]
        if others:
            return f"conversation {others[0]!r} is not assigned to agent {agent_id!r}"
        return ""

    async def _claimable(self, agent_id: str, conversation_id: str) -> str:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self.router_keys.state(conversation_id), ["state", "team", "agent"])
            pipe.hget(self.router_keys.agent(agent_id), "teams")
            (state, team, agent), teams = await pipe.execute()
        if _text(agent) == agent_id or (_text(state) == "queued" and _text(team) in _text(teams).split(",")):
            return ""
        return f"conversation {conversation_id!r} neither waits in a team of agent {agent_id!r} nor is theirs"

    async def _sent(self, agent_id: str, reply_id: str) -> str:
        key = self.dispatch_keys.delivery(self.dispatch_keys.partition(reply_id), reply_id)
        raw = await self.redis.hget(key, "reply")
        reply = dispatch_pb2.Reply.FromString(raw) if isinstance(raw, bytes) and raw else dispatch_pb2.Reply()
        if reply.sent_by != agent_id:
            return f"reply {reply_id!r} was not sent by agent {agent_id!r}"
        return ""
