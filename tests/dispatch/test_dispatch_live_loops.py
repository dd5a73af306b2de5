"""Two live delivery loops: a batch that takes longer than claim_idle_ms to post stays with the loop posting
it (its claim is renewed), so no reply goes out twice."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence

from dispatch_samples import make_reply

from parley.clock import ManualClock
from parley.config import Settings
from parley.dispatch.adapters import AdapterRegistry, ChannelAdapter
from parley.dispatch.base import PartProgress
from parley.dispatch.dispatcher import Dispatcher
from parley.store import Keys, Redis
from parley.v1 import dispatch_pb2


class SlowNetwork(ChannelAdapter):
    """Each post takes 0.4 s; records which loop posted which reply."""

    def __init__(self, posts: list[str]) -> None:
        self.posts = posts

    async def post(
        self,
        reply: dispatch_pb2.Reply,
        parts: Sequence[str],
        idempotency_key: str,
        progress: PartProgress | None = None,
    ) -> list[str]:
        await asyncio.sleep(0.4)
        self.posts.append(reply.reply_id)
        return [f"p{len(self.posts)}"]


async def test_a_slow_batch_is_posted_by_one_live_loop_only(
    dispatch_settings: Settings, redis: Redis, keys: Keys
) -> None:
    settings = dispatch_settings.model_copy(update={"claim_idle_ms": 300, "dispatch_concurrency": 1})
    posts: list[str] = []
    loops = [
        Dispatcher(
            settings,
            redis,
            keys,
            ManualClock(),
            AdapterRegistry.uniform(SlowNetwork(posts)),
            consumer=name,
            rng=random.Random(1),
        )
        for name in ("loop-1", "loop-2")
    ]
    replies = [make_reply(f"bot:x:s{i}", conversation_id="c1") for i in range(5)]
    await loops[0].send(replies)  # one conversation: posted one after another, about 2 s in all

    async def keep_delivering(loop: Dispatcher) -> None:
        for _ in range(40):
            await loop.deliver_once()
            await asyncio.sleep(0.1)
            if len(set(posts)) == len(replies):
                return

    first = asyncio.create_task(keep_delivering(loops[0]))
    await asyncio.sleep(0.5)  # loop-1 holds the whole batch, loop-2 starts while it posts
    await asyncio.gather(first, keep_delivering(loops[1]))
    assert Counter(posts) == Counter(r.reply_id for r in replies), "a reply was posted twice"
