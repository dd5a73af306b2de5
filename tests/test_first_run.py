"""What a new user meets first: a busy port fails at once, in one line naming the setting to change."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from parley.config import SERVICES
from parley.rpc import start_server
from parley.suite import PortInUse, start_service


async def test_a_second_server_cannot_bind_a_port_a_running_one_holds(settings) -> None:
    first = await start_server(settings, f"{settings.host}:0", [])
    try:
        with pytest.raises(OSError):
            await start_server(settings, f"{settings.host}:{first.port}", [])
    finally:
        await first.stop(0)


async def test_a_busy_service_port_names_the_setting_to_change(settings) -> None:
    holder = await start_server(settings, f"{settings.host}:0", [])
    busy = settings.model_copy(update={"conversations_port": holder.port})
    try:
        with pytest.raises(PortInUse) as caught:
            await start_service("conversations", busy)
        message = str(caught.value)
        assert str(holder.port) in message and "PARLEY_CONVERSATIONS_PORT" in message
        assert "\n" not in message
    finally:
        await holder.stop(0)


def _parley(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parley", *args],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def held_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_serve_on_a_busy_port_says_so_in_one_line(settings, held_port) -> None:
    env = {
        "REDIS_URL": settings.redis_url,
        "PARLEY_CONVERSATIONS_PORT": str(held_port),
        "PARLEY_METRICS_PORT": "0",
    }
    done = _parley(["serve", "conversations"], env)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(held_port) in lines[0] and "PARLEY_CONVERSATIONS_PORT" in lines[0]


def test_up_refuses_a_busy_metrics_port_before_starting_anything(settings, held_port) -> None:
    env = {"REDIS_URL": settings.redis_url, "PARLEY_METRICS_PORT": str(held_port)}  # ingestion's
    # Its other ports are left out of the check (0): a suite running elsewhere here cannot matter.
    env |= {f"PARLEY_{name.upper()}_PORT": "0" for name in (*SERVICES, "webhook")}
    done = _parley(["up", "--exit"], env)
    assert done.returncode == 1
    assert done.stdout.strip() == ""  # nothing was started, nothing announced
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {held_port}" in lines[0] and "PARLEY_METRICS_PORT" in lines[0], lines


def test_a_bad_setting_is_named_in_one_line(settings) -> None:
    done = _parley(["serve", "conversations"], {"REDIS_URL": settings.redis_url, "PARLEY_LOG_FORMAT": "xml"})
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "PARLEY_LOG_FORMAT" in lines[0], done.stderr
