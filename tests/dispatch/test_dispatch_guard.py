"""The public-PII guard end to end against the fake networks: no public post ever carries the customer's
email, phone, card, order or account number or address; "block" refuses, "move" invites to a DM publicly and
sends the detail privately in the same conversation."""

from __future__ import annotations

import json
import random

import pytest
from dispatch_samples import make_reply
from network_double import IG_ID, PAGE_ID, FakeNetwork

from parley.clock import ManualClock
from parley.config import Settings
from parley.dispatch import guard
from parley.dispatch.adapters import AdapterRegistry
from parley.dispatch.dispatcher import Dispatcher
from parley.dispatch.guard import sensitive_types
from parley.events import read_all
from parley.rpc import InvalidArgument
from parley.store import Keys, Redis
from parley.v1 import common_pb2, dispatch_pb2

SENT = dispatch_pb2.DELIVERY_STATUS_SENT
BLOCKED = dispatch_pb2.DELIVERY_STATUS_BLOCKED
PUBLIC = common_pb2.VISIBILITY_PUBLIC
PRIVATE = common_pb2.VISIBILITY_PRIVATE

# (entity type, a reply naming one, the value that must never be public)
SEEDED = [
    ("email", "We emailed jane.doe@example.com with the label.", "jane.doe@example.com"),
    ("phone", "Call us back on +1 415 555 0134 today.", "415 555 0134"),
    ("payment_card", "The card 4111 1111 1111 1111 was charged twice.", "4111 1111 1111 1111"),
    ("order_number", "Your order number is AB12345, it ships today.", "AB12345"),
    ("account_number", "Your account number is 12345678.", "12345678"),
    ("address", "We will ship to 221 Baker Street, London tomorrow.", "221 Baker Street"),
    ("iban", "The refund went to DE89 3704 0044 0532 0130 00 this morning.", "DE89 3704 0044 0532 0130 00"),
]


def test_each_seeded_reply_is_recognised() -> None:
    for kind, text, _ in SEEDED:
        assert sensitive_types(text) == [kind]


async def dispatch(settings: Settings, redis: Redis, keys: Keys, *replies: dispatch_pb2.Reply):
    adapters = AdapterRegistry.from_settings(settings, ManualClock())
    dispatcher = Dispatcher(settings, redis, keys, ManualClock(), adapters, rng=random.Random(1))
    try:
        queued = await dispatcher.send(list(replies))
        await dispatcher.deliver_once()
    finally:
        await adapters.aclose()
    return dispatcher, queued


def public_x(reply_id: str, text: str, recipient_id: str = "2244994945") -> dispatch_pb2.Reply:
    r = make_reply(reply_id, text=text, in_reply_to_id="1001", recipient_id=recipient_id)
    r.brand_account_id = ""
    return r


async def events(redis: Redis, keys: Keys) -> list[tuple[str, dict]]:
    return [(event.type, dict(event.attributes)) for _, event in await read_all(redis, keys)]


@pytest.mark.parametrize(("kind", "text", "value"), SEEDED, ids=[s[0] for s in SEEDED])
async def test_move_posts_an_invitation_publicly_and_the_detail_privately(
    network_settings: Settings,
    network: FakeNetwork,
    redis: Redis,
    keys: Keys,
    kind: str,
    text: str,
    value: str,
) -> None:
    dispatcher, [queued] = await dispatch(network_settings, redis, keys, public_x("bot:x:1", text))
    assert queued.private_reply_id == "bot:x:1/private"

    public = await dispatcher.get("bot:x:1")
    private = await dispatcher.get("bot:x:1/private")
    assert (public.status, public.visibility, public.private_reply_id) == (SENT, PUBLIC, "bot:x:1/private")
    assert (private.status, private.visibility) == (SENT, PRIVATE)
    # Nothing public names the value; the DM to the customer carries the whole reply.
    assert all(value not in r.body.get("text", "") for r in network.requests if r.path == "/2/tweets")
    assert network.public_texts() == [network_settings.dispatch_move_to_private_text]
    [dm] = [p for p in network.posted if not p.public]
    assert (dm.path, dm.text) == ("/2/dm_conversations/with/2244994945/messages", text)
    assert list(private.platform_message_ids) == [dm.platform_id]
    moved = [attrs for type_, attrs in await events(redis, keys) if type_ == "reply.moved_private"]
    assert moved == [
        {
            "reply_id": "bot:x:1",
            "channel": "x",
            "in_reply_to_id": "1001",
            "sent_by": "bot",
            "private_reply_id": "bot:x:1/private",
            "entity_types": [kind],
        }
    ]


