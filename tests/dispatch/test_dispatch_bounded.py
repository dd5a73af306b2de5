"""Dispatch storage stays bounded and private: a trimmed dead-letter list, an owner-only outbox log."""

from __future__ import annotations

import stat

from dispatch_samples import make_reply
from test_dispatch_delivery import FlakyAdapter, make_dispatcher

from parley.clock import ManualClock
from parley.config import Settings
from parley.dispatch.adapters import LogAdapter, PermanentError
from parley.store import Keys, Redis


async def test_the_dead_letter_list_keeps_only_the_newest(
    dispatch_settings: Settings, redis: Redis, keys: Keys
) -> None:
    settings = dispatch_settings.model_copy(update={"dead_letter_maxlen": 3, "dispatch_partitions": 1})
    adapter = FlakyAdapter(LogAdapter(settings.dispatch_log_path), failures=100, error=PermanentError("400"))
    dispatcher = make_dispatcher(settings, redis, keys, ManualClock(), adapter)
    for i in range(5):
        await dispatcher.send([make_reply(f"bot:x:{i}")])
        await dispatcher.deliver_once()
    assert [d["reply_id"] for d in await dispatcher.dead_letters()] == ["bot:x:2", "bot:x:3", "bot:x:4"]


async def test_the_outbox_log_is_readable_by_its_owner_only(dispatch_settings: Settings) -> None:
    log = LogAdapter(dispatch_settings.dispatch_log_path)
    await log.post(make_reply("bot:x:1"), ["a private answer"], "bot:x:1")
    assert stat.S_IMODE(dispatch_settings.dispatch_log_path.stat().st_mode) == 0o600


async def test_an_existing_world_readable_outbox_log_is_tightened(dispatch_settings: Settings) -> None:
    path = dispatch_settings.dispatch_log_path
    path.write_bytes(b"")
    path.chmod(0o644)
    await LogAdapter(path).post(make_reply("bot:x:1"), ["a private answer"], "bot:x:1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
