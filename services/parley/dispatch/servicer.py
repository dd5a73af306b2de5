"""DispatchService over gRPC: a thin layer on the Dispatcher (validation lives in the core)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import grpc
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from parley.aio_types import Context
from parley.dispatch import erasure
from parley.dispatch.dispatcher import Dispatcher
from parley.rpc import mapped_errors
from parley.v1 import dispatch_pb2, dispatch_pb2_grpc

# The state store being unreachable is the caller's cue to retry, not a server bug.
UNAVAILABLE_ERRORS = (RedisConnectionError, RedisTimeoutError)


T = TypeVar("T")


async def _or_unavailable(work: Awaitable[T], context: Context) -> T:
    """What `work` gives; the state store being unreachable aborts the call with UNAVAILABLE."""
    try:
        return await work
    except UNAVAILABLE_ERRORS as error:
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"state store unavailable: {error}")


class DispatchServicer(dispatch_pb2_grpc.DispatchServiceServicer):
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    @mapped_errors
    async def SendReply(  # noqa: N802 - the gRPC method name
        self,
        request: dispatch_pb2.SendReplyRequest,
        context: grpc.aio.ServicerContext[dispatch_pb2.SendReplyRequest, dispatch_pb2.SendReplyResponse],
    ) -> dispatch_pb2.SendReplyResponse:
        deliveries = await _or_unavailable(self.dispatcher.send(list(request.replies)), context)
        return dispatch_pb2.SendReplyResponse(deliveries=deliveries)

    @mapped_errors
    async def GetDelivery(  # noqa: N802 - the gRPC method name
        self,
        request: dispatch_pb2.GetDeliveryRequest,
        context: grpc.aio.ServicerContext[dispatch_pb2.GetDeliveryRequest, dispatch_pb2.GetDeliveryResponse],
    ) -> dispatch_pb2.GetDeliveryResponse:
        delivery = await _or_unavailable(self.dispatcher.get(request.reply_id), context)
        return dispatch_pb2.GetDeliveryResponse(delivery=delivery)

    @mapped_errors
    async def EraseReplies(  # noqa: N802 - the gRPC method name
        self,
        request: dispatch_pb2.EraseRepliesRequest,
        context: grpc.aio.ServicerContext[
            dispatch_pb2.EraseRepliesRequest, dispatch_pb2.EraseRepliesResponse
        ],
    ) -> dispatch_pb2.EraseRepliesResponse:
        d = self.dispatcher
        return await _or_unavailable(erasure.erase_replies(d.settings, d.redis, d.keys, request), context)
