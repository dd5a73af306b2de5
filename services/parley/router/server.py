"""Starts RouterService: `create_server(settings, address)` is what `parley serve router` and tests call.

The server also runs the router's background loop (`Router.tick` every `router_tick_seconds`) and follows
conversation merges (`parley.router.merges`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from parley import store
from parley.clock import Clock, SystemClock
from parley.config import Settings
from parley.router.core import Router
from parley.router.merges import Merges, run_follower
from parley.router.policy import load_policy
from parley.router.servicer import RouterServicer
from parley.rpc import REDIS_OUTAGES, RunningServer, start_server, stop_background
from parley.supervision import start_up
from parley.v1 import router_pb2_grpc

SERVICE_NAME = "parley.v1.RouterService"

log = logging.getLogger(__name__)


async def run_loop(router: Router, interval: float, stopping: asyncio.Event) -> None:
    """Tick until `stopping` is set; a failed step is logged and the next one runs as usual (a Redis outage
    or failover in one line: it is expected and passes; anything else with its traceback)."""
    while not stopping.is_set():
        try:
            await router.tick()
        except REDIS_OUTAGES as error:
            log.warning("router loop step failed, Redis unavailable: %s: %s", type(error).__name__, error)
        except Exception:
            log.exception("router loop step failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)


async def create_server(
    settings: Settings,
    address: str,
    clock: Clock | None = None,
    watch_poll_ms: int | None = None,
    run_background: bool = True,
) -> RunningServer:
    policy = load_policy(settings.policy_file)  # fail fast, before binding, on a bad policy
    redis = store.connect(settings)
    router = Router(settings, redis, store.keys_for(settings), clock or SystemClock(), policy)
    servicer = RouterServicer(settings, router, watch_poll_ms)
    try:
        await start_up(redis, settings, "router start-up", wait=False)
        running = await start_server(
            settings, address, [(router_pb2_grpc.add_RouterServiceServicer_to_server, servicer, SERVICE_NAME)]
        )
    except BaseException:
        await redis.aclose()
        raise
    running.on_stop.append(redis.aclose)
    if run_background:
        stopping = asyncio.Event()
        consumer = settings.worker_name or "router"
        tasks = [
            asyncio.create_task(run_loop(router, settings.router_tick_seconds, stopping), name="router-loop"),
            # Merges of conversations, folded into the router's state (a consumer group of its own).
            asyncio.create_task(run_follower(Merges(router), consumer, stopping), name="router-merges"),
        ]

        async def stop_loop() -> None:
            # The step in flight finishes (each is safe to cut short, but a clean end is quicker to reason
            # about); past the grace period it is cancelled.
            stopping.set()
            await stop_background(tasks, settings.shutdown_grace_seconds)

        running.on_stop.append(stop_loop)  # runs before Redis closes (cleanups run in reverse)
    return running
