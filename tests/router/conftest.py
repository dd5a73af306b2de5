"""Router fixtures: a core on a manual clock."""

from __future__ import annotations

import pytest

from parley.clock import ManualClock
from parley.config import Settings
from parley.router.core import Router
from parley.store import Keys, Redis


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def router(settings: Settings, redis: Redis, keys: Keys, clock: ManualClock) -> Router:
    return Router(settings, redis, keys, clock)
