"""`parley chaos`: the whole suite as separate processes on a Redis of its own (or a 3-master cluster with a
replica each), fed a twcs-layout file by an at-least-once client while agents take and resolve conversations,
and while every service, every worker and the Redis server (on a cluster: a master, whose replica takes over)
are SIGKILLed and started again at random; then it drains and counts, from what is in Redis and in the outbox
log, what was lost and what happened twice (`report.py`, `router_state.py`)."""

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
from typing import Any, Protocol

import grpc
from pydantic import SecretStr
from redis.exceptions import RedisError

from parley.auth import mint
from parley.authz import INGEST, SUPERVISOR
from parley.chaos.redis_server import RedisServer
from parley.chaos.report import Report, measure
from parley.chaos.router_state import router_effects
from parley.cluster import LocalCluster
from parley.config import SERVICES, Settings
from parley.ingestion.inbound_log import InboundLog
from parley.ports import free_port
from parley.replay import read_twcs
from parley.router.common import RESERVING
from parley.router.keys import RouterKeys
from parley.router.policy import load_policy
from parley.rpc import channel
from parley.store import connect, keys_for
from parley.suite import ChildProcessSuite, replace_ports
from parley.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc, router_pb2, router_pb2_grpc

log = logging.getLogger(__name__)


class ChaosRedis(Protocol):
    """What the run needs of its Redis: one server, or a cluster."""

    cluster: bool

    @property
    def url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    async def crash(self, rng: random.Random) -> str:
        """SIGKILL a Redis process and bring it back; returns what was killed."""
        ...

    def ensure_up(self) -> None: ...


class SingleRedis:
    """One `redis-server` with AOF: killed, then started again on the same port and data."""

    cluster = False

    def __init__(self, data_dir: Path) -> None:
        self.server = RedisServer(data_dir, appendfsync="everysec")

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    async def crash(self, rng: random.Random) -> str:
        self.server.kill()
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        await asyncio.to_thread(self.server.start, 60.0)
        return "redis"

    def ensure_up(self) -> None:
        if self.server.process is None or self.server.process.poll() is not None:
            self.server.start()


class ClusterRedis:
    """3 masters with a replica each, AOF on every node. A crash SIGKILLs a master, waits for its replica to
    take its slots over (cluster failover), then starts the killed node again: it rejoins as a replica."""

    cluster = True

    def __init__(self, data_dir: Path) -> None:
        self.nodes = LocalCluster(appendfsync="everysec", data_dir=data_dir)

    @property
    def url(self) -> str:
        """Every node: a process that starts while one of them is down connects through another."""
        return ",".join(f"redis://127.0.0.1:{node.port}/0" for node in self.nodes.nodes)

    def start(self) -> None:
        self.nodes.start()

    def stop(self) -> None:
        self.nodes.stop()

    async def crash(self, rng: random.Random) -> str:
        await asyncio.to_thread(self.nodes.wait_healthy, 120.0)  # the last crash fully healed
        victim = rng.choice(self.nodes.masters_now())
        self.nodes.kill(victim)
        await asyncio.to_thread(self.nodes.wait_for_failover, victim, 60.0)
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        await asyncio.to_thread(self.nodes.restart, victim)
        return "redis master"

    def ensure_up(self) -> None:
        for node in self.nodes.nodes:
            if node.process is None or node.process.poll() is not None:
                self.nodes.restart(node)
        self.nodes.wait_healthy(120.0)


RedisFactory = Callable[[Path], ChaosRedis]


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
    cluster: bool = False
    agents: int = 6  # online in every team, taking conversations and resolving them at random
    agent_capacity: int = 3
    resolve_every: float = 0.5  # mean seconds between two resolutions of one agent


