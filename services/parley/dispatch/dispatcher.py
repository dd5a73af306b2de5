"""The dispatch core: queue replies idempotently, deliver them through channel adapters, retry, dead-letter.

`send` writes each reply once (by reply_id) into its partition's outbox stream. The delivery loop reads the
streams in the consumer group "dispatch" through the one stream consumer (parley.pipeline.consumer): it
counts the attempt, calls the adapter with the reply's idempotency key (the reply_id in the key namespace),
then records the outcome and acks the entry in one script. A loop that dies mid-attempt leaves its entries
pending; another loop re-claims them after `claim_idle_ms` (XAUTOCLAIM); a live loop renews its claim on
the batch in hand, so a slow batch is never posted by two loops. A delivery already SENT is never handed
to an adapter again; the idempotency key and the per-part progress kept in the delivery hash cover a
crash between a post and its record.

Before a reply is queued, and again before each attempt, the public-PII guard and the channel rules (length,
the 24-hour window) run: a reply they refuse is BLOCKED with the reason, never posted and never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from parley import events, lua
from parley.clock import Clock, to_timestamp
from parley.config import Settings
from parley.dispatch import guard, outbox, rules
from parley.dispatch.adapters import AdapterRegistry, PermanentError, RetryableError
from parley.dispatch.outbox import GROUP, DispatchKeys, RedisPartProgress
from parley.dispatch.validation import validate_replies
from parley.messages import CHANNEL_NAMES
from parley.pipeline.consumer import ConsumerOptions, StreamConsumer, StreamEntry
from parley.rpc import REDIS_OUTAGES, InvalidArgument, NotFound
from parley.store import Keys, Redis, Replicas
from parley.v1 import dispatch_pb2

log = logging.getLogger(__name__)


@dataclass
class _Plan:
    """What `send` queues for one reply (a moved reply yields two: the public invitation, the private one)."""

    reply: dispatch_pb2.Reply
    status: dispatch_pb2.DeliveryStatus
    error: str = ""
    private_reply_id: str = ""
    entity_types: tuple[str, ...] = ()


@dataclass
class _Attempt:
    """One stream entry being delivered, and what came of it."""

    partition: int
    entry_id: str
    reply_id: str
    kind: str = "ack"  # sent | retry | dead | blocked | ack
    attempts: int = 0
    reply: dispatch_pb2.Reply | None = None
    ids: Sequence[str] = ()
    error: str = ""
    due: float = 0.0


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        keys: Keys,
        clock: Clock,
        adapters: AdapterRegistry,
        *,
        consumer: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if settings.dispatch_public_pii_policy not in ("block", "move"):
            policy = settings.dispatch_public_pii_policy
            raise ValueError(f"dispatch_public_pii_policy must be block or move, not {policy!r}")
        if settings.dispatch_unconfirmed_part_policy not in ("dead_letter", "repost"):
            raise ValueError(
                "dispatch_unconfirmed_part_policy must be dead_letter or repost,"
                f" not {settings.dispatch_unconfirmed_part_policy!r}"
            )
        self.settings = settings
        self.redis = redis
        self.replicas = Replicas(settings, redis)
        self.keys = keys
        self.clock = clock
        self.adapters = adapters
        self.dkeys = DispatchKeys(keys, settings.dispatch_partitions)
        self.consumer = consumer or settings.worker_name or f"dispatch-{uuid.uuid4().hex[:8]}"
        self.rng = rng or random.Random()
        self._scripts = outbox.register_scripts(redis)
        self._groups_ready = False
        self._stopping = asyncio.Event()
        streams = [self.dkeys.outbox(p) for p in range(self.dkeys.partitions)]
        self._partition = {stream: p for p, stream in enumerate(streams)}
        options = ConsumerOptions(
            batch=settings.worker_batch,
            claim_idle_ms=settings.claim_idle_ms,
            start_id="0",
            read_each_stream=settings.redis_cluster,
        )
        # The outcome script acks and deletes each entry with its record; the reader's ack after is a no-op.
        self.reader = StreamConsumer(
            redis, streams, GROUP, self.consumer, options, dead_letter=self._dead_entry
        )

    # --- set-up ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the consumer group on every partition (idempotent)."""
        if not self._groups_ready:
            for p in range(self.dkeys.partitions):
                try:
                    await self.redis.xgroup_create(self.dkeys.outbox(p), GROUP, id="0", mkstream=True)
                except ResponseError as error:
                    if "BUSYGROUP" not in str(error):
                        raise
            self._groups_ready = True

    async def _pipeline(self, build: Callable[[lua.Pipeline], None]) -> list[Any]:
        """Run the commands `build` queues in one round trip."""
        if not self._groups_ready:
            await self.start()
        async with lua.pipeline(self.redis) as pipe:
            build(pipe)
            return await pipe.execute()

    # --- the API ----------------------------------------------------------------------------------------

    async def send(self, replies: Sequence[dispatch_pb2.Reply]) -> list[dispatch_pb2.Delivery]:
        """Queue each reply once; a reply_id seen before returns its existing delivery, never a second send.

        A reply the guard or a channel rule refuses is recorded BLOCKED with the reason. A public reply whose
        detail the guard moves is queued as a short public invitation plus a private delivery
        `<reply_id>/private`; the returned delivery (one per reply, in order) names it.
        """
        validate_replies(self.settings, replies)
        if not self._groups_ready:
            await self.start()
        now = self.clock.now()
        plans = [self._plan(reply, now) for reply in replies]
        # The private part of a moved reply is queued first: it tends to arrive before the invitation.
        queued = [plan for group in plans for plan in reversed(group)]

        def build(pipe: lua.Pipeline) -> None:
            for plan in queued:
                reply = plan.reply
                p = self.dkeys.partition(reply.reply_id)
                pipe.script(
                    self._scripts["enqueue"],
                    [self.dkeys.delivery(p, reply.reply_id), self.dkeys.outbox(p)],
                    [
                        reply.reply_id,
                        reply.SerializeToString(),
                        plan.status,
                        plan.error,
                        f"{now:.6f}",
                        reply.channel,
                        reply.visibility,
                        self.settings.dispatch_retention_seconds,
                        plan.private_reply_id,
                    ],
                )

        results = dict(zip((id(plan) for plan in queued), await self._pipeline(build), strict=True))
        deliveries = []
        published = []
        for group in plans:
            plan = group[0]
            reply = plan.reply
            result = results[id(plan)]
            if int(result[0]) == 1:
                deliveries.append(
                    dispatch_pb2.Delivery(
                        reply_id=reply.reply_id,
                        status=plan.status,
                        error=plan.error,
                        created_at=to_timestamp(now),
                        updated_at=to_timestamp(now),
                        channel=reply.channel,
                        visibility=reply.visibility,
                        private_reply_id=plan.private_reply_id,
                    )
                )
                types = list(plan.entity_types)
                if plan.status == outbox.BLOCKED:
                    extra = {"entity_types": types} if types else {}
                    published.append(self._event("reply.blocked", reply, now, error=plan.error, **extra))
                elif plan.private_reply_id:
                    published.append(
                        self._event(
                            "reply.moved_private",
                            reply,
                            now,
                            private_reply_id=plan.private_reply_id,
                            entity_types=types,
                        )
                    )
            else:
                deliveries.append(outbox.delivery_from_fields(reply.reply_id, result[1]))
        await events.publish(self.redis, self.keys, published, self.settings.events_maxlen)
        return deliveries

    def _plan(self, reply: dispatch_pb2.Reply, now: float) -> list[_Plan]:
        """The caller's reply first, then the private delivery when the guard moves the detail."""
        guarded = guard.guard(reply, self.settings)
        types = guarded.entity_types
        if guarded.refusal is not None:
            return [_Plan(reply, outbox.BLOCKED, guarded.refusal.reason, entity_types=types)]
        if guarded.private is not None:
            refused = self._refusal(guarded.private, now) or self._refusal(guarded.reply, now)
            if refused:
                named = ", ".join(types)
                reason = f"public reply would expose the customer's {named}; the private reply cannot go:"
                reason += f" {refused}"
                return [_Plan(reply, outbox.BLOCKED, reason, entity_types=types)]
            private_id = guarded.private.reply_id
            return [
                _Plan(guarded.reply, outbox.PENDING, private_reply_id=private_id, entity_types=types),
                _Plan(guarded.private, outbox.PENDING, entity_types=types),
            ]
        refused = self._refusal(reply, now)
        return [_Plan(reply, outbox.BLOCKED if refused else outbox.PENDING, refused)]

    def _refusal(self, reply: dispatch_pb2.Reply, now: float) -> str:
        """Why a channel rule refuses `reply` now (its length, the window), or ""."""
        verdict = rules.apply(reply.channel, reply.visibility, reply.text)
        if isinstance(verdict, rules.Refusal):
            return verdict.reason
        window = guard.window(reply, now, self.settings)
        return window.reason if isinstance(window, rules.Refusal) else ""

    async def get(self, reply_id: str) -> dispatch_pb2.Delivery:
        if not reply_id:
            raise InvalidArgument([("reply_id", "required")])
        key = self.dkeys.delivery(self.dkeys.partition(reply_id), reply_id)
        values = await self.redis.hmget(key, list(outbox.FIELDS))
        if values[0] is None:
            raise NotFound(f"no delivery for reply {reply_id}")
        return outbox.delivery_from_fields(reply_id, values)

    async def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        """The dead-letter entries of every partition (oldest first per partition)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for p in range(self.dkeys.partitions):
                pipe.lrange(self.dkeys.dead(p), 0, limit - 1)
            lists = await pipe.execute()
        return [json.loads(raw) for entries in lists for raw in entries]

    # --- the delivery loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until stopped or cancelled, pausing `worker_block_ms` whenever there is nothing to do."""
        await self.start()
        while not self._stopping.is_set():
            try:
                handled = await self.deliver_once()
            except REDIS_OUTAGES as error:  # expected during a failover and passes: one line, no traceback
                log.warning(
                    "dispatch: delivery round failed, Redis unavailable: %s: %s; trying again",
                    type(error).__name__,
                    error,
                )
                handled = 0
            except Exception:  # a bad entry, a bug: the loop must outlive it; entries stay pending
                log.exception("dispatch: delivery round failed; trying again")
                handled = 0
            if handled == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.settings.worker_block_ms / 1000)

    def stop(self) -> None:
        """Let the current round finish (a call cut short would leave its reply in doubt), then end `run`."""
        self._stopping.set()

    async def deliver_once(self) -> int:
        """One round: promote due retries, then deliver through the stream consumer (this loop's own pending
        entries and entries idle past claim_idle_ms first, else new ones; the claim on the batch is renewed
        while it is being posted, so a slow batch is never taken over by a live loop).

        Returns how many stream entries were handled.
        """
        try:
            await self._promote()
            result = await self.reader.once(self._deliver, None)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            self._groups_ready = False
            await self.start()
            return 0
        return len(result.done) + len(result.dead)

    async def _promote(self) -> None:
        now, batch = self.clock.now(), self.settings.worker_batch

        def build(pipe: lua.Pipeline) -> None:
            for p in range(self.dkeys.partitions):
                keys = [self.dkeys.retries(p), self.dkeys.outbox(p)]
                pipe.script(self._scripts["promote"], keys, [f"{now:.6f}", batch])

        await self._pipeline(build)

    async def _deliver(self, entries: list[StreamEntry]) -> None:
        attempts = [_Attempt(self._partition[e.stream], e.entry_id, e.text("reply_id")) for e in entries]
        # The same reply may sit in a batch twice (a re-claimed entry and a promoted retry): deliver it once.
        first: dict[str, _Attempt] = {}
        for attempt in attempts:
            first.setdefault(attempt.reply_id, attempt)
        # Stream ids are times: deliver in roughly the order replies were queued across partitions (on a tie,
        # a moved reply's private half goes before its public invitation).
        work = sorted(
            first.values(),
            key=lambda a: (_stream_order(a.entry_id), not a.reply_id.endswith(guard.PRIVATE_SUFFIX)),
        )
        await self._begin(work)
        await self._post_all([a for a in work if a.kind == "go"])
        await self._record(attempts, first)

    async def _dead_entry(self, entry: StreamEntry, reason: str) -> None:
        """An outbox entry the loop cannot handle at all (it names no delivery it can read)."""
        record = {"reply_id": entry.text("reply_id"), "error": reason, "attempts": 0, "at": self.clock.now()}
        await self.redis.rpush(self.dkeys.dead(self._partition[entry.stream]), json.dumps(record))

    async def _begin(self, work: list[_Attempt]) -> None:
        """Count an attempt on each delivery still to be made (before the adapter call, so a crash counts)."""
        now = self.clock.now()
        limit = self.settings.dispatch_max_attempts

        def build(pipe: lua.Pipeline) -> None:
            for a in work:
                key = self.dkeys.delivery(a.partition, a.reply_id)
                pipe.script(self._scripts["begin"], [key], [f"{now:.6f}", limit])

        for a, result in zip(work, await self._pipeline(build), strict=True):
            verdict = _text(result[0])
            if verdict == "go":
                a.kind = "go"
                a.attempts = int(result[1])
                a.reply = dispatch_pb2.Reply.FromString(result[2])
            elif verdict == "exhausted":
                # Attempts that never recorded an outcome: a loop died on them (perhaps after posting).
                a.kind, a.attempts = "dead", int(result[1])
                a.reply = dispatch_pb2.Reply.FromString(result[2])
                a.error = f"gave up after {a.attempts} attempts (the last did not finish; it may have posted)"

    async def _post_all(self, work: list[_Attempt]) -> None:
        """Post every attempt; replies of one conversation go one after another, in stream order."""
        by_conversation: dict[str, list[_Attempt]] = defaultdict(list)
        for a in work:
            assert a.reply is not None
            by_conversation[a.reply.conversation_id or a.reply_id].append(a)
        gate = asyncio.Semaphore(max(1, self.settings.dispatch_concurrency))

        async def post_in_order(group: list[_Attempt]) -> None:
            for a in group:
                async with gate:
                    await self._post(a)

        await _gather([post_in_order(group) for group in by_conversation.values()])

    async def _post(self, a: _Attempt) -> None:
        assert a.reply is not None
        # Checked again at every attempt: a retry may fall outside the window, and a public reply with
        # sensitive detail never reaches an adapter whatever was queued.
        exposed = guard.sensitive_types(a.reply.text) if a.reply.visibility == guard.PUBLIC else []
        if exposed:
            a.kind, a.error = "blocked", f"public reply would expose the customer's {', '.join(exposed)}"
            return
        refused = self._refusal(a.reply, self.clock.now())
        if refused:
            a.kind, a.error = "blocked", refused
            return
        parts = rules.apply(a.reply.channel, a.reply.visibility, a.reply.text)
        assert not isinstance(parts, rules.Refusal)
        claim = (self.dkeys.outbox(a.partition), GROUP, self.consumer, a.entry_id)
        delivery = self.dkeys.delivery(a.partition, a.reply_id)
        progress = RedisPartProgress(self.redis, delivery, claim, self.replicas, attempt=a.attempts)
        try:
            adapter = self.adapters.for_channel(a.reply.channel)
            a.ids = await adapter.post(a.reply, parts, self.idempotency_key(a.reply_id), progress=progress)
            a.kind = "sent"
        except PermanentError as error:
            a.kind, a.error = "dead", f"refused: {error.reason}"
        except RetryableError as error:
            self._retry_or_give_up(a, error.reason, error.retry_after)
        except Exception as error:  # an adapter bug or an unexpected network error: treat as transient
            log.exception("dispatch: adapter failed on %s", a.reply_id)
            self._retry_or_give_up(a, f"{type(error).__name__}: {error}", None)

    def idempotency_key(self, reply_id: str) -> str:
        """The reply_id within this suite's namespace (suites sharing an outbox must not collide)."""
        return f"{self.keys.prefix}/{reply_id}"

    def _retry_or_give_up(self, a: _Attempt, reason: str, retry_after: float | None) -> None:
        if a.attempts >= self.settings.dispatch_max_attempts:
            a.kind, a.error = "dead", f"gave up after {a.attempts} attempts: {reason}"
            return
        a.kind, a.error = "retry", reason
        a.due = self.clock.now() + self.backoff(a.attempts, retry_after)

    def backoff(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait after `attempts` failed tries: full jitter, never sooner than the network asked."""
        ceiling = min(
            self.settings.dispatch_backoff_cap_seconds,
            self.settings.dispatch_backoff_base_seconds * 2 ** (attempts - 1),
        )
        delay = self.rng.uniform(0, ceiling)
        return max(delay, retry_after) if retry_after else delay

    async def _record(self, attempts: list[_Attempt], first: dict[str, _Attempt]) -> None:
        """Write every outcome and ack every entry in one round trip, with the events."""
        now = self.clock.now()
        published: list[events.EventRecord] = []

        def build(pipe: lua.Pipeline) -> None:
            for entry in attempts:
                a = first[entry.reply_id]
                kind = a.kind if entry is a else "ack"  # a duplicate entry is only acked
                p = entry.partition
                payload = json.dumps(list(a.ids)) if kind == "sent" else a.error
                dead = json.dumps(
                    {"reply_id": a.reply_id, "error": a.error, "attempts": a.attempts, "at": now}
                )
                pipe.script(
                    self._scripts["outcome"],
                    [
                        self.dkeys.delivery(p, a.reply_id),
                        self.dkeys.outbox(p),
                        self.dkeys.retries(p),
                        self.dkeys.dead(p),
                    ],
                    [
                        kind,
                        entry.entry_id,
                        GROUP,
                        f"{now:.6f}",
                        a.reply_id,
                        payload,
                        f"{a.due:.6f}",
                        self.settings.dispatch_retention_seconds,
                        dead,
                    ],
                )
                event = self._outcome_event(a, kind, now)
                if event is not None:
                    published.append(event)
            events.add_to_pipeline(pipe, self.keys, published, self.settings.events_maxlen)

        await self._pipeline(build)
        # Dead letters are rare: their lists are trimmed in a round trip of their own.
        dead = {e.partition for e in attempts if first[e.reply_id] is e and e.kind == "dead"}
        if dead:
            async with self.redis.pipeline(transaction=False) as pipe:
                for p in dead:
                    pipe.ltrim(self.dkeys.dead(p), -self.settings.dead_letter_maxlen, -1)
                await pipe.execute()

    def _outcome_event(self, a: _Attempt, kind: str, now: float) -> events.EventRecord | None:
        if a.reply is None:
            return None
        reply = a.reply
        if kind == "sent":
            ids = list(a.ids)
            return self._event("reply.sent", reply, now, platform_message_ids=ids, attempts=a.attempts)
        if kind == "retry":
            return self._event(
                "reply.retrying", reply, now, error=a.error, attempts=a.attempts, next_attempt_at=a.due
            )
        if kind == "dead":
            return self._event("reply.dead_lettered", reply, now, error=a.error, attempts=a.attempts)
        if kind == "blocked":
            return self._event("reply.blocked", reply, now, error=a.error, attempts=a.attempts)
        return None

    @staticmethod
    def _event(type_: str, reply: dispatch_pb2.Reply, now: float, **attributes: Any) -> events.EventRecord:
        return events.EventRecord(
            type=type_,
            conversation_id=reply.conversation_id,
            message_id=reply.reply_id,
            at=now,
            attributes={
                "reply_id": reply.reply_id,
                "channel": CHANNEL_NAMES.get(reply.channel, ""),
                "in_reply_to_id": reply.in_reply_to_id,
                "sent_by": reply.sent_by,
                **attributes,
            },
        )


async def _gather(calls: list[Awaitable[None]]) -> None:
    """Await all; one call's failure (or cancellation) is not swallowed, and none outlives this call: gather
    returns at the first failure, and a post still under way (one whose client swallowed the stop) would
    then be cut short by the closing adapters and left in doubt. It is let finish instead."""
    if len(calls) == 1:
        await calls[0]
        return
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        await asyncio.gather(*tasks)
    finally:
        running = [task for task in tasks if not task.done()]
        if running:
            await asyncio.wait(running)


def _stream_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
