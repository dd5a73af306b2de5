"""The Dispatcher on a real Redis: idempotent queueing, delivery, retries, dead letters, crash recovery."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence

import pytest
from dispatch_samples import log_lines, make_reply

from parley.clock import ManualClock
from parley.config import Settings
from parley.dispatch.adapters import (
    AdapterRegistry,
    ChannelAdapter,
    LogAdapter,
    PartProgress,
    PermanentError,
    RetryableError,
)
from parley.dispatch.dispatcher import Dispatcher
from parley.events import read_all
from parley.rpc import InvalidArgument, NotFound
from parley.store import Keys, Redis
from parley.v1 import common_pb2, dispatch_pb2

PENDING = dispatch_pb2.DELIVERY_STATUS_PENDING
SENT = dispatch_pb2.DELIVERY_STATUS_SENT
RETRYING = dispatch_pb2.DELIVERY_STATUS_RETRYING
DEAD_LETTER = dispatch_pb2.DELIVERY_STATUS_DEAD_LETTER
BLOCKED = dispatch_pb2.DELIVERY_STATUS_BLOCKED


class FlakyAdapter(ChannelAdapter):
    """Fails the first `failures` calls with `error`, then posts through a LogAdapter."""

    def __init__(self, log: LogAdapter, failures: int, error: Exception) -> None:
        self.log = log
        self.failures = failures
        self.error = error
        self.calls = 0

    async def post(
        self,
        reply: dispatch_pb2.Reply,
        parts: Sequence[str],
        idempotency_key: str,
        progress: PartProgress | None = None,
    ) -> list[str]:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return await self.log.post(reply, parts, idempotency_key)


class CrashAfterPost(ChannelAdapter):
    """Posts, then the loop dies before it can record the outcome (its task is cancelled)."""

    def __init__(self, log: LogAdapter) -> None:
        self.log = log
        self.posted = asyncio.Event()

    async def post(
        self,
        reply: dispatch_pb2.Reply,
        parts: Sequence[str],
        idempotency_key: str,
        progress: PartProgress | None = None,
    ) -> list[str]:
        await self.log.post(reply, parts, idempotency_key)
        self.posted.set()
        raise asyncio.CancelledError()


def make_dispatcher(
    settings: Settings,
    redis: Redis,
    keys: Keys,
    clock: ManualClock,
    adapter: ChannelAdapter,
    consumer: str = "loop-1",
) -> Dispatcher:
    registry = AdapterRegistry.uniform(adapter)
    return Dispatcher(settings, redis, keys, clock, registry, consumer=consumer, rng=random.Random(7))


async def event_types(redis: Redis, keys: Keys) -> list[str]:
    return [event.type for _, event in await read_all(redis, keys)]


async def test_send_is_idempotent_by_reply_id(dispatch_settings: Settings, redis: Redis, keys: Keys) -> None:
    clock = ManualClock()
    log = LogAdapter(dispatch_settings.dispatch_log_path)
    dispatcher = make_dispatcher(dispatch_settings, redis, keys, clock, log)
    reply = make_reply("bot:x:1")

    first = await dispatcher.send([reply, reply])  # twice in one batch
    again = await dispatcher.send([reply])  # and again in a later call
    assert [d.status for d in first + again] == [PENDING] * 3
    p = dispatcher.dkeys.partition("bot:x:1")
    assert await redis.xlen(dispatcher.dkeys.outbox(p)) == 1

    assert await dispatcher.deliver_once() == 1
    sent = await dispatcher.get("bot:x:1")
    assert sent.status == SENT and sent.attempts == 1
    assert len(sent.platform_message_ids) == 1

    # Once sent, the same reply_id returns the existing delivery and nothing is queued or posted.
    after = await dispatcher.send([reply])
    assert after[0].status == SENT
    assert list(after[0].platform_message_ids) == list(sent.platform_message_ids)
    assert await dispatcher.deliver_once() == 0
    lines = [json.loads(line) for line in log_lines(log.path)]
    assert [line["platform_id"] for line in lines] == list(sent.platform_message_ids)
    assert await event_types(redis, keys) == ["reply.sent"]
    [(_, event)] = await read_all(redis, keys)
    assert event.conversation_id == "conv-1" and event.message_id == "bot:x:1"
    assert event.attributes["platform_message_ids"] == list(sent.platform_message_ids)


async def test_long_x_reply_is_posted_as_a_thread(
    dispatch_settings: Settings, redis: Redis, keys: Keys
) -> None:
    log = LogAdapter(dispatch_settings.dispatch_log_path)
    dispatcher = make_dispatcher(dispatch_settings, redis, keys, ManualClock(), log)
    await dispatcher.send([make_reply("bot:x:2", text=" ".join(["update"] * 100))])
    await dispatcher.deliver_once()
    delivery = await dispatcher.get("bot:x:2")
    lines = [json.loads(line) for line in log_lines(log.path)]
    assert delivery.status == SENT
    assert [line["platform_id"] for line in lines] == list(delivery.platform_message_ids)
    assert [line["text"].split(" ")[0] for line in lines] == ["1/3", "2/3", "3/3"]


async def test_retryable_error_backs_off_then_sends(
    dispatch_settings: Settings, redis: Redis, keys: Keys
) -> None:
    clock = ManualClock()
    log = LogAdapter(dispatch_settings.dispatch_log_path)
    adapter = FlakyAdapter(log, failures=2, error=RetryableError("503 from the network"))
    dispatcher = make_dispatcher(dispatch_settings, redis, keys, clock, adapter)
    await dispatcher.send([make_reply("bot:x:3")])
    p = dispatcher.dkeys.partition("bot:x:3")

    for attempt in (1, 2):
        await dispatcher.deliver_once()
        delivery = await dispatcher.get("bot:x:3")
        assert (delivery.status, delivery.attempts, delivery.error) == (
            RETRYING,
            attempt,
            "503 from the network",
        )
        due = await redis.zscore(dispatcher.dkeys.retries(p), "bot:x:3")
        # Full jitter: somewhere between now and base * 2^(attempt-1).
        assert clock.now() <= due <= clock.now() + 2.0 * 2 ** (attempt - 1)
        assert await redis.xlen(dispatcher.dkeys.outbox(p)) == 0  # acked and dropped while waiting
        clock.set(due)

    await dispatcher.deliver_once()
    delivery = await dispatcher.get("bot:x:3")
    assert (delivery.status, delivery.attempts, delivery.error) == (SENT, 3, "")
    assert adapter.calls == 3
    assert len(log_lines(log.path)) == 1
    assert await event_types(redis, keys) == ["reply.retrying", "reply.retrying", "reply.sent"]


async def test_retry_after_is_honoured(dispatch_settings: Settings, redis: Redis, keys: Keys) -> None:
    clock = ManualClock()
    log = LogAdapter(dispatch_settings.dispatch_log_path)
    adapter = FlakyAdapter(log, failures=1, error=RetryableError("429 rate limited", retry_after=30.0))
    dispatcher = make_dispatcher(dispatch_settings, redis, keys, clock, adapter)
    await dispatcher.send([make_reply("bot:x:4")])
    start = clock.now()
    await dispatcher.deliver_once()

    clock.set(start + 29.9)
    assert await dispatcher.deliver_once() == 0
    assert adapter.calls == 1

    clock.set(start + 30.0)
    assert await dispatcher.deliver_once() == 1
    assert adapter.calls == 2
    assert (await dispatcher.get("bot:x:4")).status == SENT


async def test_dead_letter_after_max_attempts(dispatch_settings: Settings, redis: Redis, keys: Keys) -> None:
    clock = ManualClock()
    log = LogAdapter(dispatch_settings.dispatch_log_path)
    adapter = FlakyAdapter(log, failures=100, error=RetryableError("timeout"))
    dispatcher = make_dispatcher(dispatch_settings, redis, keys, clock, adapter)
    await dispatcher.send([make_reply("bot:x:5")])

    for _ in range(5):
        await dispatcher.deliver_once()
        clock.advance(120.0)
    delivery = await dispatcher.get("bot:x:5")
    assert delivery.status == DEAD_LETTER and delivery.attempts == 3
    assert "gave up after 3 attempts: timeout" in delivery.error
    assert adapter.calls == 3  # max attempts is 3 in these settings
    assert log_lines(log.path) == []
    dead = await dispatcher.dead_letters()
    assert [(d["reply_id"], d["attempts"]) for d in dead] == [("bot:x:5", 3)]
    assert (await event_types(redis, keys))[-1] == "reply.dead_lettered"


async def test_permanent_error_dead_letters_at_once(
    dispatch_settings: Settings, redis: Redis, keys: Keys
) -> None:
    clock = ManualClock()
    log = LogAdapter(dispatch_settings.dispatch_log_path)
    adapter = FlakyAdapter(log, failures=100, error=PermanentError("400 recipient is not reachable"))
    dispatcher = make_dispatcher(dispatch_settings, redis, keys, clock, adapter)
    await dispatcher.send([make_reply("bot:x:6")])
    await dispatcher.deliver_once()
    clock.advance(600.0)
    await dispatcher.deliver_once()

    delivery = await dispatcher.get("bot:x:6")
    assert (delivery.status, delivery.attempts) == (DEAD_LETTER, 1)
    assert delivery.error == "refused: 400 recipient is not reachable"
    assert adapter.calls == 1
    assert [d["reply_id"] for d in await dispatcher.dead_letters()] == ["bot:x:6"]
    assert await event_types(redis, keys) == ["reply.dead_lettered"]


async def test_a_crashed_loop_is_taken_over_and_posts_once(
    dispatch_settings: Settings, redis: Redis, keys: Keys
) -> None:
    clock = ManualClock()
    path = dispatch_settings.dispatch_log_path
    crashing = CrashAfterPost(LogAdapter(path))
    first = make_dispatcher(dispatch_settings, redis, keys, clock, crashing, consumer="loop-1")
    await first.send([make_reply("bot:x:7")])

    # The first loop posts, then its task is cancelled before the outcome is written.
    with pytest.raises(asyncio.CancelledError):
        await first.deliver_once()
    assert len(log_lines(path)) == 1
    stalled = await first.get("bot:x:7")
    assert (stalled.status, stalled.attempts) == (PENDING, 1)

    # A second loop (another process: its own log adapter instance) re-claims the idle entry.
    takeover = dispatch_settings.model_copy(update={"claim_idle_ms": 0})
    second = make_dispatcher(takeover, redis, keys, clock, LogAdapter(path), consumer="loop-2")
    assert await second.deliver_once() == 1

    delivery = await second.get("bot:x:7")
    lines = [json.loads(line) for line in log_lines(path)]
    assert len(lines) == 1
    assert delivery.status == SENT and delivery.attempts == 2
    assert list(delivery.platform_message_ids) == [lines[0]["platform_id"]]
    p = second.dkeys.partition("bot:x:7")
    assert (await redis.xpending(second.dkeys.outbox(p), "dispatch"))["pending"] == 0


async def test_cancelling_the_running_loop_mid_post_loses_nothing(
    dispatch_settings: Settings, redis: Redis, keys: Keys
) -> None:
    path = dispatch_settings.dispatch_log_path

    class PostThenHang(ChannelAdapter):
        def __init__(self) -> None:
            self.log = LogAdapter(path)
            self.posted = asyncio.Event()

        async def post(
            self,
            reply: dispatch_pb2.Reply,
            parts: Sequence[str],
            key: str,
            progress: PartProgress | None = None,
        ) -> list[str]:
            ids = await self.log.post(reply, parts, key)
            self.posted.set()
            await asyncio.Event().wait()  # the process is stopped here
            return ids

    clock = ManualClock()
    hanging = PostThenHang()
    first = make_dispatcher(dispatch_settings, redis, keys, clock, hanging, consumer="loop-1")
    await first.send([make_reply("bot:x:8"), make_reply("bot:x:9", conversation_id="conv-2")])
    task = asyncio.create_task(first.run())
    await asyncio.wait_for(hanging.posted.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    takeover = dispatch_settings.model_copy(update={"claim_idle_ms": 0})
    second = make_dispatcher(takeover, redis, keys, clock, LogAdapter(path), consumer="loop-2")
    await second.deliver_once()
    statuses = [(await second.get(r)).status for r in ("bot:x:8", "bot:x:9")]
    keys_posted = [json.loads(line)["idempotency_key"] for line in log_lines(path)]
    assert statuses == [SENT, SENT]
    assert sorted(keys_posted) == [f"{keys.prefix}/bot:x:8", f"{keys.prefix}/bot:x:9"]


async def test_an_entry_that_keeps_crashing_loops_is_dead_lettered(
    dispatch_settings: Settings, redis: Redis, keys: Keys
) -> None:
    settings = dispatch_settings.model_copy(update={"dispatch_max_attempts": 1, "claim_idle_ms": 0})
    clock = ManualClock()
    path = settings.dispatch_log_path
    first = make_dispatcher(settings, redis, keys, clock, CrashAfterPost(LogAdapter(path)))
    await first.send([make_reply("bot:x:10")])
    with pytest.raises(asyncio.CancelledError):
        await first.deliver_once()

    never = FlakyAdapter(LogAdapter(path), failures=0, error=RetryableError("unused"))
    second = make_dispatcher(settings, redis, keys, clock, never, consumer="loop-2")
    await second.deliver_once()
    delivery = await second.get("bot:x:10")
    assert delivery.status == DEAD_LETTER
    assert "did not finish" in delivery.error
    assert never.calls == 0
    assert len(log_lines(path)) == 1
    assert await event_types(redis, keys) == ["reply.dead_lettered"]


async def test_too_long_private_reply_is_blocked_not_sent(
    dispatch_settings: Settings, redis: Redis, keys: Keys
) -> None:
    log = LogAdapter(dispatch_settings.dispatch_log_path)
    dispatcher = make_dispatcher(dispatch_settings, redis, keys, ManualClock(), log)
    reply = make_reply(
        "bot:messenger:1",
        text="a" * 2001,
        channel=common_pb2.CHANNEL_MESSENGER,
        visibility=common_pb2.VISIBILITY_PRIVATE,
        in_reply_to_id="",
    )
    [delivery] = await dispatcher.send([reply])
    assert delivery.status == BLOCKED
    assert "2000" in delivery.error
    assert await dispatcher.deliver_once() == 0
    assert (await dispatcher.get("bot:messenger:1")).status == BLOCKED
    assert log_lines(log.path) == []
    assert await event_types(redis, keys) == ["reply.blocked"]


async def test_invalid_replies_name_each_field(dispatch_settings: Settings, redis: Redis, keys: Keys) -> None:
    dispatcher = make_dispatcher(dispatch_settings, redis, keys, ManualClock(), LogAdapter("unused.log"))
    bad = [
        make_reply(""),
        make_reply("r2", text="   "),
        make_reply("r3", channel=common_pb2.CHANNEL_UNSPECIFIED),
        make_reply("r4", channel=common_pb2.CHANNEL_WHATSAPP, visibility=common_pb2.VISIBILITY_PUBLIC),
        make_reply("r5", in_reply_to_id=""),
        make_reply("r6", visibility=common_pb2.VISIBILITY_UNSPECIFIED),
        make_reply("ok"),
    ]
    with pytest.raises(InvalidArgument) as raised:
        await dispatcher.send(bad)
    assert [field for field, _ in raised.value.violations] == [
        "replies[0].reply_id",
        "replies[1].text",
        "replies[2].channel",
        "replies[3].visibility",
        "replies[4].in_reply_to_id",
        "replies[5].visibility",
    ]
    with pytest.raises(InvalidArgument, match="replies: at least one"):
        await dispatcher.send([])
    small = make_dispatcher(
        dispatch_settings.model_copy(update={"max_batch": 2}),
        redis,
        keys,
        ManualClock(),
        LogAdapter("unused"),
    )
    with pytest.raises(InvalidArgument, match="at most 2 replies"):
        await small.send([make_reply("a"), make_reply("b"), make_reply("c")])
    with pytest.raises(NotFound):
        await dispatcher.get("ok")  # nothing of a rejected batch is queued


async def test_scripts_are_reloaded_when_redis_forgets_them(
    dispatch_settings: Settings, redis: Redis, keys: Keys
) -> None:
    log = LogAdapter(dispatch_settings.dispatch_log_path)
    dispatcher = make_dispatcher(dispatch_settings, redis, keys, ManualClock(), log)
    await dispatcher.send([make_reply("bot:x:20")])

    # What a restart or failover does to the script cache (not flushed here: the Redis is shared).
    def forget() -> None:
        for script in dispatcher._scripts.values():
            script.sha = "0" * 40

    forget()
    await dispatcher.send([make_reply("bot:x:21")])
    forget()
    assert await dispatcher.deliver_once() == 2
    assert [(await dispatcher.get(r)).status for r in ("bot:x:20", "bot:x:21")] == [SENT, SENT]
