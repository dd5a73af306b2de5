"""Background work of the conversations server: following the lifecycle events of the router and dispatch
(a consumer group of its own on the event stream, acking after applying), and opening overdue held
conversations."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable

from redis.exceptions import ResponseError

from parley.config import Settings
from parley.store import Redis

from .core import Conversations

log = logging.getLogger(__name__)

GROUP = "conversations-lifecycle"
BATCH = 256
BLOCK_MS = 1000


async def ensure_group(redis: Redis, stream: str) -> None:
    """The group starts at the stream's end the first time; afterwards it resumes where it stopped."""
    try:
        await redis.xgroup_create(stream, GROUP, id="$", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


async def follow_once(core: Conversations, consumer: str, block_ms: int | None = BLOCK_MS) -> int:
    """Read one batch (this consumer's unacknowledged entries first), apply it, ack it; returns its size.

    Entries a dead consumer left pending for longer than claim_idle_ms are taken over first.
    """
    stream = core.keys.keys.events()
    await core.redis.xautoclaim(
        stream, GROUP, consumer, min_idle_time=core.settings.claim_idle_ms, start_id="0-0", count=BATCH
    )
    entries = []
    for start in ("0", ">"):
        reply = await core.redis.xreadgroup(
            GROUP, consumer, {stream: start}, count=BATCH, block=None if start == "0" else block_ms
        )
        entries = reply[0][1] if reply else []
        if entries:
            break
    # An entry trimmed from the stream while pending comes back without fields: ack it, or the "0" read
    # would return it forever and the follower would never reach new events.
    trimmed = [entry_id for entry_id, fields in entries if not fields]
    if trimmed:
        await core.redis.xack(stream, GROUP, *trimmed)
    entries = [(entry_id, fields) for entry_id, fields in entries if fields]
    if not entries:
        return len(trimmed)
    decoded = [
        (entry_id.decode(), {k.decode(): v.decode() for k, v in fields.items()})
        for entry_id, fields in entries
    ]
    await core.apply_events(decoded)
    await core.redis.xack(stream, GROUP, *(entry_id for entry_id, _ in entries))
    return len(entries)


async def run_follower(core: Conversations, settings: Settings) -> None:
    await ensure_group(core.redis, core.keys.keys.events())
    consumer = f"{settings.worker_name or 'conversations'}-{os.getpid()}"
    while True:
        try:
            await follow_once(core, consumer)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a lost connection must not end the follower; the entries stay pending
            if isinstance(error, ResponseError) and "NOGROUP" in str(error):
                # The stream was deleted under us: start following it again.
                await _retry_later(ensure_group(core.redis, core.keys.keys.events()))
                continue
            log.exception("following lifecycle events failed; retrying")
            await asyncio.sleep(1.0)


async def _retry_later(step: Awaitable[None]) -> None:
    try:
        await step
    except Exception:
        log.exception("re-creating the lifecycle consumer group failed; retrying")
        await asyncio.sleep(1.0)


async def run_sweeper(core: Conversations, settings: Settings) -> None:
    while True:
        try:
            await core.sweep_held()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("opening overdue held conversations failed; retrying")
        await asyncio.sleep(settings.conversations_sweep_seconds)
