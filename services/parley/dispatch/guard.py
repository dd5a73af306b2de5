"""The public-PII guard and the customer-service window: pure decisions on one reply.

The guard never lets a public reply name the customer's email, phone, payment card, order or account number
or address, however it is spelled (`parley.dispatch.pii`). Policy "block" refuses such a reply; "move" posts
a short public invitation instead and sends the full text privately, in the same conversation, as a second
delivery `<reply_id>/private`. Refusals name the entity types, never their values.

Messenger, Instagram DMs and WhatsApp take a free-form reply only within 24 hours of the customer's last
message (a private reply to a Facebook or Instagram comment: within 7 days of it). Past that, a configured
WhatsApp template or Messenger/Instagram message tag is used, or the reply is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

from parley.clock import from_timestamp
from parley.config import Settings
from parley.dispatch import pii
from parley.dispatch.pii import SENSITIVE
from parley.dispatch.rules import Refusal
from parley.v1 import common_pb2, dispatch_pb2

__all__ = ["SENSITIVE", "Guarded", "guard", "sensitive_types", "window"]

PRIVATE_SUFFIX = "/private"

PRIVATE_REPLY_WINDOW_HOURS = 7 * 24.0

PUBLIC = common_pb2.VISIBILITY_PUBLIC
PRIVATE = common_pb2.VISIBILITY_PRIVATE


def sensitive_types(text: str, settings: Settings | None = None) -> list[str]:
    """The sensitive entity types in `text`, each once, in SENSITIVE order."""
    return pii.sensitive_types(text, _phone_regions(settings or _default_settings()))


@cache
def _default_settings() -> Settings:
    return Settings()


def _phone_regions(settings: Settings) -> tuple[str, ...]:
    return tuple(r.strip().upper() for r in settings.dispatch_pii_phone_regions.split(",") if r.strip())


@dataclass(frozen=True)
class Guarded:
    """What the guard makes of one reply: the reply to queue, and a private one when the detail moved."""

    reply: dispatch_pb2.Reply
    refusal: Refusal | None = None
    private: dispatch_pb2.Reply | None = None
    entity_types: tuple[str, ...] = ()


def guard(reply: dispatch_pb2.Reply, settings: Settings) -> Guarded:
    """Apply the public-PII policy to `reply` (private replies pass untouched)."""
    if reply.visibility != PUBLIC:
        return Guarded(reply)
    types = tuple(sensitive_types(reply.text, settings))
    if not types:
        return Guarded(reply)
    named = ", ".join(types)
    if settings.dispatch_public_pii_policy != "move":
        return Guarded(reply, Refusal(f"public reply would expose the customer's {named}"), None, types)
    private = private_counterpart(reply)
    if private is None:
        reason = f"public reply would expose the customer's {named}, and there is no private way to send it"
        return Guarded(reply, Refusal(reason), None, types)
    public = dispatch_pb2.Reply()
    public.CopyFrom(reply)
    public.text = settings.dispatch_move_to_private_text
    return Guarded(public, None, private, types)


def private_counterpart(reply: dispatch_pb2.Reply) -> dispatch_pb2.Reply | None:
    """The same reply sent privately to the same person: an X DM, or a private reply to the comment."""
    private = dispatch_pb2.Reply()
    private.CopyFrom(reply)
    private.reply_id = reply.reply_id + PRIVATE_SUFFIX
    private.visibility = PRIVATE
    # The public thread id is a post or conversation of posts, not a DM conversation.
    private.platform_thread_id = ""
    if reply.channel == common_pb2.CHANNEL_X:
        return private if reply.recipient.id else None
    if reply.channel in (common_pb2.CHANNEL_FACEBOOK, common_pb2.CHANNEL_INSTAGRAM):
        private.private_reply_comment_id = reply.in_reply_to_id
        return private if reply.in_reply_to_id else None
    return None


WindowMode = Literal["open", "template", "tag"]


def window(reply: dispatch_pb2.Reply, now: float, settings: Settings) -> WindowMode | Refusal:
    """Whether `reply` may go out now as free text ("open"), only as a template or tagged message, or not."""
    hours, alternative = _window_rule(reply, settings)
    last = from_timestamp(reply.customer_last_message_at)
    if hours is None or last <= 0:
        return "open"  # no window on this channel, or unknown (unset or zero): the network decides
    age = (now - last) / 3600
    if age <= hours:
        return "open"
    if alternative is not None:
        return alternative
    what = "private-reply" if hours == PRIVATE_REPLY_WINDOW_HOURS else "customer-service"
    return Refusal(
        f"outside the {hours:g}-hour {what} window: the customer last wrote {age:.1f} hours ago"
        " and no approved template or message tag is configured"
    )


def _window_rule(reply: dispatch_pb2.Reply, settings: Settings) -> tuple[float | None, WindowMode | None]:
    """(window length in hours or None, the configured way out of it or None)."""
    tag: WindowMode | None = "tag" if settings.dispatch_messenger_message_tag else None
    if reply.channel == common_pb2.CHANNEL_WHATSAPP:
        return settings.dispatch_window_hours, "template" if settings.dispatch_whatsapp_template else None
    if reply.channel == common_pb2.CHANNEL_MESSENGER:
        return settings.dispatch_window_hours, tag
    if (
        reply.channel in (common_pb2.CHANNEL_FACEBOOK, common_pb2.CHANNEL_INSTAGRAM)
        and reply.visibility == PRIVATE
    ):
        if reply.private_reply_comment_id or reply.channel == common_pb2.CHANNEL_FACEBOOK:
            return PRIVATE_REPLY_WINDOW_HOURS, None
        return settings.dispatch_window_hours, tag
    return None, None
