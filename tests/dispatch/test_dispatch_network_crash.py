"""A dispatch process dying at each point around a network call: every reply, and every part of a thread,
is on the network exactly once, or the delivery says why it stopped (never a silent drop, never a repeat)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence

import pytest
from dispatch_samples import make_reply
from network_double import Fail, FakeNetwork

from parley.clock import ManualClock
from parley.config import Settings
from parley.dispatch.adapters import AdapterRegistry, PartProgress
from parley.dispatch.dispatcher import Dispatcher
from parley.dispatch.networks import XAdapter
from parley.store import Keys, Redis
from parley.v1 import dispatch_pb2

SENT = dispatch_pb2.DELIVERY_STATUS_SENT
PENDING = dispatch_pb2.DELIVERY_STATUS_PENDING
DEAD_LETTER = dispatch_pb2.DELIVERY_STATUS_DEAD_LETTER

THREAD = " ".join(["word"] * 150)  # 749 characters: three parts


class DiesAt:
    """Progress that kills the process at one point: before part `index` starts, or right after it is
    recorded as posted."""

    def __init__(self, inner: PartProgress, point: str, index: int) -> None:
        self.inner, self.point, self.index = inner, point, index

    async def load(self) -> tuple[dict[int, str], set[int]]:
        return await self.inner.load()

    async def started(self, index: int) -> None:
        if (self.point, index) == ("before", self.index):
            raise asyncio.CancelledError()
        await self.inner.started(index)

    async def posted(self, index: int, platform_id: str) -> None:
        await self.inner.posted(index, platform_id)
        if (self.point, index) == ("after", self.index):
            raise asyncio.CancelledError()

    async def failed(self, index: int) -> None:
        await self.inner.failed(index)


class DyingX(XAdapter):
    point = "before"
    index = 0

    async def post(
        self,
        reply: dispatch_pb2.Reply,
        parts: Sequence[str],
        idempotency_key: str,
        progress: PartProgress | None = None,
    ) -> list[str]:
        assert progress is not None
        return await super().post(reply, parts, idempotency_key, DiesAt(progress, self.point, self.index))


def dispatcher_for(
    settings: Settings, redis: Redis, keys: Keys, adapters: AdapterRegistry, name: str
) -> Dispatcher:
    return Dispatcher(settings, redis, keys, ManualClock(), adapters, consumer=name, rng=random.Random(5))


async def take_over(settings: Settings, redis: Redis, keys: Keys) -> Dispatcher:
    """Another process: fresh adapters, and a loop that re-claims at once what the dead one left."""
    adapters = AdapterRegistry.from_settings(settings, ManualClock())
    claiming = settings.model_copy(update={"claim_idle_ms": 0})
    second = dispatcher_for(claiming, redis, keys, adapters, "loop-2")
    try:
        await second.deliver_once()
    finally:
        await adapters.aclose()
    return second


def thread_reply() -> dispatch_pb2.Reply:
    r = make_reply("bot:x:t1", text=THREAD, in_reply_to_id="1001")
    r.brand_account_id = ""
    return r


@pytest.mark.parametrize(("point", "index"), [("before", 0), ("before", 1), ("after", 1), ("after", 2)])
async def test_a_thread_resumes_after_the_last_posted_part(
    network_settings: Settings, network: FakeNetwork, redis: Redis, keys: Keys, point: str, index: int
) -> None:
    dying = DyingX(network_settings, ManualClock())
    dying.point, dying.index = point, index
    first = dispatcher_for(network_settings, redis, keys, AdapterRegistry.uniform(dying), "loop-1")
    await first.send([thread_reply()])
    with pytest.raises(asyncio.CancelledError):
        await first.deliver_once()
    await dying.aclose()
    assert (await first.get("bot:x:t1")).status == PENDING

    second = await take_over(network_settings, redis, keys)
    delivery = await second.get("bot:x:t1")
    tweets = [p for p in network.posted if p.kind == "tweet"]
    assert delivery.status == SENT
    # Each part exactly once, in order, each answering the part before it.
    assert [t.text.split(" ")[0] for t in tweets] == ["1/3", "2/3", "3/3"]
    assert [t.body["reply"]["in_reply_to_tweet_id"] for t in tweets] == [
        "1001",
        tweets[0].platform_id,
        tweets[1].platform_id,
    ]
    assert list(delivery.platform_message_ids) == [t.platform_id for t in tweets]
    # Nothing was asked of the network twice either (the dead process never reached the refused part).
    assert len(network.requests) == 3


async def kill_mid_call(
    settings: Settings, redis: Redis, keys: Keys, network: FakeNetwork, fail: Fail
) -> None:
    """Start the delivery loop, and stop the process while the network holds the call for part 2."""
    slow = settings.model_copy(update={"dispatch_http_timeout_seconds": 30.0, "claim_idle_ms": 60_000})
    adapters = AdapterRegistry.from_settings(slow, ManualClock())
    first = dispatcher_for(slow, redis, keys, adapters, "loop-1")
    await first.send([thread_reply()])
    network.fail_next(Fail(mode="pass"), fail)
    task = asyncio.create_task(first.run())
    try:
        await asyncio.wait_for(network.hung.wait(), timeout=10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await adapters.aclose()


async def test_death_after_the_network_took_a_part_never_posts_it_twice(
    network_settings: Settings, network: FakeNetwork, redis: Redis, keys: Keys
) -> None:
    await kill_mid_call(network_settings, redis, keys, network, Fail(mode="post_then_hang"))
    assert [p.text.split(" ")[0] for p in network.posted] == ["1/3", "2/3"]

    second = await take_over(network_settings, redis, keys)
    delivery = await second.get("bot:x:t1")
    assert delivery.status == DEAD_LETTER
    assert "part 2 of 3 may already be posted" in delivery.error
    assert network.posted[0].platform_id in delivery.error  # the parts known to be up are named
    assert [p.text.split(" ")[0] for p in network.posted] == ["1/3", "2/3"]
    [dead] = await second.dead_letters()
    assert dead["reply_id"] == "bot:x:t1"


async def test_repost_policy_sends_a_part_the_network_never_took(
    network_settings: Settings, network: FakeNetwork, redis: Redis, keys: Keys
) -> None:
    settings = network_settings.model_copy(update={"dispatch_unconfirmed_part_policy": "repost"})
    await kill_mid_call(settings, redis, keys, network, Fail(mode="hang"))
    assert [p.text.split(" ")[0] for p in network.posted] == ["1/3"]

    second = await take_over(settings, redis, keys)
    assert (await second.get("bot:x:t1")).status == SENT
    tweets = [p for p in network.posted if p.kind == "tweet"]
    assert [t.text.split(" ")[0] for t in tweets] == ["1/3", "2/3", "3/3"]
    assert tweets[1].body["reply"]["in_reply_to_tweet_id"] == tweets[0].platform_id


async def test_many_replies_and_a_death_mid_batch_none_is_posted_twice_none_is_lost(
    network_settings: Settings, network: FakeNetwork, redis: Redis, keys: Keys
) -> None:
    class HangsOnFifth(XAdapter):
        """Records its fifth post, then the process is stopped while other posts are in flight."""

        def __init__(self) -> None:
            super().__init__(network_settings, ManualClock())
            self.done = 0
            self.stopped = asyncio.Event()

        async def post_part(self, reply: dispatch_pb2.Reply, text: str, previous_id: str | None) -> str:
            platform_id = await super().post_part(reply, text, previous_id)
            self.done += 1
            if self.done == 5:
                self.stopped.set()
                await asyncio.Event().wait()
            return platform_id

    dying = HangsOnFifth()
    first = dispatcher_for(network_settings, redis, keys, AdapterRegistry.uniform(dying), "loop-1")
    replies = [
        make_reply(f"bot:x:m{i}", in_reply_to_id=f"9{i:02}", conversation_id=f"c{i}") for i in range(40)
    ]
    for r in replies:
        r.brand_account_id = ""
    await first.send(replies)
    task = asyncio.create_task(first.run())
    await asyncio.wait_for(dying.stopped.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await dying.aclose()

    second = await take_over(network_settings, redis, keys)
    posted = [p.body["reply"]["in_reply_to_tweet_id"] for p in network.posted]
    for i, r in enumerate(replies):
        delivery = await second.get(r.reply_id)
        copies = posted.count(f"9{i:02}")
        assert copies <= 1, r.reply_id
        if delivery.status == SENT:
            assert copies == 1 and len(delivery.platform_message_ids) == 1
        else:
            # Stopped mid-call: maybe on the network, so not sent again, and the delivery says so.
            assert delivery.status == DEAD_LETTER and "may already be posted" in delivery.error
    sent = [r for r in replies if (await second.get(r.reply_id)).status == SENT]
    # Only the calls in flight (at most the per-network limit) when the process stopped are in doubt.
    assert len(sent) >= len(replies) - network_settings.dispatch_network_concurrency


async def test_a_stop_that_cuts_a_call_short_leaves_its_part_in_doubt(
    network_settings: Settings, network: FakeNetwork, redis: Redis, keys: Keys
) -> None:
    """The process is told to stop while the network takes the post; the HTTP client reports the cut as a
    dropped connection (aiohttp does so when a stop reaches it mid-request). That error must not clear the
    part's "started" mark, or the next process posts the reply a second time."""

    class StoppedMidCall(XAdapter):
        async def post_part(self, reply: dispatch_pb2.Reply, text: str, previous_id: str | None) -> str:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # the stop arrives ...
            # ... and is absorbed inside the HTTP client, which then sees the connection go.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0)
            network.fail_next(Fail(mode="post_then_drop"))
            return await super().post_part(reply, text, previous_id)

    stopping = StoppedMidCall(network_settings, ManualClock())
    first = dispatcher_for(network_settings, redis, keys, AdapterRegistry.uniform(stopping), "loop-1")
    await first.send([make_reply("bot:x:s1", in_reply_to_id="777")])
    with pytest.raises(asyncio.CancelledError):
        await first.deliver_once()
    await stopping.aclose()
    assert len(network.posted) == 1

    second = await take_over(network_settings, redis, keys)
    delivery = await second.get("bot:x:s1")
    assert len(network.posted) == 1  # never a second copy
    assert delivery.status == DEAD_LETTER and "may already be posted" in delivery.error
