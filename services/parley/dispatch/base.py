"""What every channel adapter is: the interface, its two kinds of failure, and per-part progress.

An adapter posts the already-split parts of one reply and returns the platform ids it created, in part order.
It raises `RetryableError` when trying again later may work (timeouts, dropped connections, 5xx, 429) and
`PermanentError` when it will not (other 4xx). It is told the reply's idempotency key and, from the
dispatcher, where the reply's per-part progress is kept, so that a repeated call after a crash does not post
twice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol

from parley.v1 import dispatch_pb2


class RetryableError(Exception):
    """The network may accept the reply later (timeout, 5xx, 429); `retry_after` is its hint in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class PermanentError(Exception):
    """The network refused the reply for good (a 4xx other than 429)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PartProgress(Protocol):
    """Where the parts of one reply stand, kept outside the process so a crash cannot lose it.

    A part is "started" just before its network call and "posted" with its platform id right after; a part
    started but never posted was cut short by a crash and may or may not be on the network.
    """

    # Which attempt at the delivery this is, counted before the call (1 for the first): only a later one can
    # be resuming a post that a crash cut short.
    attempt: int

    async def load(self) -> tuple[dict[int, str], set[int]]:
        """(part index -> platform id of the posted parts, indexes started but not recorded as posted)."""
        ...

    async def started(self, index: int) -> None: ...

    async def posted(self, index: int, platform_id: str) -> None: ...

    async def failed(self, index: int) -> None:
        """The call ended with an answer or an error we retry on: the part is no longer in doubt."""
        ...


class ChannelAdapter(ABC):
    """Posts one reply to one network."""

    name: str = "adapter"

    @abstractmethod
    async def post(
        self,
        reply: dispatch_pb2.Reply,
        parts: Sequence[str],
        idempotency_key: str,
        progress: PartProgress | None = None,
    ) -> list[str]:
        """Post `parts` (in order, a thread when several) and return one platform message id per part."""

    async def aclose(self) -> None:
        """Release connections; called once on shutdown."""
        return None
