"""What every gRPC server and client of the suite shares: health, reflection, limits, errors, shutdown.

A service module builds its servicer and calls `start_server`; tests do the same on port 0.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from parley import store
from parley.auth import TokenSource, client_interceptors, server_interceptors
from parley.config import Settings

log = logging.getLogger(__name__)


class InvalidArgument(Exception):
    """Raised by a core or a validator: one (field, description) pair per bad field."""

    def __init__(self, violations: Sequence[tuple[str, str]]) -> None:
        self.violations = list(violations)
        super().__init__("; ".join(f"{f}: {d}" for f, d in self.violations))


class NotFound(Exception):
    """Raised by a core when the thing asked for does not exist."""


class FailedPrecondition(Exception):
    """Raised by a core when the request is valid but the state does not allow it."""


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
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    out: list[tuple[str, str]] = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.extend((v.field, v.description) for v in bad.field_violations)
    return out


async def abort_for(context: grpc.aio.ServicerContext, error: Exception) -> None:
    """Map a core exception to its gRPC status and abort the call."""
    if isinstance(error, InvalidArgument):
        await context.abort_with_status(bad_request_status(error.violations))
    if isinstance(error, NotFound):
        await context.abort(grpc.StatusCode.NOT_FOUND, str(error) or "not found")
    if isinstance(error, FailedPrecondition):
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
    raise error


def mapped_errors(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Decorate a unary servicer method so core exceptions become gRPC statuses."""

    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except (InvalidArgument, NotFound, FailedPrecondition) as error:
            await abort_for(context, error)

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


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
    # The auth interceptor reads the router's assignments and appends to the audit trail with its own client.
    redis = store.connect(settings) if settings.redis_url and not settings.auth_disabled else None
    server = grpc.aio.server(options=settings.grpc_options, interceptors=server_interceptors(settings, redis))
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = []
    for add, servicer, name in register:
        add(servicer, server)
        names.append(name)
    if settings.grpc_reflection:
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    if settings.tls_cert_file and settings.tls_key_file:
        port = server.add_secure_port(address, _server_credentials(settings))
    else:
        port = server.add_insecure_port(address)
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


def _server_credentials(settings: Settings) -> grpc.ServerCredentials:
    """Server TLS; with tls_require_client_cert, only clients with a certificate signed by tls_ca_file."""
    pair = [(_read(settings.tls_key_file), _read(settings.tls_cert_file))]
    return grpc.ssl_server_credentials(
        pair,  # type: ignore[arg-type]
        root_certificates=_read(settings.tls_ca_file),
        require_client_auth=settings.tls_require_client_cert,
    )


def _transport(settings: Settings, address: str, interceptors: list[Any]) -> grpc.aio.Channel:
    """Plaintext, or TLS when a CA or certificate is configured (presenting the certificate under mTLS)."""
    if not (settings.tls_ca_file or settings.tls_cert_file):
        return grpc.aio.insecure_channel(address, options=settings.grpc_options, interceptors=interceptors)
    mutual = settings.tls_require_client_cert
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(settings.tls_ca_file),
        private_key=_read(settings.tls_key_file) if mutual else None,
        certificate_chain=_read(settings.tls_cert_file) if mutual else None,
    )
    return grpc.aio.secure_channel(
        address, credentials, options=settings.grpc_options, interceptors=interceptors
    )


def channel(settings: Settings, address: str, token: str | None = None) -> grpc.aio.Channel:
    """A client channel with the suite's message size limits, TLS when configured, and a bearer token on
    every call: `token`, else this process's own (PARLEY_AUTH_TOKEN, or an internal one minted from the
    secret)."""
    return _transport(settings, address, client_interceptors(TokenSource(settings, token)))


async def wait_ready(address: str, timeout: float = 10.0, settings: Settings | None = None) -> None:
    """Wait until the server at `address` answers its gRPC health check with SERVING (over TLS when
    `settings` configure it; health needs no token)."""
    opened = _transport(settings, address, []) if settings else grpc.aio.insecure_channel(address)
    async with opened as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if loop.time() > deadline:
                raise TimeoutError(f"{address} not serving after {timeout}s")
            await asyncio.sleep(0.05)
