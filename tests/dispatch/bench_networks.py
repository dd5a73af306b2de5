"""Measure delivery through the network adapters against the local fake networks, and X length counting.

    .venv/bin/python tests/dispatch/bench_networks.py [replies]        (REDIS_URL, else an embedded Valkey)

Prints replies per second end to end (queue, deliver over HTTP, record) and checks every reply is on the fake
network exactly once. Not part of the test suite: it reports numbers, it does not assert speed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from dispatch_samples import make_reply  # noqa: E402
from network_double import X_TOKEN, FakeNetwork  # noqa: E402

from parley.clock import SystemClock  # noqa: E402
from parley.config import Settings  # noqa: E402
from parley.dispatch.adapters import AdapterRegistry  # noqa: E402
from parley.dispatch.dispatcher import Dispatcher  # noqa: E402
from parley.dispatch.rules import split_thread, x_weighted_length  # noqa: E402
from parley.store import EmbeddedValkey, Keys, connect, drop_namespace  # noqa: E402


async def main(count: int) -> None:
    server = None
    url = os.environ.get("REDIS_URL")
    if not url:
        server = EmbeddedValkey()
        url = server.start()
    network = FakeNetwork()
    await network.start()
    settings = Settings(
        redis_url=url,
        key_prefix=f"bench{uuid.uuid4().hex[:8]}",
        dispatch_default_adapter="network",
        dispatch_x_base_url=network.url,
        dispatch_x_bearer_token=X_TOKEN,
        worker_batch=256,
    )
    redis = connect(settings)
    adapters = AdapterRegistry.from_settings(settings)
    dispatcher = Dispatcher(settings, redis, Keys(settings.key_prefix), SystemClock(), adapters)
    long_text = " ".join(["update"] * 100)  # a 3-part thread
    replies = []
    for i in range(count):
        r = make_reply(f"bot:x:{i}", in_reply_to_id=str(10_000 + i), conversation_id=f"c{i}")
        r.text = long_text if i % 10 == 0 else r.text
        r.brand_account_id = ""
        replies.append(r)
    try:
        start = time.perf_counter()
        for i in range(0, count, 500):
            await dispatcher.send(replies[i : i + 500])
        queued = time.perf_counter()
        while await dispatcher.deliver_once():
            pass
        done = time.perf_counter()
        answered = [p.body["reply"]["in_reply_to_tweet_id"] for p in network.posted]
        originals = [a for a in answered if a in {r.in_reply_to_id for r in replies}]
        threads = sum(1 for r in replies if r.text == long_text)
        expected_posts = count + 2 * threads
        elapsed = done - queued
        print(f"replies {count} ({threads} three-part threads), posts {len(network.posted)}/{expected_posts}")
        print(f"queue: {count / (queued - start):,.0f} replies/s")
        posts_per_second = len(network.posted) / elapsed
        print(f"deliver over HTTP: {count / elapsed:,.0f} replies/s, {posts_per_second:,.0f} posts/s")
        once = len(originals) == len(set(originals)) == count and len(set(answered)) == len(answered)
        print(f"each reply and each part posted once: {once and len(network.posted) == expected_posts}")
        text = ("Merci pour votre patience 日本語 😀 https://example.com/x " * 200)[:10_000]
        t0 = time.perf_counter()
        for _ in range(20):
            x_weighted_length(text)
        t1 = time.perf_counter()
        for _ in range(20):
            parts = split_thread(text, 280, x_weighted_length)
        t2 = time.perf_counter()
        print(f"x_weighted_length of 10,000 characters: {(t1 - t0) / 20 * 1000:.2f} ms")
        print(f"split_thread of 10,000 characters into {len(parts)} parts: {(t2 - t1) / 20 * 1000:.2f} ms")
    finally:
        await drop_namespace(redis, settings.key_prefix)
        await adapters.aclose()
        await redis.aclose()
        await network.stop()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
