"""One message, one trace: Ingest → inbound log → worker → Thread, Classify, Route, SendReply and
RecordOutcomes."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import aiohttp
import pytest
from log_kit import logged_entries
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from parley.cli import DEMO_FILE
from parley.clock import ManualClock
from parley.ingestion.inbound_log import InboundLog
from parley.ingestion.server import create_server
from parley.replay import read_twcs, replay
from parley.rpc import channel
from parley.suite import InProcessSuite
from parley.telemetry import tracing
from parley.v1 import ingestion_pb2, ingestion_pb2_grpc

X_SECRET = "x-consumer-secret-for-tracing"
STAGES = (
    "parley.v1.ConversationsService/Thread",
    "parley.v1.ClassifierService/Classify",
    "parley.v1.RouterService/Route",
    "parley.v1.DispatchService/SendReply",
    "parley.v1.ConversationsService/RecordOutcomes",
)


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.configure("parley-test", SimpleSpanProcessor(exporter))
    yield exporter
    tracing.shutdown()


async def test_one_message_gives_one_trace_through_every_hop(spans, settings, redis) -> None:
    suite = await InProcessSuite.start(settings, workers=1)
    try:
        question = [m for m in read_twcs(DEMO_FILE) if m.platform_message_id == "9001"]
        report = await replay(question, suite.settings, timeout=60)
        assert report.unfinished == [] and report.deliveries, "the password question gets a bot reply"
    finally:
        await suite.stop()

    finished = spans.get_finished_spans()
    by_id = {span.context.span_id: span for span in finished}
    ingest = next(
        s for s in finished if s.name == "parley.v1.IngestionService/Ingest" and s.kind == SpanKind.SERVER
    )
    trace = [s for s in finished if s.context.trace_id == ingest.context.trace_id]

    def ancestors(span):  # noqa: ANN001, ANN202
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            yield span

    pipeline = [s for s in trace if s.name == "pipeline process"]
    assert len(pipeline) == 1 and ingest in ancestors(pipeline[0])
    for stage in STAGES:
        servers = [s for s in trace if s.name == stage and s.kind == SpanKind.SERVER]
        assert len(servers) == 1, stage
        assert pipeline[0] in ancestors(servers[0]), stage
        assert servers[0].attributes["rpc.grpc.status_code"] == "OK"


async def test_with_tracing_off_nothing_is_carried_or_intercepted(settings, redis, keys) -> None:
    assert not tracing.enabled() and tracing.client_interceptors() == []
    suite = await InProcessSuite.start(settings, workers=0)
    try:
        async with channel(suite.settings, suite.address("ingestion")) as ch:
            await ingestion_pb2_grpc.IngestionServiceStub(ch).Ingest(
                ingestion_pb2.IngestRequest(messages=read_twcs(DEMO_FILE)[:3])
            )
        entries = await logged_entries(InboundLog(suite.settings, redis, keys))
        assert len(entries) == 3 and {e.traceparent for e in entries} == {""}
    finally:
        await suite.stop()


async def test_a_webhook_delivery_starts_the_trace_its_messages_carry(spans, settings, redis, keys) -> None:
    hooked = settings.model_copy(update={"webhook_x_consumer_secret": X_SECRET})
    running = await create_server(hooked, "127.0.0.1:0", clock=ManualClock())
    try:
        body = (Path(__file__).parents[1] / "ingestion" / "webhook_payloads" / "x_tweets.json").read_bytes()
        signature = base64.b64encode(hmac.new(X_SECRET.encode(), body, hashlib.sha256).digest()).decode()
        headers = {"Content-Type": "application/json", "x-twitter-webhooks-signature": f"sha256={signature}"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{running.webhook_port}/webhooks/x", data=body, headers=headers
            ) as reply,
        ):
            assert reply.status == 200
    finally:
        await running.stop(0)
    (webhook,) = [s for s in spans.get_finished_spans() if s.name == "POST /webhooks/x"]
    entries = await logged_entries(InboundLog(hooked, redis, keys))
    assert entries
    assert {e.traceparent.split("-")[1] for e in entries} == {format(webhook.context.trace_id, "032x")}


def test_with_an_otlp_endpoint_set_spans_are_exported_there(monkeypatch) -> None:
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    received: list[trace_service_pb2.ExportTraceServiceRequest] = []

    class Collector(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):  # noqa: ANN001, ANN201, N802 - the OTLP service's method
            received.append(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        tracing.configure("parley-ingestion")
        assert tracing.enabled()
        with tracing.webhook_span("meta"):
            pass
        tracing.shutdown()  # flushes the batch
    finally:
        server.stop(0)
    spans = [
        (resource.resource, span)
        for request in received
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert [span.name for _, span in spans] == ["POST /webhooks/meta"]
    attributes = {a.key: a.value.string_value for a in spans[0][0].attributes}
    assert attributes["service.name"] == "parley-ingestion"
