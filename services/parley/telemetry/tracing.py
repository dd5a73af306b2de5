"""One trace per message: W3C trace context on every gRPC call and inside each inbound-log entry.

Tracing is off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set (or a test installs an exporter): then no
interceptor is installed on client channels and the server interceptor skips spans, so it costs nothing.
The tracer provider is kept here rather than as OpenTelemetry's process-wide global, which can be set only
once per process and so could not be swapped by tests.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from parley.aio_types import with_metadata

TRACEPARENT = "traceparent"
_propagator = TraceContextTextMapPropagator()
_tracer: trace.Tracer | None = None
_provider: Any = None


def enabled() -> bool:
    return _tracer is not None


def configure(service_name: str, span_processor: Any = None) -> None:
    """Turn tracing on for this process, exporting to `span_processor` or, by default, over OTLP to
    `OTEL_EXPORTER_OTLP_ENDPOINT`; with neither, tracing stays off."""
    global _tracer, _provider
    if span_processor is None:
        if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            return
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        span_processor = BatchSpanProcessor(OTLPSpanExporter())  # reads the OTEL_EXPORTER_OTLP_* variables
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    _provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    _provider.add_span_processor(span_processor)
    _tracer = _provider.get_tracer("parley")


def shutdown() -> None:
    """Flush the spans still buffered and turn tracing off."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def current_traceparent() -> str:
    """The W3C `traceparent` of the current span ("" when tracing is off or no span is current)."""
    if _tracer is None:
        return ""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT, "")


@contextlib.contextmanager
def pipeline_span(traceparents: Sequence[str], messages: int) -> Iterator[None]:
    """The worker's span for one batch: a child of the first entry's trace, linked to the others' traces.

    A batch usually comes from one Ingest call (one trace); when it mixes traces, each other trace still
    reaches this batch through its link.
    """
    if _tracer is None:
        yield
        return
    contexts = [_propagator.extract({TRACEPARENT: tp}) for tp in dict.fromkeys(traceparents) if tp]
    parent = contexts[0] if contexts else None
    links = [trace.Link(trace.get_current_span(c).get_span_context()) for c in contexts[1:]]
    with _tracer.start_as_current_span(
        "pipeline process",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        links=links,
        attributes={"messaging.batch.message_count": messages},
    ):
        yield


@contextlib.contextmanager
def server_span(method: str, metadata: Any) -> Iterator[trace.Span | None]:
    """A SERVER span for one call, continuing the caller's trace from its `traceparent` metadata."""
    if _tracer is None:
        yield None
        return
    carrier = {k: v for k, v in (metadata or ()) if k == TRACEPARENT and isinstance(v, str)}
    service, _, name = method.lstrip("/").rpartition("/")
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
    with _tracer.start_as_current_span(
        method.lstrip("/"),
        context=_propagator.extract(carrier),
        kind=trace.SpanKind.SERVER,
        attributes=attributes,
    ) as span:
        yield span


@contextlib.contextmanager
def webhook_span(network: str) -> Iterator[None]:
    """A SERVER span for a network's webhook delivery: the root of its messages' traces."""
    if _tracer is None:
        yield
        return
    attributes = {"http.request.method": "POST", "url.path": f"/webhooks/{network}"}
    with _tracer.start_as_current_span(
        f"POST /webhooks/{network}", kind=trace.SpanKind.SERVER, attributes=attributes
    ):
        yield


class _ClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """A CLIENT span around each unary call, its context sent along as `traceparent` metadata."""

    async def intercept_unary_unary(
        self,
        continuation: Callable[
            [grpc.aio.ClientCallDetails, Any], Awaitable[grpc.aio.UnaryUnaryCall[Any, Any]]
        ],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> grpc.aio.UnaryUnaryCall[Any, Any]:
        if _tracer is None:
            return await continuation(client_call_details, request)
        method = client_call_details.method
        method = method.decode() if isinstance(method, bytes) else method
        with _tracer.start_as_current_span(method.lstrip("/"), kind=trace.SpanKind.CLIENT) as span:
            carrier: dict[str, str] = {}
            _propagator.inject(carrier)
            metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()))
            metadata.add(TRACEPARENT, carrier[TRACEPARENT])
            call = await continuation(with_metadata(client_call_details, metadata), request)
            code = await call.code()
            if code != grpc.StatusCode.OK:
                span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))
            return call


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Interceptors for a new client channel: none when tracing is off."""
    return [_ClientInterceptor()] if _tracer is not None else []


def ids() -> tuple[str, str]:
    """(trace id, span id) of the current span in hex, or ("", "") outside any recorded span."""
    if _tracer is None:
        return "", ""
    ctx = trace.get_current_span(otel_context.get_current()).get_span_context()
    if not ctx.is_valid:
        return "", ""
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
