"""`parley thread-eval` scores threading against the reply-chain truth of a twcs-layout CSV, and
`parley thread-scale` measures the threading cost per message and the Redis memory per conversation as the
number of stored conversations grows. Both run the conversations core against a real Redis (REDIS_URL, else
an embedded Valkey)."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Hashable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import typer

from parley.clock import SystemClock, to_timestamp
from parley.config import Settings
from parley.messages import message_id
from parley.store import EmbeddedValkey, Redis, connect, drop_namespace, keys_for
from parley.v1 import common_pb2

from .core import Conversations
from .store import as_text

commands = typer.Typer()


@asynccontextmanager
async def _redis(settings: Settings) -> AsyncIterator[tuple[Settings, Redis]]:
    """A client on REDIS_URL under a fresh key prefix (removed afterwards), else on an embedded Valkey."""
    server = None
    if not settings.redis_url:
        server = EmbeddedValkey()
        settings = settings.model_copy(update={"redis_url": server.start()})
    settings = settings.model_copy(
        update={"key_prefix": f"{settings.key_prefix}-eval-{uuid.uuid4().hex[:8]}"}
    )
    redis = connect(settings)
    try:
        yield settings, redis
    finally:
        if server is None:  # a shared Redis: leave nothing behind
            await drop_namespace(redis, settings.key_prefix, batch=10_000)
        await redis.aclose()
        if server is not None:
            server.stop()


# ---- thread-eval ------------------------------------------------------------------------------------------


def chain_truth(messages: Sequence[common_pb2.InboundMessage]) -> dict[str, str]:
    """Each message's reply-chain root among the messages given (a parent outside them ends the chain)."""
    parent = {
        m.message_id: message_id(m.channel, m.in_reply_to_id) if m.in_reply_to_id else "" for m in messages
    }
    root: dict[str, str] = {}
    for start in parent:
        path, node = [], start
        while node not in root and parent.get(node) in parent and node not in path:
            path.append(node)
            node = parent[node]
        top = root.get(node, node)
        for n in [*path, node]:
            root[n] = top
    return root