async def run_chaos(plan: ChaosPlan, make_redis: RedisFactory | None = None) -> Report:
    rng = random.Random(plan.seed)
    data_dir = plan.data_dir / f"run-{int(time.time())}"
    default_redis: RedisFactory = ClusterRedis if plan.cluster else SingleRedis
    server = (make_redis or default_redis)(data_dir / "redis")
    await asyncio.to_thread(server.start)
    messages = [m for i in range(plan.copies) for m in read_twcs(plan.csv, id_prefix=f"c{i}-")]
    settings = _settings(server.url, data_dir, server.cluster)
    kills: dict[str, int] = {}
    suite: ChildProcessSuite | None = None
    tasks: list[asyncio.Task[None]] = []
    try:
        suite = await ChildProcessSuite.start(settings, workers=plan.workers, log_dir=str(data_dir / "logs"))
        agents = [f"chaos-agent-{n}" for n in range(plan.agents)]
        resolved = [0]
        desk_errors: dict[str, int] = {}
        started = time.monotonic()  # the suite is up: the chaos starts
        tasks = [
            asyncio.create_task(suite.supervise()),
            asyncio.create_task(_kill_at_random(suite, server, rng, plan.kill_every, kills)),
            asyncio.create_task(_desk(settings, agents, plan, plan.seed, resolved, desk_errors)),
        ]
        acked = await _send_all(settings, messages, plan.batch)
        await asyncio.sleep(max(0.0, plan.chaos_seconds - (time.monotonic() - started)))
        for task in tasks[1:]:  # the killer and the desk stop; the supervisor keeps restarting children
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(server.ensure_up)
        drained = await _drain(settings, plan.drain_timeout)
        await _agents_leave(settings, agents)
        settled = await _settle(settings, plan.drain_timeout)
        report = await measure(settings, messages, acked, Path(settings.dispatch_log_path))
        report.kills, report.drained = kills, drained and settled
        report.agents, report.resolved, report.desk_errors = len(agents), resolved[0], desk_errors
        report.redis = "cluster (3 masters, a replica each)" if server.cluster else "one server"
        report.seconds = round(time.monotonic() - started, 1)
        return report
    finally:
        for task in tasks:
            task.cancel()
        if suite is not None:
            suite.stop()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        server.stop()


def _settings(redis_url: str, data_dir: Path, cluster: bool = False) -> Settings:
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
        redis_cluster=cluster,
        key_prefix=f"chaos{int(time.time())}",
        webhook_port=free_port(),
        metrics_port=0,
        auth_jwt_secret=SecretStr(secret),
        auth_token=SecretStr(mint(secret, "parley-chaos", [INGEST, SUPERVISOR], ttl=24 * 3600)),
    )
    return replace_ports(base, {name: free_port() for name in SERVICES})


async def _kill_at_random(
    suite: ChildProcessSuite, server: ChaosRedis, rng: random.Random, every: float, kills: dict[str, int]
) -> None:
    """SIGKILL the children and Redis in a random order, every one in each round, at random intervals; the
    supervisor restarts children, and Redis (the server, or the killed cluster master) is started again
    here."""
    targets: list[str] = []
    while True:
        await asyncio.sleep(rng.expovariate(1 / every))
        if not targets:
            targets = [*sorted(suite.processes), "redis"]
            rng.shuffle(targets)
        target = targets.pop()
        if target == "redis":
            try:
                target = await server.crash(rng)
            except Exception as error:  # the kill schedule goes on; the report shows it
                log.warning("chaos: the Redis kill failed: %s: %s", type(error).__name__, error)
                target = f"redis kill failed ({type(error).__name__})"
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(suite.processes[target].pid, signal.SIGKILL)
        kills[target] = kills.get(target, 0) + 1
        log.warning("chaos: killed %s", target)


