"""The outbox in Redis: key names, the Lua scripts that keep each step atomic, and delivery records.

A reply lives in partition `crc32(reply_id) % dispatch_partitions`. Every key of a partition carries the hash
tag `{d<partition>}`, so the scripts below (delivery hash + outbox stream + retry set + dead-letter list) each
stay inside one hash slot:

    <prefix>:dispatch:{d3}:outbox             stream of {reply_id}, read by the consumer group "dispatch"
    <prefix>:dispatch:{d3}:delivery:<reply>   hash: the Reply proto, status, attempts, error, ids, times,
                                              and per-part progress ("start:<i>", "part:<i>")
    <prefix>:dispatch:{d3}:retries            sorted set: reply_id scored by when to try again
    <prefix>:dispatch:{d3}:dead               list of JSON {reply_id, error, attempts, at}
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from parley.clock import to_timestamp
from parley.store import Keys
from parley.v1 import dispatch_pb2

GROUP = "dispatch"

PENDING = dispatch_pb2.DELIVERY_STATUS_PENDING
SENT = dispatch_pb2.DELIVERY_STATUS_SENT
RETRYING = dispatch_pb2.DELIVERY_STATUS_RETRYING
DEAD_LETTER = dispatch_pb2.DELIVERY_STATUS_DEAD_LETTER
BLOCKED = dispatch_pb2.DELIVERY_STATUS_BLOCKED

# The delivery hash fields a Delivery is built from, in this order (the Reply itself is field "reply").
FIELDS = (
    "status",
    "attempts",
    "error",
    "created_at",
    "updated_at",
    "ids",
    "channel",
    "visibility",
    "private_reply_id",
)


@dataclass(frozen=True)
class DispatchKeys:
    keys: Keys
    partitions: int

    def partition(self, reply_id: str) -> int:
        return zlib.crc32(reply_id.encode()) % self.partitions

    def outbox(self, partition: int) -> str:
        return self.keys.namespaced("dispatch", f"{{d{partition}}}", "outbox")

    def delivery(self, partition: int, reply_id: str) -> str:
        return self.keys.namespaced("dispatch", f"{{d{partition}}}", "delivery", reply_id)

    def retries(self, partition: int) -> str:
        return self.keys.namespaced("dispatch", f"{{d{partition}}}", "retries")

    def dead(self, partition: int) -> str:
        return self.keys.namespaced("dispatch", f"{{d{partition}}}", "dead")


_TERMINAL = f"s == '{SENT}' or s == '{DEAD_LETTER}' or s == '{BLOCKED}'"

# Create the delivery and queue it, unless the reply_id is known: then return the existing record.
# KEYS: delivery, outbox. ARGV: reply_id, reply bytes, status, error, now, channel, visibility, retention,
# private reply id.
ENQUEUE = f"""
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {{0, redis.call('HMGET', KEYS[1], {", ".join(repr(f) for f in FIELDS)})}}
end
redis.call('HSET', KEYS[1], 'reply', ARGV[2], 'status', ARGV[3], 'attempts', '0', 'error', ARGV[4],
  'created_at', ARGV[5], 'updated_at', ARGV[5], 'channel', ARGV[6], 'visibility', ARGV[7], 'ids', '[]',
  'private_reply_id', ARGV[9])
if ARGV[3] == '{PENDING}' then
  redis.call('XADD', KEYS[2], '*', 'reply_id', ARGV[1])
else
  redis.call('EXPIRE', KEYS[1], ARGV[8])
end
return {{1}}
"""

# Start an attempt: refuse a finished delivery, give up past the attempt limit, else count the attempt.
# KEYS: delivery. ARGV: now, max attempts.
# Returns {'missing'} | {'done'} | {'exhausted', n, reply} | {'go', n, reply}.
BEGIN = f"""
local v = redis.call('HMGET', KEYS[1], 'status', 'attempts', 'reply')
local s = v[1]
if not s then return {{'missing'}} end
if {_TERMINAL} then return {{'done'}} end
if tonumber(v[2]) >= tonumber(ARGV[2]) then return {{'exhausted', v[2], v[3]}} end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'updated_at', ARGV[1])
return {{'go', n, v[3]}}
"""

# Record an attempt's outcome, then ack and drop the stream entry (one consumer group: nothing else needs it).
# KEYS: delivery, outbox, retries, dead. ARGV: kind (sent|retry|dead|blocked|ack), entry id, group, now,
# reply_id, ids JSON or error, retry due time, retention, dead-letter JSON. Returns the kind applied.
OUTCOME = f"""
local s = redis.call('HGET', KEYS[1], 'status')
local kind = ARGV[1]
if not s or (s == '{SENT}' and kind ~= 'sent') then kind = 'ack' end
if kind == 'sent' then
  redis.call('HSET', KEYS[1], 'status', '{SENT}', 'ids', ARGV[6], 'error', '', 'updated_at', ARGV[4],
    'next_attempt_at', '')
  redis.call('EXPIRE', KEYS[1], ARGV[8])
