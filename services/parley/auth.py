"""Authentication: bearer JWTs checked on every call by one server interceptor, and attached by every client.

Parley's own tokens are HS256, signed with the shared secret (`PARLEY_AUTH_JWT_SECRET`, or the file
`PARLEY_AUTH_JWT_SECRET_FILE` that `parley up` creates): the services mint `internal` tokens from it for
their calls to each other, and `parley token` prints tokens for people and ingest clients. A contact
center's identity provider may issue RS256/ES256 tokens instead, checked against its JWKS (file or URL) with
issuer and audience; those never carry `internal`. Which scope may call what is `parley.authz.RULES`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import jwt
from google.protobuf.message import Message

from parley import authz
from parley.aio_types import (
    Context,
    Continuation,
    Handler,
    responses,
    same_kind,
    streaming,
    unary,
    with_metadata,
)
from parley.config import Settings, reveal

if TYPE_CHECKING:
    from parley.audit import AuditTrail
    from parley.store import Redis

log = logging.getLogger(__name__)

# The issuer of the tokens Parley signs itself (HS256); an identity provider's is PARLEY_AUTH_JWKS_ISSUER.
LOCAL_ISSUER = "parley"
# RFC 7518 asks for an HMAC key at least as long as the hash.
MIN_SECRET_BYTES = 32
INTERNAL_TOKEN_TTL = 3600
# Tokens already verified, until they expire: a client reuses its token for many calls.
VERIFIED_CACHE_SIZE = 4096
# A process's own token is re-minted this long before it expires.
RENEW_BEFORE = 300


class Unauthenticated(Exception):
    """A missing, malformed, expired or wrongly signed token; the message says which."""


@dataclass(frozen=True)
class Principal:
    subject: str
    scopes: frozenset[str]
    expires: float = 0.0


def jwt_secret(settings: Settings) -> str:
    """The shared secret: the setting, else the local secret file, else empty."""
    secret = reveal(settings.auth_jwt_secret)
    if not secret and settings.auth_jwt_secret_file.is_file():
        secret = settings.auth_jwt_secret_file.read_text().strip()
    return secret


def ensure_local_secret(path: Path) -> str:
    """The secret in `path`, created (mode 0600, directory 0700) when absent: what `parley up` signs with."""
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    return secret


def mint(
    secret: str,
    subject: str,
    scopes: Iterable[str],
    ttl: float = INTERNAL_TOKEN_TTL,
    audience: str = "parley",
) -> str:
    """An HS256 token for `subject` with `scopes`, valid for `ttl` seconds."""
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes")
    now = int(time.time())
    claims = {
        "iss": LOCAL_ISSUER,
        "aud": audience,
        "sub": subject,
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + int(ttl),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    """OAuth's space-separated `scope`, or a `scp` list as some identity providers send it."""
    raw = claims.get("scope", claims.get("scp", ""))
    names = raw.split() if isinstance(raw, str) else [str(s) for s in raw]
    return frozenset(names)


class Verifier:
    """Checks a bearer token and returns who holds it, or raises Unauthenticated saying what is wrong."""

    def __init__(self, settings: Settings) -> None:
        self.secret = jwt_secret(settings)
        if self.secret and len(self.secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"PARLEY_AUTH_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        self.audience = settings.auth_audience
        self.issuer = settings.auth_jwks_issuer
        self.jwks_client: jwt.PyJWKClient | None = None
        self.jwks_set: jwt.PyJWKSet | None = None
        if settings.auth_jwks.startswith("https://") or settings.auth_jwks.startswith("http://"):
            self.jwks_client = jwt.PyJWKClient(settings.auth_jwks, cache_keys=True, lifespan=300)
        elif settings.auth_jwks:
            self.jwks_set = jwt.PyJWKSet.from_json(Path(settings.auth_jwks).read_text())
        if (self.jwks_client or self.jwks_set) and not self.issuer:
            raise ValueError("PARLEY_AUTH_JWKS needs PARLEY_AUTH_JWKS_ISSUER")
        self.verified: dict[str, Principal] = {}

    async def verify(self, token: str) -> Principal:
        known = self.verified.get(token)
        if known is not None and known.expires > time.time():
            return known
        principal = await self._verify(token)
        if len(self.verified) >= VERIFIED_CACHE_SIZE:
            self.verified.clear()
        self.verified[token] = principal
        return principal

    async def _verify(self, token: str) -> Principal:
        try:
            alg = jwt.get_unverified_header(token).get("alg")
            if alg == "HS256":
                return self._local(token)
            if alg in ("RS256", "ES256"):
                return await self._provider(token, alg)
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"invalid bearer token: {error}") from None
        raise Unauthenticated(
            f"invalid bearer token: algorithm {alg!r} is not accepted (HS256, RS256, ES256)"
        )

    def _decode(self, token: str, key: Any, alg: str, issuer: str) -> dict[str, Any]:
        return jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=self.audience,
            issuer=issuer,
            options={"require": ["exp", "sub", "iss", "aud"]},
        )

    def _local(self, token: str) -> Principal:
        if not self.secret:
            raise Unauthenticated(
                "invalid bearer token: HS256 tokens need PARLEY_AUTH_JWT_SECRET on the server"
            )
        claims = self._decode(token, self.secret, "HS256", LOCAL_ISSUER)
        return Principal(str(claims["sub"]), _scopes(claims), float(claims["exp"]))

    async def _provider(self, token: str, alg: str) -> Principal:
        if self.jwks_client is not None:
            key = (await asyncio.to_thread(self.jwks_client.get_signing_key_from_jwt, token)).key
        elif self.jwks_set is not None:
            kid = jwt.get_unverified_header(token).get("kid")
            matching = [k for k in self.jwks_set.keys if kid is None or k.key_id == kid]
            if not matching:
                raise Unauthenticated(f"invalid bearer token: no key {kid!r} in PARLEY_AUTH_JWKS")
            key = matching[0].key
        else:
            raise Unauthenticated(f"invalid bearer token: {alg} tokens need PARLEY_AUTH_JWKS on the server")
        claims = self._decode(token, key, alg, self.issuer)
        # `internal` is the services' own: an identity provider's token never carries it.
        return Principal(str(claims["sub"]), _scopes(claims) - {authz.INTERNAL}, float(claims["exp"]))


