"""Log output: human-readable lines (the default), or one JSON object per line for log collectors.

Each JSON line carries the trace and span ids of the current span when tracing is on, and the
`conversation_id` / `message_id` a call site passes with `extra=`. Message text and customer handles are never
logged at INFO (the call sites keep to ids).
"""

from __future__ import annotations

import json
import logging
import os
import time

from parley.telemetry import tracing

# Fields a call site may add with `extra={...}`, copied into the JSON object when present.
CONTEXT_FIELDS = ("conversation_id", "message_id", "partition", "stage", "service")


# Characters that could start a forged line or restyle a terminal (newlines, ANSI escapes): escaped.
_UNPRINTABLE = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, 0x85)} | {
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


class TextFormatter(logging.Formatter):
    """Human-readable lines; a logged value (a crafted id, say) cannot break a line or forge the next one:
    its control characters are shown escaped. JSON lines escape them by construction."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(name)s %(levelname)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's method name
        record.message = record.message.translate(_UNPRINTABLE)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    def __init__(self, process_name: str = "") -> None:
        super().__init__()
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.process_name:
            out["process"] = self.process_name
        trace_id, span_id = tracing.ids()
        if trace_id:
            out["trace_id"], out["span_id"] = trace_id, span_id
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value not in (None, ""):
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure(log_format: str, verbose: bool, process_name: str = "") -> None:
    """Set up the root logger: INFO when verbose, else WARNING; "json" or "text" lines on stderr."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter(process_name or f"parley-{os.getpid()}"))
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
