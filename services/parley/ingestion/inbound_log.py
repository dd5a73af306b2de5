"""The durable inbound log: de-duplicated appends on the write side, a consumer group on the read side.

The log is `settings.stream_partitions` Redis streams. A message goes to the partition chosen by its Parley
id (channel and platform message id) and nothing else, so every copy of it lands where its first copy did,
whatever brand account or author a delivery names (X sends one copy per subscribed account): its
de-duplication mark lives in that partition's hash slot, and one Lua script sets the mark and appends the
entry together. A crash can therefore never leave a mark without its entry (a message refused as a duplicate
that was never logged). Order between messages is not the partitions' job: threading orders by send time.

Workers read through one consumer group with the one stream consumer (`reader`, parley.pipeline.consumer): an
entry stays pending until acked, is re-claimed by another worker once idle long enough, and is deleted when
acked (its de-duplication mark keeps living for `dedupe_ttl`).
"""

from __future__ import annotations

import base64
import json
import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from parley import events, lua
from parley.clock import from_timestamp
from parley.config import Settings
from parley.messages import CHANNEL_NAMES
from parley.pipeline.consumer import ConsumerOptions, DeadLetter, StreamConsumer, StreamEntry
from parley.rpc import NotFound
from parley.store import Keys, Redis, reply_text
from parley.telemetry import tracing
from parley.v1 import common_pb2, ingestion_pb2

ACCEPTED = ingestion_pb2.INGEST_STATUS_ACCEPTED
DUPLICATE = ingestion_pb2.INGEST_STATUS_DUPLICATE


@dataclass(frozen=True)
class LogEntry:
    """One entry of the inbound log as a worker sees it."""

    partition: int
    entry_id: str
    message: common_pb2.InboundMessage
    # The trace of the call that accepted the message (W3C traceparent), so the worker continues it.
    traceparent: str = ""


# How long a backlog reading stands in for a new one when admitting messages (see `backlog_at_most`).
BACKLOG_FRESH_SECONDS = 0.5


