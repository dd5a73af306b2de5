"""Erasure of a customer's replies: their text and recipient are redacted, everything else stays.

A delivery keeps its status, attempts and platform ids, so its reply_id still guards against a second post; an
outbox log line keeps its length and idempotency key, so every reader's offsets and index stay valid. Replies
still waiting to go out lose their text too, so nothing more is said to an erased customer.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from collections.abc import Collection
from pathlib import Path

from parley.config import Settings
from parley.enum_fields import unknown_enum_values
from parley.messages import CHANNEL_NAMES
from parley.rpc import InvalidArgument
from parley.store import Keys, Redis
from parley.v1 import dispatch_pb2

SCAN_BATCH = 500


def _matches(
    conversation_id: str,
    channel: str,
    recipient: str,
    conversations: Collection[str],
    recipients: Collection[tuple[str, str]],
) -> bool:
    return conversation_id in conversations or (channel, recipient) in recipients


async def erase_deliveries(
    redis: Redis, keys: Keys, conversations: Collection[str], recipients: Collection[tuple[str, str]]
) -> int:
    """Redact the reply of every delivery on `conversations` or to `recipients` ((channel name, user id));
    return how many. Reads every delivery record once (SCAN): erasure is rare, deliveries are not indexed by
    customer."""
    erased = 0
    batch: list[bytes] = []
    async for key in redis.scan_iter(
        match=keys.namespaced("dispatch", "*", "delivery", "*"), count=SCAN_BATCH
    ):
        batch.append(key)
        if len(batch) >= SCAN_BATCH:
            erased += await _redact_deliveries(redis, batch, conversations, recipients)
            batch = []
    if batch:
        erased += await _redact_deliveries(redis, batch, conversations, recipients)
    return erased


async def _redact_deliveries(
    redis: Redis, keys: list[bytes], conversations: Collection[str], recipients: Collection[tuple[str, str]]
) -> int:
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hget(key, "reply")
        raws = await pipe.execute()
    redacted: dict[bytes, bytes] = {}
    for key, raw in zip(keys, raws, strict=True):
        if not raw:
            continue
        reply = dispatch_pb2.Reply.FromString(raw)
        channel = CHANNEL_NAMES.get(reply.channel, str(reply.channel))
        exposed = reply.text or reply.recipient.ByteSize()
        if exposed and _matches(
            reply.conversation_id, channel, reply.recipient.id, conversations, recipients
        ):
            reply.text = ""
            reply.ClearField("recipient")
            redacted[key] = reply.SerializeToString()
    if redacted:
        async with redis.pipeline(transaction=False) as pipe:
            for key, raw in redacted.items():
                pipe.hset(key, "reply", raw)
            await pipe.execute()
    return len(redacted)


def erase_outbox_lines(
    path: Path, conversations: Collection[str], recipients: Collection[tuple[str, str]]
) -> int:
    """Redact, in place and under the writers' lock, the text and recipient of every outbox log line on
    `conversations` or to `recipients`; return how many. Each line keeps its length (padded with spaces, which
    JSON ignores), so the offsets other readers hold stay valid."""
    if not path.exists():
        return 0
    erased = 0
    with open(path, "r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            offset = 0
            for raw in handle.readlines():
                line = _redacted_line(raw, conversations, recipients)
                if line is not None:
                    handle.seek(offset)
                    handle.write(line)
                    handle.seek(offset + len(raw))
                    erased += 1
                offset += len(raw)
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return erased


def _redacted_line(
    raw: bytes, conversations: Collection[str], recipients: Collection[tuple[str, str]]
) -> bytes | None:
    if not raw.endswith(b"\n"):
        return None  # a line cut short by a crash is not read by anyone
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    who = (entry.get("conversation_id", ""), entry.get("channel", ""), entry.get("recipient_id", ""))
    if not _matches(*who, conversations, recipients) or not (entry.get("text") or entry.get("recipient_id")):
        return None
    entry["text"], entry["recipient_id"] = "", ""
    body = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()
    return body + b" " * (len(raw) - 1 - len(body)) + b"\n"


def validate(settings: Settings, request: dispatch_pb2.EraseRepliesRequest) -> None:
    bad = unknown_enum_values(request)
    if not request.conversation_ids and not request.recipients:
        bad.append(("conversation_ids", "name at least one conversation or recipient"))
    for i, cid in enumerate(request.conversation_ids):
        if not cid or len(cid) > settings.max_id_chars:
            bad.append((f"conversation_ids[{i}]", f"required, at most {settings.max_id_chars} characters"))
    for i, r in enumerate(request.recipients):
        if not r.id or len(r.id) > settings.max_id_chars:
            bad.append((f"recipients[{i}].id", f"required, at most {settings.max_id_chars} characters"))
    if bad:
        raise InvalidArgument(bad)


async def erase_replies(
    settings: Settings, redis: Redis, keys: Keys, request: dispatch_pb2.EraseRepliesRequest
) -> dispatch_pb2.EraseRepliesResponse:
    validate(settings, request)
    conversations = set(request.conversation_ids)
    recipients = {(CHANNEL_NAMES.get(r.channel, str(r.channel)), r.id) for r in request.recipients}
    deliveries = await erase_deliveries(redis, keys, conversations, recipients)
    lines = await asyncio.to_thread(
        erase_outbox_lines, Path(settings.dispatch_log_path), conversations, recipients
    )
    return dispatch_pb2.EraseRepliesResponse(deliveries=deliveries, outbox_lines=lines)
