"""The intake: every rule, every violation of a batch reported at once, and the one shape of a message."""

from __future__ import annotations

import pytest

from parley.clock import ManualClock, from_timestamp, to_timestamp
from parley.config import Settings
from parley.ingestion import intake
from parley.ingestion.intake import admit_batch, admit_each, normalize
from parley.rpc import InvalidArgument
from parley.v1 import common_pb2

NOW = ManualClock().now()
LIMITS = Settings(max_batch=5, max_text_chars=20, max_id_chars=10, max_attachments=2, max_attachment_chars=30)


def admit(
    messages: list[common_pb2.InboundMessage], settings: Settings, now: float = NOW
) -> list[common_pb2.InboundMessage]:
    return admit_batch(messages, settings, now)


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
        admit(list(messages), settings)
    return caught.value.violations


def fields(*messages: common_pb2.InboundMessage, settings: Settings = LIMITS) -> list[str]:
    return [field for field, _ in violations(*messages, settings=settings)]


def test_a_good_batch_passes() -> None:
    admit([message(), message(platform_message_id="1002", text="", attachments=[{}])], LIMITS, now=NOW)


def test_outbound_messages_need_no_author() -> None:
    admit([message(direction=common_pb2.DIRECTION_OUTBOUND, author=None)], LIMITS)


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
        ({"platform_message_id": "x" * 9}, "platform_message_id"),
        ({"in_reply_to_id": "x" * 9}, "in_reply_to_id"),
        ({"brand_account_id": "x" * 11}, "brand_account_id"),
        ({"author": {"id": "x" * 11}}, "author.id"),
        ({"platform_message_id": "12\n34"}, "platform_message_id"),
        ({"platform_message_id": "12\x0034"}, "platform_message_id"),
    ],
)
def test_ids_too_long_or_with_control_characters(overrides: dict[str, object], field: str) -> None:
    assert fields(message(**overrides)) == [f"messages[0].{field}"]


def test_id_length_ignores_surrounding_whitespace() -> None:
    admit([message(platform_message_id="  " + "x" * 8 + "  ")], LIMITS)


def test_message_and_parent_ids_must_fit_with_their_channel_prefix() -> None:
    # "x:" + 8 characters is the longest Parley id of 10; 9 would be accepted alone and dropped later.
    admit([message(platform_message_id="1" * 8, in_reply_to_id="2" * 8)], LIMITS)
    found = violations(message(platform_message_id="1" * 9, in_reply_to_id="2" * 9))
    assert [f for f, _ in found] == ["messages[0].platform_message_id", "messages[0].in_reply_to_id"]
    assert found[0][1] == "has 9 characters; at most 8 (the Parley id x:<id> holds at most 10)"
    # The longer the channel's name, the shorter the id.
    whatsapp = message(channel=common_pb2.CHANNEL_WHATSAPP, visibility=common_pb2.VISIBILITY_PRIVATE)
    whatsapp.platform_message_id = "1" * 2
    admit([whatsapp], Settings(max_id_chars=11))
    whatsapp.platform_message_id = "1" * 3
    assert fields(whatsapp, settings=Settings(max_id_chars=11)) == ["messages[0].platform_message_id"]


def test_text_rules() -> None:
    assert violations(message(text="")) == [("messages[0].text", intake.TEXT_REQUIRED)]
    assert violations(message(text=" \n\t ")) == [("messages[0].text", intake.TEXT_REQUIRED)]
    assert fields(message(text="x" * 21)) == ["messages[0].text"]
    # Characters, not bytes: 20 emoji are 80 bytes of UTF-8 and still fit.
    admit([message(text="\N{GRINNING FACE}" * 20)], LIMITS)


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
    admit([message(sent_at=to_timestamp(NOW + 23 * 3600))], LIMITS)
    assert fields(message(sent_at=to_timestamp(NOW + 25 * 3600))) == ["messages[0].sent_at"]
    assert fields(message(sent_at={"seconds": int(NOW), "nanos": -1})) == ["messages[0].sent_at"]