@pytest.mark.parametrize(("kind", "text", "value"), SEEDED, ids=[s[0] for s in SEEDED])
async def test_block_refuses_naming_the_types_never_the_values(
    network_settings: Settings,
    network: FakeNetwork,
    redis: Redis,
    keys: Keys,
    kind: str,
    text: str,
    value: str,
) -> None:
    settings = network_settings.model_copy(update={"dispatch_public_pii_policy": "block"})
    dispatcher, [queued] = await dispatch(settings, redis, keys, public_x("bot:x:2", text))
    stored = await dispatcher.get("bot:x:2")
    assert queued.status == stored.status == BLOCKED
    assert stored.error == f"public reply would expose the customer's {kind}"
    assert network.requests == []
    recorded = await events(redis, keys)
    assert [t for t, _ in recorded] == ["reply.blocked"]
    assert recorded[0][1]["entity_types"] == [kind] and value not in json.dumps(recorded)


async def test_several_types_are_all_named(network_settings: Settings, redis: Redis, keys: Keys) -> None:
    settings = network_settings.model_copy(update={"dispatch_public_pii_policy": "block"})
    text = "Order #558812 goes to 221 Baker Street, London; we will email jane.doe@example.com."
    dispatcher, _ = await dispatch(settings, redis, keys, public_x("bot:x:3", text))
    error = (await dispatcher.get("bot:x:3")).error
    assert error == "public reply would expose the customer's email, order_number, address"


async def test_facebook_detail_moves_to_a_private_reply_to_the_comment(
    network_settings: Settings, network: FakeNetwork, redis: Redis, keys: Keys
) -> None:
    r = make_reply(
        "bot:facebook:c9",
        text="Your order number is AB12345, it ships today.",
        channel=common_pb2.CHANNEL_FACEBOOK,
        in_reply_to_id="POST_1_COMMENT_9",
    )
    r.brand_account_id = ""
    dispatcher, _ = await dispatch(network_settings, redis, keys, r)
    assert [(await dispatcher.get(i)).status for i in ("bot:facebook:c9", "bot:facebook:c9/private")] == [
        SENT
    ] * 2
    by_path = {q.path: q.body for q in network.requests}
    assert by_path["/v21.0/POST_1_COMMENT_9/comments"] == {
        "message": network_settings.dispatch_move_to_private_text
    }
    assert by_path[f"/v21.0/{PAGE_ID}/messages"] == {
        "recipient": {"comment_id": "POST_1_COMMENT_9"},
        "messaging_type": "RESPONSE",
        "message": {"text": "Your order number is AB12345, it ships today."},
    }


async def test_without_a_private_way_the_reply_is_blocked(
    network_settings: Settings, network: FakeNetwork, redis: Redis, keys: Keys
) -> None:
    r = public_x("bot:x:4", "We emailed jane.doe@example.com with the label.")
    r.recipient.id = ""
    dispatcher, _ = await dispatch(network_settings, redis, keys, r)
    delivery = await dispatcher.get("bot:x:4")
    assert delivery.status == BLOCKED and "no private way" in delivery.error
    assert network.requests == []


async def test_private_replies_keep_their_detail(
    network_settings: Settings, network: FakeNetwork, redis: Redis, keys: Keys
) -> None:
    dm = make_reply("bot:x:5", text="Your order number is AB12345.", visibility=PRIVATE, in_reply_to_id="")
    dispatcher, _ = await dispatch(network_settings, redis, keys, dm)
    assert (await dispatcher.get("bot:x:5")).status == SENT
    assert [p.text for p in network.posted] == ["Your order number is AB12345."]


