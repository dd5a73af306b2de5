"""X Account Activity API deliveries as inbound messages.

Each delivery is for one subscribed account (`for_user_id`, the brand account) and carries arrays of events.
- `tweet_create_events`: public posts that mention, reply to or quote the account, and the account's own
  posts. The account's own posts are its outbound messages. Retweets are left out: they repeat a post, they
  do not say anything to the brand. `extended_tweet.full_text` is the text when the post was truncated.
- `direct_message_events` of `type: message_create`: private. A DM sent by the account is outbound. Account
  Activity does not name the DM conversation, so the thread is the one-to-one conversation id X itself uses
  (the two user ids, lower first, joined by "-").
- Every other event (likes, follows, deletes, typing and read indicators, ...) is counted as ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from parley.clock import to_timestamp
from parley.ingestion.intake import direct_thread_id
from parley.ingestion.webhooks.payload import Parsed, PayloadError, array, each, epoch, ident, obj, text
from parley.v1 import common_pb2

X_MEDIA = {"photo": "image", "video": "video", "animated_gif": "video"}
CREATED_AT = "%a %b %d %H:%M:%S %z %Y"  # "Wed Nov 15 22:13:20 +0000 2023"
MESSAGE_ARRAYS = ("tweet_create_events", "direct_message_events")


def parse_x(payload: Any) -> Parsed:
    """Every message of one delivery, in delivery order; raise PayloadError naming each malformed part."""
    body = obj(payload, "body")
    brand = ident(body, "for_user_id", "")
    users = body.get("users")
    users = users if isinstance(users, dict) else {}
    parsed = Parsed()
    errors: list[tuple[str, str]] = []
    tweets = array(body.get("tweet_create_events"), "tweet_create_events", required=False)
    for message in each(tweets, "tweet_create_events", lambda t, p: _tweet(brand, t, p), errors):
        parsed.add(message)
    dms = array(body.get("direct_message_events"), "direct_message_events", required=False)
    for message in each(
        dms, "direct_message_events", lambda d, p: _direct_message(brand, users, d, p), errors
    ):
        parsed.add(message)
    for key, value in body.items():
        if key.endswith("_events") and key not in MESSAGE_ARRAYS and isinstance(value, list):
            parsed.ignored += len(value)
    if errors:
        raise PayloadError(errors)
    return parsed


def _tweet(brand: str, tweet: Any, path: str) -> common_pb2.InboundMessage | None:
    tweet = obj(tweet, path)
    if "retweeted_status" in tweet:
        return None
    user = obj(tweet.get("user"), f"{path}.user")
    author_id = ident(user, "id_str", f"{path}.user")
    extended = tweet.get("extended_tweet")
    extended = extended if isinstance(extended, dict) else {}
    message = common_pb2.InboundMessage(
        channel=common_pb2.CHANNEL_X,
        visibility=common_pb2.VISIBILITY_PUBLIC,
        platform_message_id=ident(tweet, "id_str", path),
        in_reply_to_id=ident(tweet, "in_reply_to_status_id_str", path, required=False),
        brand_account_id=brand,
        author=_author(user, f"{path}.user"),
        text=text(extended, "full_text", f"{path}.extended_tweet") or text(tweet, "text", path),
        direction=common_pb2.DIRECTION_OUTBOUND if author_id == brand else common_pb2.DIRECTION_INBOUND,
    )
    entities = extended.get("extended_entities") or tweet.get("extended_entities") or tweet.get("entities")
    media = entities.get("media") if isinstance(entities, dict) else None
    for item in media if isinstance(media, list) else []:
        if isinstance(item, dict):
            message.attachments.add(
                type=X_MEDIA.get(str(item.get("type")), "image"),
                url=str(item.get("media_url_https", "")),
                platform_id=str(item.get("id_str", "")),
            )
    sent_at = epoch(tweet, "timestamp_ms", path, required=False)
    if sent_at is None:
        created = text(tweet, "created_at", path)
        try:
            sent_at = to_timestamp(datetime.strptime(created, CREATED_AT).timestamp()) if created else None
        except ValueError:
            raise PayloadError(
                [(f"{path}.created_at", 'must look like "Wed Nov 15 22:13:20 +0000 2023"')]
            ) from None
    if sent_at is not None:
        message.sent_at.CopyFrom(sent_at)
    return message


def _author(user: dict[str, Any], path: str) -> common_pb2.Author:
    followers = user.get("followers_count", 0)
    return common_pb2.Author(
        id=ident(user, "id_str", path, required=False) or ident(user, "id", path),
        handle=text(user, "screen_name", path),
        display_name=text(user, "name", path),
        follower_count=followers if type(followers) is int and 0 <= followers < 2**63 else 0,
        verified=user.get("verified") is True,
    )


def _direct_message(
    brand: str, users: dict[str, Any], event: Any, path: str
) -> common_pb2.InboundMessage | None:
    event = obj(event, path)
    if event.get("type") != "message_create":
        return None
    create = obj(event.get("message_create"), f"{path}.message_create")
    sender = ident(create, "sender_id", f"{path}.message_create")
    target = obj(create.get("target"), f"{path}.message_create.target")
    recipient = ident(target, "recipient_id", f"{path}.message_create.target")
    data = obj(create.get("message_data"), f"{path}.message_create.message_data")
    profile = users.get(sender)
    author = (
        _author(profile, f"users.{sender}") if isinstance(profile, dict) else common_pb2.Author(id=sender)
    )
    message = common_pb2.InboundMessage(
        channel=common_pb2.CHANNEL_X,
        visibility=common_pb2.VISIBILITY_PRIVATE,
        platform_message_id=ident(event, "id", path),
        brand_account_id=brand,
        author=author,
        text=text(data, "text", f"{path}.message_create.message_data"),
        direction=common_pb2.DIRECTION_OUTBOUND if sender == brand else common_pb2.DIRECTION_INBOUND,
        platform_thread_id=direct_thread_id(common_pb2.CHANNEL_X, sender, recipient),
    )
    if message.author.id != sender:
        raise PayloadError([(f"users.{sender}.id", "does not match the sender of " + path)])
    attachment = data.get("attachment")
    media = attachment.get("media") if isinstance(attachment, dict) else None
    if isinstance(media, dict):
        message.attachments.add(
            type=X_MEDIA.get(str(media.get("type")), "image"),
            url=str(media.get("media_url_https", "")),
            platform_id=str(media.get("id_str", "")),
        )
    sent_at = epoch(event, "created_timestamp", path, required=False)
    if sent_at is not None:
        message.sent_at.CopyFrom(sent_at)
    return message
