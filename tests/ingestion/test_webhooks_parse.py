"""The pure parts of the webhooks: signatures against known values, and the less common message shapes."""

from __future__ import annotations

import pytest

from parley.ingestion.webhooks import signatures
from parley.ingestion.webhooks.meta import parse_meta
from parley.ingestion.webhooks.payload import PayloadError
from parley.ingestion.webhooks.x import parse_x
from parley.v1 import common_pb2

# Reference values computed with `openssl dgst -sha256 -hmac`.
META_BODY = b'{"object":"page","entry":[]}'
META_SIGNATURE = "sha256=79e65d5e06e173bb483d7f7824bf54a39a7509c6c05a3b16b7cce3660e6c7a6d"
X_BODY = b'{"for_user_id":"1"}'
X_SIGNATURE = "sha256=LxhqGUZQCGqjXn0Y71fjYTgg7s92V+rY4uTWmp8IJ+c="


def test_signatures_match_reference_values() -> None:
    assert signatures.meta_signature("app-secret-1", META_BODY) == META_SIGNATURE
    assert signatures.meta_signature_ok(
        "app-secret-1", META_BODY, META_SIGNATURE.upper().replace("SHA", "sha")
    )
    assert not signatures.meta_signature_ok("app-secret-1", META_BODY + b"\n", META_SIGNATURE)
    assert not signatures.meta_signature_ok("app-secret-1", META_BODY, META_SIGNATURE[7:])  # no prefix
    assert signatures.x_signature("consumer-secret-2", X_BODY) == X_SIGNATURE
    assert signatures.x_signature_ok("consumer-secret-2", X_BODY, X_SIGNATURE)
    assert not signatures.x_signature_ok("consumer-secret-3", X_BODY, X_SIGNATURE)
    assert signatures.x_crc_response("consumer-secret-2", '{"for_user_id":"1"}') == {
        "response_token": X_SIGNATURE
    }


def whatsapp(message: dict[str, object]) -> dict[str, object]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15557014823", "phone_number_id": "109874315563201"},
        "messages": [
            {"from": "447700900321", "id": "wamid.HBgMNDQ3NzAwOTAwMzIxFQIAEhgg", "timestamp": "1699998800"}
            | message
        ],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "118230667792145", "changes": [{"field": "messages", "value": value}]}],
    }


@pytest.mark.parametrize(
    ("message", "text", "attachment"),
    [
        (
            {
                "type": "location",
                "location": {
                    "latitude": 51.5072,
                    "longitude": -0.1276,
                    "name": "Depot 4",
                    "address": "12 Canal St",
                },
            },
            "Depot 4, 12 Canal St",
            ("location", "geo:51.5072,-0.1276", ""),
        ),
        (
            {"type": "button", "button": {"payload": "TRACK", "text": "Track my parcel"}},
            "Track my parcel",
            None,
        ),
        (
            {
                "type": "interactive",
                "interactive": {"type": "list_reply", "list_reply": {"id": "r2", "title": "Return an item"}},
            },
            "Return an item",
            None,
        ),
        (
            {
                "type": "document",
                "document": {
                    "id": "884120556671302",
                    "mime_type": "application/pdf",
                    "filename": "invoice.pdf",
                },
            },
            "",
            ("file", "", "884120556671302"),
        ),
        (
            {"type": "voice", "voice": {"id": "553018820047719", "mime_type": "audio/ogg; codecs=opus"}},
            "",
            ("audio", "", "553018820047719"),
        ),
    ],
)
def test_whatsapp_message_types(
    message: dict[str, object], text: str, attachment: tuple[str, str, str] | None
) -> None:
    (parsed,) = parse_meta(whatsapp(message)).messages
    assert parsed.text == text
    assert [(a.type, a.url, a.platform_id) for a in parsed.attachments] == (
        [attachment] if attachment else []
    )
    assert parsed.author.display_name == ""  # no contacts block in this delivery


def test_whatsapp_types_without_text_are_ignored() -> None:
    for message in (
        {"type": "unsupported", "errors": [{"code": 131051}]},
        {"type": "reaction", "reaction": {"message_id": "wamid.x", "emoji": ""}},
    ):
        parsed = parse_meta(whatsapp(message))
        assert (parsed.messages, parsed.ignored) == ([], 1)


def test_messenger_stickers_locations_and_story_replies() -> None:
    event = {
        "sender": {"id": "24781093361045822"},
        "recipient": {"id": "104857200112233"},
        "timestamp": 1699998501237,
        "message": {
            "mid": "m_sticker",
            "attachments": [
                {
                    "type": "image",
                    "payload": {
                        "url": "https://scontent.xx.fbcdn.net/v/t39.1997-6/thumbs.png",
                        "sticker_id": 369239263222822,
                    },
                },
                {"type": "location", "payload": {"coordinates": {"lat": 52.52, "long": 13.405}}},
                {"type": "fallback", "payload": {"url": "https://example.com/order/448120"}},
            ],
            "reply_to": {
                "story": {
                    "url": "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1790",
                    "id": "17920811430788301",
                }
            },
        },
    }
    (message,) = parse_meta(
        {"object": "page", "entry": [{"id": "104857200112233", "time": 1699998562114, "messaging": [event]}]}
    ).messages
    assert [(a.type, a.platform_id) for a in message.attachments] == [
        ("link", "17920811430788301"),
        ("sticker", "369239263222822"),
        ("location", ""),
        ("link", ""),
    ]
    assert message.attachments[2].url == "geo:52.52,13.405"
    assert message.in_reply_to_id == ""


def test_unknown_meta_objects_are_ignored_and_bodies_must_be_objects() -> None:
    assert parse_meta({"object": "permissions", "entry": [{"id": "1", "changes": []}]}).ignored == 1
    with pytest.raises(PayloadError) as caught:
        parse_meta([1, 2])
    assert caught.value.violations == [("body", "must be an object")]
    with pytest.raises(PayloadError) as caught:
        parse_meta({"object": "page", "entry": {"id": "1"}})
    assert caught.value.violations == [("entry", "must be an array")]


def test_x_post_time_from_created_at_and_bad_created_at() -> None:
    tweet = {
        "id_str": "1724576313775919203",
        "text": "@kettleworks hello",
        "user": {"id_str": "2891047735"},
        "created_at": "Tue Nov 14 21:56:40 +0000 2023",
    }
    (message,) = parse_x({"for_user_id": "1469582203714441216", "tweet_create_events": [tweet]}).messages
    assert message.sent_at.seconds == 1699999000
    assert message.direction == common_pb2.DIRECTION_INBOUND
    with pytest.raises(PayloadError) as caught:
        parse_x(
            {
                "for_user_id": "1469582203714441216",
                "tweet_create_events": [tweet | {"created_at": "14/11/2023"}],
            }
        )
    assert caught.value.violations[0][0] == "tweet_create_events[0].created_at"


def test_x_other_events_are_ignored() -> None:
    parsed = parse_x(
        {
            "for_user_id": "1469582203714441216",
            "favorite_events": [{"id": "a"}, {"id": "b"}],
            "follow_events": [{"type": "follow"}],
            "direct_message_events": [{"type": "message_delete", "id": "1"}],
        }
    )
    assert (parsed.messages, parsed.ignored) == ([], 4)
