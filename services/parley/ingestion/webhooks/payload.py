"""Reading the networks' JSON deliveries: typed getters that name the exact path of anything wrong."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from parley.clock import to_timestamp
from parley.ingestion.intake import REQUIRED
from parley.v1 import common_pb2

# Epoch values above this are milliseconds (it is year 5138 in seconds): Meta mixes both units.
_MILLIS_ABOVE = 100_000_000_000
_LAST_MILLIS = 253_402_300_799_000  # 9999-12-31T23:59:59Z, the last time a timestamp can hold

T = TypeVar("T")


class PayloadError(Exception):
    """A delivery that does not follow the network's format: one (field path, description) per problem."""

    def __init__(self, violations: list[tuple[str, str]]) -> None:
        self.violations = violations
        super().__init__("; ".join(f"{f}: {d}" for f, d in violations))


@dataclass
class Parsed:
    """The messages of one delivery, and how many of its events carry no message (reads, statuses, edits)."""

    messages: list[common_pb2.InboundMessage] = field(default_factory=list)
    ignored: int = 0

    def add(self, message: common_pb2.InboundMessage | None) -> None:
        """Keep a parsed message; an event that carries none (None) is counted as ignored."""
        if message is None:
            self.ignored += 1
        else:
            self.messages.append(message)


def obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError([(path, "must be an object")])
    return value


def array(value: Any, path: str, required: bool = True) -> list[Any]:
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise PayloadError([(path, "must be an array")])
    return value


def ident(parent: dict[str, Any], key: str, path: str, required: bool = True) -> str:
    """An id or a short string; the networks send ids as strings, a few as numbers."""
    value = parent.get(key)
    if value is None or value == "":
        if required:
            raise PayloadError([(f"{path}.{key}" if path else key, REQUIRED)])
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError([(f"{path}.{key}" if path else key, "must be a string")])
    return str(value)


def word(value: Any) -> str:
    """A name the format uses to tell things apart (type, field, verb); anything else is no name."""
    return value if isinstance(value, str) else ""


def text(parent: dict[str, Any], key: str, path: str) -> str:
    value = parent.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PayloadError([(f"{path}.{key}", "must be a string")])
    return value


def epoch(parent: dict[str, Any], key: str, path: str, required: bool = True) -> Timestamp | None:
    """A time as epoch seconds or milliseconds (number or numeric string), or an ISO 8601 string."""
    value = parent.get(key)
    where = f"{path}.{key}"
    if value is None or value == "":
        if required:
            raise PayloadError([(where, REQUIRED)])
        return None
    if isinstance(value, str):
        written = value
        try:
            value = int(written)
        except ValueError:
            try:
                return to_timestamp(datetime.fromisoformat(written).timestamp())
            except (ValueError, OverflowError):
                raise PayloadError([(where, "must be an epoch time or an ISO 8601 time")]) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < _LAST_MILLIS:
        raise PayloadError([(where, "must be an epoch time or an ISO 8601 time")])
    if value > _MILLIS_ABOVE:
        stamp = Timestamp()
        stamp.FromMilliseconds(int(value))  # exact: a float of seconds would blur the milliseconds
        return stamp
    return to_timestamp(float(value))


def each(
    items: list[Any], path: str, parse: Callable[[Any, str], T], errors: list[tuple[str, str]]
) -> list[T]:
    """Parse every item, collecting each item's problem so one answer names all of them."""
    out = []
    for index, item in enumerate(items):
        try:
            out.append(parse(item, f"{path}[{index}]"))
        except PayloadError as error:
            errors.extend(error.violations)
    return out
