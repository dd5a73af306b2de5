"""Background work of the conversations server: following the lifecycle events of the router and dispatch
(a consumer group of its own on the lifecycle streams, which carry a copy of only those events, acking after
applying), and opening overdue held conversations."""

from __future__ import annotations

import asyncio
import logging
import os
import time

from parley.config import Settings
from parley.events import decode, event_id
from parley.pipeline.consumer import ConsumerOptions, Handler, StreamConsumer, StreamEntry
from parley.store import Keys, Redis, Replicas

from .core import Conversations

log = logging.getLogger(__name__)

GROUP = "conversations-lifecycle"
BATCH = 256
BLOCK_MS = 1000
PRUNE_EVERY_SECONDS = 60.0  # expired conversations leave the listing indexes within about a minute


def reader(core: Conversations, consumer: str) -> StreamConsumer:
    """The lifecycle follower's reader: its own group on the lifecycle streams, starting at their end the
    first time and resuming where it stopped afterwards; a malformed event is set aside with its reason."""
    keys = core.keys.keys
    options = ConsumerOptions(
        batch=BATCH,
        block_ms=BLOCK_MS,
        claim_idle_ms=core.settings.claim_idle_ms,
        read_each_stream=core.settings.redis_cluster,
    )
    dead_key = keys.namespaced("events-dead", GROUP)
    replicas = Replicas(core.settings, core.redis)
    return StreamConsumer(
        core.redis, keys.lifecycle_streams(), GROUP, consumer, options, dead_key=dead_key, replicas=replicas
    )


async def ensure_group(redis: Redis, keys: Keys) -> None:
    options = ConsumerOptions()
    await StreamConsumer(redis, keys.lifecycle_streams(), GROUP, "", options).ensure_group()


def applier(core: Conversations) -> Handler:
    streams = core.keys.keys.lifecycle_streams()

    async def apply(entries: list[StreamEntry]) -> None:
        # The id names the partition: an event redirected to the conversation another was merged into is
        # told apart from that conversation's own events, which come from another partition.
        decoded = [(event_id(e.entry_id, streams.index(e.stream)), decode(e.fields)) for e in entries]
        await core.apply_events(decoded)

    return apply


async def follow_once(core: Conversations, consumer: str, block_ms: int | None = BLOCK_MS) -> int:
    """One pass of the follower (see parley.pipeline.consumer); returns how many entries it settled."""
    result = await reader(core, consumer).once(applier(core), block_ms)
    return len(result.done) + len(result.dead)


async def run_follower(core: Conversations, settings: Settings, stop: asyncio.Event | None = None) -> None:
    consumer = f"{settings.worker_name or 'conversations'}-{os.getpid()}"
    await reader(core, consumer).run(applier(core), stop or asyncio.Event())


async def run_sweeper(core: Conversations, settings: Settings) -> None:
    pruned_at = 0.0
    while True:
        try:
            await core.sweep_held()
            if time.monotonic() - pruned_at >= PRUNE_EVERY_SECONDS:
                await core.prune_indexes()
                pruned_at = time.monotonic()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "opening overdue held conversations or pruning the listing indexes failed; retrying"
            )
        await asyncio.sleep(settings.conversations_sweep_seconds)
