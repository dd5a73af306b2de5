"""The one stream consumer: every reader of a Redis stream (the pipeline worker over the inbound log, the
conversations lifecycle follower, the router's merges follower) goes through it.

A pass takes this consumer's own pending entries (a batch it held back or did not finish before a
restart) and entries another consumer left idle for `claim_idle_ms` (it is presumed dead: XAUTOCLAIM),
then, unless one of those was settled, new ones. While a batch is being handled its claim is renewed every
third of `claim_idle_ms` (at most every RENEW_FLOOR seconds, and never when `claim_idle_ms` is 0: then any
consumer takes any pending entry at once and a renewal protects nothing), so a slow batch is never taken over
by a live worker.

A cancellation always stops the consumer: redis-py waits on its socket writes with `asyncio.wait_for`, which
on Python 3.11 can swallow a cancellation that lands as the write completes, so each pass also checks
whether its task was asked to stop.

When the handler fails, what happens depends on the error (`verdict`). An outage (Redis or a peer
unreachable, a cluster failing over, a Redis at `maxmemory`, an ABORTED "retry") is retried with backoff
for as long as it lasts and never dead-letters anything. A refusal (bad input, a batch too large) splits the
batch in halves until the refused entry is alone, and that one entry is dead-lettered with the reason, so it
never blocks the entries behind it. Any
other error is retried `attempts` times, then treated as a refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from redis.exceptions import (
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import StreamIdT

from parley.store import Redis, Replicas

log = logging.getLogger(__name__)

RENEW_FLOOR = 0.1  # seconds between two renewals of a batch's claim, whatever claim_idle_ms says
IDLE_FLOOR = 0.05  # seconds between two passes that found nothing, when block_ms does not wait
# Reading each stream on its own (a cluster), no read blocks longer than this, so an entry that arrived on one
# stream waits at most this long for the reads of the others.
READ_SLICE_MS = 50
CLAIM_CHECKS = 4  # looks for entries left idle per claim_idle_ms


@dataclass(frozen=True)
class StreamEntry:
    stream: str
    entry_id: str
    fields: dict[bytes, bytes]

    def text(self, name: str) -> str:
        return self.fields.get(name.encode(), b"").decode()


# The handler processes a batch and returns the ids of entries it holds back for a later pass (they stay
# pending), or None when every entry is done.
Handler = Callable[[list[StreamEntry]], Awaitable[Collection[str] | None]]
DeadLetter = Callable[[StreamEntry, str], Awaitable[None]]


class Verdict(Enum):
    OUTAGE = "outage"  # retry for as long as it lasts
    REFUSED = "refused"  # this input never succeeds: isolate it, dead-letter it
    FAULT = "fault"  # unexpected: retry a few times, then treat as refused


RETRY_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
    }
)
REFUSAL_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        # Between services this is a batch over the message size limit: halves go through.
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


# Redis answers that pass once it is back, has failed over or has room again. redis-py raises them as classes
# of their own with the error code cut off the message: a cluster failing over (CLUSTERDOWN, MASTERDOWN), a
# write that reached a master just demoted to replica (READONLY), a slot migrating (TRYAGAIN), a Redis at
# `maxmemory` (OOM), a cluster with no reachable node (RedisClusterException, not a RedisError).
STORE_OUTAGES = (ClusterDownError, ReadOnlyError, TryAgainError, OutOfMemoryError, RedisClusterException)


def verdict(error: BaseException) -> Verdict:
    """How a handler's failure is treated (see the module docstring)."""
    if isinstance(error, grpc.aio.AioRpcError):
        if error.code() in RETRY_CODES:
            return Verdict.OUTAGE
        return Verdict.REFUSED if error.code() in REFUSAL_CODES else Verdict.FAULT
    if isinstance(error, (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)):
        return Verdict.OUTAGE
    if isinstance(error, STORE_OUTAGES):
        return Verdict.OUTAGE
    if isinstance(error, ResponseError) and str(error).startswith(("OOM", "LOADING", "BUSY", "TRYAGAIN")):
        return Verdict.OUTAGE
    if isinstance(error, (DecodeError, UnicodeDecodeError, ValueError, KeyError)):
        return Verdict.REFUSED  # a malformed entry
    return Verdict.FAULT


