"""The suite's Prometheus metrics, the interceptor that measures every gRPC call, and `/metrics`.

Counters and histograms live in prometheus-client's default registry and are updated where things happen.
Figures that live in Redis (the inbound log's backlog, the router's queues and agents) are read when
Prometheus scrapes, by the collectors in `parley.telemetry.collectors`, so nothing polls Redis when nobody
looks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, Info, start_http_server
from prometheus_client.registry import Collector

from parley.aio_types import Context, Handler, Unary, WrappingInterceptor, same_kind
from parley.telemetry import tracing

# The names of the go-grpc-prometheus convention, so existing gRPC dashboards and alerts apply.
CONSOLE_REQUESTS = Counter(
    "parley_console_requests_total", "Console HTTP requests by route pattern and status.", ["route", "status"]
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "gRPC calls completed by the server, by method and status code.",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
)
GRPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time the server took to complete a gRPC call (streams: until the stream ended).",
    ["grpc_type", "grpc_service", "grpc_method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

PIPELINE_MESSAGES = Counter(
    "parley_pipeline_messages_total", "Messages the pipeline worker took through each stage.", ["stage"]
)
PIPELINE_DEAD_LETTERS = Counter(
    "parley_pipeline_dead_letters_total",
    "Messages set aside because a stage refused them outright, by partition and stage.",
    ["partition", "stage"],
)
PIPELINE_BATCH_SECONDS = Histogram(
    "parley_pipeline_batch_seconds",
    "Time to take one batch of the inbound log through every stage.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CLASSIFIED = Counter("parley_classifier_messages_total", "Messages classified, by intent.", ["intent"])
BOT_ANSWERS = Counter(
    "parley_classifier_bot_answers_total",
    "The bot's verdict on each classified message: answered, or abstained with the reason.",
    ["outcome", "reason"],
)
REPLICA_CONFIRMATIONS = Counter(
    "parley_redis_replica_confirmations_total",
    "On a Redis Cluster, each master's answer to a call's wait for a replica: confirmed; late (a live "
    "replica confirmed only after further waits); timed_out (no live replica: the call went on); refused "
    "(a live replica did not catch up: the call failed, to be retried).",
    ["outcome"],
)
MODEL = Info("parley_classifier_model", "The classifier's model version in service.")


def count_triage(results: Iterable[Any]) -> None:
    """Intent mix and the bot's answers of one classified batch (`parley.classifier.model.Triage`)."""
    intents: collections.Counter[str] = collections.Counter()
    bot: collections.Counter[tuple[str, str]] = collections.Counter()
    for t in results:
        intents[t.intent] += 1
        bot[
            ("abstained", t.bot_answer.reason or "unknown") if t.bot_answer.abstained else ("answered", "")
        ] += 1
    for intent, n in intents.items():
        CLASSIFIED.labels(intent).inc(n)
    for labels, n in bot.items():
        BOT_ANSWERS.labels(*labels).inc(n)


_KINDS = (
    ("unary_unary", "unary"),
    ("unary_stream", "server_stream"),
    ("stream_unary", "client_stream"),
    ("stream_stream", "bidi_stream"),
)


class ObservingInterceptor(WrappingInterceptor):
    """Counts and times every call by method and status code, and opens its server span when tracing."""

    def wrap(self, handler: Handler, method: str) -> Handler:
        return _observe(handler, method)


def _observe(handler: Handler, method: str) -> Handler:
    service, _, name = method.lstrip("/").rpartition("/")
    for attribute, kind in _KINDS:
        behavior = getattr(handler, attribute)
        if behavior is None:
            continue
        streaming = attribute.endswith("_stream")
        if streaming and not inspect.isasyncgenfunction(behavior):
            return handler  # writes through context.write: left as it is
        wrap = _observed_stream if streaming else _observed_unary
        return same_kind(handler, wrap(behavior, (kind, service, name), method))
    return handler


def _code_of(context: Context, error: BaseException | None) -> str:
    code = context.code()
    if code is None:
        if isinstance(error, asyncio.CancelledError | GeneratorExit):  # the client went away mid-call
            return "CANCELLED"
        return "OK" if error is None else "UNKNOWN"
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


@contextlib.contextmanager
def _observing(labels: tuple[str, str, str], method: str, context: Context) -> Iterator[None]:
    """Time one call, count it under its final status code, and hold its server span while tracing."""
    start = time.perf_counter()
    error: BaseException | None = None
    metadata = context.invocation_metadata() if tracing.enabled() else None
    with tracing.server_span(method, metadata) as span:
        try:
            yield
        except BaseException as caught:
            error = caught
            raise
        finally:
            _record(labels, start, _code_of(context, error), span)


def _observed_unary(behavior: Unary, labels: tuple[str, str, str], method: str) -> Unary:
    async def observed(request: Any, context: Context) -> Any:
        with _observing(labels, method, context):
            return await behavior(request, context)

    return observed


def _observed_stream(
    behavior: Callable[[Any, Context], AsyncIterator[Any]], labels: tuple[str, str, str], method: str
) -> Callable[[Any, Context], AsyncIterator[Any]]:
    async def observed(request: Any, context: Context) -> AsyncIterator[Any]:
        with _observing(labels, method, context):
            async for response in behavior(request, context):
                yield response

    return observed


def _record(labels: tuple[str, str, str], start: float, code: str, span: Any) -> None:
    GRPC_SECONDS.labels(*labels).observe(time.perf_counter() - start)
    GRPC_HANDLED.labels(*labels, code).inc()
    if span is not None:
        span.set_attribute("rpc.grpc.status_code", code)
        if code != "OK":
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR, code))


@dataclass
class MetricsServer:
    """`/metrics` served by prometheus-client's HTTP server in a background thread."""

    server: Any
    port: int

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_metrics(host: str, port: int, collectors: Iterable[Collector] = ()) -> MetricsServer:
    """Serve `/metrics` on host:port (0 picks a free port): the process's own metrics plus `collectors`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(REGISTRY)  # everything the process counted
    for collector in collectors:
        registry.register(collector)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, server.server_port)
