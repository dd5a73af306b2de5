"""The HTTP endpoints the networks deliver to: `/webhooks/meta` and `/webhooks/x` (aiohttp).

Every POST goes through the same gate, cheapest check first, and nothing of a refused request is stored:
503 when the network's secret is not configured (never read unsigned), 415 unless the body is JSON, 401
without a signature, 413 as soon as the body outgrows `webhook_max_body_bytes` (counted while reading, so
an oversized body is never held whole), 408 when the body is not read whole within its timeout, 403 when the
signature does not match, and 400 when the body does not follow the network's format (the error names each
bad field). 429 (with Retry-After) means the inbound log's backlog is at its bound.

The server itself bounds what slow or numerous clients can hold: a connection whose request headers are not
all in within `webhook_header_timeout_seconds` is closed, and at most `webhook_max_connections` are open at
once (the next one gets 503 and is closed), so partial bodies never hold more than that many body caps.

A signed, well-formed delivery is answered 200 only once its messages are in the inbound log. The networks
retry a whole delivery on any other answer, so a delivery is stored all or nothing as the network sees it:
when the log fails part-way, the 503 makes the network send everything again, and de-duplication by channel
and platform message id drops what was already logged. A message that the intake refuses (a text over the
length cap, say) cannot be fixed by retrying: it is kept in the refused list with the reasons, the rest of
the delivery is logged, and the answer is 200.

The CRC endpoint signs only tokens of the form X sends (a short run of base64 characters): signing anything
else would sign a forged delivery body, since a delivery's signature is the same HMAC of its body.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from parley.clock import Clock, SystemClock
from parley.config import Settings, reveal
from parley.ingestion import admission, intake
from parley.ingestion.inbound_log import ACCEPTED, InboundLog
from parley.ingestion.webhooks import signatures
from parley.ingestion.webhooks.meta import parse_meta
from parley.ingestion.webhooks.payload import Parsed, PayloadError
from parley.ingestion.webhooks.x import parse_x
from parley.messages import CHANNEL_NAMES
from parley.store import Keys, Redis, Replicas
from parley.telemetry import tracing
from parley.v1 import common_pb2

log = logging.getLogger(__name__)

META_SIGNATURE = "X-Hub-Signature-256"
X_SIGNATURE = "x-twitter-webhooks-signature"
READ_CHUNK = 64 * 1024
# Refusals that leave the body unread: the connection is closed with the answer.
UNREAD_BODY = frozenset({408, 413})
LINGER_SECONDS = 1.0
# X's crc_token: base64 (or base64url) characters. Anything else, above all a JSON body, is refused unsigned.
CRC_TOKEN = re.compile(r"[A-Za-z0-9+/_=-]{1,128}")


class Refused(Exception):
    """An HTTP error answer: status, message, and the bad fields when there are some."""

    def __init__(
        self,
        status: int,
        message: str,
        fields: list[tuple[str, str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields or []
        self.retry_after = retry_after


def error_response(
    status: int,
    message: str,
    fields: list[tuple[str, str]] | None = None,
    retry_after: int | None = None,
) -> web.Response:
    error: dict[str, Any] = {"code": status, "message": message}
    if fields:
        error["fields"] = [{"field": f, "description": d} for f, d in fields]
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.json_response({"error": error}, status=status, headers=headers)


def refused_key(keys: Keys) -> str:
    return keys.namespaced("webhook-refused")


@dataclass(frozen=True)
class Network:
    name: str
    secret: Callable[[Settings], str]
    secret_setting: str
    signature_header: str
    signature_ok: Callable[[str, bytes, str], bool]
    parse: Callable[[Any], Parsed]


class WebhookEndpoints:
    def __init__(
        self, settings: Settings, log_: InboundLog, redis: Redis, keys: Keys, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self.log = log_
        self.redis = redis
        self.replicas = Replicas(settings, redis)  # a network is answered 200 once a replica has its messages
        self.keys = keys
        self.clock = clock or SystemClock()
        self.meta = Network(
            "meta",
            lambda s: reveal(s.webhook_meta_app_secret),
            "PARLEY_WEBHOOK_META_APP_SECRET",
            META_SIGNATURE,
            signatures.meta_signature_ok,
            lambda payload: parse_meta(payload, settings.webhook_meta_app_id),
        )
        self.x = Network(
            "x",
            lambda s: reveal(s.webhook_x_consumer_secret),
            "PARLEY_WEBHOOK_X_CONSUMER_SECRET",
            X_SIGNATURE,
            signatures.x_signature_ok,
            parse_x,
        )

    def application(self) -> web.Application:
        # The body cap is enforced while reading (see _read); aiohttp's own cap stays out of its way.
        app = web.Application(client_max_size=self.settings.webhook_max_body_bytes + 1)
        app.router.add_get("/webhooks/meta", self.meta_verify)
        app.router.add_post("/webhooks/meta", self.meta_deliver)
        app.router.add_get("/webhooks/x", self.x_crc)
        app.router.add_post("/webhooks/x", self.x_deliver)
        return app

    # -- handshakes ----------------------------------------------------------------------------------------

    async def meta_verify(self, request: web.Request) -> web.Response:
        """Meta's subscription check: echo `hub.challenge` when the verify token matches."""
        token = reveal(self.settings.webhook_meta_verify_token)
        if not token:
            return error_response(
                503, "Meta webhooks are not configured: set PARLEY_WEBHOOK_META_VERIFY_TOKEN"
            )
        query = request.query
        if query.get("hub.mode") != "subscribe" or not query.get("hub.challenge"):
            return error_response(400, "expected hub.mode=subscribe with hub.challenge and hub.verify_token")
        if not signatures.constant_time_equal(query.get("hub.verify_token", ""), token):
            return error_response(403, "hub.verify_token does not match")
        return web.Response(text=query["hub.challenge"], content_type="text/plain")

    async def x_crc(self, request: web.Request) -> web.Response:
        """X's challenge-response check: prove the consumer secret by signing `crc_token`."""
        secret = reveal(self.settings.webhook_x_consumer_secret)
        if not secret:
            return error_response(503, "X webhooks are not configured: set PARLEY_WEBHOOK_X_CONSUMER_SECRET")
        token = request.query.get("crc_token", "")
        if not token:
            return error_response(400, "crc_token is required", [("crc_token", intake.REQUIRED)])
        if not CRC_TOKEN.fullmatch(token):
            description = "must be 1 to 128 base64 characters, as X sends"
            return error_response(400, f"crc_token {description}", [("crc_token", description)])
        return web.json_response(signatures.x_crc_response(secret, token))

    # -- deliveries ----------------------------------------------------------------------------------------

    async def meta_deliver(self, request: web.Request) -> web.Response:
        return await self.deliver(self.meta, request)

    async def x_deliver(self, request: web.Request) -> web.Response:
        return await self.deliver(self.x, request)

    async def deliver(self, network: Network, request: web.Request) -> web.Response:
        try:
            payload = await self._authentic_payload(network, request)
            try:
                parsed = network.parse(payload)
            except PayloadError as error:
                raise Refused(
                    400, f"the body is not a {network.name} webhook delivery", error.violations
                ) from None
            except UnicodeEncodeError:
                # JSON can escape a lone surrogate ("\ud800"), which no message text can hold.
                raise Refused(
                    400, "the body holds a string that is not valid Unicode (a lone surrogate)"
                ) from None
            return web.json_response(await self.store(network.name, parsed))
        except Refused as refused:
            response = error_response(refused.status, refused.message, refused.fields, refused.retry_after)
            if refused.status in UNREAD_BODY:
                response.force_close()  # never read (nor wait for) the rest of that body
            return response
        except admission.BacklogFull as full:
            return error_response(429, str(full), retry_after=full.retry_after)
        except (RedisError, *admission.NOT_NOW) as error:
            log.warning("%s delivery not stored, the network will retry it: %s", network.name, error)
            return error_response(
                503,
                "the inbound log is unavailable; the delivery was not stored, retry it",
                retry_after=self.settings.inbound_retry_after_seconds,
            )

    async def _authentic_payload(self, network: Network, request: web.Request) -> Any:
        secret = network.secret(self.settings)
        if not secret:
            raise Refused(503, f"{network.name} webhooks are not configured: set {network.secret_setting}")
        if request.content_type != "application/json":
            raise Refused(415, f"the body must be application/json, not {request.content_type or 'unnamed'}")
        signature = request.headers.get(network.signature_header)
        if not signature:
            raise Refused(401, f"the {network.signature_header} header is missing")
        body = await self._read(request)
        if not network.signature_ok(secret, body, signature):
            raise Refused(403, f"the {network.signature_header} signature does not match the body")
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise Refused(
                400, f"the body is not valid JSON: {error}", [("body", "must be a JSON object")]
            ) from None

    async def _read(self, request: web.Request) -> bytes:
        """The raw body, refused as soon as it is larger than the cap (it is never held whole if so)."""
        cap = self.settings.webhook_max_body_bytes
        too_large = Refused(413, f"the body is larger than {cap} bytes")
        if request.content_length is not None and request.content_length > cap:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        timeout = self.settings.webhook_body_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                while chunk := await request.content.read(READ_CHUNK):
                    size += len(chunk)
                    if size > cap:
                        raise too_large
                    chunks.append(chunk)
        except TimeoutError:
            # The connection closes with the answer, so the rest of a slow body is never read.
            raise Refused(408, f"the body was not received within {timeout:g}s") from None
        return b"".join(chunks)

    async def store(self, network: str, parsed: Parsed) -> dict[str, Any]:
        """Validate, normalize and log the messages; keep the refused ones aside. Raises if storing fails."""
        good, refused = intake.admit_each(parsed.messages, self.settings, self.clock.now())
        if good:
            await admission.ensure_room(self.log, self.settings)
        with tracing.webhook_span(network):  # the trace its messages carry through the pipeline
            statuses = await self.log.append(good) if good else []
        if refused:
            await self._set_aside(network, refused)
        await self.replicas.confirm()
        accepted = sum(1 for s in statuses if s == ACCEPTED)
        return {
            "accepted": accepted,
            "duplicates": len(statuses) - accepted,
            "ignored": parsed.ignored,
            "refused": [
                {
                    "platform_message_id": m.platform_message_id,
                    "fields": [{"field": f, "description": d} for f, d in violations],
                }
                for m, violations in refused
            ],
        }

    async def _set_aside(
        self, network: str, refused: list[tuple[common_pb2.InboundMessage, list[tuple[str, str]]]]
    ) -> None:
        records = [
            json.dumps(
                {
                    "network": network,
                    "channel": CHANNEL_NAMES.get(m.channel, ""),
                    "platform_message_id": m.platform_message_id,
                    "fields": [{"field": f, "description": d} for f, d in violations],
                    "message": base64.b64encode(m.SerializeToString()).decode(),
                }
            )
            for m, violations in refused
        ]
        for m, violations in refused:
            fields = ", ".join(f for f, _ in violations)
            log.warning("%s message %s refused (%s)", network, intake.for_log(m.platform_message_id), fields)
        key = refused_key(self.keys)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, *records)
            pipe.ltrim(key, -self.settings.webhook_refused_maxlen, -1)
            await pipe.execute()