async def test_a_moved_reply_sent_again_is_posted_once(
    network_settings: Settings, network: FakeNetwork, redis: Redis, keys: Keys
) -> None:
    r = public_x("bot:x:6", "We emailed jane.doe@example.com with the label.")
    await dispatch(network_settings, redis, keys, r, r)
    _, [repeat] = await dispatch(network_settings, redis, keys, r)
    assert repeat.status == SENT and repeat.private_reply_id == "bot:x:6/private"
    assert sorted(p.kind for p in network.posted) == ["tweet", "x_dm"]


async def test_log_adapter_never_sees_public_detail_either(
    dispatch_settings: Settings, redis: Redis, keys: Keys
) -> None:
    r = public_x("bot:x:7", "Call us back on +1 415 555 0134 today.")
    dispatcher, _ = await dispatch(dispatch_settings, redis, keys, r)
    lines = [json.loads(x) for x in dispatch_settings.dispatch_log_path.read_text().splitlines()]
    public = [line["text"] for line in lines if line["reply_id"] == "bot:x:7"]
    private = [line["text"] for line in lines if line["reply_id"] == "bot:x:7/private"]
    assert public == [dispatch_settings.dispatch_move_to_private_text]
    assert private == ["Call us back on +1 415 555 0134 today."]


async def test_a_queued_public_reply_with_detail_is_blocked_at_the_attempt(
    network_settings: Settings,
    network: FakeNetwork,
    redis: Redis,
    keys: Keys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A reply queued without the guard (by an earlier version, say) is still checked before it is posted.
    monkeypatch.setattr(guard, "guard", lambda reply, settings: guard.Guarded(reply))
    dispatcher, [queued] = await dispatch(
        network_settings, redis, keys, public_x("bot:x:8", "Your account number is 12345678.")
    )
    delivery = await dispatcher.get("bot:x:8")
    assert queued.status == dispatch_pb2.DELIVERY_STATUS_PENDING
    assert (delivery.status, delivery.error) == (
        BLOCKED,
        "public reply would expose the customer's account_number",
    )
    assert network.requests == []
    assert [t for t, _ in await events(redis, keys)] == ["reply.blocked"]


async def test_reply_ids_ending_like_a_private_half_are_refused(
    dispatch_settings: Settings, redis: Redis, keys: Keys
) -> None:
    with pytest.raises(InvalidArgument, match="must not end with '/private'"):
        await dispatch(dispatch_settings, redis, keys, public_x("bot:x:9/private", "hello"))


def test_unknown_policies_are_refused(dispatch_settings: Settings, redis: Redis, keys: Keys) -> None:
    for update in ({"dispatch_public_pii_policy": "shrug"}, {"dispatch_unconfirmed_part_policy": "maybe"}):
        with pytest.raises(ValueError, match="must be"):
            Dispatcher(
                dispatch_settings.model_copy(update=update), redis, keys, ManualClock(), AdapterRegistry({})
            )


async def test_instagram_detail_moves_to_a_private_reply_and_goes_first(
    network_settings: Settings, network: FakeNetwork, redis: Redis, keys: Keys
) -> None:
    r = make_reply(
        "bot:instagram:c5",
        text="We emailed jane.doe@example.com with the label.",
        channel=common_pb2.CHANNEL_INSTAGRAM,
        in_reply_to_id="17900555",
    )
    r.brand_account_id = ""
    dispatcher, _ = await dispatch(network_settings, redis, keys, r)
    assert [(await dispatcher.get(i)).status for i in ("bot:instagram:c5", "bot:instagram:c5/private")] == [
        SENT
    ] * 2
    # Same conversation: the private message is posted before the public invitation to read it.
    assert [(q.path, q.body) for q in network.requests] == [
        (
            f"/v21.0/{IG_ID}/messages",
            {
                "recipient": {"comment_id": "17900555"},
                "messaging_type": "RESPONSE",
                "message": {"text": "We emailed jane.doe@example.com with the label."},
            },
        ),
        ("/v21.0/17900555/replies", {"message": network_settings.dispatch_move_to_private_text}),
    ]
