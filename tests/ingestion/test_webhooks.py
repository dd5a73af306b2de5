"""The webhook endpoints through a real aiohttp server on an ephemeral port, with real HTTP requests and a
real Redis: each network's deliveries become the right inbound messages, and every refusal stores nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator

import aiohttp

from ingestion.webhook_client import (
    META_SECRET,
    META_VERIFY,
    X_SECRET,
    Client,
    body_of,
    logged,
    meta_headers,
    payload,
    x_headers,
)
from parley.clock import ManualClock
from parley.config import Settings
from parley.ingestion.server import create_server
from parley.ingestion.webhooks.app import refused_key
from parley.store import Keys, Redis
from parley.v1 import common_pb2

X = common_pb2.CHANNEL_X
FACEBOOK = common_pb2.CHANNEL_FACEBOOK
MESSENGER = common_pb2.CHANNEL_MESSENGER
INSTAGRAM = common_pb2.CHANNEL_INSTAGRAM
WHATSAPP = common_pb2.CHANNEL_WHATSAPP
PUBLIC = common_pb2.VISIBILITY_PUBLIC
PRIVATE = common_pb2.VISIBILITY_PRIVATE
INBOUND = common_pb2.DIRECTION_INBOUND
OUTBOUND = common_pb2.DIRECTION_OUTBOUND


def by_id(messages: list[common_pb2.InboundMessage]) -> dict[str, common_pb2.InboundMessage]:
    return {m.platform_message_id: m for m in messages}


# -- each network's deliveries ---------------------------------------------------------------------------


async def test_page_feed_comments_and_posts(
    http: Client, redis: Redis, keys: Keys, hook_settings: Settings
) -> None:
    status, answer = await http.meta(payload("meta_page_feed"))
    assert status == 200
    assert answer == {"accepted": 4, "duplicates": 0, "ignored": 2, "refused": []}
    messages = by_id(await logged(redis, keys, hook_settings))
    assert set(messages) == {
        "893321470045512_1204458823907715",
        "893321470045512_1204461190273358",
        "893321470045512_1204463377511920",
        "104857200112233_893340015527781",
    }
    comment = messages["893321470045512_1204458823907715"]
    assert (comment.channel, comment.visibility, comment.direction) == (FACEBOOK, PUBLIC, INBOUND)
    assert comment.message_id == "facebook:893321470045512_1204458823907715"
    assert comment.in_reply_to_id == "104857200112233_893321470045512"  # the post
    assert comment.brand_account_id == "104857200112233"
    assert (comment.author.id, comment.author.display_name) == ("6702914453101887", "Rosa Delgado")
    # The edit that followed in the same delivery did not replace the text it arrived with.
    assert comment.text.startswith("Ordered the blue kettle two weeks ago and the tracking page")
    assert comment.sent_at.seconds == 1699998400
    reply = messages["893321470045512_1204461190273358"]
    assert reply.in_reply_to_id == "893321470045512_1204458823907715"  # the comment it answers
    assert [(a.type, a.url) for a in reply.attachments] == [
        ("image", "https://scontent.xx.fbcdn.net/v/t39.30808-6/402218871_1204461190273358_n.jpg")
    ]
    page_reply = messages["893321470045512_1204463377511920"]
    assert page_reply.direction == OUTBOUND
    post = messages["104857200112233_893340015527781"]
    assert (post.in_reply_to_id, post.text) == ("", "Does the 1.7 litre model work on 110V?")
    assert post.author.display_name == "Amara Okafor"


async def test_messenger_messages_and_echoes(
    http: Client, redis: Redis, keys: Keys, hook_settings: Settings
) -> None:
    status, answer = await http.meta(payload("meta_messenger"))
    assert status == 200
    # Read and delivery receipts, and the echo of Parley's own reply, are not messages.
    assert (answer["accepted"], answer["ignored"]) == (3, 3)
    messages = await logged(redis, keys, hook_settings)
    first, image, echo = messages
    assert (first.channel, first.visibility, first.direction) == (MESSENGER, PRIVATE, INBOUND)
    assert first.platform_message_id == "m_Yc0TQ2ZkYjktYzM1Mi00NWI5LTg2OTItMmE0ZDU3NGE0ZTEy"
    assert first.in_reply_to_id == "m_Ap9xZ2ZkYjktYzM1Mi00NWI5LTg2OTItMmE0ZDU3NGE0Zb7"
    assert (first.brand_account_id, first.author.id) == ("104857200112233", "24781093361045822")
    assert first.platform_thread_id == "24781093361045822"
    assert first.text == "Hi, my order KW-448120 was charged twice"
    assert (first.sent_at.seconds, first.sent_at.nanos) == (1699998501, 237_000_000)
    assert image.text == ""
    assert [(a.type, a.url) for a in image.attachments] == [
        ("image", "https://scontent.xx.fbcdn.net/v/t1.15752-9/401118702_statement_n.png")
    ]
    # An agent typing in the Page inbox: the brand's message, in the customer's thread.
    assert echo.direction == OUTBOUND
    assert (echo.brand_account_id, echo.author.id) == ("104857200112233", "104857200112233")
    assert echo.platform_thread_id == "24781093361045822"
    assert "m_Jn2vBw5kYjktYzM1Mi00NWI5LTg2OTItMmE0ZDU3NGE0Ze1" not in {
        m.platform_message_id for m in messages
    }


async def test_instagram_comments_and_messages(
    http: Client, redis: Redis, keys: Keys, hook_settings: Settings
) -> None:
    status, answer = await http.meta(payload("meta_instagram"))
    assert status == 200
    assert (answer["accepted"], answer["ignored"]) == (4, 1)  # the mention is not a message
    messages = by_id(await logged(redis, keys, hook_settings))
    comment = messages["17990312458830021"]
    assert (comment.channel, comment.visibility, comment.direction) == (INSTAGRAM, PUBLIC, INBOUND)
    assert comment.in_reply_to_id == "18004728551203947"  # the media
    assert (comment.author.id, comment.author.handle) == ("6219984401782235", "lena.bakes")
    assert comment.brand_account_id == "17841405822304914"
    assert comment.sent_at.seconds == 1699998600
    assert messages["17990312458830544"].in_reply_to_id == "17990312458830021"
    dm = messages["aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjM0MDI4MjM2Njg0MTcxMDMw"]
    assert (dm.channel, dm.visibility, dm.direction) == (INSTAGRAM, PRIVATE, INBOUND)
    assert (dm.author.id, dm.platform_thread_id) == ("1119384452871003", "1119384452871003")
    assert dm.text == "The lid hinge on my kettle snapped after a week"
    echo = messages["aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjM0MDI4MjM2Njg0MTcxMDQ5"]
    assert (echo.direction, echo.platform_thread_id) == (OUTBOUND, "1119384452871003")


async def test_whatsapp_messages(http: Client, redis: Redis, keys: Keys, hook_settings: Settings) -> None:
    status, answer = await http.meta(payload("meta_whatsapp"))
    assert status == 200
    assert (answer["accepted"], answer["ignored"]) == (2, 2)  # a reaction and a read status
    text, image = await logged(redis, keys, hook_settings)
    assert (text.channel, text.visibility, text.direction) == (WHATSAPP, PRIVATE, INBOUND)
    assert text.platform_message_id == "wamid.HBgLNDg2MDEyMzQ1NjcVAgASGBQzRUIwQzdGNTA4NzM1QkU3RTlCOQA="
    assert text.in_reply_to_id == "wamid.HBgLNDg2MDEyMzQ1NjcVAgARGBI4QTdCMzJGQzE0RTk2QjQ1OTYA"
    assert text.brand_account_id == "109874315563201"  # the phone number id, not the business account
    assert (text.author.id, text.author.display_name) == ("48601234567", "Tomasz Wójcik")
    assert text.platform_thread_id == "48601234567"
    assert text.text == "The replacement filter you sent doesn't fit the KW-17 model"
    assert text.sent_at.seconds == 1699998700
    assert (image.author.display_name, image.text) == ("Ines Carvalho", "Box arrived like this")
    assert [(a.type, a.mime_type, a.platform_id) for a in image.attachments] == [
        ("image", "image/jpeg", "1735628214557013")
    ]


async def test_x_posts(http: Client, redis: Redis, keys: Keys, hook_settings: Settings) -> None:
    status, answer = await http.x(payload("x_tweets"))
    assert status == 200
    assert (answer["accepted"], answer["ignored"]) == (2, 1)  # the retweet is left out
    complaint, brand_reply = await logged(redis, keys, hook_settings)
    assert (complaint.channel, complaint.visibility, complaint.direction) == (X, PUBLIC, INBOUND)
    assert complaint.message_id == "x:1724575902713135489"
    assert complaint.in_reply_to_id == "1724512093817553152"
    assert complaint.brand_account_id == "1469582203714441216"
    author = complaint.author
    assert (author.id, author.handle, author.display_name) == ("2891047735", "priya_codes", "Priya Raman")
    assert (author.follower_count, author.verified) == (1843, False)
    assert complaint.text.endswith("your chat keeps closing on me. https://t.co/Zr81mWq0Ta")  # the full text
    assert (complaint.sent_at.seconds, complaint.sent_at.nanos) == (1699998902, 117_000_000)
    assert [(a.type, a.url, a.platform_id) for a in complaint.attachments] == [
        ("image", "https://pbs.twimg.com/media/F-9kQ2aWcAAi3xT.jpg", "1724575889123082240")
    ]
    assert brand_reply.direction == OUTBOUND
    assert brand_reply.in_reply_to_id == "1724575902713135489"
    assert (brand_reply.author.verified, brand_reply.author.follower_count) == (True, 48210)
    assert brand_reply.sent_at.seconds == 1699999000  # from created_at: it has no timestamp_ms


async def test_x_direct_messages(http: Client, redis: Redis, keys: Keys, hook_settings: Settings) -> None:
    status, answer = await http.x(payload("x_direct_messages"))
    assert status == 200
    assert (answer["accepted"], answer["ignored"]) == (2, 1)  # the typing indicator
    customer, brand = await logged(redis, keys, hook_settings)
    assert (customer.channel, customer.visibility, customer.direction) == (X, PRIVATE, INBOUND)
    assert customer.platform_message_id == "1724577901230854148"
    assert customer.platform_thread_id == "2891047735-1469582203714441216"
    assert (customer.author.handle, customer.author.follower_count) == ("priya_codes", 1843)
    assert customer.text == "Order KW-450031, paid on the 2nd https://t.co/Hv2Lq0PzXm"
    assert customer.attachments[0].platform_id == "1724577889411276800"
    assert customer.sent_at.seconds == 1699999188
    assert (brand.direction, brand.author.id) == (OUTBOUND, "1469582203714441216")
    assert brand.platform_thread_id == customer.platform_thread_id


# -- handshakes ------------------------------------------------------------------------------------------


async def test_meta_verification_handshake(http: Client) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": META_VERIFY, "hub.challenge": "1158201444"}
    assert await http.get("/webhooks/meta", query) == (200, "1158201444")
    status, answer = await http.get("/webhooks/meta", query | {"hub.verify_token": "guess"})
    assert status == 403
    assert "verify_token" in answer["error"]["message"]
    status, _ = await http.get("/webhooks/meta", {"hub.challenge": "1158201444"})
    assert status == 400


async def test_x_crc_challenge(http: Client) -> None:
    token = "Z2l2ZS1tZS1hLWNoYWxsZW5nZS0xNzAw"
    expected = base64.b64encode(hmac.new(X_SECRET.encode(), token.encode(), hashlib.sha256).digest()).decode()
    assert await http.get("/webhooks/x", {"crc_token": token}) == (
        200,
        {"response_token": f"sha256={expected}"},
    )
    status, answer = await http.get("/webhooks/x", {})
    assert status == 400
    assert answer["error"]["fields"] == [{"field": "crc_token", "description": "is required"}]


async def test_unconfigured_network_is_refused(settings: Settings, redis: Redis, keys: Keys) -> None:
    running = await create_server(settings, "127.0.0.1:0")  # no secrets at all
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(session, f"http://127.0.0.1:{running.webhook_port}")
            body = body_of(payload("meta_whatsapp"))
            status, answer = await client.post("/webhooks/meta", body, meta_headers(body, ""))
            assert status == 503
            assert "PARLEY_WEBHOOK_META_APP_SECRET" in answer["error"]["message"]
            body = body_of(payload("x_tweets"))
            assert (await client.post("/webhooks/x", body, x_headers(body, "")))[0] == 503
            assert (await client.get("/webhooks/x", {"crc_token": "abc"}))[0] == 503
            assert (await client.get("/webhooks/meta", {"hub.mode": "subscribe"}))[0] == 503
        assert await logged(redis, keys, settings) == []
    finally:
        await running.stop(0)


# -- refusals store nothing ------------------------------------------------------------------------------


async def test_missing_or_wrong_signature_stores_nothing(
    http: Client, redis: Redis, keys: Keys, hook_settings: Settings
) -> None:
    meta_body = body_of(payload("meta_whatsapp"))
    x_body = body_of(payload("x_direct_messages"))
    json_only = {"Content-Type": "application/json"}
    assert (await http.post("/webhooks/meta", meta_body, json_only))[0] == 401
    assert (await http.post("/webhooks/x", x_body, json_only))[0] == 401
    # Signed with another secret, or a valid signature of a different body.
    assert (await http.post("/webhooks/meta", meta_body, meta_headers(meta_body, "other")))[0] == 403
    status, answer = await http.post("/webhooks/meta", meta_body + b" ", meta_headers(meta_body))
    assert status == 403
    assert "X-Hub-Signature-256" in answer["error"]["message"]
    assert (await http.post("/webhooks/x", x_body, x_headers(x_body, "other")))[0] == 403
    assert (await http.post("/webhooks/x", x_body, meta_headers(x_body) | x_headers(b"{}")))[0] == 403
    garbage = {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=zz\u00e9"}
    assert (await http.post("/webhooks/meta", meta_body, garbage))[0] == 403
    assert await logged(redis, keys, hook_settings) == []


async def test_malformed_deliveries_are_400_naming_the_field(
    http: Client, redis: Redis, keys: Keys, hook_settings: Settings
) -> None:
    not_json = b'{"object": "page", "entry": ['
    status, answer = await http.post("/webhooks/meta", not_json, meta_headers(not_json))
    assert status == 400
    assert "not valid JSON" in answer["error"]["message"]

    broken = payload("meta_messenger")
    del broken["entry"][0]["messaging"][1]["message"]["mid"]
    broken["entry"][0]["messaging"][2]["sender"] = "104857200112233"
    status, answer = await http.meta(broken)
    assert status == 400
    assert answer["error"]["fields"] == [
        {"field": "entry[0].messaging[1].message.mid", "description": "is required"},
        {"field": "entry[0].messaging[2].sender", "description": "must be an object"},
    ]

    status, answer = await http.meta({"entry": []})
    assert (status, answer["error"]["fields"][0]["field"]) == (400, "object")

    tweets = payload("x_tweets")
    del tweets["for_user_id"]
    status, answer = await http.x(tweets)
    assert (status, answer["error"]["fields"]) == (
        400,
        [{"field": "for_user_id", "description": "is required"}],
    )

    whatsapp = payload("meta_whatsapp")
    whatsapp["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = "yesterday"
    status, answer = await http.meta(whatsapp)
    assert status == 400
    assert answer["error"]["fields"][0]["field"] == "entry[0].changes[0].value.messages[0].timestamp"
    surrogate = body_of(payload("x_direct_messages")).replace(b"Thanks Priya", b"Thanks \\ud800")
    status, answer = await http.post("/webhooks/x", surrogate, x_headers(surrogate))
    assert (status, answer["error"]["message"]) == (
        400,
        "the body holds a string that is not valid Unicode (a lone surrogate)",
    )
    deep = b"[" * 100_000
    status, answer = await http.post("/webhooks/meta", deep, meta_headers(deep))
    assert (status, answer["error"]["fields"]) == (
        400,
        [{"field": "body", "description": "must be a JSON object"}],
    )
    # All or nothing: the well-formed messages of a malformed delivery were not stored either.
    assert await logged(redis, keys, hook_settings) == []


async def test_wrong_content_type_is_415(
    http: Client, redis: Redis, keys: Keys, hook_settings: Settings
) -> None:
    body = body_of(payload("meta_whatsapp"))
    headers = meta_headers(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    status, answer = await http.post("/webhooks/meta", body, headers)
    assert status == 415
    assert "application/json" in answer["error"]["message"]
    assert await logged(redis, keys, hook_settings) == []


async def test_oversized_body_is_413_while_reading(settings: Settings, redis: Redis, keys: Keys) -> None:
    small = settings.model_copy(
        update={"webhook_meta_app_secret": META_SECRET, "webhook_max_body_bytes": 4096}
    )
    running = await create_server(small, "127.0.0.1:0")
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(session, f"http://127.0.0.1:{running.webhook_port}")
            whatsapp = payload("meta_whatsapp")
            assert (await client.meta(whatsapp))[0] == 200  # under the cap
            value = whatsapp["entry"][0]["changes"][0]["value"]
            value["messages"][0]["text"]["body"] = "x" * 5000
            value["messages"][0]["id"] = "wamid.oversized"
            body = body_of(whatsapp)
            status, answer = await client.post("/webhooks/meta", body, meta_headers(body))
            assert status == 413
            assert "4096" in answer["error"]["message"]

            # Sent in chunks without a Content-Length: refused once the count passes the cap.
            async def chunks() -> AsyncIterator[bytes]:
                for start in range(0, len(body), 1000):
                    yield body[start : start + 1000]

            status, _ = await client.post("/webhooks/meta", chunks(), meta_headers(body))
            assert status == 413
        assert "wamid.oversized" not in {m.platform_message_id for m in await logged(redis, keys, small)}
    finally:
        await running.stop(0)


# -- redeliveries, refused messages, store failures ------------------------------------------------------


async def test_redelivery_is_logged_once(
    http: Client, redis: Redis, keys: Keys, hook_settings: Settings
) -> None:
    first = await http.x(payload("x_tweets"))
    again = await http.x(payload("x_tweets"))
    assert first == (200, {"accepted": 2, "duplicates": 0, "ignored": 1, "refused": []})
    assert again == (200, {"accepted": 0, "duplicates": 2, "ignored": 1, "refused": []})
    assert len(await logged(redis, keys, hook_settings)) == 2


async def test_a_message_validation_refuses_is_kept_aside(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    strict = settings.model_copy(update={"webhook_meta_app_secret": META_SECRET, "max_text_chars": 40})
    running = await create_server(strict, "127.0.0.1:0", clock=ManualClock())
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(session, f"http://127.0.0.1:{running.webhook_port}")
            status, answer = await client.meta(payload("meta_whatsapp"))
        assert status == 200
        long_id = "wamid.HBgLNDg2MDEyMzQ1NjcVAgASGBQzRUIwQzdGNTA4NzM1QkU3RTlCOQA="
        assert answer["accepted"] == 1
        assert answer["refused"] == [
            {
                "platform_message_id": long_id,
                "fields": [{"field": "text", "description": "has 59 characters; at most 40"}],
            }
        ]
        assert [m.text for m in await logged(redis, keys, strict)] == ["Box arrived like this"]
        (record,) = [json.loads(raw) for raw in await redis.lrange(refused_key(keys), 0, -1)]
        assert (record["channel"], record["platform_message_id"]) == ("whatsapp", long_id)
        kept = common_pb2.InboundMessage.FromString(base64.b64decode(record["message"]))
        assert kept.text.startswith("The replacement filter")
    finally:
        await running.stop(0)


async def test_store_failure_is_503_and_the_retry_stores_it(
    hook_settings: Settings, redis: Redis, keys: Keys
) -> None:
    unreachable = hook_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    down = await create_server(unreachable, "127.0.0.1:0")
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(session, f"http://127.0.0.1:{down.webhook_port}")
            status, answer = await client.meta(payload("meta_messenger"))
        assert status == 503
        assert "retry" in answer["error"]["message"]
    finally:
        await down.stop(0)
    assert await logged(redis, keys, hook_settings) == []
    # The network retries the same delivery once the log is back: nothing was lost.
    up = await create_server(hook_settings, "127.0.0.1:0", clock=ManualClock())
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(session, f"http://127.0.0.1:{up.webhook_port}")
            status, answer = await client.meta(payload("meta_messenger"))
        assert (status, answer["accepted"]) == (200, 3)
    finally:
        await up.stop(0)


async def test_webhooks_can_be_turned_off(settings: Settings) -> None:
    running = await create_server(settings.model_copy(update={"webhook_enabled": False}), "127.0.0.1:0")
    try:
        assert running.webhook_port == 0
    finally:
        await running.stop(0)
