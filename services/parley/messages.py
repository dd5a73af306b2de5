"""Names and ids shared by every service: channel names, Parley message ids, intent names."""

from __future__ import annotations

from typing import cast

from parley.v1 import common_pb2

CHANNEL_NAMES: dict[common_pb2.Channel, str] = {
    common_pb2.CHANNEL_X: "x",
    common_pb2.CHANNEL_FACEBOOK: "facebook",
    common_pb2.CHANNEL_MESSENGER: "messenger",
    common_pb2.CHANNEL_INSTAGRAM: "instagram",
    common_pb2.CHANNEL_WHATSAPP: "whatsapp",
}
CHANNELS_BY_NAME: dict[str, common_pb2.Channel] = {name: value for value, name in CHANNEL_NAMES.items()}

INTENT_NAMES: dict[common_pb2.Intent, str] = {
    common_pb2.INTENT_PRAISE: "praise",
    common_pb2.INTENT_QUESTION: "question",
    common_pb2.INTENT_COMPLAINT: "complaint",
    common_pb2.INTENT_URGENT: "urgent",
    common_pb2.INTENT_OTHER: "other",
}
INTENTS_BY_NAME: dict[str, common_pb2.Intent] = {name: value for value, name in INTENT_NAMES.items()}


def message_id(channel: common_pb2.Channel, platform_message_id: str) -> str:
    """Parley's id of a message: unique across channels, stable across redeliveries."""
    return f"{CHANNEL_NAMES[channel]}:{platform_message_id}"


def platform_ref(channel: common_pb2.Channel, platform_message_id: str) -> str:
    """The id under which a message can be found by a reply to it (same form as `message_id`)."""
    return message_id(channel, platform_message_id)


def channel_name(number: int, default: str = "") -> str:
    """The name of a channel stored as a plain number (a Redis field, a metrics key), `default` if unknown."""
    return CHANNEL_NAMES.get(cast(common_pb2.Channel, number), default)


def intent_name(number: int, default: str = "") -> str:
    """The name of an intent stored as a plain number, `default` if unknown."""
    return INTENT_NAMES.get(cast(common_pb2.Intent, number), default)
