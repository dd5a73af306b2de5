"""The HTTP endpoints the networks deliver to: `/webhooks/meta` and `/webhooks/x` (aiohttp).

Every POST goes through the same gate, cheapest check first, and nothing of a refused request is stored:
503 when the network's secret is not configured (never read unsigned), 415 unless the body is JSON, 401
without a signature, 413 as soon as the body outgrows `webhook_max_body_bytes` (counted while reading, so
an oversized body is never held whole), 403 when the signature does not match, and 400 when the body does
not follow the network's format (the error names each bad field).

A signed, well-formed delivery is answered 200 only once its messages are in the inbound log. The networks
retry a whole delivery on any other answer, so a delivery is stored all or nothing as the network sees it:
when the log fails part-way, the 503 makes the network send everything again, and de-duplication by channel
and platform message id drops what was already logged. A message that Parley's validation refuses (a text
over the length cap, say) cannot be fixed by retrying: it is kept in the refused list with the reasons, the
rest of the delivery is logged, and the answer is 200.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from parley.clock import Clock, SystemClock
from parley.config import Settings
from parley.ingestion.inbound_log import ACCEPTED, InboundLog
from parley.ingestion.validation import normalize, validate_batch
from parley.ingestion.webhooks import signatures
from parley.ingestion.webhooks.meta import parse_meta
from parley.ingestion.webhooks.payload import Parsed, PayloadError
from parley.ingestion.webhooks.x import parse_x
from parley.messages import CHANNEL_NAMES
from parley.rpc import InvalidArgument
from parley.store import Keys, Redis
from parley.telemetry import tracing
from parley.v1 import common_pb2

log = logging.getLogger(__name__)

META_SIGNATURE = "X-Hub-Signature-256"
X_SIGNATURE = "x-twitter-webhooks-signature"
READ_CHUNK = 64 * 1024


class Refused(Exception):
    """An HTTP error answer: status, message, and the bad fields when there are some."""

    def __init__(self, status: int, message: str, fields: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields or []


def error_response(status: int, message: str, fields: list[tuple[str, str]] | None = None) -> web.Response:
    error: dict[str, Any] = {"code": status, "message": message}
    if fields:
        error["fields"] = [{"field": f, "description": d} for f, d in fields]
    return web.json_response({"error": error}, status=status)


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
        self.keys = keys
        self.clock = clock or SystemClock()
        self.meta = Network(
            "meta",
            lambda s: s.webhook_meta_app_secret,
            "PARLEY_WEBHOOK_META_APP_SECRET",
            META_SIGNATURE,
            signatures.meta_signature_ok,
            lambda payload: parse_meta(payload, settings.webhook_meta_app_id),
        )
        self.x = Network(
            "x",
            lambda s: s.webhook_x_consumer_secret,
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
        token = self.settings.webhook_meta_verify_token
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
        secret = self.settings.webhook_x_consumer_secret
        if not secret:
            return error_response(503, "X webhooks are not configured: set PARLEY_WEBHOOK_X_CONSUMER_SECRET")
        token = request.query.get("crc_token", "")
        if not token:
            return error_response(400, "crc_token is required", [("crc_token", "is required")])
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
            return error_response(refused.status, refused.message, refused.fields)
        except RedisError as error:
            log.warning("%s delivery not stored, the network will retry it: %s", network.name, error)
            return error_response(
                503, "the inbound log is unavailable; the delivery was not stored, retry it"
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
        while chunk := await request.content.read(READ_CHUNK):
            size += len(chunk)
            if size > cap:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def store(self, network: str, parsed: Parsed) -> dict[str, Any]:
        """Validate, normalize and log the messages; keep the refused ones aside. Raises if storing fails."""
        now = self.clock.now()
        good: list[common_pb2.InboundMessage] = []
        refused: list[tuple[common_pb2.InboundMessage, list[tuple[str, str]]]] = []
        for message in parsed.messages:
            try:
                validate_batch([message], self.settings, now=now)
            except InvalidArgument as error:
                violations = [(f.removeprefix("messages[0]."), d) for f, d in error.violations]
                refused.append((message, violations))
            else:
                good.append(normalize(message, now))
        with tracing.webhook_span(network):  # the trace its messages carry through the pipeline
            statuses = await self.log.append(good) if good else []
        if refused:
            await self._set_aside(network, refused)
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
            log.warning("%s message %s refused: %s", network, m.platform_message_id, violations)
        key = refused_key(self.keys)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, *records)
            pipe.ltrim(key, -self.settings.webhook_refused_maxlen, -1)
            await pipe.execute()


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
    runner = web.AppRunner(
        endpoints.application(), access_log=None, shutdown_timeout=settings.shutdown_grace_seconds
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
