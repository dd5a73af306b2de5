"""Helpers of the authentication and authorization tests: tokens, any RPC called by name, real servers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
from google.protobuf import descriptor_pool, message_factory

from parley import rpc, store
from parley.auth import jwt_secret, mint
from parley.config import Settings
from parley.suite import start_service
from parley.v1 import common_pb2, router_pb2

SERVICE_OF = {
    "parley.v1.IngestionService": "ingestion",
    "parley.v1.ConversationsService": "conversations",
    "parley.v1.ClassifierService": "classifier",
    "parley.v1.RouterService": "router",
    "parley.v1.DispatchService": "dispatch",
}
AUTH_ERRORS = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def token(settings: Settings, subject: str, *scopes: str, ttl: float = 600) -> str:
    return mint(jwt_secret(settings), subject, scopes, ttl)


def method_descriptor(method: str):  # noqa: ANN201 - a protobuf MethodDescriptor
    return descriptor_pool.Default().FindMethodByName(method.strip("/").replace("/", "."))


def request_class(method: str) -> type:
    return message_factory.GetMessageClass(method_descriptor(method).input_type)


async def call(
    settings: Settings, address: str, method: str, request: object | None, bearer: str, timeout: float = 2.0
) -> tuple[grpc.StatusCode, str]:
    """Make any RPC by its full name with `bearer` as the token; the status code and message it ended with
    (a response stream still open at the deadline counts as DEADLINE_EXCEEDED)."""
    md = method_descriptor(method)
    output = message_factory.GetMessageClass(md.output_type)
    request = request if request is not None else request_class(method)()
    async with rpc.channel(settings, address, token=bearer) as ch:
        kind = {
            (False, False): ch.unary_unary,
            (False, True): ch.unary_stream,
            (True, False): ch.stream_unary,
            (True, True): ch.stream_stream,
        }[(md.client_streaming, md.server_streaming)]
        stub = kind(
            method,
            request_serializer=type(request).SerializeToString,
            response_deserializer=output.FromString,
        )
        argument = iter([request]) if md.client_streaming else request
        try:
            started = stub(argument, timeout=timeout)
            if md.server_streaming:
                async for _ in started:
                    break
            else:
                await started
        except grpc.aio.AioRpcError as error:
            return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


@contextlib.asynccontextmanager
async def servers(settings: Settings, *names: str) -> AsyncIterator[dict[str, str]]:
    """The named services' real servers on ephemeral ports: name -> address."""
    running = {}
    try:
        for name in dict.fromkeys(names):
            running[name] = await start_service(name, settings, "127.0.0.1:0")
        yield {name: f"127.0.0.1:{server.port}" for name, server in running.items()}
    finally:
        for server in running.values():
            await server.stop(0)


def route_item(conversation_id: str, message_id: str) -> router_pb2.RouteItem:
    """An urgent private X message: the default policy queues it for the `priority` team."""
    message = common_pb2.InboundMessage(
        channel=common_pb2.CHANNEL_X,
        visibility=common_pb2.VISIBILITY_PRIVATE,
        platform_message_id=message_id.split(":", 1)[-1],
        message_id=message_id,
        direction=common_pb2.DIRECTION_INBOUND,
        author=common_pb2.Author(id="u1", handle="someone"),
        text="hello",
    )
    triage = common_pb2.Triage(message_id=message_id, intent=common_pb2.INTENT_URGENT)
    return router_pb2.RouteItem(conversation_id=conversation_id, message=message, triage=triage)


async def opened(settings: Settings, *conversation_ids: str) -> None:
    """The records the conversations service keeps of conversations it opened (Route refuses others)."""
    redis = store.connect(settings)
    keys = store.keys_for(settings)
    try:
        for conversation_id in conversation_ids:
            await redis.hset(keys.conversation(conversation_id), mapping={"conversation_id": conversation_id})
    finally:
        await redis.aclose()


async def assign(settings: Settings, router: str, agent: str, conversation_id: str) -> None:
    """Route a new conversation and bring `agent` online in its team, so it is assigned to them."""
    await opened(settings, conversation_id)
    setup = token(settings, "setup", "internal", "admin")
    code, details = await call(
        settings,
        router,
        "/parley.v1.RouterService/Route",
        router_pb2.RouteRequest(items=[route_item(conversation_id, f"x:{conversation_id}")]),
        setup,
    )
    assert code == grpc.StatusCode.OK, details
    presence = router_pb2.SetPresenceRequest(
        agent_id=agent, presence=router_pb2.PRESENCE_ONLINE, teams=["priority"], capacity=1
    )
    code, details = await call(settings, router, "/parley.v1.RouterService/SetPresence", presence, setup)
    assert code == grpc.StatusCode.OK, details
