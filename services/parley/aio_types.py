"""Types of grpc.aio method handlers, which the grpcio stubs describe only as the synchronous server has them.

A grpc.aio handler holds coroutine functions (async generators, or coroutines writing through the context,
for streamed responses) where the stubs say plain functions. The interceptors read a handler's behaviour
through `unary` and `streaming`, which give it its real type. Requests and responses are `Any` here
because an interceptor serves every method of every service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias, cast

import grpc

# Quoted: grpc's classes are generic only in the stubs, not at run time.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]"
Unary: TypeAlias = "Callable[[Any, Context], Awaitable[Any]]"
# A streamed response is an async generator, or a coroutine that writes through the context.
Streaming: TypeAlias = "Callable[[Any, Context], AsyncIterator[Any] | Awaitable[None]]"


def _behaviour(handler: Handler) -> object:
    found = handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    if found is None:
        raise TypeError("a method handler without a behaviour")
    return found


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """A server interceptor that serves a method through `wrap(handler, method)`: made once per handler and
    kept (the server hands over the same handler object for every call of a method)."""

    def __init__(self) -> None:
        self._wrapped: dict[int, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        known = self._wrapped.get(id(handler))
        if known is None or known[0] is not handler:
            known = (handler, self.wrap(handler, handler_call_details.method))
            self._wrapped[id(handler)] = known
        return known[1]

    def wrap(self, handler: Handler, method: str) -> Handler:
        """The handler to serve `method` with (`handler` itself when there is nothing to add)."""
        raise NotImplementedError


def same_kind(handler: Handler, behaviour: Any, request_deserializer: Any = None) -> Handler:
    """A method handler of `handler`'s kind (request and response each unary or streamed) that runs
    `behaviour`, with `handler`'s serializers unless another request deserializer is given."""
    request, response = (
        "stream" if streamed else "unary"
        for streamed in (handler.request_streaming, handler.response_streaming)
    )
    kind = f"{request}_{response}"
    factory: Callable[..., Handler] = getattr(grpc, f"{kind}_rpc_method_handler")
    return factory(
        behaviour, request_deserializer or handler.request_deserializer, handler.response_serializer
    )


def unary(handler: Handler) -> Unary:
    """The coroutine function of a handler whose response is not streamed."""
    return cast(Unary, _behaviour(handler))


def streaming(handler: Handler) -> Streaming:
    """The behaviour of a handler whose response is streamed."""
    return cast(Streaming, _behaviour(handler))


async def responses(call: AsyncIterator[Any] | Awaitable[None]) -> AsyncIterator[Any]:
    """What a streaming behaviour's call yields (nothing when it writes through its context)."""
    if isinstance(call, AsyncIterator):
        async for response in call:
            yield response
    else:
        await call


def with_metadata(
    details: grpc.aio.ClientCallDetails, metadata: grpc.aio.Metadata
) -> grpc.aio.ClientCallDetails:
    """The same client call details with other metadata."""
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )
