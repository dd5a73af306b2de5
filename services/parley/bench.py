"""`parley bench`: throughput and latency of the whole pipeline, against a bare gRPC baseline.

1. Baseline: a grpc.aio bidirectional stream (server in its own process) that echoes one InboundMessage per
   stream message and does no work; its msgs/s is the ceiling for one stream on this machine.
2. Saturation: N messages sent through Ingest as fast as the suite takes them; throughput is N over the time
   until the last one was routed (the router's `conversation.routed` event).
3. Latency: messages offered at a fixed rate in 10 ms ticks; each message's latency runs from the start of
   its Ingest call to the arrival of its `conversation.routed` event.
4. Soak (`--soak N`, instead of 3): N messages in saturation rounds (at most 20,000 each, at least 20 rounds),
   with the resident memory of every process and Redis's used memory read after each round; a process's memory
   is flat when the median of its last readings is within 10% of the median of its readings just after the
   first tenth of the run (caches and pools filled by then).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from redis.asyncio.cluster import RedisCluster

from parley.aio_types import Context
from parley.clock import to_timestamp
from parley.config import SERVICES, Settings
from parley.messages import message_id
from parley.ports import free_port, free_port_block
from parley.rpc import channel
from parley.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc

if TYPE_CHECKING:
    from parley.suite import ChildProcessSuite

ECHO_METHOD = "/parley.bench.Echo/Echo"

TEXTS = [
    "@brand my order #{n} still hasn't arrived, it's been two weeks",
    "@brand how do I reset my password?",
    "@brand thanks, the new app update is great!",
    "@brand someone logged into my account and changed my email, help",
    "@brand why was I charged twice for order {n}??",
    "@brand what time does check-in open for flight BA{n}?",
    "@brand lol who else is watching the game tonight",
    "@brand the app keeps crashing when I open my basket",
]


def synthetic_messages(count: int, run: str) -> list[common_pb2.InboundMessage]:
    """Distinct public X messages from many customers to one brand."""
    now = time.time()
    return [
        common_pb2.InboundMessage(
            channel=common_pb2.CHANNEL_X,
            visibility=common_pb2.VISIBILITY_PUBLIC,
            platform_message_id=f"{run}-{i}",
            brand_account_id="brand",
            author=common_pb2.Author(
                id=f"{run}-u{i % 997}", handle=f"customer{i % 997}", follower_count=i % 5000
            ),
            text=TEXTS[i % len(TEXTS)].format(n=100000 + i),
            sent_at=to_timestamp(now),
            direction=common_pb2.DIRECTION_INBOUND,
        )
        for i in range(count)
    ]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


# --- baseline --------------------------------------------------------------------------------------------


async def serve_echo(port: int) -> None:
    """A grpc.aio server whose one bidi method echoes each InboundMessage back."""

    async def echo(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
        async for request in requests:
            yield request

    handler = grpc.method_handlers_generic_handler(
        "parley.bench.Echo",
        {
            "Echo": grpc.stream_stream_rpc_method_handler(
                echo,
                request_deserializer=common_pb2.InboundMessage.FromString,
                response_serializer=common_pb2.InboundMessage.SerializeToString,
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def baseline(count: int = 20000) -> float:
    """Messages per second through a bare echo stream, server in a child process."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import asyncio; from parley.bench import serve_echo; asyncio.run(serve_echo({port}))",
        ]
    )
    try:
        message = synthetic_messages(1, "echo")[0]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            await asyncio.wait_for(ch.channel_ready(), 30)
            call = ch.stream_stream(
                ECHO_METHOD,
                request_serializer=common_pb2.InboundMessage.SerializeToString,
                response_deserializer=common_pb2.InboundMessage.FromString,
            )()

            async def write() -> None:
                for _ in range(count):
                    await call.write(message)
                await call.done_writing()

            start = time.perf_counter()
            writer = asyncio.create_task(write())
            received = 0
            async for _ in call:
                received += 1
            await writer
            return received / (time.perf_counter() - start)
    finally:
        proc.terminate()
        proc.wait(10)


