"""Keeping the suite up through failures: a service reports NOT_SERVING while Redis is unreachable and
SERVING once it answers again, and `parley up` restarts a child process that dies, with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from grpc_health.v1 import health_pb2

from parley.config import Settings
from parley.rpc import REDIS_OUTAGES, RunningServer, stop_background
from parley.store import Redis, check_layout, connect

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

_Result = TypeVar("_Result")

ORPHAN_CHECK_SECONDS = 1.0


async def stop_when_orphaned(supervisor_pid: int, stop: asyncio.Event) -> None:
    """Set `stop` once the process that started this one is gone (this one is then re-parented), so a
    suite's children stop with it even when it was killed before it could stop them. 0: not supervised."""
    if not supervisor_pid:
        return
    # Nothing tells a process that its parent died (but a re-parenting it can read): it looks now and then.
    while os.getppid() == supervisor_pid:  # noqa: ASYNC110
        await asyncio.sleep(ORPHAN_CHECK_SECONDS)
    log.warning("the process that started this one (pid %d) is gone: stopping", supervisor_pid)
    stop.set()


async def once_redis_is_ready(
    step: Callable[[], Awaitable[_Result]],
    what: str,
    first_delay: float = 0.1,
    longest_delay: float = 5.0,
) -> _Result:
    """Run a start-up `step` that needs Redis, again with backoff for as long as Redis is unreachable, still
    loading its data (LOADING) or failing over, so a service started before Redis is ready waits for it
    instead of exiting. Any other error is raised at once."""
    delay = first_delay
    while True:
        try:
            return await step()
        except REDIS_OUTAGES as error:
            log.warning(
                "%s waits for Redis (%s: %s); trying again in %.1fs", what, type(error).__name__, error, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, longest_delay)


async def start_up(
    redis: Redis,
    settings: Settings,
    what: str,
    *steps: Callable[[], Awaitable[object]],
    wait: bool = True,
) -> None:
    """A process's start-up on Redis: check that the data's partition counts are the configured ones
    (`check_layout`; a mismatch is raised), then run `steps`, each waiting for Redis while it is out. A server
    that must answer health checks through an outage (`wait=False`) checks only if Redis answers now."""
    if wait:
        await once_redis_is_ready(lambda: check_layout(redis, settings), what)
    else:
        try:
            await check_layout(redis, settings)
        except REDIS_OUTAGES as error:
            log.warning(
                "%s: Redis unreachable (%s); partition counts not checked", what, type(error).__name__
            )
    for step in steps:
        await once_redis_is_ready(step, what)


async def redis_health(
    running: RunningServer, settings: Settings, stopping: asyncio.Event, every: float = 1.0
) -> None:
    """PING Redis every `every` seconds and report each of the server's services (and "") accordingly,
    until `stopping` is set (checked each round too, in case a cancellation is absorbed mid-PING)."""
    redis = connect(settings)
    serving = True
    try:
        while not stopping.is_set():
            try:
                await asyncio.wait_for(redis.ping(), timeout=max(every, 1.0))
                up = True
            except Exception:  # unreachable, loading its data, failing over: not serving meanwhile
                up = False
            if up != serving:
                serving = up
                log.warning(
                    "Redis %s: reporting %s",
                    "back" if up else "unreachable",
                    "SERVING" if up else "NOT_SERVING",
                )
                for name in [*running.service_names, ""]:
                    await running.health.set(name, SERVING if up else NOT_SERVING)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), every)
    finally:
        await redis.aclose()


def watch_redis(running: RunningServer, settings: Settings) -> None:
    """Run `redis_health` for as long as the server runs."""
    stopping = asyncio.Event()
    task = asyncio.create_task(redis_health(running, settings, stopping), name="redis-health")

    async def stop() -> None:
        stopping.set()
        await stop_background([task], grace=1.0)

    running.on_stop.append(stop)


class Restarts:
    """When to start a dead child again: after 0.5 s, doubling to 30 s while it keeps dying; reset once it
    has stayed up for a minute."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.delay: dict[str, float] = {}
        self.started: dict[str, float] = {}

    def started_now(self, name: str) -> None:
        self.started[name] = self.clock()

    def next_delay(self, name: str) -> float:
        if self.clock() - self.started.get(name, 0.0) > 60:
            self.delay[name] = 0.0
        self.delay[name] = min(max(self.delay.get(name, 0.0) * 2, 0.5), 30.0)
        return self.delay[name]
