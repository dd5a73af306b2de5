"""The webhooks tried as an attacker would: no signing oracle, no slow or numerous connections holding the
server, no forged log lines, no second copy of a message. A real aiohttp server, real HTTP and raw sockets."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ingestion.webhook_client import (
    Client,
    body_of,
    logged,
    meta_headers,
    payload,
)
from parley.config import Settings
from parley.ingestion.server import IngestionServer
from parley.store import Keys, Redis


@pytest.fixture
def hook_settings(hook_settings: Settings) -> Settings:
    """Short timeouts and a small connection cap, so that slow and numerous clients show quickly."""
    return hook_settings.model_copy(
        update={
            "webhook_header_timeout_seconds": 0.3,
            "webhook_body_timeout_seconds": 0.3,
            "webhook_max_connections": 3,
        }
    )


async def test_a_delivery_signed_through_the_crc_endpoint_is_refused(
    http: Client, redis: Redis, keys: Keys, hook_settings: Settings
) -> None:
    # The attack: ask the CRC endpoint to "answer a challenge" that is a whole delivery, and send that
    # delivery with the answer as its signature (the CRC answer is the HMAC of the token, as a delivery's
    # signature is the HMAC of its body).
    forged = payload("x_tweets")
    forged["tweet_create_events"][0]["user"] |= {"verified": True, "followers_count": 5_000_000}
    body = body_of(forged)
    status, answer = await http.get("/webhooks/x", {"crc_token": body.decode()})
    signature = answer.get("response_token", "sha256=") if status == 200 else "sha256="
    headers = {"Content-Type": "application/json", "x-twitter-webhooks-signature": signature}
    delivered, _ = await http.post("/webhooks/x", body, headers)
    assert status == 400
    assert delivered in (401, 403)
    assert await logged(redis, keys, hook_settings) == []


@pytest.mark.parametrize(
    "token", ['{"for_user_id":"1"}', "1234", "a" * 129, "abc def", "tok\u00e9n", "line\nbreak"]
)
async def test_the_crc_endpoint_answers_only_tokens_x_sends(http: Client, token: str) -> None:
    status, answer = await http.get("/webhooks/x", {"crc_token": token})
    if token == "1234":  # digits are base64 characters: answered, and no JSON object can be made of them
        assert status == 200
        return
    assert status == 400
    assert answer["error"]["fields"][0]["field"] == "crc_token"


async def raw(server: IngestionServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.webhook_port)


async def test_slow_headers_are_cut_off(server: IngestionServer) -> None:
    reader, writer = await raw(server)
    writer.write(b"POST /webhooks/meta HTTP/1.1\r\nHost: parley\r\nContent-Ty")
    await writer.drain()
    # The headers never end; the server closes the connection instead of waiting for them for ever.
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


async def test_a_slow_body_gets_408_and_is_not_stored(
    server: IngestionServer, redis: Redis, keys: Keys, hook_settings: Settings
) -> None:
    body = body_of(payload("meta_whatsapp"))
    reader, writer = await raw(server)
    headers = meta_headers(body)
    writer.write(
        b"POST /webhooks/meta HTTP/1.1\r\nHost: parley\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:100]
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    assert answer.startswith(b"HTTP/1.1 408")
    writer.close()
    assert await logged(redis, keys, hook_settings) == []


async def test_connections_beyond_the_cap_are_turned_away(server: IngestionServer, http: Client) -> None:
    held = [await raw(server) for _ in range(3)]
    for _, writer in held:
        writer.write(b"GET /webhooks/x?crc_token=abc HTTP/1.1\r\nHost: parley\r\n")  # headers not finished
        await writer.drain()
    reader, writer = await raw(server)
    answer = await asyncio.wait_for(reader.read(), 10)
    assert answer.startswith(b"HTTP/1.1 503")
    assert b"Retry-After: 1" in answer
    writer.close()
    for _, held_writer in held:
        held_writer.close()
    # Room again once they are gone.
    for _ in range(50):
        status, _ = await http.get("/webhooks/x", {"crc_token": "abc"})
        if status == 200:
            break
        await asyncio.sleep(0.05)
    assert status == 200


async def test_a_burst_of_connections_is_capped_too(server: IngestionServer) -> None:
    opened = await asyncio.gather(*(raw(server) for _ in range(12)))
    answers = await asyncio.gather(*(asyncio.wait_for(r.read(), 10) for r, _ in opened))
    # Three are served (they idle until the header timeout closes them); the rest are told to come back.
    assert sum(a.startswith(b"HTTP/1.1 503") for a in answers) == 9
    for _, writer in opened:
        writer.close()


async def test_one_copy_per_subscribed_account_is_logged_once(
    http: Client, redis: Redis, keys: Keys, hook_settings: Settings
) -> None:
    first = payload("x_tweets")
    second = payload("x_tweets")
    second["for_user_id"] = "783214"  # the same posts, delivered to a second subscribed account
    assert (await http.x(first))[1]["accepted"] == 2
    status, answer = await http.x(second)
    assert (status, answer["accepted"], answer["duplicates"]) == (200, 0, 2)
    assert len(await logged(redis, keys, hook_settings)) == 2


async def test_refused_ids_cannot_forge_log_lines(
    http: Client, caplog: pytest.LogCaptureFixture, redis: Redis, keys: Keys
) -> None:
    whatsapp = payload("meta_whatsapp")
    forged_id = "wamid.1\n2026-12-05 INFO parley: all good\x1b[2J"
    whatsapp["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = forged_id
    with caplog.at_level(logging.WARNING, logger="parley.ingestion.webhooks.app"):
        status, answer = await http.meta(whatsapp)
    assert status == 200
    assert answer["refused"][0]["fields"] == [
        {"field": "platform_message_id", "description": "must not contain control characters"}
    ]
    [record] = [r for r in caplog.records if "refused" in r.getMessage()]
    line = record.getMessage()
    assert "\n" not in line and "\x1b" not in line
    assert "doesn't fit" not in line  # the message text is never logged
    assert answer["refused"][0]["platform_message_id"] == forged_id  # the refused list keeps it as it came
