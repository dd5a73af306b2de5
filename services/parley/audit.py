"""The audit trail: an append-only Redis stream of every state-changing call made by a person (agent,
supervisor, admin), refused ones included, with who (token subject), what (method and the ids it named),
when and the outcome.

Each service's auth interceptor appends through `AuditTrail.record`; the conversations service owns the
trail and answers `ListAuditRecords`. The stream lives under its own key prefix (`<prefix>:audit:`) and is
trimmed to about `PARLEY_AUDIT_MAXLEN` entries as it is written. Message texts are never recorded.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any, cast

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from redis.typing import EncodableT, FieldT

from parley.clock import to_timestamp
from parley.store import Keys, Redis, StreamEntries
from parley.v1 import conversations_pb2

if TYPE_CHECKING:
    from parley.auth import Principal

log = logging.getLogger(__name__)

MAX_TARGETS = 50
MAX_VALUE_CHARS = 256
# Entries read per round while looking for a subject's records.
SCAN_CHUNK = 500
SCAN_ROUNDS = 20


def targets(request: Any) -> list[str]:
    """The ids a request names ("field=value"), nested messages included, capped in count and length."""
    found: list[str] = []

    def walk(message: Message, path: str, depth: int) -> None:
        for field, value in message.ListFields():
            name = path + field.name
            repeated = field.is_repeated
            if field.type == FieldDescriptor.TYPE_STRING and not repeated:
                if field.name.endswith("_id") or field.name in ("to_team", "subject"):
                    found.append(f"{name}={value[:MAX_VALUE_CHARS]}")
            elif (
                field.type == FieldDescriptor.TYPE_MESSAGE
                and depth < 2
                and field.message_type is not None
                and not field.message_type.GetOptions().map_entry
            ):
                items = enumerate(value) if repeated else [(None, value)]
                for index, item in items:
                    if len(found) >= MAX_TARGETS:
                        return
                    walk(item, f"{name}[{index}]." if index is not None else f"{name}.", depth + 1)

    if isinstance(request, Message):
        walk(request, "", 0)
    return found[:MAX_TARGETS]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class AuditTrail:
    def __init__(self, redis: Redis, keys: Keys, maxlen: int) -> None:
        self.redis = redis
        self.key = keys.namespaced("audit", "trail")
        self.maxlen = maxlen

    async def record(
        self, principal: Principal, scope: str, method: str, request: Message | None, outcome: str
    ) -> None:
        """Append one record. A failure is logged, never raised: the call itself has already happened."""
        try:
            fields: dict[FieldT, EncodableT] = {
                "at": f"{time.time():.6f}",
                "subject": principal.subject[:MAX_VALUE_CHARS],
                "scope": scope,
                "method": method,
                "targets": json.dumps(targets(request)),
                "outcome": outcome,
            }
            await self.redis.xadd(self.key, fields, maxlen=self.maxlen, approximate=True)
        except Exception:
            log.exception("audit record of %s could not be written", method)

    async def query(
        self, subject: str = "", page_size: int = 100, page_token: str = ""
    ) -> tuple[list[conversations_pb2.AuditRecord], str]:
        """Records newest first, of one subject when given; the token continues after the last one read."""
        records: list[conversations_pb2.AuditRecord] = []
        upper = f"({page_token}" if page_token else "+"
        for _ in range(SCAN_ROUNDS):
            chunk = cast(
                StreamEntries, await self.redis.xrevrange(self.key, max=upper, min="-", count=SCAN_CHUNK)
            )
            for entry_id, raw in chunk:
                entry = {_text(k): _text(v) for k, v in raw.items()}
                upper = f"({_text(entry_id)}"
                if subject and entry["subject"] != subject:
                    continue
                records.append(
                    conversations_pb2.AuditRecord(
                        at=to_timestamp(float(entry["at"])),
                        subject=entry["subject"],
                        scope=entry["scope"],
                        method=entry["method"],
                        targets=json.loads(entry["targets"]),
                        outcome=entry["outcome"],
                    )
                )
                if len(records) == page_size:
                    return records, upper[1:]
            if len(chunk) < SCAN_CHUNK:
                return records, ""
        return records, upper[1:]  # scanned enough for one call: the caller continues from here
