"""The durable inbound log: de-duplicated appends on the write side, a consumer group on the read side.

The log is `settings.stream_partitions` Redis streams. A message goes to the partition chosen by its Parley
id (channel and platform message id) and nothing else, so every copy of it lands where its first copy did,
whatever brand account or author a delivery names (X sends one copy per subscribed account): its
de-duplication mark lives in that partition's hash slot, and one Lua script sets the mark and appends the
entry together. A crash can therefore never leave a mark without its entry (a message refused as a duplicate
that was never logged). Order between messages is not the partitions' job: threading orders by send time.

Workers read through one consumer group; an entry stays pending until acked, is re-claimed by another worker
once idle long enough, and is deleted when acked (its de-duplication mark keeps living for `dedupe_ttl`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from parley import events, lua
from parley.config import Settings
from parley.messages import CHANNEL_NAMES
from parley.store import Keys, Redis
from parley.telemetry import tracing
from parley.v1 import common_pb2, ingestion_pb2

ACCEPTED = ingestion_pb2.INGEST_STATUS_ACCEPTED
DUPLICATE = ingestion_pb2.INGEST_STATUS_DUPLICATE
# On a cluster each partition is read on its own; no read blocks longer than this, so entries that arrived on
# one partition wait at most this long for the reads of the others.
READ_SLICE_MS = 50


@dataclass(frozen=True)
class LogEntry:
    """One entry of the inbound log as a worker sees it."""

    partition: int
    entry_id: str
    message: common_pb2.InboundMessage
    # The trace of the call that accepted the message (W3C traceparent), so the worker continues it.
    traceparent: str = ""


class InboundLog:
    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        keys: Keys,
        group: str = "workers",
        read_each_partition: bool | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.group = group
        # A cluster refuses one XREADGROUP over streams in different slots, so there each partition gets
        # its own concurrent read.
        self.read_each_partition = settings.redis_cluster or bool(read_each_partition)
        self._streams = [keys.inbound_stream(p) for p in range(settings.stream_partitions)]
        self._partition_by_stream = {name.encode(): p for p, name in enumerate(self._streams)}
        self._append = lua.register(redis, "parley.ingestion", "append")

    def partition_of(self, message: common_pb2.InboundMessage) -> int:
        return zlib.crc32(message.message_id.encode()) % self.settings.stream_partitions

    # -- write side ---------------------------------------------------------------------------------------

    async def append(self, messages: Sequence[common_pb2.InboundMessage]) -> list[int]:
        """Log each normalized message unless seen before; one IngestStatus per message, in order.

        All appends of the batch go in one pipelined round trip; the `message.accepted` events follow in a
        second one, since which messages were accepted is only known then (and the event stream lives in
        another hash slot than the partitions, so the script cannot write it). Should that second step fail,
        the caller sees an error and its retry reports DUPLICATE: the messages are logged, only their events
        are missing.
        """
        statuses = [DUPLICATE] * len(messages)
        calls: list[tuple[int, common_pb2.InboundMessage, int]] = []  # (index, message, partition)
        first_in_batch: set[str] = set()
        for index, message in enumerate(messages):
            if message.message_id in first_in_batch:
                continue
            first_in_batch.add(message.message_id)
            calls.append((index, message, self.partition_of(message)))
        if not calls:
            return statuses

        ttl = self.settings.dedupe_ttl_seconds
        traceparent = tracing.current_traceparent()
        argv = [
            (self.keys.seen(p, m.message_id), self._streams[p], ttl, m.SerializeToString(), traceparent)
            for _, m, p in calls
        ]
        results = await self._run_appends(argv)

        accepted: list[events.EventRecord] = []
        for (index, message, partition), entry_id in zip(calls, results, strict=True):
            if entry_id is None:
                continue
            statuses[index] = ACCEPTED
            accepted.append(
                events.EventRecord(
                    type="message.accepted",
                    message_id=message.message_id,
                    at=message.received_at.seconds + message.received_at.nanos / 1e9,
                    attributes={
                        "channel": CHANNEL_NAMES.get(message.channel, ""),
                        "direction": "outbound"
                        if message.direction == common_pb2.DIRECTION_OUTBOUND
                        else "inbound",
                        "partition": partition,
                        "entry_id": entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id),
                    },
                )
            )
        await events.publish(self.redis, self.keys, accepted, self.settings.events_maxlen)
        return statuses

    async def _run_appends(self, argv: list[tuple[str, str, int, bytes, str]]) -> list[Any]:
        """The append script for each call, all in one pipelined round trip."""
        async with lua.pipeline(self.redis) as pipe:
            for seen, stream, ttl, payload, traceparent in argv:
                await self._append(keys=[seen, stream], args=[ttl, payload, traceparent], client=pipe)
            return await pipe.execute()

    # -- read side ----------------------------------------------------------------------------------------

    async def ensure_groups(self) -> None:
        """Create the consumer group on every partition (and the streams), reading from the start."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in self._streams:
                pipe.xgroup_create(stream, self.group, id="0", mkstream=True)
            replies = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, ResponseError) and "BUSYGROUP" not in str(reply):
                raise reply

    async def read(self, consumer: str, count: int, block_ms: int) -> list[LogEntry]:
        """New entries for `consumer` from all partitions in one call (up to `count` per partition)."""
        if self.read_each_partition:
            return await self._read_each(consumer, count, block_ms)
        reply = await self.redis.xreadgroup(
            self.group, consumer, {s: ">" for s in self._streams}, count=count, block=block_ms
        )
        return self._entries(reply or [])

    async def _read_each(self, consumer: str, count: int, block_ms: int) -> list[LogEntry]:
        """One read per partition (a cluster has no XREADGROUP over several slots), blocking in short slices:
        the reads run side by side, so one partition's blocked read would hold back what another returned."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block_ms / 1000
        while True:
            block = (
                max(1, min(READ_SLICE_MS, round((deadline - loop.time()) * 1000))) if block_ms else block_ms
            )
            replies = await asyncio.gather(
                *(
                    self.redis.xreadgroup(self.group, consumer, {s: ">"}, count=count, block=block)
                    for s in self._streams
                )
            )
            entries = [entry for reply in replies for entry in self._entries(reply or [])]
            if entries or not block_ms or loop.time() >= deadline:
                return entries

    async def claim_stale(self, consumer: str, min_idle_ms: int, count: int) -> list[LogEntry]:
        """Take over entries pending for longer than `min_idle_ms` (their worker is presumed dead).

        Up to `count` per partition; entries deleted in the meantime are dropped from the group and skipped.
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in self._streams:
                pipe.xautoclaim(stream, self.group, consumer, min_idle_ms, start_id="0-0", count=count)
            replies = await pipe.execute()
        out: list[LogEntry] = []
        for partition, reply in enumerate(replies):
            # Redis 7 answers [next cursor, claimed entries, deleted ids]; 6.2 has no third element.
            out.extend(self._parse(partition, reply[1]))
        return out

    async def ack(self, entries: Iterable[LogEntry]) -> None:
        """Mark entries done and delete them from their partitions, in one round trip."""
        by_partition: dict[int, list[str]] = defaultdict(list)
        for entry in entries:
            by_partition[entry.partition].append(entry.entry_id)
        if not by_partition:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition, ids in by_partition.items():
                pipe.xack(self._streams[partition], self.group, *ids)
                pipe.xdel(self._streams[partition], *ids)
            await pipe.execute()

    async def dead_letter(self, entry: LogEntry, stage: str, reason: str) -> None:
        """Set aside a message that a stage refuses outright (it would fail on every retry), then ack it.

        The dead-letter list keeps the whole message, so it can be inspected and ingested again once fixed.
        """
        record = json.dumps(
            {
                "message_id": entry.message.message_id,
                "partition": entry.partition,
                "stage": stage,
                "reason": reason,
                "message": base64.b64encode(entry.message.SerializeToString()).decode(),
            }
        )
        stream = self._streams[entry.partition]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(self.keys.namespaced("inbound-dead"), record)
            pipe.ltrim(self.keys.namespaced("inbound-dead"), -self.settings.dead_letter_maxlen, -1)
            pipe.xack(stream, self.group, entry.entry_id)
            pipe.xdel(stream, entry.entry_id)
            await pipe.execute()

    async def dead_letters(self) -> list[dict[str, Any]]:
        return [
            json.loads(raw) for raw in await self.redis.lrange(self.keys.namespaced("inbound-dead"), 0, -1)
        ]

    async def pending_count(self) -> int:
        """Entries delivered to some consumer and not yet acked, over all partitions."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in self._streams:
                pipe.xpending(stream, self.group)
            replies = await pipe.execute(raise_on_error=False)
        total = 0
        for reply in replies:
            if isinstance(reply, ResponseError) and "NOGROUP" in str(reply):
                continue  # no worker has started on this partition yet: nothing is pending there
            if isinstance(reply, Exception):
                raise reply
            total += int(reply["pending"])
        return total

    async def backlog(self) -> int:
        """Entries in the log, read or not: acked entries are deleted, so this is the work left."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in self._streams:
                pipe.xlen(stream)
            return sum(await pipe.execute())

    def _entries(self, reply: Any) -> list[LogEntry]:
        out: list[LogEntry] = []
        for stream, items in reply:  # [[stream name, [(entry id, fields), ...]], ...]
            out.extend(self._parse(self._partition_by_stream[stream], items))
        return out

    @staticmethod
    def _parse(partition: int, items: Iterable[Any]) -> list[LogEntry]:
        out = []
        for entry_id, fields in items:
            if not fields:  # deleted after it was delivered
                continue
            message = common_pb2.InboundMessage.FromString(fields[b"m"])
            ident = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            out.append(LogEntry(partition, ident, message, fields.get(b"t", b"").decode()))
        return out
