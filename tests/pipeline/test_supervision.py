"""A service reports NOT_SERVING while its Redis is down and SERVING once it is back; `parley up` starts a
child process that dies again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from parley.chaos.redis_server import RedisServer
from parley.config import Settings
from parley.rpc import channel
from parley.suite import ChildProcessSuite, env_for, start_service

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def health_becomes(settings: Settings, port: int, wanted: int, seconds: float = 15.0) -> None:
    async with channel(settings, f"127.0.0.1:{port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for _ in range(int(seconds * 10)):
            answer = await stub.Check(health_pb2.HealthCheckRequest(service=""))
            if answer.status == wanted:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"health never became {health_pb2.HealthCheckResponse.ServingStatus.Name(wanted)}")


async def test_a_service_is_not_serving_while_redis_is_down(settings: Settings, tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    # Its own single server, killed and restarted: never a cluster, whatever mode the suite runs in.
    settings = settings.model_copy(update={"redis_url": server.url, "redis_cluster": False})
    running = await start_service("dispatch", settings, "127.0.0.1:0")
    try:
        await health_becomes(settings, running.port, SERVING)
        server.kill()
        await health_becomes(settings, running.port, NOT_SERVING)
        server.start()
        await health_becomes(settings, running.port, SERVING)
    finally:
        await running.stop(0)
        server.stop()


async def test_up_starts_a_dead_child_again(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    suite = ChildProcessSuite(settings, dict(os.environ) | env_for(settings))
    suite._spawn("worker-0", "worker", str(tmp_path))
    first = suite.processes["worker-0"]
    supervisor = asyncio.create_task(suite.supervise(every=0.1))
    try:
        await asyncio.sleep(1.0)
        assert first.poll() is None
        os.kill(first.pid, signal.SIGKILL)
        for _ in range(100):
            again = suite.processes["worker-0"]
            if again is not first and again.poll() is None:
                break
            await asyncio.sleep(0.1)
        assert suite.processes["worker-0"] is not first and suite.processes["worker-0"].poll() is None
        assert any("worker-0 exited with code -9; restarting" in r.getMessage() for r in caplog.records)
    finally:
        suite.stop()
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor


@pytest.fixture(autouse=True)
def _warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
