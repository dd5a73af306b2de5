"""What the webhook tests share: the networks' secrets, sample deliveries, their signatures, an HTTP client
for the endpoints, and a reader of what reached the inbound log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import aiohttp

from parley.clock import from_timestamp
from parley.config import Settings
from parley.store import Keys, Redis
from parley.v1 import common_pb2

PAYLOADS = Path(__file__).parent / "webhook_payloads"
META_SECRET = "3f0d1c2b9a8e7d6c5b4a39281706f5e4"
META_VERIFY = "kettleworks-verify-2f91"
OWN_APP_ID = "934177520093461"
X_SECRET = "Zq4uT7mN1pR8sV2wX5yB0cE3fH6jK9aLdGiOeQ"


def payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def body_of(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def meta_headers(body: bytes, secret: str = META_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


def x_headers(body: bytes, secret: str = X_SECRET) -> dict[str, str]:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "Content-Type": "application/json; charset=utf-8",
        "x-twitter-webhooks-signature": f"sha256={digest}",
    }


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def post(self, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        async with self.session.post(self.base + path, data=body, headers=headers) as response:
            return response.status, await _content(response)

    async def meta(self, data: dict[str, Any]) -> tuple[int, Any]:
        body = body_of(data)
        return await self.post("/webhooks/meta", body, meta_headers(body))

    async def x(self, data: dict[str, Any]) -> tuple[int, Any]:
        body = body_of(data)
        return await self.post("/webhooks/x", body, x_headers(body))

    async def get(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        async with self.session.get(self.base + path, params=params) as response:
            return response.status, await _content(response)


async def _content(response: aiohttp.ClientResponse) -> Any:
    if response.content_type == "application/json":
        return await response.json()
    return await response.text()


async def logged(redis: Redis, keys: Keys, settings: Settings) -> list[common_pb2.InboundMessage]:
    """Every message in the inbound log, ordered by send time."""
    out = []
    for partition in range(settings.stream_partitions):
        for _, fields in await redis.xrange(keys.inbound_stream(partition)):
            out.append(common_pb2.InboundMessage.FromString(fields[b"m"]))
    return sorted(out, key=lambda m: (from_timestamp(m.sent_at), m.message_id))
