"""Whether the inbound log can take messages now: its backlog bound, and the Redis failures meaning "not now".

Both front doors (gRPC and the webhooks) ask the same questions and answer a caller the same way: a full
backlog is RESOURCE_EXHAUSTED / HTTP 429, a Redis that is down, out of memory or a cluster without a reachable
node is UNAVAILABLE / HTTP 503, each with a hint to retry later. Nothing was accepted in either case, so the
caller's retry loses nothing, and de-duplication absorbs whatever a failure let through part-way.
"""

from __future__ import annotations

from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc import Status
from grpc_status import rpc_status

from parley.config import Settings
from parley.ingestion.inbound_log import InboundLog
from parley.rpc import STORE_UNAVAILABLE

# Failures that pass once Redis is back or has room again (a Redis at `maxmemory` included).
NOT_NOW = STORE_UNAVAILABLE


class BacklogFull(Exception):
    """The inbound log holds `backlog` unprocessed entries, at or over its bound."""

    def __init__(self, backlog: int, bound: int, retry_after: int) -> None:
        super().__init__(
            f"the inbound log holds {backlog} unprocessed messages (the bound is {bound}); "
            f"nothing was accepted, retry in {retry_after}s"
        )
        self.retry_after = retry_after


async def ensure_room(log: InboundLog, settings: Settings) -> None:
    """Raise BacklogFull when the log's backlog has reached `inbound_max_backlog` (0: never). The log is read
    again only when its recent upper bound does not already show room: a refusal always rests on a fresh
    reading, and a busy front door reads it a few times a second instead of once per request."""
    bound = settings.inbound_max_backlog
    if bound <= 0:
        return
    at_most = log.backlog_at_most()
    if at_most is not None and at_most < bound:
        return
    backlog = await log.backlog()
    if backlog >= bound:
        raise BacklogFull(backlog, bound, settings.inbound_retry_after_seconds)


def unavailable_message(error: Exception) -> str:
    """What a caller is told when Redis cannot take the messages now (the reason, never a class name)."""
    reason = str(error).strip() or "not reachable"
    return f"the inbound log is unavailable ({reason}); nothing was accepted, retry later"


def retry_status(code: int, message: str, retry_after: int) -> Status:
    """A gRPC status with a google.rpc.RetryInfo detail saying when to try again."""
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=retry_after)))
    return rpc_status.to_status(status_pb2.Status(code=code, message=message, details=[detail]))


def backlog_status(full: BacklogFull) -> Status:
    return retry_status(code_pb2.RESOURCE_EXHAUSTED, str(full), full.retry_after)


def unavailable_status(error: Exception, settings: Settings) -> Status:
    return retry_status(
        code_pb2.UNAVAILABLE, unavailable_message(error), settings.inbound_retry_after_seconds
    )
