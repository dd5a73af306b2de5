"""The console's HTTP surface on a real in-process suite: headers, fragments, errors, the requeue form."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client import REGISTRY

from parley import events
from parley.config import Settings
from parley.console.server import FRAGMENT_HEADER, ConsoleServer, create_console
from parley.store import keys_for
from parley.suite import InProcessSuite, replace_ports


@pytest.fixture
async def console(settings: Settings, redis) -> AsyncIterator[tuple[InProcessSuite, ConsoleServer]]:
    suite = await InProcessSuite.start(settings, workers=0)
    running = await create_console(suite.settings, "127.0.0.1", 0)
    yield suite, running
    await running.stop()
    await suite.stop()


async def test_pages_are_locked_down_and_refresh_as_fragments(console) -> None:
    _, running = console
    base = f"http://127.0.0.1:{running.port}"
    async with aiohttp.ClientSession() as http:
        for path in ("/", "/traffic", "/pipeline", "/queues/billing", "/search?q=nobody"):
            async with http.get(base + path) as reply:
                assert reply.status == 200, path
                assert "script-src" not in reply.headers["Content-Security-Policy"]  # only 'self'
                assert reply.headers["Content-Security-Policy"].startswith("default-src 'self'")
                page = await reply.text()
                assert page.startswith("<!doctype html>") and '<main id="main">' in page
        async with http.get(base + "/", headers={FRAGMENT_HEADER: "1"}) as reply:
            fragment = await reply.text()
        assert fragment.startswith("<h1>Floor</h1>") and "<html" not in fragment
        async with http.get(base + "/conversations/cv-none") as reply:
            assert reply.status == 404
        async with http.get(base + "/static/console.js") as reply:
            assert reply.status == 200 and "EventSource" in await reply.text()


async def test_requeue_refuses_another_site_and_names_a_missing_letter(console) -> None:
    _, running = console
    base = f"http://127.0.0.1:{running.port}"
    async with aiohttp.ClientSession() as http:
        async with http.post(
            base + "/pipeline/requeue", data={"message_id": "x:1"}, headers={"Origin": "http://evil.example"}
        ) as reply:
            assert reply.status == 403
        async with http.post(
            base + "/pipeline/requeue", data={"message_id": "x:1"}, headers={"Origin": base}
        ) as reply:
            assert reply.status == 404 and "no dead letter for message x:1" in await reply.text()


async def test_a_service_that_is_down_gives_a_page_saying_so(settings: Settings) -> None:
    # Nothing listens on these ports: every call fails UNAVAILABLE.
    nowhere = replace_ports(settings, {name: 1 for name in ("ingestion", "conversations", "router")})
    running = await create_console(nowhere.model_copy(update={"rpc_timeout_seconds": 1.0}), "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{running.port}/") as reply:
            assert reply.status == 503 and "UNAVAILABLE" in await reply.text()
    finally:
        await running.stop()


async def test_the_console_serves_its_own_metrics_by_route_never_by_id(console) -> None:
    _, running = console
    base = f"http://127.0.0.1:{running.port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/conversations/cv-secret-id") as reply:
            assert reply.status == 404
        async with http.get(base + "/metrics") as reply:
            assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
            text = await reply.text()
    line = 'parley_console_requests_total{route="/conversations/{conversation_id}",status="404"}'
    assert line in text
    assert "cv-secret-id" not in text


def watch_calls_ended() -> float:
    labels = {
        "grpc_type": "server_stream",
        "grpc_service": "parley.v1.IngestionService",
        "grpc_method": "WatchEvents",
        "grpc_code": "CANCELLED",
    }
    return REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0.0


async def test_the_console_follows_events_only_while_a_page_listens(console, redis) -> None:
    suite, running = console
    keys = keys_for(suite.settings)

    async def publish() -> None:
        await events.publish(redis, keys, [events.EventRecord("conversation.opened", "cv-1", "x:1", 1.0)])

    await publish()
    await asyncio.sleep(0.3)
    assert not running.broadcaster.listened.is_set()  # no page open: no watch of the events
    url = f"http://127.0.0.1:{running.port}/events"
    async with aiohttp.ClientSession() as http, http.get(url) as reply:
        assert (await reply.content.readline()).startswith(b": connected")
        await asyncio.sleep(0.3)  # the watch starts from the newest event
        await publish()
        await reply.content.readline()  # the blank line ending the comment
        assert await asyncio.wait_for(reply.content.readline(), 5) == b"data: changed\n"
    ended = watch_calls_ended()
    for _ in range(50):  # the page is gone: the next event ends the console's watch
        await publish()
        await asyncio.sleep(0.1)
        if watch_calls_ended() > ended:
            break
    assert watch_calls_ended() == ended + 1
    assert not running.broadcaster.listened.is_set()