@pytest.mark.parametrize("seconds", [-62_135_596_801, -(2**62), 253_402_300_800])
def test_sent_at_outside_what_a_timestamp_can_hold(seconds: int) -> None:
    # Such a time parses off the wire, but nothing can format it (ListConversations broke on one).
    assert violations(message(sent_at={"seconds": seconds})) == [
        ("messages[0].sent_at", intake.OUT_OF_TIMESTAMP_RANGE)
    ]
    admit([message(sent_at={"seconds": -62_135_596_800})], LIMITS)  # 0001-01-01 is fine


def test_attachments_are_bounded_in_number_and_size() -> None:
    two = [{"type": "image", "url": "https://e.x/1"}, {"type": "image", "url": "https://e.x/2"}]
    admit([message(attachments=two)], LIMITS)
    assert violations(message(attachments=[*two, {"type": "image"}])) == [
        ("messages[0].attachments", "holds 3 attachments; at most 2")
    ]
    long = {"type": "image", "url": "https://e.x/" + "a" * 30, "platform_id": "9" * 31}
    assert fields(message(attachments=[long])) == [
        "messages[0].attachments[0].url",
        "messages[0].attachments[0].platform_id",
    ]


def test_attachments_alone_need_no_text_and_blank_text_beside_them_is_none() -> None:
    photo = message(text=" \n ", attachments=[{"type": "image", "url": "https://e.x/p.jpg"}])
    [out] = admit([photo], LIMITS)
    assert out.text == ""


def test_a_customers_direct_message_without_a_thread_gets_the_one_to_one_thread() -> None:
    def dm(channel: int, author: str, brand: str, **extra: object) -> common_pb2.InboundMessage:
        return message(
            channel=channel,
            visibility=common_pb2.VISIBILITY_PRIVATE,
            brand_account_id=brand,
            author={"id": author},
            **extra,
        )

    x_dm = normalize(dm(common_pb2.CHANNEL_X, "2891047735", "1469582203714441216"), NOW)
    assert x_dm.platform_thread_id == "2891047735-1469582203714441216"  # as X's webhook names it
    whatsapp = normalize(dm(common_pb2.CHANNEL_WHATSAPP, "48601234567", "109874315563201"), NOW)
    assert whatsapp.platform_thread_id == "48601234567"
    given = normalize(dm(common_pb2.CHANNEL_X, "1", "2", platform_thread_id="t-9"), NOW)
    assert given.platform_thread_id == "t-9"
    assert normalize(message(), NOW).platform_thread_id == ""  # public: threads by replies
    # The brand's own DM names no customer: without a thread or a parent it would stand alone.
    brand_dm = dm(common_pb2.CHANNEL_X, "", "2", direction=common_pb2.DIRECTION_OUTBOUND)
    assert violations(brand_dm) == [("messages[0].platform_thread_id", intake.BRAND_DM_THREAD_REQUIRED)]
    brand_dm.in_reply_to_id = "77"
    admit([brand_dm], LIMITS)


def test_admit_each_names_fields_relative_to_the_message() -> None:
    good, refused = admit_each(
        [message(), message(platform_message_id="1002", text="x" * 21, channel=9)], LIMITS, NOW
    )
    assert [m.message_id for m in good] == ["x:1001"]
    [(bad, found)] = refused
    assert bad.platform_message_id == "1002"
    assert found == [("channel", "is not a known channel (got 9)"), ("text", "has 21 characters; at most 20")]


def test_for_log_escapes_what_could_forge_a_log_line() -> None:
    assert intake.for_log("12\n2026-01-01 INFO forged") == repr("12\n2026-01-01 INFO forged")
    assert "\u202e" not in intake.for_log("id\u202eevil")
    assert intake.for_log("9" * 100).endswith("…") and len(intake.for_log("9" * 100)) < 70


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
        admit_batch(
            [
                dm(common_pb2.CHANNEL_MESSENGER, common_pb2.VISIBILITY_PUBLIC),
                dm(common_pb2.CHANNEL_WHATSAPP, common_pb2.VISIBILITY_PUBLIC),
            ],
            Settings(),
            NOW,
        )
    assert [f for f, _ in raised.value.violations] == ["messages[0].visibility", "messages[1].visibility"]
    admit([dm(common_pb2.CHANNEL_WHATSAPP, common_pb2.VISIBILITY_PRIVATE)], Settings())
