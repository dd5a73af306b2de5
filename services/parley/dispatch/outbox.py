"""The outbox in Redis: key names, the Lua scripts that keep each step atomic (the `.lua` files beside this
module), and delivery records.

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

from parley import lua
from parley.clock import to_timestamp
from parley.store import Keys, Redis, Replicas
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


SCRIPTS = ("enqueue", "begin", "outcome", "promote")


def register_scripts(redis: Redis) -> dict[str, lua.Script]:
    """The outbox's scripts (the `.lua` files beside this module), with the delivery statuses filled in."""
    constants = {
        "FIELDS": ", ".join(repr(f) for f in FIELDS),
        "PENDING": PENDING,
        "SENT": SENT,
        "RETRYING": RETRYING,
        "DEAD_LETTER": DEAD_LETTER,
        "BLOCKED": BLOCKED,
    }
    return {name: lua.register(redis, "parley.dispatch", name, **constants) for name in SCRIPTS}


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def delivery_from_fields(reply_id: str, values: Sequence[bytes | str | None]) -> dispatch_pb2.Delivery:
    """A Delivery from the FIELDS values of a delivery hash."""
    record = dict(zip(FIELDS, (_text(v) for v in values), strict=True))
    # The enum fields take the stored numbers as they are; protoc's stubs accept only the enum's own values.
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

    def __init__(
        self,
        redis: Any,
        delivery_key: str,
        claim: tuple[str, str, str, str] | None = None,
        replicas: Replicas | None = None,
        attempt: int = 1,
    ) -> None:
        self.redis = redis
        self.key = delivery_key
        self.attempt = attempt
        self.claim = claim  # (outbox stream, group, consumer, entry id); all in the delivery's slot
        # On a cluster, each mark is on a replica before the network is called (or the next part): a failover
        # must not take back "started" (the part would be posted again) nor "posted".
        self.replicas = replicas

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
        if self.replicas is not None:
            await self.replicas.confirm()

    async def posted(self, index: int, platform_id: str) -> None:
        await self.redis.hset(self.key, f"part:{index}", platform_id)
        if self.replicas is not None:
            await self.replicas.confirm()

    async def failed(self, index: int) -> None:
        await self.redis.hdel(self.key, f"start:{index}")
