"""`parley chaos`: the whole suite as separate processes on a Redis of its own, fed a twcs-layout file by an
at-least-once client while every service, every worker and the Redis server are SIGKILLed and started again
at random; then it drains and counts, from what is in Redis and in the outbox log, what was lost and what
happened twice (`report.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from parley.auth import mint
from parley.authz import INGEST
from parley.chaos.redis_server import RedisServer, free_port
from parley.chaos.report import Report, measure
from parley.config import SERVICES, Settings
from parley.ingestion.inbound_log import InboundLog
from parley.replay import read_twcs
from parley.rpc import channel
from parley.store import connect, keys_for
from parley.suite import ChildProcessSuite, replace_ports
from parley.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc

log = logging.getLogger(__name__)

# A cluster set-up can take the place of RedisServer here (same start/kill/url surface).
ServerFactory = Callable[[Path], RedisServer]


@dataclass
class ChaosPlan:
    csv: Path
    copies: int = 1
    workers: int = 2
    kill_every: float = 3.0  # mean seconds between kills
    chaos_seconds: float = 30.0  # keep killing at least this long (also while the backlog is processed)
    batch: int = 200
    seed: int = 0
    data_dir: Path = Path(".parley/chaos")
    drain_timeout: float = 600.0


async def run_chaos(plan: ChaosPlan, make_server: ServerFactory | None = None) -> Report:
    rng = random.Random(plan.seed)
    data_dir = plan.data_dir / f"run-{int(time.time())}"
    server = (make_server or (lambda d: RedisServer(d, appendfsync="everysec")))(data_dir / "redis")
    server.start()
    messages = [m for i in range(plan.copies) for m in read_twcs(plan.csv, id_prefix=f"c{i}-")]
    settings = _settings(server.url, data_dir)
    suite = await ChildProcessSuite.start(settings, workers=plan.workers, log_dir=str(data_dir / "logs"))
    supervisor = asyncio.create_task(suite.supervise())
    kills: dict[str, int] = {}
    killer = asyncio.create_task(_kill_at_random(suite, server, rng, plan.kill_every, kills))
    started = time.monotonic()
    try:
        acked = await _send_all(settings, messages, plan.batch)
        await asyncio.sleep(max(0.0, plan.chaos_seconds - (time.monotonic() - started)))
        killer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await killer
        if server.process is None or server.process.poll() is not None:
            server.start()
        drained = await _drain(settings, plan.drain_timeout)
        report = await measure(settings, messages, acked, Path(settings.dispatch_log_path))
        report.kills, report.drained = kills, drained
        report.seconds = round(time.monotonic() - started, 1)
        return report
    finally:
        killer.cancel()
        suite.stop()
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor
        server.stop()


def _settings(redis_url: str, data_dir: Path) -> Settings:
    """Settings for a suite of its own: free ports, its own key prefix, the log adapter in the run's folder,
    and a short claim idle time so a killed process's work is taken over within seconds."""
    overrides = {
        "PARLEY_CLAIM_IDLE_MS": "3000",
        "PARLEY_DISPATCH_LOG_PATH": str(data_dir / "outbox.log"),
        "PARLEY_DISPATCH_DEFAULT_ADAPTER": "log",
        "PARLEY_INBOUND_MAX_BACKLOG": "0",
    }
    os.environ.update(overrides)  # the children inherit them
    # No /metrics: the children's metrics ports would be the fixed ones of a suite that may be running.
    # The run's own secret (for the children's internal tokens), and a token that may ingest for the sender.
    secret = secrets.token_urlsafe(48)
    base = Settings(
        redis_url=redis_url,
        key_prefix=f"chaos{int(time.time())}",
        webhook_port=free_port(),
        metrics_port=0,
        auth_jwt_secret=secret,
        auth_token=mint(secret, "parley-chaos", [INGEST], ttl=24 * 3600),
    )
    return replace_ports(base, {name: free_port() for name in SERVICES})


async def _kill_at_random(
    suite: ChildProcessSuite, server: RedisServer, rng: random.Random, every: float, kills: dict[str, int]
) -> None:
    """SIGKILL the children and the Redis server in a random order, every one in each round, at random
    intervals; the supervisor restarts children, and the Redis server is started again here."""
    targets: list[str] = []
    while True:
        await asyncio.sleep(rng.expovariate(1 / every))
        if not targets:
            targets = [*sorted(suite.processes), "redis"]
            rng.shuffle(targets)
        target = targets.pop()
        kills[target] = kills.get(target, 0) + 1
        if target == "redis":
            server.kill()
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            await asyncio.to_thread(server.start, 60.0)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(suite.processes[target].pid, signal.SIGKILL)
        log.warning("chaos: killed %s", target)


async def _send_all(settings: Settings, messages: list[common_pb2.InboundMessage], batch: int) -> set[str]:
    """Ingest every message at least once: a batch that gets no answer is sent again until it does. Returns
    the platform ids the suite acknowledged (accepted, or a duplicate of an accepted one)."""
    acked: set[str] = set()
    ok = {ingestion_pb2.INGEST_STATUS_ACCEPTED, ingestion_pb2.INGEST_STATUS_DUPLICATE}
    for start in range(0, len(messages), batch):
        chunk = messages[start : start + batch]
        for attempt in range(10_000):
            try:
                async with channel(settings, settings.address("ingestion")) as ch:
                    answer = await ingestion_pb2_grpc.IngestionServiceStub(ch).Ingest(
                        ingestion_pb2.IngestRequest(messages=chunk), timeout=10
                    )
                acked |= {
                    m.platform_message_id
                    for m, r in zip(chunk, answer.results, strict=True)
                    if r.status in ok
                }
                break
            except grpc.aio.AioRpcError:
                await asyncio.sleep(min(0.1 * (attempt + 1), 2.0))
    return acked


async def _drain(settings: Settings, timeout: float) -> bool:
    """Wait until the inbound log holds nothing unprocessed (backlog and pending both zero)."""
    redis = connect(settings)
    inbound = InboundLog(settings, redis, keys_for(settings))
    deadline = time.monotonic() + timeout
    quiet = 0
    try:
        while time.monotonic() < deadline:
            try:
                empty = await inbound.backlog() == 0 and await inbound.pending_count() == 0
            except Exception:  # Redis still loading
                empty = False
            quiet = quiet + 1 if empty else 0
            if quiet >= 5:  # settled for a while: the dispatch loop has caught up as well
                return True
            await asyncio.sleep(1.0)
        return False
    finally:
        await redis.aclose()
