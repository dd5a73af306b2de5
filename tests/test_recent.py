"""One read of an expensive figure serves every page asking within a few seconds, and pages asking while it
runs share it."""

from __future__ import annotations

import asyncio

import pytest

from parley.recent import Recent


class Reads:
    def __init__(self) -> None:
        self.count = 0
        self.gate = asyncio.Event()
        self.fail = False

    async def __call__(self) -> int:
        self.count += 1
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("the service said no")
        return self.count


async def test_pages_asking_at_once_share_one_read_and_later_ones_reuse_it_for_a_while() -> None:
    now = [100.0]
    recent: Recent[int] = Recent(5.0, clock=lambda: now[0])
    read = Reads()
    pages = [asyncio.create_task(recent.get(read)) for _ in range(10)]
    await asyncio.sleep(0)
    read.gate.set()
    assert await asyncio.gather(*pages) == [1] * 10 and read.count == 1
    now[0] += 4.9
    assert await recent.get(read) == 1 and read.count == 1
    now[0] += 0.2
    assert await recent.get(read) == 2 and read.count == 2
    # Another key (a new day) is read at once.
    assert await recent.get(read, key="tomorrow") == 3


async def test_a_failed_read_is_not_kept_and_a_page_that_leaves_does_not_cancel_it() -> None:
    recent: Recent[int] = Recent(5.0)
    read = Reads()
    read.fail = True
    leaving = asyncio.create_task(recent.get(read))
    staying = asyncio.create_task(recent.get(read))
    await asyncio.sleep(0)
    leaving.cancel()
    read.gate.set()
    with pytest.raises(RuntimeError):
        await staying
    read.fail = False
    assert await recent.get(read) == 2
