"""Figures read from Redis when Prometheus scrapes: the inbound log per partition, queues and agents per team.

prometheus-client calls `collect()` in its HTTP thread, so each scrape runs its reads on an event loop and
Redis client of its own (they are a handful of pipelined commands).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from parley import store
from parley.config import Settings
from parley.store import Redis


class _RedisCollector(Collector):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _read(self, reader: Callable[[Redis], Awaitable[list[GaugeMetricFamily]]]) -> list[GaugeMetricFamily]:
        async def run() -> list[GaugeMetricFamily]:
            redis = store.connect(self.settings)
            try:
                return await reader(redis)
            finally:
                await redis.aclose()

        return asyncio.run(run())


class PipelineCollector(_RedisCollector):
    """Backlog (entries not yet acked) and lag (age of the oldest of them) of each inbound-log partition."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._read(self._families)

    async def _families(self, redis: Redis) -> list[GaugeMetricFamily]:
        keys = store.keys_for(self.settings)
        streams = [keys.inbound_stream(p) for p in range(self.settings.stream_partitions)]
        async with redis.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xlen(stream)
                pipe.xrange(stream, count=1)
            pipe.llen(keys.namespaced("inbound-dead"))
            replies = await pipe.execute()
        backlog = GaugeMetricFamily(
            "parley_pipeline_backlog_entries",
            "Entries of the inbound log not yet through the pipeline (acked entries are deleted).",
            labels=["partition"],
        )
        lag = GaugeMetricFamily(
            "parley_pipeline_lag_seconds",
            "Age of the oldest entry not yet through the pipeline (0 when the partition is empty).",
            labels=["partition"],
        )
        now_ms = time.time() * 1000
        for partition in range(len(streams)):
            length, first = replies[2 * partition], replies[2 * partition + 1]
            backlog.add_metric([str(partition)], length)
            # A stream entry id starts with the millisecond it was appended.
            oldest = int(first[0][0].split(b"-")[0]) if first else now_ms
            lag.add_metric([str(partition)], max(0.0, (now_ms - oldest) / 1000))
        dead = GaugeMetricFamily(
            "parley_pipeline_dead_letter_entries", "Messages on the inbound dead-letter list."
        )
        dead.add_metric([], replies[-1])
        return [backlog, lag, dead]


class RouterCollector(_RedisCollector):
    """Per team queue depth, longest wait and SLA at risk (as ListQueues reports them); agents by presence."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._read(self._families)

    async def _families(self, redis: Redis) -> list[GaugeMetricFamily]:
        from parley.clock import SystemClock
        from parley.router.common import PRESENCES
        from parley.router.core import Router
        from parley.router.keys import RouterKeys

        router = Router(self.settings, redis, store.keys_for(self.settings), SystemClock())
        queues = await router.list_queues()
        depth = GaugeMetricFamily(
            "parley_queue_depth", "Conversations waiting in the queue.", labels=["team"]
        )
        wait = GaugeMetricFamily(
            "parley_queue_longest_wait_seconds",
            "How long the longest-waiting one has waited.",
            labels=["team"],
        )
        at_risk = GaugeMetricFamily(
            "parley_queue_sla_at_risk", "Waiting conversations close to their SLA target.", labels=["team"]
        )
        online = GaugeMetricFamily(
            "parley_queue_agents_online", "Agents online in the team.", labels=["team"]
        )
        for queue in queues:
            depth.add_metric([queue.team], queue.depth)
            wait.add_metric([queue.team], queue.oldest_wait_seconds)
            at_risk.add_metric([queue.team], queue.sla_at_risk)
            online.add_metric([queue.team], queue.agents_online)

        k = RouterKeys(store.keys_for(self.settings))
        agent_ids = sorted(await redis.smembers(k.agents()))
        async with redis.pipeline(transaction=False) as pipe:
            for agent_id in agent_ids:
                pipe.hget(k.agent(store.reply_text(agent_id)), "presence")
            presences = Counter((p or b"offline").decode() for p in await pipe.execute())
        agents = GaugeMetricFamily("parley_agents", "Known agents by presence.", labels=["presence"])
        for presence in PRESENCES:
            agents.add_metric([presence], presences.get(presence, 0))
        return [depth, wait, at_risk, online, agents]


def collectors_for(process: str, settings: Settings) -> list[Collector]:
    """What a process reports beyond its own counters: the log's state from ingestion, queues from router."""
    if process == "ingestion":
        return [PipelineCollector(settings)]
    if process == "router":
        return [RouterCollector(settings)]
    return []
