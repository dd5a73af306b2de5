"""Shared fixtures: a real Redis (REDIS_URL, else one embedded Valkey per test session; with
PARLEY_TEST_CLUSTER=1 a local 3-master cluster with replicas), a fresh key namespace per test, and settings
pointing at both."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from parley.auth import mint
from parley.authz import ADMIN, INGEST, INTERNAL
from parley.config import Settings
from parley.store import EmbeddedValkey, Keys, Redis, connect, drop_namespace, keys_for


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if os.environ.get("PARLEY_TEST_CLUSTER") == "1":
        yield from _local_cluster()
        return
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    server = EmbeddedValkey()
    yield server.start()
    server.stop()


def _local_cluster() -> Iterator[str]:
    """The whole suite on a real cluster: Settings (and any child process) read these two variables."""
    from parley.cluster import LocalCluster

    cluster = LocalCluster()
    url = cluster.start()
    saved = {name: os.environ.get(name) for name in ("REDIS_URL", "PARLEY_REDIS_CLUSTER")}
    os.environ.update(REDIS_URL=url, PARLEY_REDIS_CLUSTER="true")
    try:
        yield url
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        cluster.stop()


@pytest.fixture
def settings(redis_url: str, tmp_path) -> Settings:
    """Settings for one test: its own key prefix, so tests never see each other's state."""
    secret = secrets.token_urlsafe(32)
    return Settings(
        redis_url=redis_url,
        # Auth is on, as in production; the default client token may make every call (tests of refusal
        # mint their own tokens with parley.auth.mint).
        auth_jwt_secret=secret,
        auth_jwt_secret_file=tmp_path / "no-secret-file",
        auth_token=mint(secret, "test-client", [INTERNAL, INGEST, ADMIN], ttl=3600),
        key_prefix=f"t{uuid.uuid4().hex[:12]}",
        claim_idle_ms=500,
        worker_block_ms=50,
        stream_partitions=4,
        rpc_timeout_seconds=10.0,
        shutdown_grace_seconds=0.5,
        dispatch_log_path=tmp_path / "outbox.log",
        embedded_data_dir="",
        # Child processes a test starts serve no /metrics: the fixed ports may be taken by a running suite.
        metrics_port=0,
    )


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return keys_for(settings)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = connect(settings)
    yield client
    # Leave the shared Redis clean: drop this test's namespace.
    await drop_namespace(client, settings.key_prefix)
    await client.aclose()
