"""Meta's webhook deliveries (Graph API webhooks) as inbound messages.

One endpoint receives every Meta object the app subscribes to:

- `object: page`: `changes` with field `feed` (posts and comments on the Page; public, channel facebook)
  and `messaging` events (Messenger; private).
- `object: instagram`: `changes` with field `comments` or `live_comments` (public) and `messaging` events
  (Instagram direct messages; private).
- `object: whatsapp_business_account`: `changes` with field `messages` (private).

What becomes a message, and what is left out on purpose:
- Feed: only `verb: add` of a post (`status`, `post`, `photo`, `video`, `share`) or a `comment`. Edits, hides,
  removals and reactions change nothing Parley triages: a message keeps the text it arrived with.
- A post or comment written by the Page itself (`from.id` is the Page) is the brand's outbound message; the
  same holds for an Instagram comment by the account itself.
- Messenger and Instagram echoes (`is_echo`) are the brand's outbound messages, except those sent by Parley's
  own app (`webhook_meta_app_id`): dispatch already records those replies.
- Reads, deliveries, postbacks, reactions, deleted messages and WhatsApp `statuses` (sent, delivered, read)
  carry no customer text and are counted as ignored; so are WhatsApp reactions and unsupported types.
- A direct conversation (Messenger, Instagram, WhatsApp) has the customer's id as its platform thread, so
  the brand's echoes join the customer's conversation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from parley.ingestion.webhooks.payload import (
    Parsed,
    PayloadError,
    array,
    each,
    epoch,
    ident,
    obj,
    text,
    word,
)
from parley.v1 import common_pb2

PUBLIC = common_pb2.VISIBILITY_PUBLIC
PRIVATE = common_pb2.VISIBILITY_PRIVATE
OUTBOUND = common_pb2.DIRECTION_OUTBOUND
INBOUND = common_pb2.DIRECTION_INBOUND

FEED_POST_ITEMS = frozenset({"status", "post", "photo", "video", "share"})
INSTAGRAM_COMMENT_FIELDS = frozenset({"comments", "live_comments"})
# Messenger / Instagram attachment types as Parley names them; anything else is a link to what was shared.
MESSAGING_ATTACHMENTS = {"image": "image", "video": "video", "audio": "audio", "file": "file"}
Errors = list[tuple[str, str]]
WHATSAPP_MEDIA = {
    "image": "image",
    "video": "video",
    "audio": "audio",
    "voice": "audio",
    "document": "file",
    "sticker": "sticker",
}


def parse_meta(payload: Any, own_app_id: str = "") -> Parsed:
    """Every message of one delivery, in delivery order; raise PayloadError naming each malformed part."""
    body = obj(payload, "body")
    kind = body.get("object")
    if not isinstance(kind, str) or not kind:
        raise PayloadError([("object", "must name the subscribed object (page, instagram, ...)")])
    entries = array(body.get("entry"), "entry")
    parsed = Parsed()
    errors: Errors = []
    if kind == "page":
        each(entries, "entry", lambda e, p: _page_entry(e, p, parsed, own_app_id, errors), errors)
    elif kind == "instagram":
        each(entries, "entry", lambda e, p: _instagram_entry(e, p, parsed, own_app_id, errors), errors)
    elif kind == "whatsapp_business_account":
        each(entries, "entry", lambda e, p: _whatsapp_entry(e, p, parsed, errors), errors)
    else:
        parsed.ignored += len(entries)  # an object Parley does not triage (user, permissions, ...)
    if errors:
        raise PayloadError(errors)
    return parsed


def _changes(
    entry: dict[str, Any],
    path: str,
    parse: Callable[[Any, str], None],
    errors: Errors,
    required: bool = False,
) -> None:
    each(array(entry.get("changes"), f"{path}.changes", required=required), f"{path}.changes", parse, errors)


# -- Facebook Page ------------------------------------------------------------------------------------------


def _page_entry(entry: Any, path: str, parsed: Parsed, own_app_id: str, errors: Errors) -> None:
    entry = obj(entry, path)
    page_id = ident(entry, "id", path)

    def change(change: Any, where: str) -> None:
        change = obj(change, where)
        if change.get("field") != "feed":
            parsed.ignored += 1
            return
        parsed.add(_feed(page_id, obj(change.get("value"), f"{where}.value"), f"{where}.value"))

    _changes(entry, path, change, errors)
    _messaging_events(entry, path, parsed, common_pb2.CHANNEL_MESSENGER, own_app_id, errors)


def _feed(page_id: str, value: dict[str, Any], path: str) -> common_pb2.InboundMessage | None:
    item, verb = word(value.get("item")), word(value.get("verb"))
    if verb != "add" or (item != "comment" and item not in FEED_POST_ITEMS):
        return None
    author = obj(value.get("from"), f"{path}.from")
    author_id = ident(author, "id", f"{path}.from")
    message = common_pb2.InboundMessage(
        channel=common_pb2.CHANNEL_FACEBOOK,
        visibility=PUBLIC,
        brand_account_id=page_id,
        author=common_pb2.Author(id=author_id, display_name=text(author, "name", f"{path}.from")),
        text=text(value, "message", path),
        direction=OUTBOUND if author_id == page_id else INBOUND,
    )
    if item == "comment":
        message.platform_message_id = ident(value, "comment_id", path)
        # A comment answers its parent: the post itself, or the comment it replies to.
        message.in_reply_to_id = ident(value, "parent_id", path, required=False) or ident(
            value, "post_id", path
        )
        for key, kind in (("photo", "image"), ("video", "video")):
            url = text(value, key, path)
            if url:
                message.attachments.add(type=kind, url=url)
    else:
        message.platform_message_id = ident(value, "post_id", path)
        link = text(value, "link", path)
        if item == "photo":
            message.attachments.add(type="image", url=link, platform_id=ident(value, "photo_id", path, False))
        elif item == "video":
            message.attachments.add(type="video", url=link, platform_id=ident(value, "video_id", path, False))
        elif link:
            message.attachments.add(type="link", url=link)
        for i, url in enumerate(array(value.get("photos"), f"{path}.photos", required=False)):
            if not isinstance(url, str):
                raise PayloadError([(f"{path}.photos[{i}]", "must be a URL string")])
            message.attachments.add(type="image", url=url)
    sent_at = epoch(value, "created_time", path, required=False)
    if sent_at is not None:
        message.sent_at.CopyFrom(sent_at)
    return message


# -- Messenger and Instagram direct messages ---------------------------------------------------------------


def _messaging_events(
    entry: dict[str, Any],
    path: str,
    parsed: Parsed,
    channel: common_pb2.Channel,
    own_app_id: str,
    errors: Errors,
) -> None:
    events = array(entry.get("messaging"), f"{path}.messaging", required=False)
    for message in each(
        events, f"{path}.messaging", lambda e, p: _messaging(channel, e, p, own_app_id), errors
    ):
        parsed.add(message)


def _messaging(
    channel: common_pb2.Channel, event: Any, path: str, own_app_id: str
) -> common_pb2.InboundMessage | None:
    event = obj(event, path)
    if "message" not in event:
        return None  # a read, delivery, postback, reaction, referral or handover: nothing to triage
    body = obj(event.get("message"), f"{path}.message")
    if body.get("is_deleted"):
        return None
    echo = bool(body.get("is_echo"))
    if echo and own_app_id and str(body.get("app_id", "")) == own_app_id:
        return None  # Parley's own reply: dispatch has it already
    sender = ident(obj(event.get("sender"), f"{path}.sender"), "id", f"{path}.sender")
    recipient = ident(obj(event.get("recipient"), f"{path}.recipient"), "id", f"{path}.recipient")
    customer, brand = (recipient, sender) if echo else (sender, recipient)
    message = common_pb2.InboundMessage(
        channel=channel,
        visibility=PRIVATE,
        platform_message_id=ident(body, "mid", f"{path}.message"),
        brand_account_id=brand,
        author=common_pb2.Author(id=sender),
        text=text(body, "text", f"{path}.message"),
        direction=OUTBOUND if echo else INBOUND,
        platform_thread_id=customer,
    )
    reply_to = body.get("reply_to")
    if reply_to is not None:
        # A reply to a story has no message id to point at: the story is kept as a link instead.
        reply_to = obj(reply_to, f"{path}.message.reply_to")
        message.in_reply_to_id = ident(reply_to, "mid", f"{path}.message.reply_to", required=False)
        story = reply_to.get("story")
        if isinstance(story, dict) and story.get("url"):
            message.attachments.add(type="link", url=str(story["url"]), platform_id=str(story.get("id", "")))
    attachments = array(body.get("attachments"), f"{path}.message.attachments", required=False)
    for i, attachment in enumerate(attachments):
        _messaging_attachment(message, obj(attachment, f"{path}.message.attachments[{i}]"))
    sent_at = epoch(event, "timestamp", path, required=False)
    if sent_at is not None:
        message.sent_at.CopyFrom(sent_at)
    return message


def _messaging_attachment(message: common_pb2.InboundMessage, attachment: dict[str, Any]) -> None:
    kind = str(attachment.get("type", ""))
    payload = attachment.get("payload")
    payload = payload if isinstance(payload, dict) else {}
    url = str(payload.get("url") or attachment.get("url") or "")
    if kind == "location":
        coordinates = payload.get("coordinates")
        if isinstance(coordinates, dict):
            url = f"geo:{coordinates.get('lat')},{coordinates.get('long')}"
        message.attachments.add(type="location", url=url)
    elif payload.get("sticker_id"):
        message.attachments.add(type="sticker", url=url, platform_id=str(payload["sticker_id"]))
    else:
        message.attachments.add(type=MESSAGING_ATTACHMENTS.get(kind, "link"), url=url)


# -- Instagram ----------------------------------------------------------------------------------------------


def _instagram_entry(entry: Any, path: str, parsed: Parsed, own_app_id: str, errors: Errors) -> None:
    entry = obj(entry, path)
    account_id = ident(entry, "id", path)

    def change(change: Any, where: str) -> None:
        change = obj(change, where)
        if word(change.get("field")) not in INSTAGRAM_COMMENT_FIELDS:
            parsed.ignored += 1  # mentions, story insights, ...
            return
        value = obj(change.get("value"), f"{where}.value")
        parsed.add(_instagram_comment(account_id, entry, value, f"{where}.value", path))

    _changes(entry, path, change, errors)
    _messaging_events(entry, path, parsed, common_pb2.CHANNEL_INSTAGRAM, own_app_id, errors)


def _instagram_comment(
    account_id: str, entry: dict[str, Any], value: dict[str, Any], path: str, entry_path: str
) -> common_pb2.InboundMessage:
    author = obj(value.get("from"), f"{path}.from")
    author_id = ident(author, "id", f"{path}.from")
    media = obj(value.get("media"), f"{path}.media")
    message = common_pb2.InboundMessage(
        channel=common_pb2.CHANNEL_INSTAGRAM,
        visibility=PUBLIC,
        platform_message_id=ident(value, "id", path),
        # A reply to a comment names it; a top-level comment answers the post (the media) itself.
        in_reply_to_id=ident(value, "parent_id", path, required=False) or ident(media, "id", f"{path}.media"),
        brand_account_id=account_id,
        author=common_pb2.Author(id=author_id, handle=text(author, "username", f"{path}.from")),
        text=text(value, "text", path),
        direction=OUTBOUND if author_id == account_id else INBOUND,
    )
    # A comment carries no time of its own: the notification's time is the closest there is.
    sent_at = epoch(entry, "time", entry_path, required=False)
    if sent_at is not None:
        message.sent_at.CopyFrom(sent_at)
    return message


# -- WhatsApp Cloud API -------------------------------------------------------------------------------------


def _whatsapp_entry(entry: Any, path: str, parsed: Parsed, errors: Errors) -> None:
    entry = obj(entry, path)
    _changes(entry, path, lambda c, p: _whatsapp_change(c, p, parsed, errors), errors, required=True)


def _whatsapp_change(change: Any, path: str, parsed: Parsed, errors: Errors) -> None:
    change = obj(change, path)
    if change.get("field") != "messages":
        parsed.ignored += 1  # template, quality and account updates
        return
    path = f"{path}.value"
    value = obj(change.get("value"), path)
    phone_number_id = ident(
        obj(value.get("metadata"), f"{path}.metadata"), "phone_number_id", f"{path}.metadata"
    )
    names: dict[str, str] = {}
    for j, contact in enumerate(array(value.get("contacts"), f"{path}.contacts", required=False)):
        contact = obj(contact, f"{path}.contacts[{j}]")
        profile = contact.get("profile")
        if isinstance(profile, dict):
            names[ident(contact, "wa_id", f"{path}.contacts[{j}]")] = str(profile.get("name", ""))
    parsed.ignored += len(array(value.get("statuses"), f"{path}.statuses", required=False))
    items = array(value.get("messages"), f"{path}.messages", required=False)
    parse = lambda item, where: _whatsapp_message(phone_number_id, names, item, where)  # noqa: E731
    for message in each(items, f"{path}.messages", parse, errors):
        parsed.add(message)


def _whatsapp_message(
    phone_number_id: str, names: dict[str, str], item: Any, path: str
) -> common_pb2.InboundMessage | None:
    item = obj(item, path)
    sender = ident(item, "from", path)
    message = common_pb2.InboundMessage(
        channel=common_pb2.CHANNEL_WHATSAPP,
        visibility=PRIVATE,
        platform_message_id=ident(item, "id", path),
        brand_account_id=phone_number_id,
        author=common_pb2.Author(id=sender, handle=sender, display_name=names.get(sender, "")),
        platform_thread_id=sender,
    )
    sent_at = epoch(item, "timestamp", path)
    assert sent_at is not None
    message.sent_at.CopyFrom(sent_at)
    context = item.get("context")
    if isinstance(context, dict):
        message.in_reply_to_id = ident(context, "id", f"{path}.context", required=False)
    kind = word(item.get("type"))
    part = item.get(kind)
    if kind == "text":
        message.text = text(obj(part, f"{path}.text"), "body", f"{path}.text")
    elif kind in WHATSAPP_MEDIA:
        media = obj(part, f"{path}.{kind}")
        message.attachments.add(
            type=WHATSAPP_MEDIA[kind],
            mime_type=text(media, "mime_type", f"{path}.{kind}"),
            platform_id=ident(media, "id", f"{path}.{kind}"),
        )
        message.text = text(media, "caption", f"{path}.{kind}")
    elif kind == "location":
        place = obj(part, f"{path}.location")
        message.attachments.add(type="location", url=f"geo:{place.get('latitude')},{place.get('longitude')}")
        message.text = ", ".join(str(place[k]) for k in ("name", "address") if place.get(k))
    elif kind == "button":
        message.text = text(obj(part, f"{path}.button"), "text", f"{path}.button")
    elif kind == "interactive":
        answer = obj(part, f"{path}.interactive")
        chosen = answer.get("button_reply") or answer.get("list_reply") or {}
        message.text = str(chosen.get("title", "")) if isinstance(chosen, dict) else ""
    else:
        return None  # reactions, unsupported, system notices, orders: no text to triage
    return message
