"""What every gRPC server and client of the suite shares: health, reflection, limits, errors, shutdown.

A service module builds its servicer and calls `start_server`; tests do the same on port 0.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status
from redis.exceptions import (
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from parley import authz, store
from parley.aio_types import (
    Context,
    Handler,
    WrappingInterceptor,
    responses,
    same_kind,
    streaming,
    unary,
)
from parley.auth import TokenSource, client_interceptors, server_interceptors
from parley.config import Settings
from parley.telemetry import tracing
from parley.telemetry.metrics import ObservingInterceptor

log = logging.getLogger(__name__)


# Redis failures that pass once it is back (or has room again), so a caller should retry (UNAVAILABLE) rather
# than see UNKNOWN. RedisClusterException covers a cluster with no reachable node (redis-py does not derive it
# from RedisError); OutOfMemoryError is a Redis at `maxmemory` refusing writes.
STORE_UNAVAILABLE = (
    RedisConnectionError,
    OutOfMemoryError,
    RedisTimeoutError,
    ClusterDownError,
    TryAgainError,
    RedisClusterException,
)

# What a Redis outage or failover looks like to a client, for loops and start-up that ride it out: the above
# (BusyLoadingError, Redis still loading its data, is a ConnectionError; MasterDownError a ClusterDownError),
# and ReadOnlyError from a master just demoted to a replica.
REDIS_OUTAGES = (*STORE_UNAVAILABLE, ReadOnlyError)


class InvalidArgument(Exception):
    """Raised by a core or a validator: one (field, description) pair per bad field."""

    def __init__(self, violations: Sequence[tuple[str, str]]) -> None:
        self.violations = list(violations)
        super().__init__("; ".join(f"{f}: {d}" for f, d in self.violations))


class NotFound(Exception):
    """Raised by a core when the thing asked for does not exist."""


class FailedPrecondition(Exception):
    """Raised by a core when the request is valid but the state does not allow it."""


class Aborted(FailedPrecondition):
    """A race lost to a concurrent change (ABORTED): the same request may succeed when simply retried.

    A kind of failed precondition, so code that catches those inside a service treats it the same; callers
    across the wire see ABORTED, which workers retry and never dead-letter."""


def bad_request_status(violations: Sequence[tuple[str, str]]) -> grpc.Status:
    """An INVALID_ARGUMENT status carrying google.rpc.BadRequest with each field violation."""
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations
            ]
        )
    )
    message = "invalid request: " + "; ".join(f"{f}: {d}" for f, d in violations[:10])
    if len(violations) > 10:
        message += f"; and {len(violations) - 10} more"
    return rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message, details=[detail])
    )


def field_violations(error: grpc.aio.AioRpcError | grpc.RpcError) -> list[tuple[str, str]]:
    """The BadRequest field violations a client received, as (field, description) pairs."""
    # The grpcio-status stubs ask for a grpc.Call, which an AioRpcError is not declared to be; it has what
    # from_call reads (its code, details and trailing metadata).
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    out: list[tuple[str, str]] = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.extend((v.field, v.description) for v in bad.field_violations)
    return out


async def abort_for(context: Context, error: Exception) -> NoReturn:
    """Map a core exception to its gRPC status and abort the call."""
    if isinstance(error, InvalidArgument):
        await context.abort_with_status(bad_request_status(error.violations))
    if isinstance(error, NotFound):
        await context.abort(grpc.StatusCode.NOT_FOUND, str(error) or "not found")
    if isinstance(error, Aborted):
        await context.abort(grpc.StatusCode.ABORTED, str(error))
    if isinstance(error, FailedPrecondition):
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
    raise error


_Servicer = TypeVar("_Servicer")
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
_Context = TypeVar("_Context", bound=Context)


def mapped_errors(
    method: Callable[[_Servicer, _Request, _Context], Awaitable[_Response]],
) -> Callable[[_Servicer, _Request, _Context], Awaitable[_Response]]:
    """Decorate a unary servicer method so core exceptions become gRPC statuses."""

    async def wrapper(self: _Servicer, request: _Request, context: _Context) -> _Response:
        try:
            return await method(self, request, context)
        except (InvalidArgument, NotFound, FailedPrecondition) as error:
            await abort_for(context, error)
        except STORE_UNAVAILABLE as error:
            log.warning("%s: state store unavailable (%s)", method.__name__, type(error).__name__)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "state store unavailable; retry shortly")

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class _Undecodable:
    """What a guarded deserializer returns for bytes that do not parse as the request message."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


async def _refuse_undecodable(context: Context, request: _Undecodable) -> None:
    description = f"is not a valid {request.type_name} (corrupt protobuf or a string that is not UTF-8)"
    await context.abort_with_status(bad_request_status([("request", description)]))


