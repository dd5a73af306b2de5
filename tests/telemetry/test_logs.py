"""JSON log lines: one object per line, with the trace and the ids a call site passes."""

from __future__ import annotations

import json
import logging

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from parley.telemetry import logs, tracing


def record(message: str, **extra: object) -> logging.LogRecord:
    return logging.getLogger("parley.test").makeRecord(
        "parley.test", logging.WARNING, __file__, 1, message, (), None, extra=extra
    )


def test_a_json_line_carries_level_logger_and_the_ids_given() -> None:
    line = logs.JsonFormatter("worker-0").format(
        record("dead-lettering\nsecond line", message_id="x:1", conversation_id="cv-1")
    )
    assert "\n" not in line
    out = json.loads(line)
    assert out["level"] == "WARNING" and out["logger"] == "parley.test" and out["process"] == "worker-0"
    assert (out["message_id"], out["conversation_id"]) == ("x:1", "cv-1")
    assert out["message"] == "dead-lettering\nsecond line" and "trace_id" not in out


def test_inside_a_traced_call_the_line_names_its_trace() -> None:
    exporter = InMemorySpanExporter()
    tracing.configure("parley-test", SimpleSpanProcessor(exporter))
    try:
        with tracing.server_span("/parley.v1.IngestionService/Ingest", []):
            line = json.loads(logs.JsonFormatter().format(record("accepted")))
            traceparent = tracing.current_traceparent()
    finally:
        tracing.shutdown()
    assert traceparent.split("-")[1] == line["trace_id"]
    (span,) = exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == line["trace_id"]


def test_configure_chooses_the_format(capsys) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        logs.configure("json", verbose=True, process_name="router")
        logging.getLogger("parley.router").info("policy reloaded", extra={"stage": "tick"})
        out = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert (out["message"], out["process"], out["stage"], out["level"]) == (
            "policy reloaded",
            "router",
            "tick",
            "INFO",
        )
        logs.configure("text", verbose=False)
        logging.getLogger("parley.router").info("not shown at WARNING")
        assert "not shown" not in capsys.readouterr().err
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_a_text_line_cannot_be_broken_or_forged_by_a_logged_value() -> None:
    record = logging.LogRecord("parley.test", logging.WARNING, __file__, 1, "refused id %s", None, None)
    record.args = ("x:1\n2026-01-01 parley ERROR forged\x1b[31m",)
    line = logs.TextFormatter().format(record)
    assert "\n" not in line and "\x1b" not in line
    assert "x:1\\x0a2026-01-01 parley ERROR forged\\x1b[31m" in line