# --- the suite --------------------------------------------------------------------------------------------


class RoutedWatcher:
    """Follows `conversation.routed` events and notes when each message id was routed."""

    def __init__(self, stub: ingestion_pb2_grpc.IngestionServiceAsyncStub) -> None:
        self.routed_at: dict[str, float] = {}
        self._call = stub.WatchEvents(
            ingestion_pb2.WatchEventsRequest(types=["conversation.routed"], batched=True)
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._call.initial_metadata()
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        async for reply in self._call:
            now = time.perf_counter()
            for event in reply.events:
                self.routed_at.setdefault(event.message_id, now)

    async def wait_for(self, ids: set[str], timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while not ids <= self.routed_at.keys():
            if time.perf_counter() > deadline:
                missing = len(ids - self.routed_at.keys())
                raise TimeoutError(f"{missing} messages not routed within {timeout}s")
            await asyncio.sleep(0.02)

    def stop(self) -> None:
        self._call.cancel()


async def saturation(
    stub: ingestion_pb2_grpc.IngestionServiceAsyncStub, watcher: RoutedWatcher, count: int
) -> dict[str, float]:
    messages = synthetic_messages(count, f"sat{uuid.uuid4().hex[:6]}")
    ids = {message_id(m.channel, m.platform_message_id) for m in messages}
    batches = [messages[i : i + 250] for i in range(0, len(messages), 250)]
    start = time.perf_counter()
    queue: asyncio.Queue[list[common_pb2.InboundMessage]] = asyncio.Queue()
    for item in batches:
        queue.put_nowait(item)

    async def sender() -> None:
        while not queue.empty():
            await stub.Ingest(ingestion_pb2.IngestRequest(messages=queue.get_nowait()), timeout=60)

    await asyncio.gather(*(sender() for _ in range(4)))
    acked = time.perf_counter()
    await watcher.wait_for(ids, timeout=max(120.0, count / 50))
    routed = max(watcher.routed_at[i] for i in ids)
    return {
        "saturation_messages": count,
        "ingest_acked_msgs_per_s": count / (acked - start),
        "saturation_routed_msgs_per_s": count / (routed - start),
    }


async def fixed_rate(
    stub: ingestion_pb2_grpc.IngestionServiceAsyncStub, watcher: RoutedWatcher, rate: float, duration: float
) -> dict[str, float]:
    tick = 0.01
    total = int(rate * duration)
    messages = synthetic_messages(total, f"lat{uuid.uuid4().hex[:6]}")
    sent_at: dict[str, float] = {}
    pending: list[asyncio.Task[Any]] = []
    start = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        if due > sent:
            chunk = messages[sent:due]
            now = time.perf_counter()
            for m in chunk:
                sent_at[message_id(m.channel, m.platform_message_id)] = now
            pending.append(
                asyncio.ensure_future(stub.Ingest(ingestion_pb2.IngestRequest(messages=chunk), timeout=60))
            )
            sent = due
        await asyncio.sleep(tick)
    await asyncio.gather(*pending)
    offered_seconds = time.perf_counter() - start
    await watcher.wait_for(set(sent_at), timeout=max(120.0, duration * 10))
    latencies = [(watcher.routed_at[i] - t) * 1000 for i, t in sent_at.items()]
    return {
        "offered_rate_msgs_per_s": rate,
        "achieved_rate_msgs_per_s": total / offered_seconds,
        "latency_p50_ms": percentile(latencies, 0.50),
        "latency_p99_ms": percentile(latencies, 0.99),
        "latency_max_ms": max(latencies),
    }


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds a process has used so far (Linux /proc; None elsewhere or once gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_Reading = TypeVar("_Reading", int, float)


async def _suite_and_redis(
    suite: ChildProcessSuite,
    settings: Settings,
    of_process: Callable[[int], _Reading | None],
    section: str,
    of_node: Callable[[dict[str, Any]], _Reading],
    replicas_too: bool,
) -> dict[str, _Reading]:
    """A reading of each child process of the suite (by pid; gone ones left out) and of Redis: INFO `section`
    of every master (and replica when `replicas_too`), summed."""
    from parley.store import connect

    out = {}
    for name, process in suite.processes.items():
        value = of_process(process.pid)
        if value is not None:
            out[name] = value
    redis = connect(settings)
    try:
        if isinstance(redis, RedisCluster):
            nodes = RedisCluster.ALL_NODES if replicas_too else RedisCluster.PRIMARIES
            per_node = list((await redis.info(section, target_nodes=nodes)).values())
        else:
            per_node = [await redis.info(section)]
        out["redis"] = sum(of_node(info) for info in per_node)
    finally:
        await redis.aclose()
    return out


async def cpu_seconds(suite: ChildProcessSuite, settings: Settings) -> dict[str, float]:
    """CPU seconds used so far by each child process of the suite, by Redis (its INFO) and by this client.
    Read before and after a run, it gives CPU per message, which other work on the machine barely moves
    (unlike wall time). On a cluster every node counts, replicas too: they replay each write."""
    out = await _suite_and_redis(
        suite,
        settings,
        process_cpu_seconds,
        "cpu",
        lambda info: float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
        replicas_too=True,
    )
    times = os.times()
    out["bench client"] = times.user + times.system
    return out


def process_rss_bytes(pid: int) -> int | None:
    """Resident memory of a process (Linux /proc; None elsewhere or once gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


async def memory_bytes(suite: ChildProcessSuite, settings: Settings) -> dict[str, int]:
    """Resident memory of each child process of the suite, and Redis's used memory (every master summed)."""
    return await _suite_and_redis(
        suite,
        settings,
        process_rss_bytes,
        "memory",
        lambda info: int(info["used_memory"]),
        replicas_too=False,
    )


FLAT_WITHIN = 0.10


async def soak(
    suite: ChildProcessSuite,
    settings: Settings,
    stub: ingestion_pb2_grpc.IngestionServiceAsyncStub,
    watcher: RoutedWatcher,
    total: int,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """`total` messages in saturation rounds, memory read after each. Redis grows with what it stores (the
    conversations are kept), so it is reported per message rather than judged flat."""
    round_size = min(20000, max(500, total // 20))
    rounds = max(1, -(-total // round_size))
    samples: list[dict[str, int]] = []
    rates: list[float] = []
    sent = 0
    for _ in range(rounds):
        size = min(round_size, total - sent)
        rates.append((await saturation(stub, watcher, size))["saturation_routed_msgs_per_s"])
        watcher.routed_at.clear()  # the client's own memory stays flat too
        sent += size
        samples.append(await memory_bytes(suite, settings) | {"messages": sent})
        say(f"soak: {sent}/{total} messages, {rates[-1]:.0f} msgs/s")
    return {
        "soak_messages": sent,
        "soak_msgs_per_s_first_last_round": [round(rates[0], 1), round(rates[-1], 1)],
        **memory_report(samples),
    }


def memory_report(samples: list[dict[str, int]]) -> dict[str, Any]:
    """Judge a soak's memory readings (one per round, each with its running `messages` count): every process
    by the median of its readings just after the first tenth of the rounds against the median of its last
    readings (a fifth of the settled rounds each), so a process that swings from round to round without a
    trend is not judged by where one reading happened to land; Redis as bytes stored per message."""
    settle = max(0, len(samples) // 10 - 1)
    window = max(1, (len(samples) - settle) // 5)
    early, late = samples[settle : settle + window], samples[-window:]
    processes = {}
    for name in set().union(*early) - {"messages", "redis"}:
        if any(name not in s for s in late):
            continue  # a process that died shows in the run's other figures, not as a memory change
        # A process restarted during an early round has no reading for it: the others judge it.
        settled = statistics.median(s[name] for s in early if name in s)
        end = statistics.median(s[name] for s in late)
        readings = [s[name] for s in samples[settle:] if name in s]
        change = (end - settled) / settled
        processes[name] = {
            "rss_mb_settled": round(settled / 2**20, 1),
            "rss_mb_end": round(end / 2**20, 1),
            "rss_mb_range": [round(min(readings) / 2**20, 1), round(max(readings) / 2**20, 1)],
            "change": round(change, 4),
            "flat": abs(change) <= FLAT_WITHIN,
        }
    last = samples[-1]
    stored = max(1, last["messages"] - samples[0]["messages"])
    return {
        "soak_settled_after_messages": samples[settle]["messages"],
        "soak_judged_over_rounds": window,
        "soak_memory": dict(sorted(processes.items())),
        "soak_all_flat": all(p["flat"] for p in processes.values()),
        "soak_redis_mb_end": round(last["redis"] / 2**20, 1),
        "soak_redis_bytes_per_message": round((last["redis"] - samples[0]["redis"]) / stored, 1),
        "soak_samples": samples,
    }


async def drop_namespace(settings: Settings) -> None:
    """Remove every key the benchmark wrote, so a shared Redis keeps nothing of it."""
    from parley.store import connect, drop_namespace

    redis = connect(settings)
    try:
        await drop_namespace(redis, settings.key_prefix)
    finally:
        await redis.aclose()


async def run_bench(
    settings: Settings,
    count: int,
    rate: float,
    duration: float,
    workers: int,
    progress: bool = True,
    soak_messages: int = 0,
    replicas: int = 1,
) -> dict[str, Any]:
    from parley.suite import ChildProcessSuite, ReplicaPorts, with_replicas

    def say(text: str) -> None:
        if progress:
            print(text, file=sys.stderr, flush=True)

    say("baseline: bare grpc.aio echo stream ...")
    base = await baseline()
    # Every listening port its own, so a bench runs beside a local suite or another bench.
    ports = {f"{name}_port": free_port() for name in SERVICES} | {
        "webhook_port": free_port(),
        "console_port": free_port(),
        "metrics_port": free_port_block(len(SERVICES) + workers),
    }
    settings = settings.model_copy(
        update=ports | {f"{n}_addr": "" for n in SERVICES} | {"key_prefix": f"bench{uuid.uuid4().hex[:8]}"}
    )
    more = [
        ReplicaPorts({n: free_port() for n in SERVICES}, free_port_block(len(SERVICES)), free_port())
        for _ in range(replicas - 1)
    ]
    settings = with_replicas(settings, more)
    say(f"starting the suite ({workers} workers, {replicas} of each service) ...")
    suite = await ChildProcessSuite.start(
        settings, workers=workers, log_dir=".parley/bench-logs", replicas=more
    )
    try:
        async with channel(settings, settings.address("ingestion")) as ch:
            stub = ingestion_pb2_grpc.IngestionServiceStub(ch)
            watcher = RoutedWatcher(stub)
            await watcher.start()
            say("warm-up ...")
            await saturation(stub, watcher, 500)
            say(f"saturation: {count} messages ...")
            cpu_before = await cpu_seconds(suite, settings)
            result: dict[str, Any] = await saturation(stub, watcher, count)
            cpu_after = await cpu_seconds(suite, settings)
            result["cpu_ms_per_message"] = {
                name: round((cpu_after[name] - cpu_before[name]) * 1000 / count, 4)
                for name in cpu_before
                if name in cpu_after
            }
            if soak_messages:
                result |= await soak(suite, settings, stub, watcher, soak_messages, say=say)
            else:
                say(f"latency: {rate:.0f} msgs/s for {duration:.0f}s ...")
                result |= await fixed_rate(stub, watcher, rate, duration)
            watcher.stop()
    finally:
        suite.stop()
        await drop_namespace(settings)
    result["baseline_echo_msgs_per_s"] = base
    result["suite_to_baseline_ratio"] = result["saturation_routed_msgs_per_s"] / base
    result["workers"] = workers
    result["replicas"] = replicas
    result["redis"] = "cluster" if settings.redis_cluster else "single node"
    if settings.redis_cluster:
        result["replica_wait_ms"] = settings.redis_replica_wait_ms
    return result
