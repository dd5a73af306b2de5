"""What the front door accepts, and the one shape every accepted message takes.

`validate_batch` reports every bad field of a batch at once (paths like `messages[3].text`), so a platform
fixes all of them in one go. `normalize` then fills what ingestion owns: the Parley id, the receive time, the
send time when the network gave none, and the direction.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from parley.clock import from_timestamp, to_timestamp
from parley.config import Settings
from parley.messages import CHANNEL_NAMES, message_id
from parley.rpc import InvalidArgument
from parley.v1 import common_pb2

# A message dated further ahead than this is refused: a clock that far off means a broken sender.
MAX_CLOCK_SKEW_SECONDS = 24 * 3600

KNOWN_VISIBILITIES = frozenset({common_pb2.VISIBILITY_PUBLIC, common_pb2.VISIBILITY_PRIVATE})
# Messenger and WhatsApp are direct conversations: nothing on them is ever public.
PRIVATE_ONLY_CHANNELS = frozenset({common_pb2.CHANNEL_MESSENGER, common_pb2.CHANNEL_WHATSAPP})
KNOWN_DIRECTIONS = frozenset(
    {common_pb2.DIRECTION_UNSPECIFIED, common_pb2.DIRECTION_INBOUND, common_pb2.DIRECTION_OUTBOUND}
)
# C0 and C1 control characters (and DEL): never part of a network's id, and they break keys and logs.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def validate_batch(
    messages: Sequence[common_pb2.InboundMessage], settings: Settings, *, now: float | None = None
) -> None:
    """Raise InvalidArgument naming every bad field of the batch; return None when all of it is good.

    `now` is the clock used to refuse messages dated more than a day ahead (default: the system clock).
    """
    if not messages:
        raise InvalidArgument([("messages", "must hold at least one message")])
    if len(messages) > settings.max_batch:
        raise InvalidArgument(
            [("messages", f"holds {len(messages)} messages; at most {settings.max_batch} per batch")]
        )
    now = time.time() if now is None else now
    violations: list[tuple[str, str]] = []
    for index, message in enumerate(messages):
        violations.extend(_message_violations(f"messages[{index}]", message, settings, now))
    if violations:
        raise InvalidArgument(violations)


def _message_violations(
    path: str, message: common_pb2.InboundMessage, settings: Settings, now: float
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []

    # proto3 keeps enum numbers it does not know, so an unknown value arrives as a plain int.
    if message.channel not in CHANNEL_NAMES:
        what = (
            "must be set" if message.channel == common_pb2.CHANNEL_UNSPECIFIED else "is not a known channel"
        )
        out.append((f"{path}.channel", f"{what} (got {message.channel})"))
    if message.visibility not in KNOWN_VISIBILITIES:
        what = "must be set" if message.visibility == common_pb2.VISIBILITY_UNSPECIFIED else "is not known"
        out.append((f"{path}.visibility", f"{what} (got {message.visibility})"))
    elif message.visibility == common_pb2.VISIBILITY_PUBLIC and message.channel in PRIVATE_ONLY_CHANNELS:
        out.append((f"{path}.visibility", f"{CHANNEL_NAMES[message.channel]} messages are always private"))
    if message.direction not in KNOWN_DIRECTIONS:
        out.append((f"{path}.direction", f"is not a known direction (got {message.direction})"))

    limit = settings.max_id_chars
    out.extend(_id_violations(f"{path}.platform_message_id", message.platform_message_id, limit, True))
    out.extend(_id_violations(f"{path}.brand_account_id", message.brand_account_id, limit, True))
    out.extend(_id_violations(f"{path}.in_reply_to_id", message.in_reply_to_id, limit, False))
    out.extend(_id_violations(f"{path}.platform_thread_id", message.platform_thread_id, limit, False))
    # The brand's own posts may come without an author; a customer's message never does.
    author_required = message.direction != common_pb2.DIRECTION_OUTBOUND
    out.extend(_id_violations(f"{path}.author.id", message.author.id, limit, author_required))

    text = message.text
    if not text:
        if not message.attachments:
            out.append((f"{path}.text", "must not be empty (unless the message has attachments)"))
    elif not text.strip():
        out.append((f"{path}.text", "must not be only whitespace"))
    elif len(text) > settings.max_text_chars:
        out.append((f"{path}.text", f"has {len(text)} characters; at most {settings.max_text_chars}"))

    if message.HasField("sent_at"):
        sent_at = message.sent_at
        if not 0 <= sent_at.nanos < 1_000_000_000:
            out.append((f"{path}.sent_at", "is not a valid timestamp"))
        elif from_timestamp(sent_at) > now + MAX_CLOCK_SKEW_SECONDS:
            out.append((f"{path}.sent_at", "is more than a day in the future"))
    return out


def _id_violations(field: str, value: str, limit: int, required: bool) -> list[tuple[str, str]]:
    value = value.strip()
    if not value:
        return [(field, "must be set")] if required else []
    if len(value) > limit:
        return [(field, f"has {len(value)} characters; at most {limit}")]
    if _CONTROL.search(value):
        return [(field, "must not contain control characters")]
    return []


def normalize(message: common_pb2.InboundMessage, now: float) -> common_pb2.InboundMessage:
    """Fill what ingestion owns on a validated message, in place, and return it.

    Ids lose surrounding whitespace (a redelivery with a stray space is still the same message);
    `received_at` is now; `sent_at` is the receive time when the network gave none; an unspecified
    direction means a customer wrote it.
    """
    message.platform_message_id = message.platform_message_id.strip()
    message.brand_account_id = message.brand_account_id.strip()
    message.in_reply_to_id = message.in_reply_to_id.strip()
    message.platform_thread_id = message.platform_thread_id.strip()
    if message.HasField("author"):
        message.author.id = message.author.id.strip()
    message.message_id = message_id(message.channel, message.platform_message_id)
    message.received_at.CopyFrom(to_timestamp(now))
    if not message.HasField("sent_at"):
        message.sent_at.CopyFrom(message.received_at)
    if message.direction == common_pb2.DIRECTION_UNSPECIFIED:
        message.direction = common_pb2.DIRECTION_INBOUND
    return message