# The answer to a connection over the cap, written before a byte of it is read.
_BUSY_BODY = json.dumps({"error": {"code": 503, "message": "too many open connections; retry"}}).encode()
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    + f"Content-Length: {len(_BUSY_BODY)}\r\nConnection: close\r\n\r\n".encode()
    + _BUSY_BODY
)


class _Busy(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_BUSY)
        transport.close()


class _CappedServer(web.Server):
    """aiohttp's connection factory, refusing connections beyond `limit` open at once.

    A connection counts from the moment its handler is made: asyncio makes the handlers of a burst of accepted
    connections before any of them is connected, so counting only connected ones would let a burst through.
    """

    def __init__(self, *args: Any, limit: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limit = limit
        self._opening = 0

    def __call__(self) -> Any:
        if len(self.connections) + self._opening >= self.limit:
            return _Busy()
        self._opening += 1
        return super().__call__()

    def connection_made(self, handler: Any, transport: asyncio.Transport) -> None:
        self._opening = max(0, self._opening - 1)
        super().connection_made(handler, transport)


class _CappedRunner(web.AppRunner):
    def __init__(self, app: web.Application, limit: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._limit = limit

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()  # starts and freezes the app
        return _CappedServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=asyncio.get_running_loop(),
            limit=self._limit,
            **self._kwargs,
        )


@dataclass
class WebhookServer:
    runner: web.AppRunner
    port: int

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_webhook_server(
    settings: Settings,
    log_: InboundLog,
    redis: Redis,
    keys: Keys,
    host: str,
    port: int,
    clock: Clock | None = None,
) -> WebhookServer:
    """Serve the webhook endpoints on host:port (0 picks a free port; the result has the bound port)."""
    endpoints = WebhookEndpoints(settings, log_, redis, keys, clock)
    runner = _CappedRunner(
        endpoints.application(),
        settings.webhook_max_connections,
        access_log=None,
        shutdown_timeout=settings.shutdown_grace_seconds,
        # aiohttp closes a connection still waiting for a request (no headers, or not all of them) when its
        # keep-alive timer fires; the timer runs from the connection's start and from each answer.
        keepalive_timeout=settings.webhook_header_timeout_seconds,
        # After a refusal that left a body unread, what keeps arriving is drained (not stored) this long, so
        # the answer reaches the client before the close; aiohttp's default waits ten seconds.
        lingering_time=LINGER_SECONDS,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1]
    log.info("webhooks listening on http://%s:%d/webhooks/{meta,x}", host, bound)
    return WebhookServer(runner, bound)