class InboundLog:
    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        keys: Keys,
        group: str = "workers",
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.group = group
        self.streams = [keys.inbound_stream(p) for p in range(settings.stream_partitions)]
        self._partition_of_stream = {name: p for p, name in enumerate(self.streams)}
        self._append = lua.register(redis, "parley.ingestion", "append")
        # The backlog as last read, when (monotonic seconds), and what this process appended since: between
        # reads, an upper bound on the backlog (workers only shrink it) that costs no round trip.
        self._backlog_read = 0
        self._backlog_read_at = -math.inf
        self._appended_since_read = 0

    def partition_of(self, message: common_pb2.InboundMessage) -> int:
        return zlib.crc32(message.message_id.encode()) % self.settings.stream_partitions

    # -- write side ---------------------------------------------------------------------------------------

    async def append(self, messages: Sequence[common_pb2.InboundMessage]) -> list[ingestion_pb2.IngestStatus]:
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
            (self.keys.seen(p, m.message_id), self.streams[p], ttl, m.SerializeToString(), traceparent)
            for _, m, p in calls
        ]
        results = await self._run_appends(argv)
        self._appended_since_read += sum(1 for entry_id in results if entry_id is not None)

        accepted: list[events.EventRecord] = []
        for (index, message, partition), entry_id in zip(calls, results, strict=True):
            if entry_id is None:
                continue
            statuses[index] = ACCEPTED
            accepted.append(
                events.EventRecord(
                    type="message.accepted",
                    message_id=message.message_id,
                    at=from_timestamp(message.received_at),
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

    def reader(
        self,
        consumer: str,
        dead_letter: DeadLetter | None = None,
        *,
        claim_idle_ms: int | None = None,
        read_each_stream: bool | None = None,
    ) -> StreamConsumer:
        """The log's consumer group over every partition, through the one stream consumer: entries start
        from the log's beginning and are deleted once acked (their de-duplication marks live on)."""
        options = ConsumerOptions(
            batch=self.settings.worker_batch,
            block_ms=self.settings.worker_block_ms,
            claim_idle_ms=self.settings.claim_idle_ms if claim_idle_ms is None else claim_idle_ms,
            start_id="0",
            delete_on_ack=True,
            read_each_stream=self.settings.redis_cluster if read_each_stream is None else read_each_stream,
        )
        return StreamConsumer(
            self.redis, self.streams, self.group, consumer, options, dead_letter=dead_letter
        )

    def decode(self, entry: StreamEntry) -> LogEntry:
        """The logged message of a stream entry the log's reader returned (DecodeError if it is corrupt)."""
        return LogEntry(
            self._partition_of_stream[entry.stream],
            entry.entry_id,
            common_pb2.InboundMessage.FromString(entry.fields[b"m"]),
            entry.fields.get(b"t", b"").decode(),
        )

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
        stream = self.streams[entry.partition]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(self.keys.namespaced("inbound-dead"), record)
            pipe.ltrim(self.keys.namespaced("inbound-dead"), -self.settings.dead_letter_maxlen, -1)
            pipe.xack(stream, self.group, entry.entry_id)
            pipe.xdel(stream, entry.entry_id)
            await pipe.execute()

    async def dead_letters(self, limit: int = -1) -> list[dict[str, Any]]:
        """The dead letters, oldest first (the first `limit` of them when given)."""
        last = -1 if limit < 0 else limit - 1
        return [
            json.loads(raw) for raw in await self.redis.lrange(self.keys.namespaced("inbound-dead"), 0, last)
        ]

    async def dead_letter_count(self) -> int:
        return int(await self.redis.llen(self.keys.namespaced("inbound-dead")))

    async def requeue(self, message_id: str) -> tuple[int, str]:
        """Append a dead-lettered message to its partition again, then drop it from the dead letters.

        Appended first: a crash in between leaves the letter listed as well as requeued, and since every
        stage is idempotent by message id, requeueing it once more does no harm. The de-duplication mark is
        not consulted: the message was accepted once, and this is its retry.
        """
        dead_key = self.keys.namespaced("inbound-dead")
        for raw in await self.redis.lrange(dead_key, 0, -1):
            record = json.loads(raw)
            if record["message_id"] != message_id:
                continue
            partition = int(record["partition"])
            entry_id = await self.redis.xadd(
                self.streams[partition], {"m": base64.b64decode(record["message"])}
            )
            await self.redis.lrem(dead_key, 1, reply_text(raw))
            return partition, entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        raise NotFound(f"no dead letter for message {message_id}")

    async def workers(self) -> list[ingestion_pb2.PipelineWorker]:
        """The group's consumers: pending entries summed over partitions, and the least idle time."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in self.streams:
                pipe.xinfo_consumers(stream, self.group)
            replies = await pipe.execute(raise_on_error=False)
        pending: dict[str, int] = {}
        idle_ms: dict[str, int] = {}
        for reply in replies:
            if isinstance(reply, ResponseError):
                continue  # no stream or no group yet on this partition: no worker has started there
            if isinstance(reply, Exception):
                raise reply
            for consumer in reply:
                name = _text(consumer["name"])
                pending[name] = pending.get(name, 0) + int(consumer["pending"])
                idle_ms[name] = min(idle_ms.get(name, int(consumer["idle"])), int(consumer["idle"]))
        return [
            ingestion_pb2.PipelineWorker(name=name, pending=pending[name], idle_seconds=idle_ms[name] / 1000)
            for name in sorted(pending)
        ]

    async def partitions(self, now_ms: int) -> list[ingestion_pb2.PartitionStatus]:
        """Backlog, pending, unread and oldest entry's age of every partition, in one round trip.

        Acked entries are deleted, so the oldest entry left is the oldest unfinished one; its id holds the
        millisecond it was appended.
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in self.streams:
                pipe.xlen(stream)
                pipe.xinfo_groups(stream)
                pipe.xrange(stream, count=1)
            replies = await pipe.execute(raise_on_error=False)
        out = []
        for partition in range(len(self.streams)):
            length, groups, first = replies[3 * partition : 3 * partition + 3]
            if isinstance(length, Exception) or isinstance(first, Exception):
                raise length if isinstance(length, Exception) else first
            group = (
                next((g for g in groups if _text(g["name"]) == self.group), None)
                if not isinstance(groups, Exception)
                else None
            )  # no group: no worker started yet
            pending = int(group["pending"]) if group else 0
            lag = group.get("lag") if group else None
            oldest_ms = int(_text(first[0][0]).split("-")[0]) if first else now_ms
            out.append(
                ingestion_pb2.PartitionStatus(
                    partition=partition,
                    backlog=length,
                    pending=pending,
                    # Redis 7 counts the unread entries; without it (or with no group) all not pending.
                    lag=int(lag) if lag is not None else max(0, length - pending),
                    oldest_age_seconds=max(0.0, (now_ms - oldest_ms) / 1000),
                )
            )
        return out

    async def pending_count(self) -> int:
        """Entries delivered to some consumer and not yet acked, over all partitions."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in self.streams:
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
        read_at = time.monotonic()
        appended_before = self._appended_since_read
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in self.streams:
                pipe.xlen(stream)
            backlog = int(sum(await pipe.execute()))
        self._backlog_read, self._backlog_read_at = backlog, read_at
        self._appended_since_read -= appended_before  # appends that raced the read stay counted
        return backlog

    def backlog_at_most(self, fresh_seconds: float = BACKLOG_FRESH_SECONDS) -> int | None:
        """An upper bound on the backlog without a round trip: the last reading plus this process's appends
        since, or None when that reading is older than `fresh_seconds` (other processes append too)."""
        if time.monotonic() - self._backlog_read_at > fresh_seconds:
            return None
        return self._backlog_read + self._appended_since_read


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