def reason_of(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return f"{type(error).__name__}: {error}"


@dataclass
class ConsumerOptions:
    batch: int = 256
    block_ms: int = 200
    claim_idle_ms: int = 30_000
    start_id: str = "$"  # where a new group starts: "0" for a log, "$" for followers of an event stream
    delete_on_ack: bool = False  # the inbound log deletes what is done; shared event streams keep it
    read_each_stream: bool = False  # a Redis Cluster refuses one XREADGROUP over several slots
    attempts: int = 5  # of an unexpected fault, before the batch is split and the culprit dead-lettered
    backoff_cap: float = 2.0


@dataclass
class PassResult:
    done: list[StreamEntry] = field(default_factory=list)
    held: list[StreamEntry] = field(default_factory=list)
    dead: list[StreamEntry] = field(default_factory=list)


class StreamConsumer:
    def __init__(
        self,
        redis: Redis,
        streams: Sequence[str],
        group: str,
        consumer: str,
        options: ConsumerOptions,
        *,
        dead_letter: DeadLetter | None = None,
        dead_key: str = "",
        replicas: Replicas | None = None,
    ) -> None:
        self.redis = redis
        self.streams = list(streams)
        self.group = group
        self.consumer = consumer
        self.options = options
        self._dead_letter = dead_letter
        self.dead_key = dead_key
        # A handler that writes itself (a follower) has its writes on a replica before its entries are acked.
        self.replicas = replicas
        # Round trips a pass can skip: this consumer's own pending entries need reading again only after a
        # pass that left some (an outage, entries held back) and at start; others' idle entries can only
        # appear claim_idle_ms after their last delivery, so looking a few times per that period is enough.
        self._own_pending_settled = False
        self._idle_claimed_at = -math.inf

    # --- reading ----------------------------------------------------------------------------------------

    async def ensure_group(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in self.streams:
                pipe.xgroup_create(stream, self.group, id=self.options.start_id, mkstream=True)
            replies = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
                raise reply

    async def earlier(self) -> list[StreamEntry]:
        """This consumer's own pending entries (unless the last pass settled them all), and entries other
        consumers left idle past claim_idle_ms (looked for CLAIM_CHECKS times per that period)."""
        # Cleared first: whatever fails from here on (a claim, a handler) leaves entries to read again.
        skip_own, self._own_pending_settled = self._own_pending_settled, False
        entries = [] if skip_own else await self._read("0", None)
        now = time.monotonic()
        every = self.options.claim_idle_ms / 1000 / CLAIM_CHECKS
        if now - self._idle_claimed_at < every:
            return entries
        claimed = await self._claim_idle()
        self._idle_claimed_at = now  # once the look succeeded: after an outage the next pass looks again
        seen = {(e.stream, e.entry_id) for e in entries}
        return entries + [e for e in claimed if (e.stream, e.entry_id) not in seen]

    async def _read(self, start: str, block_ms: int | None) -> list[StreamEntry]:
        if self.options.read_each_stream and len(self.streams) > 1:
            return await self._read_each(start, block_ms)
        return await self._settle_read(
            [
                await self.redis.xreadgroup(
                    self.group,
                    self.consumer,
                    {s: start for s in self.streams},
                    count=self.options.batch,
                    block=block_ms,
                )
            ]
        )

    async def _read_each(self, start: str, block_ms: int | None) -> list[StreamEntry]:
        """One read per stream side by side, blocking in short slices: one stream's blocked read would
        otherwise hold back what another already returned until the whole block ran out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (block_ms or 0) / 1000
        while True:
            left = round((deadline - loop.time()) * 1000)
            block = max(1, min(READ_SLICE_MS, left)) if block_ms else None
            replies = await asyncio.gather(
                *(
                    self.redis.xreadgroup(
                        self.group, self.consumer, {s: start}, count=self.options.batch, block=block
                    )
                    for s in self.streams
                )
            )
            entries = await self._settle_read(replies)
            if entries or not block_ms or loop.time() >= deadline:
                return entries

    async def _settle_read(self, replies: list[Any]) -> list[StreamEntry]:
        """The entries of XREADGROUP replies; those deleted while pending are acked and left out."""
        out: list[StreamEntry] = []
        gone: list[StreamEntry] = []
        for reply in replies:
            for stream, items in reply or []:
                for entry in _entries(_text(stream), items):
                    (out if entry.fields else gone).append(entry)
        if gone:  # trimmed or deleted while pending: nothing to do, and "0" would return them forever
            await self.ack(gone)
        return out

    async def _claim_idle(self) -> list[StreamEntry]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in self.streams:
                pipe.xautoclaim(
                    stream,
                    self.group,
                    self.consumer,
                    self.options.claim_idle_ms,
                    "0-0",
                    count=self.options.batch,
                )
            replies = await pipe.execute()
        out: list[StreamEntry] = []
        gone: list[StreamEntry] = []
        for stream, reply in zip(self.streams, replies, strict=True):
            # [next cursor, claimed entries, deleted ids (Redis 7 drops those from the group itself)]
            for entry in _entries(stream, reply[1]):
                (out if entry.fields else gone).append(entry)
        await self.ack(gone)
        return out

    # --- settling ---------------------------------------------------------------------------------------

    async def ack(self, entries: Sequence[StreamEntry]) -> None:
        if not entries:
            return
        by_stream: dict[str, list[str]] = {}
        for entry in entries:
            by_stream.setdefault(entry.stream, []).append(entry.entry_id)
        if self.replicas is not None:
            await self.replicas.confirm()
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                pipe.xack(stream, self.group, *ids)
                if self.options.delete_on_ack:
                    pipe.xdel(stream, *ids)
            await pipe.execute()

    async def dead_letter(self, entry: StreamEntry, reason: str) -> None:
        """Set the entry aside with the reason (the owner's own record, else a JSON line), then ack it."""
        log.error("dead-lettering %s %s: %s", entry.stream, entry.entry_id, reason)
        if self._dead_letter is not None:
            await self._dead_letter(entry, reason)
        elif self.dead_key:
            record = {
                "stream": entry.stream,
                "entry_id": entry.entry_id,
                "group": self.group,
                "reason": reason,
                # A binary field (an event's protobuf payload) is kept with its bytes escaped.
                "fields": {_text(k): v.decode(errors="backslashreplace") for k, v in entry.fields.items()},
            }
            await self.redis.rpush(self.dead_key, json.dumps(record))
        await self.ack([entry])

    async def extend(self, entries: Sequence[StreamEntry]) -> None:
        """Reset the idle time of those of `entries` still pending with this consumer (XCLAIM JUSTID), in
        two round trips whatever the number of streams."""
        by_stream: dict[str, list[str]] = {}
        for entry in entries:
            by_stream.setdefault(entry.stream, []).append(entry.entry_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                low, high = min(ids, key=_order), max(ids, key=_order)
                pipe.xpending_range(
                    stream, self.group, min=low, max=high, count=len(ids) * 4, consumername=self.consumer
                )
            pending = await pipe.execute()
        claims = {
            stream: sorted({_text(row["message_id"]) for row in mine} & set(ids))
            for (stream, ids), mine in zip(by_stream.items(), pending, strict=True)
        }
        if not any(claims.values()):
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, ours in claims.items():
                if ours:
                    claimed: list[StreamIdT] = list(ours)
                    pipe.xclaim(stream, self.group, self.consumer, 0, claimed, justid=True)
            await pipe.execute()

    # --- one pass ---------------------------------------------------------------------------------------

    async def once(self, handler: Handler, block_ms: int | None) -> PassResult:
        """Handle earlier entries (own pending, then idle ones), and new ones unless one of those was settled
        (so an entry held back never holds up the ones behind it); wait up to `block_ms` for new entries only
        when there were no earlier ones (None or 0: no wait). Outages propagate: the entries stay pending
        with this consumer for the next pass."""
        _raise_if_cancelled()
        result = PassResult()
        earlier = await self.earlier()
        if earlier:
            await self._settle(earlier, handler, result)
        if not (result.done or result.dead):
            fresh = await self._read(">", None if earlier else (block_ms or None))
            if fresh:
                await self._settle(fresh, handler, result)
        self._own_pending_settled = not result.held  # a pass that raised left it False
        return result

    async def _settle(self, entries: list[StreamEntry], handler: Handler, result: PassResult) -> None:
        async with self._kept_claimed(entries):
            await self._handle(entries, handler, result)

    async def _handle(self, entries: list[StreamEntry], handler: Handler, result: PassResult) -> None:
        faults = 0
        while True:
            try:
                held = set(await handler(entries) or ())
                break
            except Exception as error:
                kind = verdict(error)
                if kind is Verdict.OUTAGE:
                    raise
                faults += 1
                if kind is Verdict.FAULT and faults < self.options.attempts:
                    log.warning("batch failed (%s); retrying it", reason_of(error))
                    await asyncio.sleep(min(0.05 * 2**faults, self.options.backoff_cap))
                    continue
                if len(entries) == 1:
                    await self.dead_letter(entries[0], reason_of(error))
                    result.dead.append(entries[0])
                    return
                middle = len(entries) // 2
                await self._handle(entries[:middle], handler, result)
                await self._handle(entries[middle:], handler, result)
                return
        done = [e for e in entries if e.entry_id not in held]
        await self.ack(done)
        result.done += done
        result.held += [e for e in entries if e.entry_id in held]

    @contextlib.asynccontextmanager
    async def _kept_claimed(self, entries: list[StreamEntry]) -> Any:
        if self.options.claim_idle_ms <= 0:
            yield
            return
        every = max(self.options.claim_idle_ms / 3000, RENEW_FLOOR)
        finished = asyncio.Event()

        async def renew() -> None:
            # Ends on `finished` as well as on cancellation: a client library may absorb a cancellation that
            # reaches it mid-call, and the batch must not wait on a renewal that never ends.
            failures = 0
            while not finished.is_set():
                await _wait(finished, min(every * 2**failures, max(every, self.options.backoff_cap)))
                if finished.is_set():
                    return
                try:
                    await self.extend(entries)
                    failures = 0
                except Exception as error:  # an outage: the batch fails on its own, or a later renewal works
                    failures = min(failures + 1, 6)
                    log.warning("could not renew the claim on a batch: %s", reason_of(error))

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            finished.set()
            task.cancel()
            # asyncio.wait, not `await task` under suppress(CancelledError): that would also swallow a
            # cancellation of this consumer arriving meanwhile.
            await asyncio.wait({task})

    # --- the loop ---------------------------------------------------------------------------------------

    async def run(
        self, handler: Handler, stop: asyncio.Event, on_health: Callable[[bool], None] | None = None
    ) -> None:
        """Pass after pass until `stop` is set, riding out outages with backoff (entries stay pending)."""
        failures = 0
        grouped = False
        while not stop.is_set():
            _raise_if_cancelled()
            try:
                if not grouped:
                    await self.ensure_group()
                    grouped = True
                result = await self.once(handler, self.options.block_ms)
                if failures and on_health:
                    on_health(True)
                failures = 0
                if result.held and not result.done:
                    await _wait(stop, 0.2)  # whatever holds them back needs a moment
                elif not (result.done or result.dead) and self.options.block_ms <= 0:
                    await _wait(stop, IDLE_FLOOR)  # nothing to do, and the read did not wait
            except Exception as error:
                if isinstance(error, ResponseError) and "NOGROUP" in str(error):
                    grouped = False  # the stream was deleted under us: follow it again
                elif verdict(error) is not Verdict.OUTAGE:
                    log.exception("stream pass failed on %s; retrying", self.group)
                failures += 1
                if on_health:
                    on_health(False)
                delay = min(0.05 * 2**failures, self.options.backoff_cap)
                log.warning(
                    "%s: %s; entries stay pending, retrying in %.2fs", self.group, reason_of(error), delay
                )
                await _wait(stop, delay)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation arriving as `stop` is set.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


def _raise_if_cancelled() -> None:
    """Raise the cancellation a library call swallowed (the task still counts it as requested)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling() > 0:
        raise asyncio.CancelledError()


def _entries(stream: str, items: Any) -> list[StreamEntry]:
    return [StreamEntry(stream, _text(entry_id), dict(fields or {})) for entry_id, fields in items or []]


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
