"""RouterService over gRPC: validates requests, calls the `Router` core, maps core errors to statuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.message import Message

from parley.clock import to_timestamp
from parley.config import Settings
from parley.enum_fields import unknown_enum_values
from parley.messages import INTENT_NAMES
from parley.router import validation
from parley.router.core import Router
from parley.router.corrections import Corrections
from parley.rpc import FailedPrecondition, InvalidArgument, NotFound, abort_for, mapped_errors
from parley.streams import StreamLimits, TooManyStreams, caller_of
from parley.v1 import common_pb2, router_pb2, router_pb2_grpc

PRESENCE_NAMES = {
    router_pb2.PRESENCE_ONLINE: "online",
    router_pb2.PRESENCE_AWAY: "away",
    router_pb2.PRESENCE_OFFLINE: "offline",
}


class Validator:
    """Collects (field path, description) pairs and raises them together."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.problems: list[tuple[str, str]] = []

    def add(self, field: str, description: str) -> None:
        self.problems.append((field, description))

    def id(self, field: str, value: str, required: bool = True) -> None:
        if required and not value:
            self.add(field, "is required")
        elif len(value) > self.settings.max_id_chars:
            self.add(field, f"longer than {self.settings.max_id_chars} characters")

    def check(self) -> None:
        if self.problems:
            raise InvalidArgument(self.problems)


