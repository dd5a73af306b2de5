"""Fixtures for the conversations tests."""

from __future__ import annotations

import pytest

from parley.clock import ManualClock
from parley.config import Settings
from parley.conversations.core import Conversations
from parley.store import Keys, Redis

from .builders import T0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def core(settings: Settings, redis: Redis, keys: Keys, clock: ManualClock) -> Conversations:
    return Conversations(settings, redis, keys, clock)
