"""A service reports NOT_SERVING while its Redis is down and SERVING once it is back, waits at start-up for a
Redis not up yet or still loading its data, and its loops log an outage in one line; `parley up` starts a
child process that dies again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from parley.chaos.redis_server import RedisServer, server_binary
from parley.config import Settings
from parley.ports import free_port
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


def answer_to_ping(port: int) -> bytes:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64)
    except OSError:
        return b""


@pytest.fixture
def loading_redis(tmp_path: Path) -> Iterator[str]:
    """A real Redis answering LOADING for several seconds: data written and rewritten into its AOF's RDB
    base, then the server started again with a delay per key loaded (a debug setting) and events processed
    every KB, so clients get -LOADING meanwhile. Longer than redis-py's own retries of LOADING (~7 s)."""
    port, data = free_port(), tmp_path / "loading"
    args = [server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)]
    args += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
    data.mkdir()
    with open(data / "server.log", "ab") as out:
        first = subprocess.Popen(args, stdout=out, stderr=out)
        try:
            client = redis.Redis(port=port)
            for _ in range(100):
                if answer_to_ping(port).startswith(b"+PONG"):
                    break
                time.sleep(0.05)
            with client.pipeline(transaction=False) as pipe:
                for i in range(8000):
                    pipe.set(f"filler:{i}", "x")
                pipe.execute()
            client.bgrewriteaof()
            while client.info("persistence")["aof_rewrite_in_progress"]:
                time.sleep(0.05)
            client.close()
        finally:
            first.kill()
            first.wait()
        slow = ["--key-load-delay", "1500", "--loading-process-events-interval-bytes", "1024"]
        server = subprocess.Popen(args + slow, stdout=out, stderr=out)
    try:
        while not answer_to_ping(port).startswith(b"-LOADING"):
            assert server.poll() is None, "redis-server exited"
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.kill()
        server.wait()


async def test_a_service_started_while_redis_loads_its_data_waits_for_it(
    settings: Settings, loading_redis: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings.model_copy(update={"redis_url": loading_redis, "redis_cluster": False})
    running = await asyncio.wait_for(start_service("conversations", settings, "127.0.0.1:0"), 120)
    try:
        await health_becomes(settings, running.port, SERVING)
        waits = [r for r in caplog.records if "conversations start-up waits for Redis" in r.getMessage()]
        assert any("BusyLoadingError" in r.getMessage() for r in waits), "never met a loading Redis"
    finally:
        await running.stop(0)


async def test_a_service_started_before_redis_waits_for_it(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path / "redis")  # its port chosen, nothing listening on it yet
    settings = settings.model_copy(update={"redis_url": server.url, "redis_cluster": False})
    starting = asyncio.create_task(start_service("dispatch", settings, "127.0.0.1:0"))
    try:
        while not any("dispatch start-up waits for Redis" in r.getMessage() for r in caplog.records):
            assert not starting.done(), "start-up ended while Redis was down"
            await asyncio.sleep(0.05)
        server.start()
        running = await asyncio.wait_for(starting, 60)
        try:
            await health_becomes(settings, running.port, SERVING)
        finally:
            await running.stop(0)
    finally:
        if not starting.done():
            starting.cancel()
        server.stop()


@pytest.fixture(autouse=True)
def _warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)


async def test_loops_log_a_redis_outage_as_one_warning_line_not_an_error(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    # Its own single server, killed: never a cluster, whatever mode the suite runs in.
    settings = settings.model_copy(
        update={"redis_url": server.url, "redis_cluster": False, "router_tick_seconds": 0.05}
    )
    router = await start_service("router", settings, "127.0.0.1:0")
    dispatch = await start_service("dispatch", settings, "127.0.0.1:0")
    wanted = (
        "router loop step failed, Redis unavailable",
        "dispatch: delivery round failed, Redis unavailable",
    )
    try:
        server.kill()
        for _ in range(300):
            if all(any(w in r.getMessage() for r in caplog.records) for w in wanted):
                break
            await asyncio.sleep(0.1)
        outages = [r for r in caplog.records if any(w in r.getMessage() for w in wanted)]
        assert {w for w in wanted if any(w in r.getMessage() for r in outages)} == set(wanted)
        assert all(r.levelno == logging.WARNING and r.exc_info is None for r in outages)
        assert all("\n" not in r.getMessage() for r in outages)
        loops = ("parley.router.server", "parley.dispatch.dispatcher")
        assert [
            r.getMessage() for r in caplog.records if r.name in loops and r.levelno >= logging.ERROR
        ] == []
    finally:
        await dispatch.stop(0)
        await router.stop(0)
        server.stop()
