"""Every process's `/metrics`, scraped over HTTP after real traffic through a real suite."""

from __future__ import annotations

import asyncio

import aiohttp
import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from parley.cli import DEMO_FILE
from parley.replay import read_twcs, replay
from parley.rpc import channel
from parley.suite import InProcessSuite
from parley.telemetry.collectors import collectors_for
from parley.telemetry.metrics import serve_metrics
from parley.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc, router_pb2, router_pb2_grpc


class Scrape:
    """One scrape of /metrics: sample values by name and labels."""

    def __init__(self, text: str) -> None:
        self.samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def value(self, name: str, **labels: str) -> float:
        found = [s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items()]
        return sum(found)

    def labels_of(self, name: str) -> list[dict[str, str]]:
        return [s.labels for s in self.samples if s.name == name]


async def scrape(port: int) -> Scrape:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain")
        return Scrape(await reply.text())


@pytest.fixture
async def observed(settings, redis):
    suite = await InProcessSuite.start(settings, workers=0)
    collectors = collectors_for("ingestion", suite.settings) + collectors_for("router", suite.settings)
    metrics = serve_metrics("127.0.0.1", 0, collectors)
    yield suite, metrics.port
    metrics.stop()
    await suite.stop()


async def test_metrics_after_the_demo_show_calls_stages_queues_agents_and_the_model(observed) -> None:
    suite, port = observed
    messages = read_twcs(DEMO_FILE)
    inbound = [m for m in messages if m.direction == common_pb2.DIRECTION_INBOUND]
    before = await scrape(port)

    async with channel(suite.settings, suite.address("router")) as ch:
        router = router_pb2_grpc.RouterServiceStub(ch)
        await router.SetPresence(
            router_pb2.SetPresenceRequest(
                agent_id="a1", presence=router_pb2.PRESENCE_ONLINE, teams=["technical"], capacity=1
            )
        )
        await router.SetPresence(
            router_pb2.SetPresenceRequest(agent_id="a2", presence=router_pb2.PRESENCE_AWAY, teams=["billing"])
        )
    async with channel(suite.settings, suite.address("ingestion")) as ch:
        with pytest.raises(grpc.aio.AioRpcError):
            await ingestion_pb2_grpc.IngestionServiceStub(ch).Ingest(ingestion_pb2.IngestRequest())
        raw = ch.unary_unary("/parley.v1.IngestionService/Ingest")  # bytes in, bytes out
        with pytest.raises(grpc.aio.AioRpcError) as garbled:
            await raw(b"\xff\xff\xff")  # not a protobuf message: refused before the servicer
        assert garbled.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    suite.add_worker("w1")
    report = await replay(messages, suite.settings, timeout=60)
    assert report.unfinished == []
    after = await scrape(port)

    def grown(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    ingest = {"grpc_service": "parley.v1.IngestionService", "grpc_method": "Ingest"}
    assert grown("grpc_server_handled_total", grpc_code="OK", **ingest) == 1  # 20 messages: one batch
    assert grown("grpc_server_handled_total", grpc_code="INVALID_ARGUMENT", **ingest) == 2
    assert grown("grpc_server_handling_seconds_count", **ingest) == 3
    assert grown("grpc_server_handled_total", grpc_method="Route", grpc_code="OK") >= 1
    assert grown("grpc_server_handled_total", grpc_method="SetPresence", grpc_code="OK") == 2

    assert grown("parley_pipeline_messages_total", stage="thread") == len(messages)
    assert grown("parley_pipeline_messages_total", stage="route") == len(inbound)
    assert grown("parley_classifier_messages_total") == len(inbound)
    assert grown("parley_classifier_messages_total", intent="urgent") >= 1
    assert grown("parley_classifier_bot_answers_total", outcome="answered") >= 2
    assert after.labels_of("parley_classifier_model_info")[0]["version"]

    # Figures read from Redis at scrape time: nothing left in the log, the queues as ListQueues has them.
    assert len(after.labels_of("parley_pipeline_backlog_entries")) == suite.settings.stream_partitions
    assert after.value("parley_pipeline_backlog_entries") == 0
    async with channel(suite.settings, suite.address("router")) as ch:
        queues = await router_pb2_grpc.RouterServiceStub(ch).ListQueues(router_pb2.ListQueuesRequest())
    assert sum(q.depth for q in queues.queues) > 0
    for queue in queues.queues:
        assert after.value("parley_queue_depth", team=queue.team) == queue.depth
        assert after.value("parley_queue_sla_at_risk", team=queue.team) == queue.sla_at_risk
    assert after.value("parley_agents", presence="online") == 1
    assert after.value("parley_agents", presence="away") == 1


async def test_backlog_and_lag_show_messages_waiting_for_a_worker(observed) -> None:
    suite, port = observed
    async with channel(suite.settings, suite.address("ingestion")) as ch:
        await ingestion_pb2_grpc.IngestionServiceStub(ch).Ingest(
            ingestion_pb2.IngestRequest(messages=read_twcs(DEMO_FILE))
        )
    await asyncio.sleep(0.05)
    waiting = await scrape(port)
    assert waiting.value("parley_pipeline_backlog_entries") == len(read_twcs(DEMO_FILE))
    assert max(s.value for s in waiting.samples if s.name == "parley_pipeline_lag_seconds") > 0
