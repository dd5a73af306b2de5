"""The network adapters against a local fake of each API: the requests they make, the answers they read,
failures on command (5xx, 429 with Retry-After, timeouts, dropped connections, 4xx), the 24-hour window."""

from __future__ import annotations

import random

import pytest
from dispatch_samples import make_reply
from network_double import IG_ID, PAGE_ID, PAGE_TOKEN, WA_TOKEN, X_TOKEN, Fail, FakeNetwork, graph_error

from parley.clock import ManualClock, to_timestamp
from parley.config import Settings
from parley.dispatch.adapters import AdapterRegistry
from parley.dispatch.dispatcher import Dispatcher
from parley.dispatch.networks import MetaAdapter, XAdapter, retry_after_seconds
from parley.dispatch.rules import x_weighted_length
from parley.events import read_all
from parley.store import Keys, Redis
from parley.v1 import common_pb2, dispatch_pb2

SENT = dispatch_pb2.DELIVERY_STATUS_SENT
RETRYING = dispatch_pb2.DELIVERY_STATUS_RETRYING
DEAD_LETTER = dispatch_pb2.DELIVERY_STATUS_DEAD_LETTER
BLOCKED = dispatch_pb2.DELIVERY_STATUS_BLOCKED
PUBLIC = common_pb2.VISIBILITY_PUBLIC
PRIVATE = common_pb2.VISIBILITY_PRIVATE
HOUR = 3600.0


def reply(
    reply_id: str, channel: int = common_pb2.CHANNEL_X, visibility: int = PUBLIC, **kw
) -> dispatch_pb2.Reply:
    r = make_reply(reply_id, channel=channel, visibility=visibility, **kw)
    r.brand_account_id = ""  # the account ids come from the settings
    return r


def last_wrote(r: dispatch_pb2.Reply, at: float) -> dispatch_pb2.Reply:
    r.customer_last_message_at.CopyFrom(to_timestamp(at))
    return r