def pairwise(predicted: dict[str, str], truth: dict[str, str]) -> dict[str, float]:
    """Pairwise precision, recall and F1: over all pairs of messages, is 'same conversation' right?"""

    def pairs(counts: Counter[Hashable]) -> int:
        return sum(n * (n - 1) // 2 for n in counts.values())

    ids = list(truth)
    both = pairs(Counter((predicted[i], truth[i]) for i in ids))
    said = pairs(Counter(predicted[i] for i in ids))
    true = pairs(Counter(truth[i] for i in ids))
    precision = both / said if said else 1.0
    recall = both / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_pairs": true, "predicted_pairs": said}


@dataclass
class EvalReport:
    messages: int
    order: str
    conversations: int
    true_conversations: int
    held_at_arrival: int
    still_held: int
    seconds: float
    scores: dict[str, float]


async def run_eval(
    messages: list[common_pb2.InboundMessage], settings: Settings, shuffle: bool, seed: int, batch: int
) -> EvalReport:
    for m in messages:
        m.message_id = message_id(m.channel, m.platform_message_id)
    order = list(messages)
    if shuffle:
        random.Random(seed).shuffle(order)
    async with _redis(settings) as (settings, redis):
        core = Conversations(settings, redis, keys_for(settings), SystemClock())
        held = 0
        started = time.perf_counter()
        for i in range(0, len(order), batch):
            results = await core.thread(order[i : i + batch])
            held += sum(r.held for r in results)
        seconds = time.perf_counter() - started
        ids = [m.message_id for m in messages]
        # Where each message is now, after every merge.
        cids = [as_text(v) for v in await redis.mget([core.keys.message_index(i) for i in ids])]
        still = sum([await redis.zcard(key) for key in core.keys.held_partitions()])
    predicted = dict(zip(ids, cids, strict=True))
    truth = chain_truth(messages)
    return EvalReport(
        messages=len(ids),
        order=f"shuffled (seed {seed})" if shuffle else "file",
        conversations=len(set(cids)),
        true_conversations=len(set(truth.values())),
        held_at_arrival=held,
        still_held=still,
        seconds=seconds,
        scores=pairwise(predicted, truth),
    )


@commands.command("thread-eval")
def thread_eval(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A CSV in the twcs layout."),
    shuffle: bool = typer.Option(False, "--shuffle", help="Thread the messages in a random order."),
    seed: int = typer.Option(7, help="Seed of the shuffle."),
    batch: int = typer.Option(100, min=1, help="Messages per Thread call."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Thread a twcs-layout CSV and score the grouping against the reply chains (pairwise P/R/F1)."""
    from parley.replay import read_twcs

    report = asyncio.run(run_eval(read_twcs(file), Settings(), shuffle, seed, batch))
    if as_json:
        typer.echo(json.dumps({"file": str(file), **report.__dict__}))
        return
    s = report.scores
    typer.echo(
        f"{file.name}: {report.messages} messages in {report.order} order, batches of {batch}\n"
        f"  conversations {report.conversations} (reply-chain truth {report.true_conversations}); "
        f"held on arrival {report.held_at_arrival}, still held {report.still_held}\n"
        f"  pairwise precision {s['precision']:.4f}  recall {s['recall']:.4f}  F1 {s['f1']:.4f}  "
        f"({s['true_pairs']} true pairs, {s['predicted_pairs']} predicted)\n"
        f"  threading {report.messages / report.seconds:.0f} messages/s"
    )


# ---- thread-scale -----------------------------------------------------------------------------------------

TEXT = "my order #{n} has not arrived and the tracking page shows nothing since monday, can you help?"


def conversation_messages(n: int, base: float) -> list[common_pb2.InboundMessage]:
    """Conversation n: a customer tweet, the brand's reply, the customer's answer."""
    customer = common_pb2.Author(id=f"u{n}", handle=f"user{n}", follower_count=n % 5000)
    brand = common_pb2.Author(id="brand", handle="brand")
    out = []
    for j, (author, reply_to) in enumerate(((customer, ""), (brand, f"{n}-0"), (customer, f"{n}-1"))):
        out.append(
            common_pb2.InboundMessage(
                channel=common_pb2.CHANNEL_X,
                visibility=common_pb2.VISIBILITY_PUBLIC,
                platform_message_id=f"{n}-{j}",
                message_id=f"x:{n}-{j}",
                in_reply_to_id=reply_to,
                brand_account_id="brand",
                author=author,
                text=TEXT.format(n=n),
                sent_at=to_timestamp(base + n + j * 60),
                direction=common_pb2.DIRECTION_OUTBOUND if author is brand else common_pb2.DIRECTION_INBOUND,
            )
        )
    return out


async def _load(core: Conversations, start: int, stop: int, base: float, concurrency: int) -> None:
    """Thread conversations [start, stop) in batches of 1,000 messages, several calls at a time."""
    queue = list(range(start, stop, 333))

    async def worker() -> None:
        while queue:
            first = queue.pop()
            messages = [
                m for n in range(first, min(first + 333, stop)) for m in conversation_messages(n, base)
            ]
            # Each conversation's messages in order, as on the wire: the root, then the replies.
            await core.thread(messages)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _probe(core: Conversations, existing: int, probes: int, base: float) -> tuple[float, float]:
    """Seconds per message threading new conversations, and replies into stored ones, 100 per call."""
    rng = random.Random(existing)
    fresh = [m for n in range(10**9, 10**9 + probes // 3) for m in conversation_messages(n, base)]
    replies = []
    for i, n in enumerate(rng.sample(range(existing), probes)):
        replies.append(
            common_pb2.InboundMessage(
                channel=common_pb2.CHANNEL_X,
                visibility=common_pb2.VISIBILITY_PUBLIC,
                platform_message_id=f"{n}-probe{i}",
                message_id=f"x:{n}-probe{i}",
                in_reply_to_id=f"{n}-2",
                brand_account_id="brand",
                author=common_pb2.Author(id=f"u{n}", handle=f"user{n}"),
                text="still nothing, any update?",
                sent_at=to_timestamp(base + n + 600 + i),
                direction=common_pb2.DIRECTION_INBOUND,
            )
        )
    timings = []
    for group in (fresh, replies):
        started = time.perf_counter()
        for i in range(0, len(group), 100):
            await core.thread(group[i : i + 100])
        timings.append((time.perf_counter() - started) / len(group))
    return timings[0], timings[1]


async def _memory(redis: Redis, core: Conversations, count: int, samples: int = 200) -> float:
    """Mean MEMORY USAGE of every key of a conversation (its record, its parts, its message index entries,
    its customer's profile keys, its listing-index entries are shared and left out)."""
    rng = random.Random(count)
    k = core.keys
    total = 0
    picks = rng.sample(range(count), min(samples, count))
    async with redis.pipeline(transaction=False) as pipe:
        for n in picks:
            cid = as_text(await redis.get(k.message_index(f"x:{n}-0")))
            person = f"x:u{n}"
            for key in [
                k.meta(cid),
                *k.parts(cid),
                *(k.message_index(f"x:{n}-{j}") for j in range(3)),
                k.customers.profile(person),
                k.customers.profile_conversations(person),
            ]:
                pipe.memory_usage(key, samples=0)
        sizes = await pipe.execute()
    total = sum(s or 0 for s in sizes)
    return total / len(picks)


@commands.command("thread-scale")
def thread_scale(
    conversations: list[int] = typer.Option(
        [10_000], "--conversations", help="Stored conversations at each measurement (repeatable)."
    ),
    probes: int = typer.Option(3000, help="Messages threaded at each size to measure the cost."),
    concurrency: int = typer.Option(8, min=1, help="Concurrent Thread calls while loading."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per size."),
) -> None:
    """Load conversations (3 messages each) through the threading core, then measure the threading cost per
    message and the Redis memory per conversation at each size."""
    asyncio.run(_scale(Settings(), sorted(conversations), probes, concurrency, as_json))


async def _scale(settings: Settings, sizes: list[int], probes: int, concurrency: int, as_json: bool) -> None:
    async with _redis(settings) as (settings, redis):
        core = Conversations(settings, redis, keys_for(settings), SystemClock())
        base = 1_600_000_000.0
        loaded = 0
        used_before = (await redis.info("memory"))["used_memory"]
        for size in sizes:
            started = time.perf_counter()
            await _load(core, loaded, size, base, concurrency)
            load_seconds = time.perf_counter() - started
            added, loaded = size - loaded, size
            used = (await redis.info("memory"))["used_memory"]
            per_conversation = await _memory(redis, core, size)
            fresh, reply = await _probe(core, size, probes, base)
            row = {
                "conversations": size,
                "load_messages_per_second": round(3 * added / load_seconds) if load_seconds else 0,
                "new_message_ms": round(fresh * 1000, 4),
                "reply_message_ms": round(reply * 1000, 4),
                "used_memory_bytes_per_conversation": round((used - used_before) / size),
                "memory_usage_bytes_per_conversation": round(per_conversation),
            }
            if as_json:
                typer.echo(json.dumps(row))
            else:
                typer.echo(
                    f"{size} conversations: threading {row['new_message_ms']} ms/message "
                    f"(new conversations), {row['reply_message_ms']} ms/message (replies into stored ones); "
                    f"memory {row['used_memory_bytes_per_conversation']} B/conversation (INFO used_memory), "
                    f"{row['memory_usage_bytes_per_conversation']} B (MEMORY USAGE of its keys); "
                    f"loaded at {row['load_messages_per_second']} messages/s"
                )
