"""Checks on a SendReply batch, with the field path of every violation."""

from __future__ import annotations

from collections.abc import Sequence

from parley.config import Settings
from parley.dispatch.guard import PRIVATE_SUFFIX
from parley.dispatch.rules import LIMITS
from parley.messages import CHANNEL_NAMES
from parley.rpc import InvalidArgument
from parley.v1 import common_pb2, dispatch_pb2


def validate_replies(settings: Settings, replies: Sequence[dispatch_pb2.Reply]) -> None:
    """Raise InvalidArgument naming every bad field of the batch (nothing is queued then)."""
    violations: list[tuple[str, str]] = []
    if not replies:
        violations.append(("replies", "at least one reply is required"))
    if len(replies) > settings.max_batch:
        violations.append(("replies", f"at most {settings.max_batch} replies per call, got {len(replies)}"))
    for i, reply in enumerate(replies[: settings.max_batch]):
        violations.extend((f"replies[{i}].{f}", d) for f, d in _reply_violations(settings, reply))
    if violations:
        raise InvalidArgument(violations)


def _reply_violations(settings: Settings, reply: dispatch_pb2.Reply) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    limit = settings.max_id_chars
    if not reply.reply_id:
        out.append(("reply_id", "required"))
    elif len(reply.reply_id) > limit - len(PRIVATE_SUFFIX):
        out.append(("reply_id", f"at most {limit - len(PRIVATE_SUFFIX)} characters"))
    elif reply.reply_id.endswith(PRIVATE_SUFFIX):
        # Reserved for the private half of a reply the PII guard moves.
        out.append(("reply_id", f"must not end with {PRIVATE_SUFFIX!r}"))
    for name in ("conversation_id", "in_reply_to_id", "brand_account_id", "platform_thread_id", "sent_by"):
        if len(getattr(reply, name)) > limit:
            out.append((name, f"at most {limit} characters"))
    if not reply.text.strip():
        out.append(("text", "required (not only whitespace)"))
    elif len(reply.text) > settings.max_text_chars:
        out.append(("text", f"at most {settings.max_text_chars} characters, got {len(reply.text)}"))
    if reply.channel not in CHANNEL_NAMES:
        out.append(("channel", "a known channel is required"))
        return out
    channel_name = CHANNEL_NAMES[reply.channel]
    if reply.visibility not in (common_pb2.VISIBILITY_PUBLIC, common_pb2.VISIBILITY_PRIVATE):
        out.append(("visibility", "public or private is required"))
        return out
    if (reply.channel, reply.visibility) not in LIMITS:
        out.append(("visibility", f"{channel_name} replies are private only"))
        return out
    # A public reply answers a post or comment; a private one goes to a person or an existing thread.
    if reply.visibility == common_pb2.VISIBILITY_PUBLIC and not reply.in_reply_to_id:
        out.append(("in_reply_to_id", f"a public {channel_name} reply needs the platform id it answers"))
    has_recipient = bool(reply.recipient.id or reply.platform_thread_id)
    if reply.visibility == common_pb2.VISIBILITY_PRIVATE and not has_recipient:
        out.append(("recipient.id", f"a private {channel_name} reply needs a recipient id or thread id"))
    return out