class Harness:
    def __init__(
        self, settings: Settings, redis: Redis, keys: Keys, clock: ManualClock | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or ManualClock()
        self.adapters = AdapterRegistry.from_settings(settings, self.clock)
        self.dispatcher = Dispatcher(
            settings, redis, keys, self.clock, self.adapters, consumer="loop-1", rng=random.Random(3)
        )

    async def deliver(self, *replies: dispatch_pb2.Reply) -> list[dispatch_pb2.Delivery]:
        await self.dispatcher.send(list(replies))
        await self.dispatcher.deliver_once()
        return [await self.dispatcher.get(r.reply_id) for r in replies]


@pytest.fixture
async def harness(network_settings: Settings, redis: Redis, keys: Keys):
    h = Harness(network_settings, redis, keys)
    yield h
    await h.adapters.aclose()


async def test_x_public_reply(harness: Harness, network: FakeNetwork) -> None:
    [delivery] = await harness.deliver(reply("bot:x:1", in_reply_to_id="1001"))
    [request] = network.requests
    assert (request.method, request.path) == ("POST", "/2/tweets")
    assert request.authorization == f"Bearer {X_TOKEN}"
    assert request.body == {
        "text": "Thanks for reaching out, we are on it.",
        "reply": {"in_reply_to_tweet_id": "1001"},
    }
    assert delivery.status == SENT
    assert list(delivery.platform_message_ids) == [network.posted[0].platform_id]


async def test_x_long_reply_is_a_weighted_thread_each_part_answering_the_last(
    harness: Harness, network: FakeNetwork
) -> None:
    # 200 CJK characters weigh 400: too long for one post, though only 200 code points.
    text = "ご注文の件で確認しています。" * 10 + " see https://example.com/" + "a" * 300 + " for updates"
    assert len("ご注文の件で確認しています。" * 10) < 280 < x_weighted_length(text)
    [delivery] = await harness.deliver(reply("bot:x:2", in_reply_to_id="1001", text=text))
    assert delivery.status == SENT
    tweets = [r.body for r in network.requests]
    ids = [p.platform_id for p in network.posted]
    assert len(tweets) >= 2 and list(delivery.platform_message_ids) == ids
    assert [t["reply"]["in_reply_to_tweet_id"] for t in tweets] == ["1001", *ids[:-1]]
    assert all(x_weighted_length(t["text"]) <= 280 for t in tweets)
    assert [t["text"].split(" ")[0] for t in tweets] == [
        f"{i}/{len(tweets)}" for i in range(1, len(tweets) + 1)
    ]
    assert any("https://example.com/" + "a" * 300 in t["text"] for t in tweets)  # a URL is never cut


async def test_x_dms_by_participant_and_by_conversation(harness: Harness, network: FakeNetwork) -> None:
    to_person = reply("bot:x:3", visibility=PRIVATE, in_reply_to_id="", recipient_id="2244994945")
    in_thread = reply("bot:x:4", visibility=PRIVATE, in_reply_to_id="", conversation_id="conv-2")
    in_thread.platform_thread_id = "123-456"
    deliveries = await harness.deliver(to_person, in_thread)
    assert [d.status for d in deliveries] == [SENT, SENT]
    paths = sorted(r.path for r in network.requests)
    assert paths == ["/2/dm_conversations/123-456/messages", "/2/dm_conversations/with/2244994945/messages"]
    assert all(r.body == {"text": "Thanks for reaching out, we are on it."} for r in network.requests)


async def test_facebook_comment_reply(harness: Harness, network: FakeNetwork) -> None:
    r = reply("bot:facebook:c1", channel=common_pb2.CHANNEL_FACEBOOK, in_reply_to_id="PAGEPOST_77")
    [delivery] = await harness.deliver(r)
    [request] = network.requests
    assert (request.path, request.query, request.body) == (
        "/v21.0/PAGEPOST_77/comments",
        {"access_token": PAGE_TOKEN},
        {"message": "Thanks for reaching out, we are on it."},
    )
    assert delivery.status == SENT and delivery.platform_message_ids[0].startswith("PAGEPOST_77_")


async def test_messenger_send_api_inside_the_window(harness: Harness, network: FakeNetwork) -> None:
    r = reply("bot:messenger:m1", channel=common_pb2.CHANNEL_MESSENGER, visibility=PRIVATE, in_reply_to_id="")
    r.recipient.id = "PSID-9"
    [delivery] = await harness.deliver(last_wrote(r, harness.clock.now() - 23 * HOUR))
    [request] = network.requests
    assert request.path == f"/v21.0/{PAGE_ID}/messages"
    assert request.body == {
        "recipient": {"id": "PSID-9"},
        "messaging_type": "RESPONSE",
        "message": {"text": "Thanks for reaching out, we are on it."},
    }
    assert delivery.status == SENT and delivery.platform_message_ids[0].startswith("m_")


async def test_instagram_comment_reply_and_dm(harness: Harness, network: FakeNetwork) -> None:
    comment = reply("bot:instagram:c1", channel=common_pb2.CHANNEL_INSTAGRAM, in_reply_to_id="17900001")
    dm = reply(
        "bot:instagram:d1", channel=common_pb2.CHANNEL_INSTAGRAM, visibility=PRIVATE, conversation_id="c2"
    )
    dm.recipient.id = "IGSID-5"
    deliveries = await harness.deliver(comment, last_wrote(dm, harness.clock.now() - HOUR))
    assert [d.status for d in deliveries] == [SENT, SENT]
    by_path = {r.path: r for r in network.requests}
    assert by_path["/v21.0/17900001/replies"].body == {"message": "Thanks for reaching out, we are on it."}
    assert by_path[f"/v21.0/{IG_ID}/messages"].body["recipient"] == {"id": "IGSID-5"}


async def test_whatsapp_text_answers_the_customer_message(harness: Harness, network: FakeNetwork) -> None:
    r = reply("bot:wa:1", channel=common_pb2.CHANNEL_WHATSAPP, visibility=PRIVATE, in_reply_to_id="wamid.IN1")
    r.recipient.id = "15551234567"
    [delivery] = await harness.deliver(last_wrote(r, harness.clock.now() - HOUR))
    [request] = network.requests
    assert (request.path, request.authorization) == ("/v21.0/PHONE1/messages", f"Bearer {WA_TOKEN}")
    assert request.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "15551234567",
        "type": "text",
        "text": {"preview_url": False, "body": "Thanks for reaching out, we are on it."},
        "context": {"message_id": "wamid.IN1"},
    }
    assert delivery.status == SENT and delivery.platform_message_ids[0].startswith("wamid.")


