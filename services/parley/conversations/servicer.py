"""ConversationsService over gRPC: validate, call the core, map errors."""

from __future__ import annotations

import grpc  # type: ignore[import-untyped, unused-ignore]  # typed where types-grpcio is installed

from parley.audit import AuditTrail
from parley.clock import from_timestamp
from parley.config import Settings
from parley.rpc import FailedPrecondition, mapped_errors
from parley.v1 import conversations_pb2, conversations_pb2_grpc

from . import validation
from .core import Conversations
from .erasure import Eraser, EraseReplies
from .profiles import identity_of

DEFAULT_PAGE_SIZE = 50


class ConversationsServicer(conversations_pb2_grpc.ConversationsServiceServicer):
    def __init__(
        self, settings: Settings, core: Conversations, erase_replies: EraseReplies | None = None
    ) -> None:
        self.settings = settings
        self.core = core
        self.audit = AuditTrail(core.redis, core.keys.keys, settings.audit_maxlen)
        # Dispatch's EraseReplies (dispatch owns its outbox); None where no dispatch is reachable.
        self.erase_replies = erase_replies

    @mapped_errors
    async def Thread(
        self,
        request: conversations_pb2.ThreadRequest,
        context: grpc.aio.ServicerContext[conversations_pb2.ThreadRequest, conversations_pb2.ThreadResponse],
    ) -> conversations_pb2.ThreadResponse:
        validation.thread_request(self.settings, request)
        return conversations_pb2.ThreadResponse(results=await self.core.thread(request.messages))

    @mapped_errors
    async def RecordOutcomes(
        self,
        request: conversations_pb2.RecordOutcomesRequest,
        context: grpc.aio.ServicerContext[
            conversations_pb2.RecordOutcomesRequest, conversations_pb2.RecordOutcomesResponse
        ],
    ) -> conversations_pb2.RecordOutcomesResponse:
        validation.record_outcomes_request(self.settings, request)
        return conversations_pb2.RecordOutcomesResponse(
            recorded=await self.core.record_outcomes(request.outcomes)
        )

    @mapped_errors
    async def GetConversation(
        self,
        request: conversations_pb2.GetConversationRequest,
        context: grpc.aio.ServicerContext[
            conversations_pb2.GetConversationRequest, conversations_pb2.GetConversationResponse
        ],
    ) -> conversations_pb2.GetConversationResponse:
        validation.get_request(request)
        conversation_id = request.conversation_id or await self.core.conversation_of(request.message_id)
        return conversations_pb2.GetConversationResponse(conversation=await self.core.get(conversation_id))

    @mapped_errors
    async def BatchGetConversations(
        self,
        request: conversations_pb2.BatchGetConversationsRequest,
        context: grpc.aio.ServicerContext[
            conversations_pb2.BatchGetConversationsRequest, conversations_pb2.BatchGetConversationsResponse
        ],
    ) -> conversations_pb2.BatchGetConversationsResponse:
        validation.batch_get_request(request)
        found, missing = await self.core.get_many(request.conversation_ids)
        return conversations_pb2.BatchGetConversationsResponse(conversations=found, missing_ids=missing)

    @mapped_errors
    async def ListConversations(
        self,
        request: conversations_pb2.ListConversationsRequest,
        context: grpc.aio.ServicerContext[
            conversations_pb2.ListConversationsRequest, conversations_pb2.ListConversationsResponse
        ],
    ) -> conversations_pb2.ListConversationsResponse:
        validation.list_request(request)
        summaries, token = await self.core.list(
            request.state,
            request.channel,
            request.page_size or DEFAULT_PAGE_SIZE,
            request.page_token,
            request.owner_handle,
            request.team,
        )
        return conversations_pb2.ListConversationsResponse(conversations=summaries, next_page_token=token)

    @mapped_errors
    async def GetMetrics(
        self,
        request: conversations_pb2.GetMetricsRequest,
        context: grpc.aio.ServicerContext[
            conversations_pb2.GetMetricsRequest, conversations_pb2.GetMetricsResponse
        ],
    ) -> conversations_pb2.GetMetricsResponse:
        validation.metrics_request(request)
        start = from_timestamp(request.start) if request.HasField("start") else 0.0
        end = from_timestamp(request.end) if request.HasField("end") else None  # up to now
        return conversations_pb2.GetMetricsResponse(
            groups=await self.core.metrics(start, end, request.group_by)
        )

    @mapped_errors
    async def GetProfile(
        self,
        request: conversations_pb2.GetProfileRequest,
        context: grpc.aio.ServicerContext[
            conversations_pb2.GetProfileRequest, conversations_pb2.GetProfileResponse
        ],
    ) -> conversations_pb2.GetProfileResponse:
        validation.identity(request.identity, "identity")
        identity = identity_of(request.identity.channel, request.identity.author_id)
        return conversations_pb2.GetProfileResponse(profile=await self.core.profile(identity))

    @mapped_errors
    async def LinkIdentities(
        self,
        request: conversations_pb2.LinkIdentitiesRequest,
        context: grpc.aio.ServicerContext[
            conversations_pb2.LinkIdentitiesRequest, conversations_pb2.LinkIdentitiesResponse
        ],
    ) -> conversations_pb2.LinkIdentitiesResponse:
        validation.link_request(request)
        person = await self.core.link_identities(
            identity_of(request.identity.channel, request.identity.author_id),
            identity_of(request.other.channel, request.other.author_id),
        )
        return conversations_pb2.LinkIdentitiesResponse(person_id=person)

    @mapped_errors
    async def ListAuditRecords(
        self,
        request: conversations_pb2.ListAuditRecordsRequest,
        context: grpc.aio.ServicerContext[
            conversations_pb2.ListAuditRecordsRequest, conversations_pb2.ListAuditRecordsResponse
        ],
    ) -> conversations_pb2.ListAuditRecordsResponse:
        validation.audit_request(request)
        records, token = await self.audit.query(
            request.subject, request.page_size or DEFAULT_PAGE_SIZE, request.page_token
        )
        return conversations_pb2.ListAuditRecordsResponse(records=records, next_page_token=token)

    @mapped_errors
    async def EraseCustomer(
        self,
        request: conversations_pb2.EraseCustomerRequest,
        context: grpc.aio.ServicerContext[
            conversations_pb2.EraseCustomerRequest, conversations_pb2.EraseCustomerResponse
        ],
    ) -> conversations_pb2.EraseCustomerResponse:
        validation.identity(request.identity, "identity")
        if self.erase_replies is None:
            raise FailedPrecondition("no dispatch service to redact replies")
        eraser = Eraser(self.core.redis, self.core.keys, self.erase_replies)
        try:
            erased = await eraser.erase(identity_of(request.identity.channel, request.identity.author_id))
        except grpc.aio.AioRpcError as error:
            # Dispatch is asked before anything is deleted: a failure leaves the customer whole, to retry.
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"dispatch could not redact the customer's replies ({error.code().name}); nothing was erased",
            )
        return erased.response()