async def _desk(
    settings: Settings,
    agents: list[str],
    plan: ChaosPlan,
    seed: int,
    resolved: list[int],
    desk_errors: dict[str, int],
) -> None:
    """Agents online in every team (the router hands them conversations as they arrive and as they free
    up), each on their own resolving one of theirs at random intervals and now and then stepping away and
    back (their reopened conversations wait for them meanwhile)."""
    teams = [t.name for t in load_policy(settings.policy_file).teams]
    redis = connect(settings)
    try:
        await asyncio.gather(
            *(
                _agent_at_desk(
                    settings,
                    redis,
                    teams,
                    agent_id,
                    plan,
                    random.Random(f"{seed}:{agent_id}"),
                    resolved,
                    desk_errors,
                )
                for agent_id in agents
            )
        )
    finally:
        await redis.aclose()


async def _agent_at_desk(
    settings: Settings,
    redis: Any,
    teams: list[str],
    agent_id: str,
    plan: ChaosPlan,
    rng: random.Random,
    resolved: list[int],
    desk_errors: dict[str, int],
) -> None:
    """One agent's loop. Their conversations are read from their active set (`RouterKeys`); calls that fail
    while a process or Redis is down are counted and dropped: the next round tries again."""
    rk = RouterKeys(keys_for(settings))
    online = False
    while True:
        try:
            async with channel(settings, settings.address("router")) as ch:
                stub = router_pb2_grpc.RouterServiceStub(ch)
                while True:
                    if not online:
                        await stub.SetPresence(
                            router_pb2.SetPresenceRequest(
                                agent_id=agent_id,
                                presence=router_pb2.PRESENCE_ONLINE,
                                teams=teams,
                                capacity=plan.agent_capacity,
                            ),
                            timeout=5,
                        )
                        online = True
                    await asyncio.sleep(rng.expovariate(1 / plan.resolve_every))
                    if rng.random() < 0.05:
                        online = False
                        await stub.SetPresence(_away(agent_id), timeout=5)
                        continue
                    held = sorted(
                        c.decode()
                        for c in await redis.smembers(rk.active(agent_id))
                        if not c.startswith(RESERVING.encode())
                    )
                    if held:
                        conversation_id = rng.choice(held)
                        await stub.Resolve(
                            router_pb2.ResolveRequest(conversation_id=conversation_id, agent_id=agent_id),
                            timeout=5,
                        )
                        resolved[0] += 1
        except (grpc.aio.AioRpcError, RedisError, OSError) as error:  # a process or Redis down; moved
            kind = error.code().name if isinstance(error, grpc.aio.AioRpcError) else type(error).__name__
            desk_errors[kind] = desk_errors.get(kind, 0) + 1
            log.debug("chaos desk: %s", error)
            await asyncio.sleep(0.2)


def _away(agent_id: str) -> router_pb2.SetPresenceRequest:
    return router_pb2.SetPresenceRequest(agent_id=agent_id, presence=router_pb2.PRESENCE_AWAY)


async def _agents_leave(settings: Settings, agents: list[str], timeout: float = 120.0) -> None:
    """Every agent away, so nothing is assigned any more while the state is counted."""
    deadline = time.monotonic() + timeout
    left: set[str] = set()
    while len(left) < len(agents) and time.monotonic() < deadline:
        try:
            async with channel(settings, settings.address("router")) as ch:
                stub = router_pb2_grpc.RouterServiceStub(ch)
                for agent_id in agents:
                    if agent_id not in left:
                        await stub.SetPresence(_away(agent_id), timeout=5)
                        left.add(agent_id)
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.5)


async def _settle(settings: Settings, timeout: float) -> bool:
    """Wait until the router's loop has settled every claim in flight: no claim journal, no reservation (a
    dead claimer's are given back after `claim_idle_ms`). False if that does not happen within `timeout`."""
    redis = connect(settings)
    keys = keys_for(settings)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                effects = await router_effects(redis, keys)
                if not effects.claims_in_flight and not effects.reservations_left:
                    await asyncio.sleep(2 * settings.router_tick_seconds)  # a step in progress ends
                    return True
            except Exception:  # Redis still loading
                pass
            await asyncio.sleep(1.0)
        return False
    finally:
        await redis.aclose()


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