elseif kind == 'retry' then
  redis.call('HSET', KEYS[1], 'status', '{RETRYING}', 'error', ARGV[6], 'updated_at', ARGV[4],
    'next_attempt_at', ARGV[7])
  redis.call('ZADD', KEYS[3], ARGV[7], ARGV[5])
elseif kind == 'dead' then
  redis.call('HSET', KEYS[1], 'status', '{DEAD_LETTER}', 'error', ARGV[6], 'updated_at', ARGV[4],
    'next_attempt_at', '')
  redis.call('RPUSH', KEYS[4], ARGV[9])
  redis.call('EXPIRE', KEYS[1], ARGV[8])
elseif kind == 'blocked' then
  redis.call('HSET', KEYS[1], 'status', '{BLOCKED}', 'error', ARGV[6], 'updated_at', ARGV[4],
    'next_attempt_at', '')
  redis.call('EXPIRE', KEYS[1], ARGV[8])
end
redis.call('XACK', KEYS[2], ARGV[3], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
return kind
"""

# Move retries that are due back onto the outbox stream.
# KEYS: retries, outbox. ARGV: now, limit. Returns how many moved.
PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('XADD', KEYS[2], '*', 'reply_id', id)
end
return #due
"""

SCRIPTS = {"enqueue": ENQUEUE, "begin": BEGIN, "outcome": OUTCOME, "promote": PROMOTE}


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def delivery_from_fields(reply_id: str, values: Sequence[bytes | str | None]) -> dispatch_pb2.Delivery:
    """A Delivery from the FIELDS values of a delivery hash."""
    record = dict(zip(FIELDS, (_text(v) for v in values), strict=True))
    return dispatch_pb2.Delivery(
        reply_id=reply_id,
        status=int(record["status"] or 0),  # type: ignore[arg-type]
        platform_message_ids=json.loads(record["ids"] or "[]"),
        attempts=int(record["attempts"] or 0),
        error=record["error"],
        created_at=to_timestamp(float(record["created_at"] or 0)),
        updated_at=to_timestamp(float(record["updated_at"] or 0)),
        channel=int(record["channel"] or 0),  # type: ignore[arg-type]
        visibility=int(record["visibility"] or 0),  # type: ignore[arg-type]
        private_reply_id=record["private_reply_id"],
    )


class RedisPartProgress:
    """Per-part progress of one reply, in its delivery hash (so it expires with the delivery).

    Marking a part started also renews this loop's claim on the stream entry (XCLAIM JUSTID resets its idle
    time): each network call ends within the request timeout, below claim_idle_ms, so while a thread is
    being posted no other loop re-claims it.
    """

    def __init__(self, redis: Any, delivery_key: str, claim: tuple[str, str, str, str] | None = None) -> None:
        self.redis = redis
        self.key = delivery_key
        self.claim = claim  # (outbox stream, group, consumer, entry id); all in the delivery's slot

    async def load(self) -> tuple[dict[int, str], set[int]]:
        fields = await self.redis.hgetall(self.key)
        posted: dict[int, str] = {}
        started: set[int] = set()
        for raw_name, raw_value in fields.items():
            name = _text(raw_name)
            kind, _, index = name.partition(":")
            if kind == "part" and index.isdigit():
                posted[int(index)] = _text(raw_value)
            elif kind == "start" and index.isdigit():
                started.add(int(index))
        return posted, started - set(posted)

    async def started(self, index: int) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.key, f"start:{index}", "1")
            if self.claim is not None:
                stream, group, consumer, entry_id = self.claim
                pipe.xclaim(stream, group, consumer, 0, [entry_id], justid=True)
            await pipe.execute()

    async def posted(self, index: int, platform_id: str) -> None:
        await self.redis.hset(self.key, f"part:{index}", platform_id)

    async def failed(self, index: int) -> None:
        await self.redis.hdel(self.key, f"start:{index}")