class RefuseUndecodable(WrappingInterceptor):
    """Answers a request that does not parse with INVALID_ARGUMENT (a BadRequest on `request`).

    grpc.aio itself answers a deserializer's exception with UNKNOWN and the exception's class name, which
    tells a caller nothing useful and shows an internal name. So the deserializer is wrapped to hand the
    handler a marker instead, and the marker is refused before the servicer sees it.
    """

    def wrap(self, handler: Handler, method: str) -> Handler:
        return handler if handler.request_deserializer is None else self._guard(handler)

    @staticmethod
    def _guard(handler: Handler) -> Handler:
        parse = handler.request_deserializer
        assert parse is not None  # intercept_service passes through the handlers without one
        message_type = getattr(parse, "__self__", None)
        type_name = getattr(getattr(message_type, "DESCRIPTOR", None), "full_name", "request message")

        def deserialize(data: bytes) -> Any:
            try:
                return parse(data)
            except Exception:  # protobuf's DecodeError, or a UnicodeDecodeError from a pure-Python build
                return _Undecodable(type_name)

        return _guarded(handler, deserialize)


def _guarded(handler: Handler, deserialize: Callable[[bytes], Any]) -> Handler:
    call_unary, call_streaming = unary(handler), streaming(handler)

    async def checked(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
        async for request in requests:
            if isinstance(request, _Undecodable):
                await _refuse_undecodable(context, request)
            yield request

    async def unary_unary(request: Any, context: Context) -> Any:
        if isinstance(request, _Undecodable):
            await _refuse_undecodable(context, request)
        return await call_unary(request, context)

    async def unary_stream(request: Any, context: Context) -> AsyncIterator[Any]:
        if isinstance(request, _Undecodable):
            await _refuse_undecodable(context, request)
        async for response in responses(call_streaming(request, context)):
            yield response

    async def stream_unary(requests: AsyncIterator[Any], context: Context) -> Any:
        return await call_unary(checked(requests, context), context)

    async def stream_stream(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
        async for response in responses(call_streaming(checked(requests, context), context)):
            yield response

    behaviours = {(False, False): unary_unary, (False, True): unary_stream, (True, False): stream_unary}
    behaviour = behaviours.get((handler.request_streaming, handler.response_streaming), stream_stream)
    return same_kind(handler, behaviour, deserialize)


class ConfirmReplicated(WrappingInterceptor):
    """Answers a call that changes state (`changes` in the authorization table) only once a replica of each
    Redis Cluster master has its writes (`store.Replicas`), so no failover takes back what a caller was told
    is done. A streamed call confirms before each response. Not installed on a single server."""

    def __init__(self, replicas: store.Replicas) -> None:
        super().__init__()
        self.replicas = replicas

    def wrap(self, handler: Handler, method: str) -> Handler:
        rule = authz.RULES.get(method)
        return self._confirmed(handler) if rule is not None and rule.changes else handler

    async def _confirm(self, context: Context) -> None:
        try:
            await self.replicas.confirm()
        except STORE_UNAVAILABLE as error:
            log.warning("writes not confirmed by a replica (%s)", type(error).__name__)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "state store failing over; retry shortly")

    def _confirmed(self, handler: Handler) -> Handler:
        if handler.response_streaming:
            call_streaming = streaming(handler)

            async def each_confirmed(request: Any, context: Context) -> AsyncIterator[Any]:
                async for response in responses(call_streaming(request, context)):
                    await self._confirm(context)
                    yield response

            return same_kind(handler, each_confirmed)
        call_unary = unary(handler)

        async def confirmed(request: Any, context: Context) -> Any:
            response = await call_unary(request, context)
            await self._confirm(context)
            return response

        return same_kind(handler, confirmed)


async def stop_background(tasks: Iterable[asyncio.Task[Any]], grace: float) -> None:
    """Give a server's background tasks `grace` seconds to end (their stop signal is already given), then
    cancel what is left and wait a bounded while more. Bounded because a cancellation that a client library
    absorbs (Python 3.11's asyncio.wait_for can) must never hold a shutdown, and Redis, open forever."""
    pending = {task for task in tasks if not task.done()}
    if pending and grace > 0:
        _, pending = await asyncio.wait(pending, timeout=grace)
    if not pending:
        return
    for task in pending:
        task.cancel()
    _, stuck = await asyncio.wait(pending, timeout=max(grace, 1.0))
    for task in stuck:
        log.warning("background task %s did not stop on cancellation", task.get_name())


@dataclass
class RunningServer:
    """A started gRPC server with its health servicer and bound port."""

    server: grpc.aio.Server
    port: int
    health: HealthServicer
    service_names: list[str]
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def stop(self, grace: float | None = None) -> None:
        """Graceful shutdown: report NOT_SERVING, let in-flight calls finish, then run the cleanups."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        for cleanup in reversed(self.on_stop):
            await cleanup()


async def start_server(
    settings: Settings,
    address: str,
    register: Iterable[tuple[Callable[[Any, grpc.aio.Server], None], Any, str]],
) -> RunningServer:
    """Start a grpc.aio server on `address` (port 0 picks a free one).

    `register` lists (add_XServicer_to_server, servicer, full service name) for each service to expose.
    Health checking reports SERVING for each service and for "" (the whole server); reflection lists them.
    """
    # SO_REUSEPORT off: otherwise a second suite binds a port this one holds and the two share its traffic.
    options = [*settings.grpc_options, ("grpc.so_reuseport", 0)]
    # The auth interceptor reads the router's assignments and appends to the audit trail with its own client;
    # on a cluster, the replica confirmations go through it too.
    confirming = settings.redis_cluster and settings.redis_replica_wait_ms > 0
    own_client = settings.redis_url and (confirming or not settings.auth_disabled)
    redis = store.connect(settings) if own_client else None
    # Observing first (outermost), so every call is counted, a refused one too; then authentication, so a
    # caller without a token learns nothing from how its request parses. Confirmation is innermost: it runs
    # after the servicer and before anything else sees the answer.
    interceptors = [ObservingInterceptor(), *server_interceptors(settings, redis), RefuseUndecodable()]
    if confirming and redis is not None:
        interceptors.append(ConfirmReplicated(store.Replicas(settings, redis)))
    server = grpc.aio.server(options=options, interceptors=interceptors)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = []
    for add, servicer, name in register:
        add(servicer, server)
        names.append(name)
    if settings.grpc_reflection:
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    try:
        if settings.tls_cert_file and settings.tls_key_file:
            credentials = _server_credentials(settings, settings.tls_key_file, settings.tls_cert_file)
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as error:  # grpcio's way of saying the bind failed (the port is taken, mostly)
        raise OSError(errno.EADDRINUSE, f"could not bind {address}") from error
    if port == 0:
        raise OSError(f"could not bind {address}")
    await server.start()
    for name in [*names, ""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    running = RunningServer(server, port, health_servicer, names)
    if redis is not None:
        running.on_stop.append(redis.aclose)
    return running


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path else None


def _server_credentials(settings: Settings, key_file: Path, cert_file: Path) -> grpc.ServerCredentials:
    """Server TLS; with tls_require_client_cert, only clients with a certificate signed by tls_ca_file."""
    pair = [(key_file.read_bytes(), cert_file.read_bytes())]
    return grpc.ssl_server_credentials(
        pair,
        root_certificates=_read(settings.tls_ca_file),
        require_client_auth=settings.tls_require_client_cert,
    )


def _transport(
    settings: Settings, address: str, interceptors: Sequence[grpc.aio.ClientInterceptor]
) -> grpc.aio.Channel:
    """Plaintext, or TLS when a CA or certificate is configured (presenting the certificate under mTLS); trace
    context travels with every call when tracing is on."""
    interceptors = [*tracing.client_interceptors(), *interceptors]
    # Calls take turns over every address the target names or resolves to (`ipv4:host:a,host:b`, or a DNS
    # name with one record per replica), so replicas of a service share its calls with no balancer between.
    options = [*settings.grpc_options, ("grpc.lb_policy_name", "round_robin")]
    if not (settings.tls_ca_file or settings.tls_cert_file):
        return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
    mutual = settings.tls_require_client_cert
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(settings.tls_ca_file),
        private_key=_read(settings.tls_key_file) if mutual else None,
        certificate_chain=_read(settings.tls_cert_file) if mutual else None,
    )
    return grpc.aio.secure_channel(address, credentials, options=options, interceptors=interceptors)


def channel(
    settings: Settings, address: str, token: str | None = None, scopes: Sequence[str] = ("internal",)
) -> grpc.aio.Channel:
    """A client channel with the suite's message size limits, TLS when configured, and a bearer token on
    every call: `token`, else this process's own (PARLEY_AUTH_TOKEN, or one with `scopes` minted from the
    secret)."""
    return _transport(settings, address, client_interceptors(TokenSource(settings, token, scopes=scopes)))


def health_check(
    ch: grpc.aio.Channel,
) -> grpc.aio.UnaryUnaryMultiCallable[health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse]:
    """The standard health Check of the server at the other end of `ch`."""
    # The grpcio-health-checking stubs leave out the methods of HealthStub.
    check: grpc.aio.UnaryUnaryMultiCallable[health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse]
    check = health_pb2_grpc.HealthStub(ch).Check  # type: ignore[attr-defined]
    return check


async def wait_ready(address: str, timeout: float = 10.0, settings: Settings | None = None) -> None:
    """Wait until the server at `address` answers its gRPC health check with SERVING (over TLS when
    `settings` configure it; health needs no token)."""
    opened = _transport(settings, address, []) if settings else grpc.aio.insecure_channel(address)
    async with opened as ch:
        check = health_check(ch)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                reply = await check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if loop.time() > deadline:
                raise TimeoutError(f"{address} not serving after {timeout}s")
            await asyncio.sleep(0.05)
