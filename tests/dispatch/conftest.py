"""Fixtures of the dispatch tests: settings writing the log adapter's outbox under the test's tmp_path, and a
local fake of the networks' APIs with settings pointing every channel at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from network_double import (
    IG_ID,
    IG_TOKEN,
    PAGE_ID,
    PAGE_TOKEN,
    PHONE_ID,
    VERSION,
    WA_TOKEN,
    X_TOKEN,
    FakeNetwork,
)
from pydantic import SecretStr

from parley.config import Settings


@pytest.fixture
def dispatch_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "dispatch_log_path": tmp_path / "outbox.log",
            "dispatch_max_attempts": 3,
            "dispatch_backoff_base_seconds": 2.0,
            "dispatch_backoff_cap_seconds": 60.0,
        }
    )


@pytest.fixture
async def network() -> AsyncIterator[FakeNetwork]:
    fake = FakeNetwork()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def network_settings(dispatch_settings: Settings, network: FakeNetwork) -> Settings:
    """Every channel through its own API, all played by the local fake network."""
    return dispatch_settings.model_copy(
        update={
            "dispatch_default_adapter": "network",
            "dispatch_x_base_url": network.url,
            "dispatch_x_bearer_token": SecretStr(X_TOKEN),
            "dispatch_graph_base_url": network.url,
            "dispatch_graph_version": VERSION,
            "dispatch_facebook_page_id": PAGE_ID,
            "dispatch_facebook_page_token": SecretStr(PAGE_TOKEN),
            "dispatch_instagram_account_id": IG_ID,
            "dispatch_instagram_token": SecretStr(IG_TOKEN),
            "dispatch_whatsapp_phone_number_id": PHONE_ID,
            "dispatch_whatsapp_token": SecretStr(WA_TOKEN),
            # Generous, so a loaded machine never turns a normal answer into a timeout; the timeout tests
            # set their own.
            "dispatch_http_timeout_seconds": 5.0,
            "claim_idle_ms": 10_000,
        }
    )
