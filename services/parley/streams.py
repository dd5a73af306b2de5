"""Server streams that stay bounded under load or abuse.

A server admits at most `stream_max` open streams, and at most `stream_max_per_caller` for one token subject;
the next one is refused with RESOURCE_EXHAUSTED. A stream never parks in a blocking Redis read: that would
hold one pooled connection per open stream, so a hundred idle watchers could starve Ingest and the webhooks.
Watchers poll with non-blocking reads instead, holding a connection only for the read itself.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

import jwt

from parley.aio_types import Context
from parley.config import Settings


class TooManyStreams(Exception):
    """The server, or this caller, already has as many open streams as allowed."""


class StreamLimits:
    """Counts open streams per server and per caller; `admit` is the only way in."""

    def __init__(self, per_server: int, per_caller: int) -> None:
        self.per_server = per_server
        self.per_caller = per_caller
        self.open: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamLimits:
        return cls(settings.stream_max, settings.stream_max_per_caller)

    @contextlib.contextmanager
    def admit(self, caller: str) -> Iterator[None]:
        if self.open.total() >= self.per_server:
            raise TooManyStreams(f"this server has {self.per_server} streams open, its limit; retry later")
        if self.open[caller] >= self.per_caller:
            raise TooManyStreams(
                f"{caller!r} has {self.per_caller} streams open on this server, the limit per caller"
            )
        self.open[caller] += 1
        try:
            yield
        finally:
            self.open[caller] -= 1
            if not self.open[caller]:
                del self.open[caller]


def caller_of(context: Context) -> str:
    """Who opened the stream: the subject of its bearer token (the auth interceptor has verified it before
    any handler runs), else the peer address (auth turned off)."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            with contextlib.suppress(jwt.PyJWTError):
                claims = jwt.decode(value[len("Bearer ") :], options={"verify_signature": False})
                return f"subject:{claims.get('sub', '')}"
    return f"peer:{context.peer()}"
