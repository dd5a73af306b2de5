"""The one intake of the ingestion service: what a message must be to be accepted, and the one shape every
accepted message takes, whether it came through gRPC Ingest / IngestStream or a network's webhook.

`violations` names each bad field of one message relative to the message (`text`, `author.id`): gRPC
callers see them under `messages[i].` (`admit_batch`, which refuses the whole batch), a webhook delivery's
refused list under the message's platform id (`admit_each`, which keeps the good messages). `normalize` then
fills what ingestion owns. Each kind of violation has one wording, defined here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from parley.clock import from_timestamp, to_timestamp
from parley.config import Settings
from parley.messages import CHANNEL_NAMES, message_id
from parley.rpc import InvalidArgument
from parley.v1 import common_pb2

Violation = tuple[str, str]

# A message dated further ahead than this is refused: a clock that far off means a broken sender.
MAX_CLOCK_SKEW_SECONDS = 24 * 3600
# What a google.protobuf.Timestamp can hold: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799

KNOWN_VISIBILITIES = frozenset({common_pb2.VISIBILITY_PUBLIC, common_pb2.VISIBILITY_PRIVATE})
# Messenger and WhatsApp are direct conversations: nothing on them is ever public.
PRIVATE_ONLY_CHANNELS = frozenset({common_pb2.CHANNEL_MESSENGER, common_pb2.CHANNEL_WHATSAPP})
KNOWN_DIRECTIONS = frozenset(
    {common_pb2.DIRECTION_UNSPECIFIED, common_pb2.DIRECTION_INBOUND, common_pb2.DIRECTION_OUTBOUND}
)
# C0 and C1 control characters (and DEL): never part of a network's id, and they break keys and logs.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# -- one wording per kind of violation ---------------------------------------------------------------------

REQUIRED = "is required"
CONTROL_CHARACTERS = "must not contain control characters"
NOT_A_TIMESTAMP = "is not a valid timestamp"
OUT_OF_TIMESTAMP_RANGE = "is outside the years 1 to 9999 that a timestamp can hold"
IN_THE_FUTURE = "is more than a day in the future"
ALWAYS_PRIVATE = "must be private: messages on this channel always are"
TEXT_REQUIRED = "is required unless the message has attachments"
BRAND_DM_THREAD_REQUIRED = "is required on the brand's private message unless it replies to another"


def too_long(size: int, limit: int, why: str = "") -> str:
    return f"has {size} characters; at most {limit}" + (f" ({why})" if why else "")


def too_many(count: int, limit: int, what: str) -> str:
    return f"holds {count} {what}; at most {limit}"


def not_known(kind: str, value: int) -> str:
    return f"is not a known {kind} (got {value})"


# -- checks ------------------------------------------------------------------------------------------------


def admit_batch(
    messages: Sequence[common_pb2.InboundMessage], settings: Settings, now: float
) -> list[common_pb2.InboundMessage]:
    """The batch normalized, in order; or InvalidArgument naming every bad field as `messages[i].<field>`."""
    if not messages:
        raise InvalidArgument([("messages", REQUIRED)])
    if len(messages) > settings.max_batch:
        raise InvalidArgument([("messages", too_many(len(messages), settings.max_batch, "messages"))])
    found = [
        (f"messages[{index}].{field}", description)
        for index, message in enumerate(messages)
        for field, description in violations(message, settings, now)
    ]
    if found:
        raise InvalidArgument(found)
    return [normalize(message, now) for message in messages]


def admit_each(
    messages: Sequence[common_pb2.InboundMessage], settings: Settings, now: float
) -> tuple[list[common_pb2.InboundMessage], list[tuple[common_pb2.InboundMessage, list[Violation]]]]:
    """Each message on its own: the good ones normalized, the others with their violations."""
    good: list[common_pb2.InboundMessage] = []
    refused: list[tuple[common_pb2.InboundMessage, list[Violation]]] = []
    for message in messages:
        found = violations(message, settings, now)
        if found:
            refused.append((message, found))
        else:
            good.append(normalize(message, now))
    return good, refused


def violations(message: common_pb2.InboundMessage, settings: Settings, now: float) -> list[Violation]:
    """Every bad field of one message, named relative to the message."""
    out: list[Violation] = []
    # proto3 keeps enum numbers it does not know, so an unknown value arrives as a plain int.
    channel = CHANNEL_NAMES.get(message.channel)
    if channel is None:
        unset = message.channel == common_pb2.CHANNEL_UNSPECIFIED
        out.append(("channel", REQUIRED if unset else not_known("channel", message.channel)))
    if message.visibility not in KNOWN_VISIBILITIES:
        unset = message.visibility == common_pb2.VISIBILITY_UNSPECIFIED
        out.append(("visibility", REQUIRED if unset else not_known("visibility", message.visibility)))
    elif message.visibility == common_pb2.VISIBILITY_PUBLIC and message.channel in PRIVATE_ONLY_CHANNELS:
        out.append(("visibility", ALWAYS_PRIVATE))
    if message.direction not in KNOWN_DIRECTIONS:
        out.append(("direction", not_known("direction", message.direction)))
    out.extend(_id_violations(message, settings, channel or ""))
    out.extend(_content_violations(message, settings))
    if message.HasField("sent_at"):
        out.extend(_time_violations("sent_at", message.sent_at, now))
    return out


def _id_violations(message: common_pb2.InboundMessage, settings: Settings, channel: str) -> list[Violation]:
    limit = settings.max_id_chars
    # A message id and a parent id become Parley ids "<channel>:<id>", which must fit the limit themselves.
    prefixed = limit - len(channel) - 1
    why = f"the Parley id {channel}:<id> holds at most {limit}"
    inbound = message.direction != common_pb2.DIRECTION_OUTBOUND
    out = [
        *_id("platform_message_id", message.platform_message_id, prefixed, required=True, why=why),
        *_id("in_reply_to_id", message.in_reply_to_id, prefixed, required=False, why=why),
        *_id("brand_account_id", message.brand_account_id, limit, required=True),
        # The brand's own posts may come without an author; a customer's message never does.
        *_id("author.id", message.author.id, limit, required=inbound),
    ]
    thread = message.platform_thread_id.strip()
    if thread:
        out.extend(_id("platform_thread_id", thread, limit, required=False))
    elif message.visibility == common_pb2.VISIBILITY_PRIVATE and channel:
        if inbound:
            derived = direct_thread_id(
                message.channel, message.author.id.strip(), message.brand_account_id.strip()
            )
            why = "the thread id made of the customer's and the brand's ids"
            out.extend(_id("platform_thread_id", derived, limit, required=False, why=why))
        elif not message.in_reply_to_id.strip():
            # Nothing else says which customer the brand wrote to, so the message would open a conversation
            # of its own.
            out.append(("platform_thread_id", BRAND_DM_THREAD_REQUIRED))
    return out


def _id(field: str, value: str, limit: int, *, required: bool, why: str = "") -> list[Violation]:
    value = value.strip()
    if not value:
        return [(field, REQUIRED)] if required else []
    if len(value) > limit:
        return [(field, too_long(len(value), limit, why))]
    if _CONTROL.search(value):
        return [(field, CONTROL_CHARACTERS)]
    return []


def _content_violations(message: common_pb2.InboundMessage, settings: Settings) -> list[Violation]:
    out: list[Violation] = []
    text = message.text
    if not text.strip() and not message.attachments:
        out.append(("text", TEXT_REQUIRED))
    elif len(text) > settings.max_text_chars:
        out.append(("text", too_long(len(text), settings.max_text_chars)))
    count = len(message.attachments)
    if count > settings.max_attachments:
        return [*out, ("attachments", too_many(count, settings.max_attachments, "attachments"))]
    limit = settings.max_attachment_chars
    for index, attachment in enumerate(message.attachments):
        for name in ("type", "url", "mime_type", "platform_id"):
            value = getattr(attachment, name)
            if len(value) > limit:
                out.append((f"attachments[{index}].{name}", too_long(len(value), limit)))
    return out


def _time_violations(field: str, stamp: Timestamp, now: float) -> list[Violation]:
    if not 0 <= stamp.nanos < 1_000_000_000:
        return [(field, NOT_A_TIMESTAMP)]
    if not MIN_TIMESTAMP_SECONDS <= stamp.seconds <= MAX_TIMESTAMP_SECONDS:
        return [(field, OUT_OF_TIMESTAMP_RANGE)]
    if from_timestamp(stamp) > now + MAX_CLOCK_SKEW_SECONDS:
        return [(field, IN_THE_FUTURE)]
    return []


# -- the one shape -----------------------------------------------------------------------------------------


def direct_thread_id(channel: int, customer_id: str, brand_account_id: str) -> str:
    """The thread of the one-to-one private conversation between a customer and a brand account.

    It is the id the network itself uses: on X the two user ids, lower first, joined by "-" (X's
    dm_conversation_id); on Meta's channels the customer's id (Messenger PSID, Instagram IGSID, WhatsApp
    wa_id).
    """
    if channel == common_pb2.CHANNEL_X:
        low, high = sorted((customer_id, brand_account_id), key=lambda v: (len(v), v))  # numeric order
        return f"{low}-{high}"
    return customer_id


def normalize(message: common_pb2.InboundMessage, now: float) -> common_pb2.InboundMessage:
    """Fill what ingestion owns on a message without violations, in place, and return it.

    Ids lose surrounding whitespace (a redelivery with a stray space is still the same message);
    `received_at` is now; `sent_at` is the receive time when the network gave none; an unspecified direction
    means a customer wrote it; a text of only whitespace beside attachments is no text; a customer's private
    message without a thread gets the one-to-one thread the webhooks give it, so that all of one customer's
    direct messages to a brand make one conversation however they arrived.
    """
    message.platform_message_id = message.platform_message_id.strip()
    message.brand_account_id = message.brand_account_id.strip()
    message.in_reply_to_id = message.in_reply_to_id.strip()
    message.platform_thread_id = message.platform_thread_id.strip()
    if message.HasField("author"):
        message.author.id = message.author.id.strip()
    if not message.text.strip():
        message.text = ""
    message.message_id = message_id(message.channel, message.platform_message_id)
    message.received_at.CopyFrom(to_timestamp(now))
    if not message.HasField("sent_at"):
        message.sent_at.CopyFrom(message.received_at)
    if message.direction == common_pb2.DIRECTION_UNSPECIFIED:
        message.direction = common_pb2.DIRECTION_INBOUND
    private = message.visibility == common_pb2.VISIBILITY_PRIVATE
    if private and not message.platform_thread_id and message.direction == common_pb2.DIRECTION_INBOUND:
        message.platform_thread_id = direct_thread_id(
            message.channel, message.author.id, message.brand_account_id
        )
    return message


def for_log(value: str, limit: int = 64) -> str:
    """An id as a log line may show it: quoted, control and invisible characters escaped, cut to `limit`."""
    return repr(value[:limit]) + ("…" if len(value) > limit else "")
