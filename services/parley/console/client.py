"""Every gRPC call the console makes, in one place, over `parley.rpc.channel` (one channel per service).

The console reads the suite only through the services' APIs; it never reads their Redis keys.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2

from parley import rpc
from parley.clock import to_timestamp
from parley.config import SERVICES, Settings
from parley.recent import Recent
from parley.v1 import (
    conversations_pb2,
    conversations_pb2_grpc,
    dispatch_pb2,
    dispatch_pb2_grpc,
    ingestion_pb2,
    ingestion_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)

# The staffing target the floor's advice is computed for: 80% answered within 60 s.
STAFFING_SERVICE_LEVEL = 0.8
STAFFING_TARGET_SECONDS = 60.0
METRIC_GROUPS = ("channel", "intent", "topic")
# Today's figures by team read every conversation opened today: one read serves every floor page asking within
# this time (queues, staffing and the recent list are read fresh for each page).
TODAY_CACHE_SECONDS = 5.0


@dataclass
class FloorData:
    queues: list[router_pb2.QueueStatus]
    staffing: list[router_pb2.QueueStaffing]
    today_by_team: list[conversations_pb2.MetricsGroup]
    recent: list[conversations_pb2.ConversationSummary]


@dataclass
class TrafficData:
    overall: conversations_pb2.MetricsGroup
    groups: dict[str, list[conversations_pb2.MetricsGroup]]
    conversations: list[conversations_pb2.Conversation]


@dataclass
class ConversationData:
    conversation: conversations_pb2.Conversation
    audit: list[router_pb2.RoutingAudit]
    deliveries: dict[str, dispatch_pb2.Delivery] = field(default_factory=dict)


@dataclass
class PipelineData:
    pipeline: ingestion_pb2.GetPipelineResponse
    health: dict[str, str]


class ConsoleClient:
    """Stubs of the four services the console reads, each over one channel made by `rpc.channel`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout = settings.rpc_timeout_seconds
        self.today: Recent[list[conversations_pb2.MetricsGroup]] = Recent(TODAY_CACHE_SECONDS)
        # The console reads the floor as a supervisor (PARLEY_AUTH_TOKEN, when set, is used instead).
        self.channels = {
            name: rpc.channel(settings, settings.address(name), scopes=("supervisor",)) for name in SERVICES
        }
        self.ingestion = ingestion_pb2_grpc.IngestionServiceStub(self.channels["ingestion"])
        self.conversations = conversations_pb2_grpc.ConversationsServiceStub(self.channels["conversations"])
        self.router = router_pb2_grpc.RouterServiceStub(self.channels["router"])
        self.dispatch = dispatch_pb2_grpc.DispatchServiceStub(self.channels["dispatch"])

    async def close(self) -> None:
        for ch in self.channels.values():
            await ch.close()

    async def floor(self, recent: int = 25) -> FloorData:
        midnight = time.time() // 86_400 * 86_400  # today, UTC
        queues, staffing, today, listed = await asyncio.gather(
            self.router.ListQueues(router_pb2.ListQueuesRequest(), timeout=self.timeout),
            self.router.GetStaffing(
                router_pb2.GetStaffingRequest(
                    service_level=STAFFING_SERVICE_LEVEL, target_answer_seconds=STAFFING_TARGET_SECONDS
                ),
                timeout=self.timeout,
            ),
            self.today.get(lambda: self._metrics("team", since=midnight), key=midnight),
            self.conversations.ListConversations(
                conversations_pb2.ListConversationsRequest(page_size=recent), timeout=self.timeout
            ),
        )
        return FloorData(list(queues.queues), list(staffing.queues), today, list(listed.conversations))

    async def traffic(self, sample: int) -> TrafficData:
        """Metrics over all conversations (overall and per channel, intent and topic), and the `sample`
        most recently updated conversations in full, for volume over time and the bot's answers."""
        overall, *grouped = await asyncio.gather(
            self._metrics(""), *(self._metrics(g) for g in METRIC_GROUPS)
        )
        listed = await self.conversations.ListConversations(
            conversations_pb2.ListConversationsRequest(page_size=sample), timeout=self.timeout
        )
        full = await self.conversations.BatchGetConversations(
            conversations_pb2.BatchGetConversationsRequest(
                conversation_ids=[s.conversation_id for s in listed.conversations]
            ),
            timeout=self.timeout,
        )
        return TrafficData(
            overall=overall[0] if overall else conversations_pb2.MetricsGroup(key="all"),
            groups=dict(zip(METRIC_GROUPS, grouped, strict=True)),
            conversations=list(full.conversations),
        )

    async def conversation(self, conversation_id: str) -> ConversationData | None:
        """The conversation with its routing audit and the delivery of every reply Parley sent on it."""
        conversation = await self._conversation(conversation_id)
        if conversation is None:
            return None
        try:
            audit = await self.router.GetRoutingAudit(
                router_pb2.GetRoutingAuditRequest(conversation_id=conversation.conversation_id),
                timeout=self.timeout,
            )
            entries = list(audit.entries)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            entries = []  # never routed (outbound only, or still held)
        reply_ids = [
            f"bot:{item.message.message_id}" for item in conversation.messages if item.routing.bot_reply_text
        ]
        found = await asyncio.gather(*(self._delivery(r) for r in reply_ids))
        deliveries = {d.reply_id: d for d in found if d is not None}
        private = [d.private_reply_id for d in deliveries.values() if d.private_reply_id]
        for extra in await asyncio.gather(*(self._delivery(r) for r in private)):
            if extra is not None:
                deliveries[extra.reply_id] = extra
        return ConversationData(conversation, entries, deliveries)

    async def conversation_exists(self, conversation_id: str) -> bool:
        return await self._conversation(conversation_id) is not None

    async def team_conversations(
        self, team: str, limit: int = 500
    ) -> list[conversations_pb2.ConversationSummary]:
        """The team's waiting conversations, then those its agents hold (most recently updated first)."""
        listed = await asyncio.gather(
            *(
                self.conversations.ListConversations(
                    conversations_pb2.ListConversationsRequest(state=state, team=team, page_size=limit),
                    timeout=self.timeout,
                )
                for state in (
                    conversations_pb2.CONVERSATION_STATE_QUEUED,
                    conversations_pb2.CONVERSATION_STATE_ASSIGNED,
                )
            )
        )
        return [s for reply in listed for s in reply.conversations]

    async def search(self, query: str, limit: int = 50) -> list[conversations_pb2.ConversationSummary]:
        """Conversations of the customer with this handle."""
        listed = await self.conversations.ListConversations(
            conversations_pb2.ListConversationsRequest(owner_handle=query, page_size=limit),
            timeout=self.timeout,
        )
        return list(listed.conversations)

    async def pipeline(self) -> PipelineData:
        status, health = await asyncio.gather(
            self.ingestion.GetPipeline(ingestion_pb2.GetPipelineRequest(), timeout=self.timeout),
            asyncio.gather(*(self._health(name) for name in SERVICES)),
        )
        return PipelineData(status, dict(zip(SERVICES, health, strict=True)))

    async def requeue(self, message_id: str) -> ingestion_pb2.RequeueDeadLetterResponse:
        return await self.ingestion.RequeueDeadLetter(
            ingestion_pb2.RequeueDeadLetterRequest(message_id=message_id), timeout=self.timeout
        )

    async def watch(self) -> AsyncIterator[ingestion_pb2.WatchEventsResponse]:
        """New events from now on, those of one read together, until the caller stops iterating."""
        call = self.ingestion.WatchEvents(ingestion_pb2.WatchEventsRequest(batched=True))
        try:
            async for reply in call:
                yield reply
        finally:
            call.cancel()

    async def _metrics(self, group_by: str, since: float = 0.0) -> list[conversations_pb2.MetricsGroup]:
        request = conversations_pb2.GetMetricsRequest(group_by=group_by)
        if since:
            request.start.CopyFrom(to_timestamp(since))
        reply = await self.conversations.GetMetrics(request, timeout=self.timeout)
        return list(reply.groups)

    async def _conversation(self, conversation_id: str) -> conversations_pb2.Conversation | None:
        try:
            reply = await self.conversations.GetConversation(
                conversations_pb2.GetConversationRequest(conversation_id=conversation_id),
                timeout=self.timeout,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise
        return reply.conversation

    async def _delivery(self, reply_id: str) -> dispatch_pb2.Delivery | None:
        try:
            reply = await self.dispatch.GetDelivery(
                dispatch_pb2.GetDeliveryRequest(reply_id=reply_id), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return None
        return reply.delivery

    async def _health(self, name: str) -> str:
        try:
            reply = await rpc.health_check(self.channels[name])(
                health_pb2.HealthCheckRequest(service=""), timeout=2.0
            )
        except grpc.aio.AioRpcError as error:
            return error.code().name.lower()
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status).lower()
