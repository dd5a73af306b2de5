"""Fixtures of the webhook tests: settings with every network's secrets, a real ingestion server (gRPC and
HTTP on ephemeral ports) and an HTTP client for its webhooks. A test module may override `hook_settings`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from pydantic import SecretStr

from ingestion.webhook_client import META_SECRET, META_VERIFY, OWN_APP_ID, X_SECRET, Client
from parley.clock import ManualClock
from parley.config import Settings
from parley.ingestion.server import IngestionServer, create_server
from parley.store import Redis


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhook_meta_app_secret": SecretStr(META_SECRET),
            "webhook_meta_verify_token": SecretStr(META_VERIFY),
            "webhook_meta_app_id": OWN_APP_ID,
            "webhook_x_consumer_secret": SecretStr(X_SECRET),
        }
    )


@pytest.fixture
async def server(hook_settings: Settings, redis: Redis) -> AsyncIterator[IngestionServer]:
    running = await create_server(hook_settings, "127.0.0.1:0", clock=ManualClock())
    yield running
    await running.stop(0)


@pytest.fixture
async def http(server: IngestionServer) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        yield Client(session, f"http://127.0.0.1:{server.webhook_port}")
