"""The last result of an expensive read, shared by every caller that asks for it within a few seconds, and
by callers asking while it runs (which wait for it instead of starting their own).

The console's open pages fetch themselves whenever something happens (at most every half second each), and
some of what they show (metrics over a day's conversations) costs the services work in proportion to the
conversations read: shared, that cost does not grow with the number of pages open. `GetMetrics` shares one
window's read among the calls for several groupings of it that arrive together (`seconds` 0: nothing kept).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Recent(Generic[T]):
    seconds: float
    clock: Callable[[], float] = time.monotonic
    _key: Hashable = None
    _at: float = field(default=-float("inf"))
    _value: T | None = None
    _running: asyncio.Future[T] | None = None
    _running_key: Hashable = None

    async def get(self, read: Callable[[], Awaitable[T]], key: Hashable = None) -> T:
        """The value read for `key` less than `seconds` ago, else what `read()` returns. One read at a time:
        callers arriving while it runs for the same key share it; a read that fails is not kept."""
        if self._value is not None and self._key == key and self.clock() - self._at < self.seconds:
            return self._value
        running = self._running
        if running is None or self._running_key != key:
            running = asyncio.ensure_future(read())
            self._running, self._running_key = running, key
            running.add_done_callback(lambda done: self._settle(done, key))
        # Shielded: a page that goes away does not cancel the read the others wait for.
        return await asyncio.shield(running)

    def _settle(self, done: asyncio.Future[T], key: Hashable) -> None:
        # Looked at first, so that a failure nobody waits for any more is not reported as never retrieved.
        failed = done.cancelled() or done.exception() is not None
        if self._running is not done:
            return  # a read for another key replaced it
        self._running = None
        if not failed and self.seconds > 0:  # with no time to keep it, only callers of this read share it
            self._value, self._key, self._at = done.result(), key, self.clock()