def _bearer(metadata: Iterable[Any]) -> str:
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("the authorization metadata must be 'Bearer <token>'")
            return token.strip()
    raise Unauthenticated("missing credentials: no 'authorization: Bearer <token>' metadata")


Check = Callable[[Any, Context], Awaitable[None]]
Done = Callable[[Any, Context], Awaitable[None]]


def _rebuild(handler: Handler, before: Check, after: Done | None) -> Handler:
    """The same handler with `before` run first (it may abort) and `after` once the call ended."""
    call_unary, call_streaming = unary(handler), streaming(handler)

    async def unary_call(request: Any, context: Context) -> Any:
        await before(request, context)
        try:
            return await call_unary(request, context)
        finally:
            if after is not None:
                await after(request, context)

    async def streaming_call(request: Any, context: Context) -> AsyncIterator[Any]:
        await before(request, context)
        try:
            async for item in responses(call_streaming(request, context)):
                yield item
        finally:
            if after is not None:
                await after(request, context)

    return same_kind(handler, streaming_call if handler.response_streaming else unary_call)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates every call (health and reflection excepted), applies the authorization table, checks an
    agent's own calls against the router's state, and hands people's state-changing calls to the audit."""

    def __init__(
        self, verifier: Verifier, ownership: authz.Ownership | None, audit: AuditTrail | None
    ) -> None:
        self.verifier = verifier
        self.ownership = ownership
        self.audit = audit

    async def intercept_service(
        self,
        continuation: Continuation,
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method = details.method
        handler = await continuation(details)
        if handler is None or method.startswith(authz.OPEN_SERVICES):
            return handler
        try:
            principal = await self.verifier.verify(_bearer(details.invocation_metadata))
        except Unauthenticated as error:
            return _refusing(handler, grpc.StatusCode.UNAUTHENTICATED, str(error))
        rule = authz.RULES.get(method)
        if rule is None:
            return _refusing(
                handler, grpc.StatusCode.PERMISSION_DENIED, f"{method} has no authorization rule"
            )
        scope = rule.granting(principal.scopes)
        audit = self.audit if rule.changes and (not scope or scope in authz.PEOPLE) else None
        audited = audit is not None
        if not scope:
            held = ", ".join(sorted(principal.scopes)) or "none"
            message = f"{method} needs scope {rule.needs()}; token {principal.subject!r} has {held}"
            if audit is not None:
                await audit.record(principal, "", method, None, "PERMISSION_DENIED")
            return _refusing(handler, grpc.StatusCode.PERMISSION_DENIED, message)
        if scope != authz.AGENT and not audited:
            return handler  # the common path: nothing more to check or record

        async def before(request: Any, context: Context) -> None:
            # A request that did not parse is refused further in, before any servicer sees it.
            if scope != authz.AGENT or rule.agent is None or not isinstance(request, Message):
                return
            refusal = (
                await self.ownership.refusal(rule.agent, principal.subject, request)
                if self.ownership is not None
                else "this server has no state store to check an agent's own calls against"
            )
            if refusal:
                if audit is not None:
                    await audit.record(principal, scope, method, request, "PERMISSION_DENIED")
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{method}: {refusal}")

        async def after(request: Any, context: Context) -> None:
            code = context.code()
            outcome = (
                code.name if isinstance(code, grpc.StatusCode) else "OK" if code in (None, 0) else "ERROR"
            )
            if audit is not None:
                await audit.record(principal, scope, method, request, outcome)

        return _rebuild(handler, before, after if audited else None)


def _refusing(handler: Handler, code: grpc.StatusCode, message: str) -> Handler:
    async def refuse(request: Any, context: Context) -> None:
        await context.abort(code, message)

    return _rebuild(handler, refuse, None)


def server_interceptors(settings: Settings, redis: Redis | None = None) -> list[grpc.aio.ServerInterceptor]:
    """The interceptors of every server: none when auth is explicitly off (with a warning)."""
    if settings.auth_disabled:
        log.warning("authentication is OFF (PARLEY_AUTH_DISABLED): every caller may make every call")
        return []
    ownership = audit = None
    if redis is not None:
        from parley.audit import AuditTrail
        from parley.dispatch.outbox import DispatchKeys
        from parley.router.keys import RouterKeys
        from parley.store import keys_for

        keys = keys_for(settings)
        ownership = authz.Ownership(redis, RouterKeys(keys), DispatchKeys(keys, settings.dispatch_partitions))
        audit = AuditTrail(redis, keys, settings.audit_maxlen)
    return [AuthInterceptor(Verifier(settings), ownership, audit)]


class TokenSource:
    """This process's own bearer token: PARLEY_AUTH_TOKEN, else a token minted from the secret with `scopes`
    (`internal` for the pipeline's calls; the console asks for `supervisor`), re-minted before it expires,
    else none."""

    def __init__(
        self,
        settings: Settings,
        token: str | None = None,
        subject: str = "",
        scopes: Sequence[str] = (authz.INTERNAL,),
    ) -> None:
        self.scopes = list(scopes)
        self.fixed = token if token is not None else reveal(settings.auth_token)
        self.secret = "" if self.fixed or settings.auth_disabled else jwt_secret(settings)
        self.subject = subject or f"parley-{settings.worker_name or 'service'}"
        self.audience = settings.auth_audience
        self._token, self._expires = "", 0.0

    def __call__(self) -> str:
        if self.fixed or not self.secret:
            return self.fixed
        if time.time() > self._expires - RENEW_BEFORE:
            self._token = mint(self.secret, self.subject, self.scopes, audience=self.audience)
            self._expires = time.time() + INTERNAL_TOKEN_TTL
        return self._token


ClientCallDetails = grpc.aio.ClientCallDetails
# What a client-streaming call sends: its request messages, from a plain or an async iterable.
Requests = AsyncIterable[Any] | Iterable[Any]


class _Bearer:
    def __init__(self, source: Callable[[], str]) -> None:
        self.source = source

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        token = self.source()
        if not token:
            return details
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        if metadata.get("authorization") is None:
            metadata.add("authorization", f"Bearer {token}")
        return with_metadata(details, metadata)


class _BearerUnaryUnary(_Bearer, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self,
        continuation: Callable[[ClientCallDetails, Any], Awaitable[grpc.aio.UnaryUnaryCall[Any, Any]]],
        details: ClientCallDetails,
        request: Any,
    ) -> grpc.aio.UnaryUnaryCall[Any, Any]:
        return await continuation(self._details(details), request)


class _BearerUnaryStream(_Bearer, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self,
        continuation: Callable[[ClientCallDetails, Any], Awaitable[grpc.aio.UnaryStreamCall[Any, Any]]],
        details: ClientCallDetails,
        request: Any,
    ) -> grpc.aio.UnaryStreamCall[Any, Any]:
        return await continuation(self._details(details), request)


class _BearerStreamUnary(_Bearer, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self,
        continuation: Callable[[ClientCallDetails, Requests], Awaitable[grpc.aio.StreamUnaryCall[Any, Any]]],
        details: ClientCallDetails,
        requests: Requests,
    ) -> grpc.aio.StreamUnaryCall[Any, Any]:
        return await continuation(self._details(details), requests)


class _BearerStreamStream(_Bearer, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self,
        continuation: Callable[[ClientCallDetails, Requests], Awaitable[grpc.aio.StreamStreamCall[Any, Any]]],
        details: ClientCallDetails,
        requests: Requests,
    ) -> grpc.aio.StreamStreamCall[Any, Any]:
        return await continuation(self._details(details), requests)


def client_interceptors(source: Callable[[], str]) -> list[grpc.aio.ClientInterceptor]:
    """Attach `Bearer <token>` to every call of a channel, whatever its kind."""
    return [
        cls(source)
        for cls in (_BearerUnaryUnary, _BearerUnaryStream, _BearerStreamUnary, _BearerStreamStream)
    ]
