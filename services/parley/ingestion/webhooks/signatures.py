"""The networks' delivery signatures and handshakes: HMAC-SHA256 of the raw body with the app's secret.

Meta sends `X-Hub-Signature-256: sha256=<hex>`; X sends `x-twitter-webhooks-signature: sha256=<base64>` and
proves the endpoint with a CRC challenge answered the same way. Every comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "sha256="


def _digest(secret: str, data: bytes) -> bytes:
    return hmac.new(secret.encode(), data, hashlib.sha256).digest()


def meta_signature(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value Meta sends with `body`."""
    return PREFIX + _digest(secret, body).hex()


def x_signature(secret: str, body: bytes) -> str:
    """The `x-twitter-webhooks-signature` value X sends with `body` (and the CRC `response_token` form)."""
    return PREFIX + base64.b64encode(_digest(secret, body)).decode()


def x_crc_response(secret: str, crc_token: str) -> dict[str, str]:
    """The answer to X's challenge-response check for `crc_token`."""
    return {"response_token": x_signature(secret, crc_token.encode())}


def _matches(expected: str, header: str) -> bool:
    # Compared as bytes: compare_digest refuses non-ASCII str, and a header may carry anything.
    return hmac.compare_digest(expected.encode(), header.strip().encode("utf-8", "surrogatepass"))


def meta_signature_ok(secret: str, body: bytes, header: str) -> bool:
    # Hex digits may come in either case.
    return _matches(meta_signature(secret, body), header.strip().lower())


def x_signature_ok(secret: str, body: bytes, header: str) -> bool:
    return _matches(x_signature(secret, body), header)


def constant_time_equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())
