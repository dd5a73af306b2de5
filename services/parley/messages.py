"""Names and ids shared by every service: channel names, Parley message ids, intent names."""

from __future__ import annotations

from typing import Any, cast

from parley.v1 import common_pb2


def _names(enum: Any, prefix: str) -> dict[int, str]:
    """Number -> lower-case name of each value of a protobuf enum but its UNSPECIFIED zero, in the order the
    proto declares them: CHANNEL_WHATSAPP -> "whatsapp". A value added to the proto is named here without
    another edit."""
    return {number: name.removeprefix(prefix).lower() for name, number in enum.items() if number}


# The one definition of the channel and intent names every service, the console and the classifier use.
CHANNEL_NAMES: dict[int, str] = _names(common_pb2.Channel, "CHANNEL_")
CHANNELS_BY_NAME = cast(
    "dict[str, common_pb2.Channel]", {name: value for value, name in CHANNEL_NAMES.items()}
)

# In the classifier's canonical order (the order of its reported scores).
INTENT_NAMES: dict[int, str] = _names(common_pb2.Intent, "INTENT_")
INTENTS_BY_NAME = cast("dict[str, common_pb2.Intent]", {name: value for value, name in INTENT_NAMES.items()})


def message_id(channel: int, platform_message_id: str) -> str:
    """Parley's id of a message: unique across channels, stable across redeliveries."""
    return f"{CHANNEL_NAMES[channel]}:{platform_message_id}"


def platform_ref(channel: int, platform_message_id: str) -> str:
    """The id under which a message can be found by a reply to it (same form as `message_id`)."""
    return message_id(channel, platform_message_id)