class RouterServicer(router_pb2_grpc.RouterServiceServicer):
    def __init__(self, settings: Settings, router: Router, watch_poll_ms: int | None = None) -> None:
        self.settings = settings
        self.router = router
        self.watch_poll_ms = watch_poll_ms or round(settings.stream_poll_seconds * 1000)
        self.streams = StreamLimits.from_settings(settings)
        self.corrections = Corrections(router.redis, router.keys, router.clock, settings.events_maxlen)

    def _validator(self) -> Validator:
        return Validator(self.settings)

    def _ids(self, request: Message, *required: str, optional: tuple[str, ...] = ()) -> Validator:
        """A validator with the request's id fields checked: `required` must be given, `optional` may be
        empty; either way within the id length limit. Further checks may be added before `check()`."""
        v = Validator(self.settings)
        for name in (*required, *optional):
            v.id(name, getattr(request, name), required=name in required)
        return v

    @mapped_errors
    async def Route(
        self, request: router_pb2.RouteRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> router_pb2.RouteResponse:
        v = self._validator()
        if not request.items:
            v.add("items", "at least one item is required")
        if len(request.items) > self.settings.max_batch:
            v.add("items", f"more than {self.settings.max_batch} items")
        for i, item in enumerate(request.items):
            v.id(f"items[{i}].conversation_id", item.conversation_id)
            v.id(f"items[{i}].message.message_id", item.message.message_id)
            if item.triage.intent == common_pb2.INTENT_UNSPECIFIED:
                v.add(f"items[{i}].triage.intent", "is required")
            if item.triage.message_id and item.triage.message_id != item.message.message_id:
                v.add(f"items[{i}].triage.message_id", "does not match message.message_id")
            if item.message.author.follower_count < 0:
                v.add(f"items[{i}].message.author.follower_count", "must not be negative")
        for field, problem in unknown_enum_values(request):
            v.add(field, problem)
        v.check()
        ids = [item.conversation_id for item in request.items]
        for i in await validation.unknown_conversations(self.router.redis, self.router.keys, ids):
            v.add(
                f"items[{i}].conversation_id", "unknown conversation: not opened by the conversations service"
            )
        v.check()
        decisions = await self.router.route(list(request.items))
        return router_pb2.RouteResponse(decisions=decisions)

    async def WatchAssignments(
        self, request: router_pb2.WatchAssignmentsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[router_pb2.WatchAssignmentsResponse]:
        try:
            self._ids(request, "agent_id").check()
            with self.streams.admit(caller_of(context)):
                async for assignment in self.router.watch(request.agent_id, self.watch_poll_ms):
                    yield router_pb2.WatchAssignmentsResponse(assignment=assignment)
        except (InvalidArgument, NotFound, FailedPrecondition) as error:
            await abort_for(context, error)
        except TooManyStreams as error:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(error))

    @mapped_errors
    async def Claim(
        self, request: router_pb2.ClaimRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> router_pb2.ClaimResponse:
        self._ids(request, "agent_id", optional=("conversation_id",)).check()
        assignment = await self.router.claim(request.agent_id, request.conversation_id)
        if assignment is None:
            return router_pb2.ClaimResponse(claimed=False)
        return router_pb2.ClaimResponse(assignment=assignment, claimed=True)

    @mapped_errors
    async def Decline(
        self, request: router_pb2.DeclineRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> router_pb2.DeclineResponse:
        self._ids(request, "agent_id", "conversation_id").check()
        team = await self.router.decline(request.agent_id, request.conversation_id, request.reason)
        return router_pb2.DeclineResponse(team=team)

    @mapped_errors
    async def Transfer(
        self, request: router_pb2.TransferRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> router_pb2.TransferResponse:
        v = self._ids(request, "conversation_id")
        if bool(request.to_team) == bool(request.to_agent_id):
            v.add("to_team", "give exactly one of to_team, to_agent_id")
        v.id("to_agent_id", request.to_agent_id, required=False)
        if request.to_team and self.router.policy.team(request.to_team) is None:
            v.add("to_team", f"unknown team {request.to_team!r}")
        v.check()
        decision = await self.router.transfer(
            request.conversation_id, request.to_team, request.to_agent_id, request.reason
        )
        return router_pb2.TransferResponse(decision=decision)

    @mapped_errors
    async def Escalate(
        self, request: router_pb2.EscalateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> router_pb2.EscalateResponse:
        self._ids(request, "conversation_id").check()
        decision = await self.router.escalate(request.conversation_id, request.reason)
        return router_pb2.EscalateResponse(decision=decision)

    @mapped_errors
    async def Resolve(
        self, request: router_pb2.ResolveRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> router_pb2.ResolveResponse:
        self._ids(request, "conversation_id", optional=("agent_id",)).check()
        resolved_at = await self.router.resolve(request.conversation_id, request.agent_id)
        return router_pb2.ResolveResponse(resolved_at=to_timestamp(resolved_at))

    @mapped_errors
    async def SetPresence(
        self, request: router_pb2.SetPresenceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> router_pb2.SetPresenceResponse:
        v = self._ids(request, "agent_id")
        if request.presence not in PRESENCE_NAMES:
            v.add("presence", "must be PRESENCE_ONLINE, PRESENCE_AWAY or PRESENCE_OFFLINE")
        for i, team in enumerate(request.teams):
            if self.router.policy.team(team) is None:
                v.add(f"teams[{i}]", f"unknown team {team!r}")
        if request.capacity < 0:
            v.add("capacity", "must not be negative")
        for i, skill in enumerate(request.skills):
            if not skill or "," in skill or len(skill) > self.settings.max_id_chars:
                v.add(f"skills[{i}]", "must be a non-empty name without commas")
        v.check()
        handed = await self.router.set_presence(
            request.agent_id,
            PRESENCE_NAMES[request.presence],
            list(request.teams) or None,
            request.capacity or None,
            list(request.skills) or None,
        )
        return router_pb2.SetPresenceResponse(assignments=handed)

    @mapped_errors
    async def ListQueues(
        self, request: router_pb2.ListQueuesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> router_pb2.ListQueuesResponse:
        return router_pb2.ListQueuesResponse(queues=await self.router.list_queues())

    @mapped_errors
    async def GetStaffing(
        self, request: router_pb2.GetStaffingRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> router_pb2.GetStaffingResponse:
        v = self._validator()
        if not 0 < request.service_level < 1:
            v.add("service_level", "must be between 0 and 1, exclusive")
        if not 0 <= request.target_answer_seconds <= 86_400:
            v.add("target_answer_seconds", "must be between 0 and 86400")
        v.check()
        queues = await self.router.get_staffing(request.service_level, request.target_answer_seconds)
        return router_pb2.GetStaffingResponse(queues=queues)

    @mapped_errors
    async def GetRoutingAudit(
        self, request: router_pb2.GetRoutingAuditRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> router_pb2.GetRoutingAuditResponse:
        self._ids(request, "conversation_id").check()
        return router_pb2.GetRoutingAuditResponse(
            entries=await self.router.get_audit(request.conversation_id)
        )

    @mapped_errors
    async def ReloadPolicy(
        self, request: router_pb2.ReloadPolicyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> router_pb2.ReloadPolicyResponse:
        reloaded = self.router.reload_policy(force=True)
        policy = self.router.policy
        return router_pb2.ReloadPolicyResponse(
            reloaded=reloaded,
            source=str(self.router.policy_source),
            teams=len(policy.teams),
            rules=len(policy.rules),
        )

    @mapped_errors
    async def CorrectTriage(
        self, request: router_pb2.CorrectTriageRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> router_pb2.CorrectTriageResponse:
        v = self._ids(request, "conversation_id", "message_id", "agent_id")
        if request.intent and request.intent not in INTENT_NAMES:
            v.add("intent", "unknown intent")
        if len(request.note) > self.settings.max_text_chars:
            v.add("note", f"longer than {self.settings.max_text_chars} characters")
        v.check()
        correction = await self.corrections.correct(
            request.conversation_id,
            request.message_id,
            request.agent_id,
            supervisor=request.supervisor,
            intent=INTENT_NAMES.get(request.intent, ""),
            topic=request.topic,
            urgent=request.urgent if request.HasField("urgent") else None,
            note=request.note,
        )
        return router_pb2.CorrectTriageResponse(correction=correction)