# --- the 24-hour window -----------------------------------------------------------------------------------


async def test_outside_the_window_without_a_template_is_blocked_with_the_reason(
    harness: Harness, network: FakeNetwork, redis: Redis, keys: Keys
) -> None:
    now = harness.clock.now()
    wa = reply("bot:wa:2", channel=common_pb2.CHANNEL_WHATSAPP, visibility=PRIVATE, in_reply_to_id="")
    ms = reply("bot:messenger:2", channel=common_pb2.CHANNEL_MESSENGER, visibility=PRIVATE, in_reply_to_id="")
    deliveries = await harness.deliver(last_wrote(wa, now - 25 * HOUR), last_wrote(ms, now - 30 * HOUR))
    assert [d.status for d in deliveries] == [BLOCKED, BLOCKED]
    assert "outside the 24-hour customer-service window" in deliveries[0].error
    assert "30.0 hours ago" in deliveries[1].error
    assert network.requests == []
    types = [event.type for _, event in await read_all(redis, keys)]
    assert types == ["reply.blocked", "reply.blocked"]


async def test_outside_the_window_a_configured_template_or_tag_is_used(
    network_settings: Settings, network: FakeNetwork, redis: Redis, keys: Keys
) -> None:
    settings = network_settings.model_copy(
        update={
            "dispatch_whatsapp_template": "order_update",
            "dispatch_whatsapp_template_language": "en_GB",
            "dispatch_messenger_message_tag": "HUMAN_AGENT",
        }
    )
    h = Harness(settings, redis, keys)
    now = h.clock.now()
    wa = reply(
        "bot:wa:3", channel=common_pb2.CHANNEL_WHATSAPP, visibility=PRIVATE, in_reply_to_id="wamid.OLD"
    )
    ms = reply("bot:messenger:3", channel=common_pb2.CHANNEL_MESSENGER, visibility=PRIVATE, in_reply_to_id="")
    try:
        deliveries = await h.deliver(last_wrote(wa, now - 48 * HOUR), last_wrote(ms, now - 48 * HOUR))
    finally:
        await h.adapters.aclose()
    assert [d.status for d in deliveries] == [SENT, SENT]
    by_path = {r.path: r.body for r in network.requests}
    template = by_path["/v21.0/PHONE1/messages"]
    assert template["type"] == "template" and "text" not in template and "context" not in template
    assert template["template"] == {
        "name": "order_update",
        "language": {"code": "en_GB"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": wa.text}]}],
    }
    tagged = by_path[f"/v21.0/{PAGE_ID}/messages"]
    assert (tagged["messaging_type"], tagged["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


async def test_a_retry_that_falls_outside_the_window_is_blocked_not_sent(
    harness: Harness, network: FakeNetwork
) -> None:
    now = harness.clock.now()
    wa = reply("bot:wa:4", channel=common_pb2.CHANNEL_WHATSAPP, visibility=PRIVATE, in_reply_to_id="")
    network.fail_next(Fail(503))
    [delivery] = await harness.deliver(last_wrote(wa, now - 23.5 * HOUR))
    assert delivery.status == RETRYING
    harness.clock.advance(HOUR)
    await harness.dispatcher.deliver_once()
    delivery = await harness.dispatcher.get("bot:wa:4")
    assert delivery.status == BLOCKED and "24-hour" in delivery.error
    assert len(network.requests) == 1 and network.posted == []


# --- failures on command ----------------------------------------------------------------------------------


async def test_5xx_then_success(harness: Harness, network: FakeNetwork) -> None:
    network.fail_next(Fail(500, body={"title": "Internal Error"}))
    [delivery] = await harness.deliver(reply("bot:x:10"))
    assert (delivery.status, delivery.error) == (RETRYING, "x: 500: Internal Error")
    harness.clock.advance(60)
    await harness.dispatcher.deliver_once()
    delivery = await harness.dispatcher.get("bot:x:10")
    assert delivery.status == SENT and len(network.posted) == 1 and len(network.requests) == 2


async def test_429_retry_after_is_honoured_and_pauses_the_network(
    harness: Harness, network: FakeNetwork, redis: Redis
) -> None:
    network.fail_next(Fail(429, headers={"Retry-After": "120"}, body={"title": "Too Many Requests"}))
    start = harness.clock.now()
    [delivery] = await harness.deliver(reply("bot:x:11"))
    assert delivery.status == RETRYING and "429" in delivery.error
    d = harness.dispatcher
    due = await redis.zscore(d.dkeys.retries(d.dkeys.partition("bot:x:11")), "bot:x:11")
    assert due >= start + 120
    # Another reply to the same network waits too, without a request.
    [other] = await harness.deliver(reply("bot:x:12", conversation_id="conv-9"))
    assert other.status == RETRYING and "rate limited" in other.error
    assert len(network.requests) == 1
    harness.clock.set(start + 400)
    await harness.dispatcher.deliver_once()
    assert [(await d.get(r)).status for r in ("bot:x:11", "bot:x:12")] == [SENT, SENT]


async def test_x_rate_limit_reset_is_honoured(harness: Harness, network: FakeNetwork, redis: Redis) -> None:
    start = harness.clock.now()
    network.fail_next(Fail(429, headers={"x-rate-limit-reset": str(int(start) + 900)}))
    [delivery] = await harness.deliver(reply("bot:x:13"))
    d = harness.dispatcher
    assert delivery.status == RETRYING
    assert await redis.zscore(d.dkeys.retries(d.dkeys.partition("bot:x:13")), "bot:x:13") >= start + 900


def test_retry_after_forms() -> None:
    now = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
    assert retry_after_seconds({"Retry-After": "30"}, now) == 30.0
    assert retry_after_seconds({"Retry-After": "Tue, 14 Nov 2023 22:15:20 GMT"}, now) == 120.0
    assert retry_after_seconds({"Retry-After": "Tue, 14 Nov 2023 22:00:00 GMT"}, now) == 0.0
    assert retry_after_seconds({"x-rate-limit-reset": "1700000600"}, now) == 600.0
    assert retry_after_seconds({"Retry-After": "soon"}, now) is None
    assert retry_after_seconds({}, now) is None


async def test_timeout_and_dropped_connection_are_retried(
    network_settings: Settings, network: FakeNetwork, redis: Redis, keys: Keys
) -> None:
    quick = network_settings.model_copy(update={"dispatch_http_timeout_seconds": 0.2, "claim_idle_ms": 500})
    harness = Harness(quick, redis, keys)
    try:
        await timeout_then_drop_then_sent(harness, network)
    finally:
        await harness.adapters.aclose()


async def timeout_then_drop_then_sent(harness: Harness, network: FakeNetwork) -> None:
    network.fail_next(Fail(mode="hang"))
    [delivery] = await harness.deliver(reply("bot:x:14"))
    assert delivery.status == RETRYING and "no answer within 0.2s" in delivery.error
    network.fail_next(Fail(mode="drop"))
    harness.clock.advance(60)
    await harness.dispatcher.deliver_once()
    delivery = await harness.dispatcher.get("bot:x:14")
    assert delivery.status == RETRYING and "connection dropped" in delivery.error
    harness.clock.advance(60)
    await harness.dispatcher.deliver_once()
    assert (await harness.dispatcher.get("bot:x:14")).status == SENT
    assert len(network.posted) == 1


async def test_other_4xx_dead_letters_with_the_network_error(harness: Harness, network: FakeNetwork) -> None:
    network.fail_next(
        Fail(403, body={"title": "Forbidden", "detail": "You are not allowed to reply to this Tweet."})
    )
    [delivery] = await harness.deliver(reply("bot:x:15"))
    assert delivery.status == DEAD_LETTER
    assert delivery.error == "refused: x: 403: You are not allowed to reply to this Tweet."
    [dead] = await harness.dispatcher.dead_letters()
    assert dead["reply_id"] == "bot:x:15" and "not allowed" in dead["error"]
    harness.clock.advance(3600)
    assert await harness.dispatcher.deliver_once() == 0 and len(network.requests) == 1


async def test_graph_rate_limit_codes_are_retried_other_codes_are_not(
    harness: Harness, network: FakeNetwork
) -> None:
    network.fail_next(
        Fail(400, body=graph_error(613, "Calls to this api have exceeded the rate limit.")),
        Fail(400, body=graph_error(100, "(#100) Invalid parameter")),
    )
    fb = reply("bot:facebook:c2", channel=common_pb2.CHANNEL_FACEBOOK, in_reply_to_id="POST_1")
    [delivery] = await harness.deliver(fb)
    assert delivery.status == RETRYING and "(code 613)" in delivery.error
    harness.clock.advance(60)
    await harness.dispatcher.deliver_once()
    delivery = await harness.dispatcher.get("bot:facebook:c2")
    assert (
        delivery.status == DEAD_LETTER
        and delivery.error == "refused: meta: 400: (#100) Invalid parameter (code 100)"
    )


async def test_wrong_credentials_are_refused_by_the_network(
    network_settings: Settings, network: FakeNetwork, redis: Redis, keys: Keys
) -> None:
    h = Harness(network_settings.model_copy(update={"dispatch_x_bearer_token": "stale"}), redis, keys)
    try:
        [delivery] = await h.deliver(reply("bot:x:16"))
    finally:
        await h.adapters.aclose()
    assert delivery.status == DEAD_LETTER and "401" in delivery.error
    assert network.posted == []


# --- set-up ------------------------------------------------------------------------------------------------


async def test_registry_builds_each_networks_adapter_once_and_closes_sessions(
    network_settings: Settings,
) -> None:
    registry = AdapterRegistry.from_settings(network_settings)
    x = registry.for_channel(common_pb2.CHANNEL_X)
    meta = {registry.for_channel(c) for c in (2, 3, 4)}
    assert isinstance(x, XAdapter) and len(meta) == 1 and isinstance(meta.pop(), MetaAdapter)
    session = x.session()
    assert x.session() is session
    await registry.aclose()
    assert session.closed


def test_a_timeout_reaching_the_claim_time_is_refused(network_settings: Settings) -> None:
    too_slow = network_settings.model_copy(
        update={"dispatch_http_timeout_seconds": 0.5, "claim_idle_ms": 500}
    )
    with pytest.raises(ValueError, match="below claim_idle_ms"):
        AdapterRegistry.from_settings(too_slow)


async def test_an_unknown_last_message_time_leaves_the_window_to_the_network(
    harness: Harness, network: FakeNetwork
) -> None:
    unset = reply("bot:wa:5", channel=common_pb2.CHANNEL_WHATSAPP, visibility=PRIVATE, in_reply_to_id="")
    zero = last_wrote(
        reply(
            "bot:wa:6",
            channel=common_pb2.CHANNEL_WHATSAPP,
            visibility=PRIVATE,
            in_reply_to_id="",
            conversation_id="c6",
        ),
        0.0,
    )
    assert [d.status for d in await harness.deliver(unset, zero)] == [SENT, SENT]
    assert [r.body["type"] for r in network.requests] == ["text", "text"]
