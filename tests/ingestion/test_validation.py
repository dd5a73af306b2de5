"""validate_batch and normalize: every rule, and every violation of a batch reported at once."""

from __future__ import annotations

import pytest

from parley.clock import ManualClock, from_timestamp, to_timestamp
from parley.config import Settings
from parley.ingestion.validation import normalize, validate_batch
from parley.rpc import InvalidArgument
from parley.v1 import common_pb2

NOW = ManualClock().now()
LIMITS = Settings(max_batch=5, max_text_chars=20, max_id_chars=10)


def message(**overrides: object) -> common_pb2.InboundMessage:
    fields: dict[str, object] = {
        "channel": common_pb2.CHANNEL_X,
        "visibility": common_pb2.VISIBILITY_PUBLIC,
        "platform_message_id": "1001",
        "brand_account_id": "brand",
        "author": common_pb2.Author(id="u1", handle="ann"),
        "text": "where is my order?",
    }
    fields.update(overrides)
    return common_pb2.InboundMessage(**fields)  # type: ignore[arg-type]


def violations(*messages: common_pb2.InboundMessage, settings: Settings = LIMITS) -> list[tuple[str, str]]:
    with pytest.raises(InvalidArgument) as caught:
        validate_batch(list(messages), settings, now=NOW)
    return caught.value.violations


def fields(*messages: common_pb2.InboundMessage) -> list[str]:
    return [field for field, _ in violations(*messages)]


def test_a_good_batch_passes() -> None:
    validate_batch(
        [message(), message(platform_message_id="1002", text="", attachments=[{}])], LIMITS, now=NOW
    )


def test_outbound_messages_need_no_author() -> None:
    validate_batch([message(direction=common_pb2.DIRECTION_OUTBOUND, author=None)], LIMITS, now=NOW)


def test_empty_and_oversized_batches() -> None:
    assert fields() == ["messages"]
    assert fields(*[message(platform_message_id=str(i)) for i in range(6)]) == ["messages"]


@pytest.mark.parametrize("field", ["platform_message_id", "brand_account_id"])
@pytest.mark.parametrize("value", ["", "   "])
def test_missing_ids(field: str, value: str) -> None:
    assert fields(message(**{field: value})) == [f"messages[0].{field}"]


def test_missing_author_for_inbound() -> None:
    assert fields(message(author=None)) == ["messages[0].author.id"]
    assert fields(message(direction=common_pb2.DIRECTION_INBOUND, author={"handle": "x"})) == [
        "messages[0].author.id"
    ]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"platform_message_id": "x" * 11}, "platform_message_id"),
        ({"in_reply_to_id": "x" * 11}, "in_reply_to_id"),
        ({"brand_account_id": "x" * 11}, "brand_account_id"),
        ({"author": {"id": "x" * 11}}, "author.id"),
        ({"platform_message_id": "12\n34"}, "platform_message_id"),
        ({"platform_message_id": "12\x0034"}, "platform_message_id"),
    ],
)
def test_ids_too_long_or_with_control_characters(overrides: dict[str, object], field: str) -> None:
    assert fields(message(**overrides)) == [f"messages[0].{field}"]


def test_id_length_ignores_surrounding_whitespace() -> None:
    validate_batch([message(platform_message_id="  " + "x" * 10 + "  ")], LIMITS, now=NOW)


def test_text_rules() -> None:
    assert fields(message(text="")) == ["messages[0].text"]
    assert fields(message(text=" \n\t ")) == ["messages[0].text"]
    assert fields(message(text="x" * 21)) == ["messages[0].text"]
    # Characters, not bytes: 20 emoji are 80 bytes of UTF-8 and still fit.
    validate_batch([message(text="\N{GRINNING FACE}" * 20)], LIMITS, now=NOW)


def test_unknown_and_unspecified_enums() -> None:
    assert fields(message(channel=common_pb2.CHANNEL_UNSPECIFIED)) == ["messages[0].channel"]
    assert fields(message(channel=42)) == ["messages[0].channel"]
    assert fields(message(visibility=common_pb2.VISIBILITY_UNSPECIFIED)) == ["messages[0].visibility"]
    assert fields(message(visibility=9)) == ["messages[0].visibility"]
    assert fields(message(direction=7)) == ["messages[0].direction"]


def test_unknown_channel_survives_the_wire() -> None:
    # proto3 keeps an enum number it does not know, so the check sees it after parsing.
    parsed = common_pb2.InboundMessage.FromString(message(channel=42).SerializeToString())
    assert fields(parsed) == ["messages[0].channel"]


def test_sent_at_far_in_the_future() -> None:
    validate_batch([message(sent_at=to_timestamp(NOW + 23 * 3600))], LIMITS, now=NOW)
    assert fields(message(sent_at=to_timestamp(NOW + 25 * 3600))) == ["messages[0].sent_at"]
    assert fields(message(sent_at={"seconds": int(NOW), "nanos": -1})) == ["messages[0].sent_at"]


def test_every_violation_of_a_batch_is_reported() -> None:
    found = violations(
        message(),
        message(channel=0, text=""),
        message(),
        message(platform_message_id="", brand_account_id="x" * 11, author=None, text="x" * 21),
    )
    assert [f for f, _ in found] == [
        "messages[1].channel",
        "messages[1].text",
        "messages[3].platform_message_id",
        "messages[3].brand_account_id",
        "messages[3].author.id",
        "messages[3].text",
    ]
    assert all(description for _, description in found)
    assert "at most 20" in dict(found)["messages[3].text"]


def test_normalize_fills_what_ingestion_owns() -> None:
    raw = message(platform_message_id=" 1001 ", brand_account_id="brand\t", author={"id": " u1"})
    out = normalize(raw, NOW)
    assert out.message_id == "x:1001"
    assert (out.platform_message_id, out.brand_account_id, out.author.id) == ("1001", "brand", "u1")
    assert from_timestamp(out.received_at) == pytest.approx(NOW)
    assert out.sent_at == out.received_at
    assert out.direction == common_pb2.DIRECTION_INBOUND


def test_normalize_keeps_what_the_network_said() -> None:
    sent = to_timestamp(NOW - 60)
    out = normalize(
        message(channel=common_pb2.CHANNEL_WHATSAPP, sent_at=sent, direction=common_pb2.DIRECTION_OUTBOUND),
        NOW,
    )
    assert out.message_id == "whatsapp:1001"
    assert out.sent_at == sent
    assert out.direction == common_pb2.DIRECTION_OUTBOUND


def test_messenger_and_whatsapp_messages_cannot_be_public() -> None:
    def dm(channel: int, visibility: int) -> common_pb2.InboundMessage:
        return common_pb2.InboundMessage(
            channel=channel,
            visibility=visibility,
            platform_message_id="m1",
            brand_account_id="page",
            author=common_pb2.Author(id="u1"),
            text="hello",
        )

    with pytest.raises(InvalidArgument) as raised:
        validate_batch(
            [
                dm(common_pb2.CHANNEL_MESSENGER, common_pb2.VISIBILITY_PUBLIC),
                dm(common_pb2.CHANNEL_WHATSAPP, common_pb2.VISIBILITY_PUBLIC),
            ],
            Settings(),
        )
    assert [f for f, _ in raised.value.violations] == ["messages[0].visibility", "messages[1].visibility"]
    validate_batch([dm(common_pb2.CHANNEL_WHATSAPP, common_pb2.VISIBILITY_PRIVATE)], Settings())
