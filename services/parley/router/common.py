"""What every part of the router shares: limits, the name of a capacity reservation, and the decoding of
what Redis returns."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from parley.v1 import router_pb2

PRESENCES = ("online", "away", "offline")
FEED_MAXLEN = 1000
# Capacity held for a claim in flight is a member of the agent's active set named "reserving:<at>:<id>".
RESERVING = "reserving:"
# A state field per Route decision whose effects are not written yet ("pending:<message id>" = decided at).
PENDING = "pending:"
ROUTE_ATTEMPTS = 5
CLAIM_ATTEMPTS = 20
ASSIGN_CONCURRENCY = 32
DRAIN_PER_TEAM = 200
AUDIT_CANDIDATES = 20

log = logging.getLogger(__name__)


def as_float(text: str) -> float:
    """A number written by this module, 0 for anything else (an entry from before times were written)."""
    try:
        return float(text)
    except ValueError:
        return 0.0


def text_of(value: Any) -> str:
    """A value Redis returned, as text; a missing one (None) is empty, never "None"."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def bytes_of(value: Any) -> bytes:
    """A value Redis returned, as bytes (a protobuf message, say)."""
    return value if isinstance(value, bytes) else str(value).encode()


def decode_hash(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {text_of(k): text_of(v) for k, v in raw.items()}


def flat(fields: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for name, value in fields.items():
        out += [name, str(value)]
    return out


def moved_to(item: router_pb2.RouteItem, conversation_id: str) -> router_pb2.RouteItem:
    moved = router_pb2.RouteItem()
    moved.CopyFrom(item)
    moved.conversation_id = conversation_id
    return moved
