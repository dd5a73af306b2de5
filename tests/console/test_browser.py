"""The console end to end in a real headless Chromium (Debian's chromium and chromedriver, installed by
scripts/browser-setup): the whole suite in this process, the demo replayed, then every page checked against
the services' own answers, a new message seen arriving without a reload, and a dead letter requeued.

Screenshots of each page go to $PARLEY_SCREENSHOT_DIR, else to the test's tmp directory.
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from parley.cli import DEMO_FILE
from parley.config import Settings
from parley.console.server import ConsoleServer, create_console
from parley.ingestion.inbound_log import InboundLog
from parley.ingestion.intake import normalize
from parley.replay import ReplayReport, read_twcs, replay
from parley.rpc import channel
from parley.store import connect, drop_namespace, keys_for
from parley.suite import InProcessSuite
from parley.v1 import (
    common_pb2,
    conversations_pb2,
    conversations_pb2_grpc,
    ingestion_pb2,
    ingestion_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1500,1100",
)
T = TypeVar("T")


class LoopThread:
    """An event loop on its own thread for the suite and the console, while the browser is driven from the
    test's thread (selenium blocks; the servers must keep answering meanwhile)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Live:
    def __init__(self, loop: LoopThread, suite: InProcessSuite, console: ConsoleServer, report: ReplayReport):
        self.loop, self.suite, self.console, self.report = loop, suite, console, report
        self.url = f"http://127.0.0.1:{console.port}"

    @property
    def settings(self) -> Settings:
        return self.suite.settings

    def call(self, service: str, stub_class: type, method: str, request: Any) -> Any:
        async def go() -> Any:
            async with channel(self.settings, self.settings.address(service)) as ch:
                return await getattr(stub_class(ch), method)(request, timeout=10)

        return self.loop.run(go())


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    loop = LoopThread()

    async def start() -> tuple[InProcessSuite, ConsoleServer, ReplayReport]:
        suite = await InProcessSuite.start(settings, workers=1)
        report = await replay(read_twcs(DEMO_FILE), suite.settings, timeout=60)
        console = await create_console(suite.settings, "127.0.0.1", 0)
        return suite, console, report

    suite, console, report = loop.run(start())
    assert report.unfinished == [] and report.conversations
    try:
        yield Live(loop, suite, console, report)
    finally:

        async def stop() -> None:
            await console.stop()
            await suite.stop()
            redis = connect(settings)
            await drop_namespace(redis, settings.key_prefix)
            await redis.aclose()

        loop.run(stop())
        loop.close()


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Debian's chromium and chromium-driver are missing: run scripts/browser-setup")
    monkeypatch.setenv("SE_OFFLINE", "true")  # never let selenium look for a driver on the network
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PARLEY_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(driver: WebDriver, url: str) -> None:
    driver.get(url)
    # The page is live once its event stream is open.
    WebDriverWait(driver, 15).until(lambda d: d.find_element(By.ID, "live").text == "live")


def field(row: Any, name: str) -> str:
    return row.find_element(By.CSS_SELECTOR, f'[data-field="{name}"]').text


def screenshot(driver: WebDriver, folder: Path, name: str) -> None:
    """The whole page, not only what fits the window (Chrome DevTools' capture beyond the viewport)."""
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    (folder / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def test_floor_shows_the_demo_and_the_queue_figures_of_list_queues(
    live: Live, browser: WebDriver, shots: Path
):
    # Agents on the floor: one online with room to spare (she takes the billing conversation), one away.
    for agent, presence in (("ann", router_pb2.PRESENCE_ONLINE), ("bob", router_pb2.PRESENCE_AWAY)):
        request = router_pb2.SetPresenceRequest(
            agent_id=agent, presence=presence, teams=["billing"], capacity=3
        )
        live.call("router", router_pb2_grpc.RouterServiceStub, "SetPresence", request)
    open_page(browser, live.url + "/")
    queues = live.call(
        "router", router_pb2_grpc.RouterServiceStub, "ListQueues", router_pb2.ListQueuesRequest()
    )
    billing = next(q for q in queues.queues if q.team == "billing")
    assert (billing.agents_online, billing.agents_available, billing.agents_away) == (1, 1, 1)
    assert 0 < billing.occupancy < 1
    assert any(q.depth for q in queues.queues), "the demo leaves conversations waiting"
    for q in queues.queues:
        row = browser.find_element(By.CSS_SELECTOR, f'tr[data-team="{q.team}"]')
        shown = {
            name: int(field(row, name))
            for name in (
                "depth",
                "sla_at_risk",
                "sla_breached",
                "agents_online",
                "agents_available",
                "agents_away",
            )
        }
        assert shown == {
            "depth": q.depth,
            "sla_at_risk": q.sla_at_risk,
            "sla_breached": q.sla_breached,
            "agents_online": q.agents_online,
            "agents_available": q.agents_available,
            "agents_away": q.agents_away,
        }, q.team
        waited = float(
            row.find_element(By.CSS_SELECTOR, '[data-field="longest_wait"]').get_attribute("data-seconds")
        )
        assert abs(waited - q.oldest_wait_seconds) < 10
        assert field(row, "agents_needed").isdigit()
        assert field(row, "occupancy") == (f"{100 * q.occupancy:.0f}%" if q.agents_online else "—")
    listed = {
        e.get_attribute("data-conversation")
        for e in browser.find_elements(By.CSS_SELECTOR, "tr[data-conversation]")
    }
    assert {c.conversation_id for c in live.report.conversations} <= listed
    screenshot(browser, shots, "floor")

    # A queue's name opens the conversations waiting in it.
    busiest = max(queues.queues, key=lambda q: q.depth)
    browser.find_element(By.CSS_SELECTOR, f'tr[data-team="{busiest.team}"] a').click()
    WebDriverWait(browser, 10).until(lambda d: f"/queues/{busiest.team}" in d.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-conversation]")
    assert len([r for r in rows if "queued" in r.text]) == busiest.depth

    browser.get(live.url + "/traffic")
    metrics = live.call(
        "conversations",
        conversations_pb2_grpc.ConversationsServiceStub,
        "GetMetrics",
        conversations_pb2.GetMetricsRequest(),
    )
    (overall,) = metrics.groups
    assert browser.find_element(By.CSS_SELECTOR, '[data-total="conversations"]').text == str(
        overall.conversations
    )
    bot_replies = sum(
        1
        for c in live.report.conversations
        for m in c.messages
        if m.routing.action == common_pb2.ROUTE_ACTION_BOT_REPLY
    )
    assert browser.find_element(By.CSS_SELECTOR, '[data-total="bot_answered"]').text == str(bot_replies)
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart")) >= 3
    screenshot(browser, shots, "traffic")


def test_conversation_page_shows_thread_decisions_and_updates_live(
    live: Live, browser: WebDriver, shots: Path
):
    # The late-order conversation: a customer, the brand, a bystander, and routing decisions.
    (conversation,) = [
        c
        for c in live.report.conversations
        if any(m.message.platform_message_id == "9005" for m in c.messages)
    ]
    # Reached from the floor by searching the customer's handle.
    browser.get(live.url + "/")
    search = browser.find_element(By.NAME, "q")
    search.send_keys(conversation.owner.handle)
    search.submit()
    WebDriverWait(browser, 10).until(lambda d: "/conversations/" in d.current_url)
    WebDriverWait(browser, 15).until(lambda d: d.find_element(By.ID, "live").text == "live")
    shown = [
        e.get_attribute("data-message")
        for e in browser.find_elements(By.CSS_SELECTOR, "article[data-message]")
    ]
    assert shown == [m.message.message_id for m in conversation.messages]
    for item in conversation.messages:
        article = browser.find_element(By.CSS_SELECTOR, f'article[data-message="{item.message.message_id}"]')
        assert article.find_element(By.CSS_SELECTOR, ".text").text == item.message.text
        decisions = article.find_elements(By.CSS_SELECTOR, '[data-field="decision"]')
        assert len(decisions) == item.HasField("routing")
        if item.HasField("routing"):
            assert item.routing.rule in decisions[0].text
    audit = live.call(
        "router",
        router_pb2_grpc.RouterServiceStub,
        "GetRoutingAudit",
        router_pb2.GetRoutingAuditRequest(conversation_id=conversation.conversation_id),
    )
    assert [e.get_attribute("data-kind") for e in browser.find_elements(By.CSS_SELECTOR, "li.audit")] == [
        a.kind for a in audit.entries
    ]
    screenshot(browser, shots, "conversation")

    # A new message in this conversation appears with no reload: a marker set on the page survives.
    browser.execute_script("window.parleyMarker = 'same page';")
    text = f"any news on order 44172? {uuid.uuid4().hex[:8]}"
    last = conversation.messages[-1].message
    live.call(
        "ingestion",
        ingestion_pb2_grpc.IngestionServiceStub,
        "Ingest",
        ingestion_pb2.IngestRequest(
            messages=[
                common_pb2.InboundMessage(
                    channel=common_pb2.CHANNEL_X,
                    visibility=common_pb2.VISIBILITY_PUBLIC,
                    platform_message_id="9901",
                    in_reply_to_id=last.platform_message_id,
                    brand_account_id=last.brand_account_id,
                    author=conversation.owner,
                    text=text,
                    direction=common_pb2.DIRECTION_INBOUND,
                )
            ]
        ),
    )
    WebDriverWait(browser, 30).until(lambda d: text in d.find_element(By.ID, "main").text)
    assert browser.execute_script("return window.parleyMarker") == "same page"
    # Its routing decision follows once the pipeline has recorded it, still without a reload.
    WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, 'article[data-message="x:9901"] [data-field="decision"]')
    )
    assert browser.execute_script("return window.parleyMarker") == "same page"
    screenshot(browser, shots, "conversation-live")


def test_customer_text_is_shown_never_run(live: Live, browser: WebDriver, shots: Path):
    text = '<script>window.hacked = 1</script><img src=x onerror="window.hacked = 2"> my parcel is late'
    message = common_pb2.InboundMessage(
        channel=common_pb2.CHANNEL_X,
        visibility=common_pb2.VISIBILITY_PUBLIC,
        platform_message_id="9902",
        brand_account_id="AcmeCare",
        author=common_pb2.Author(id="666", handle='"><b>mallory'),
        text=text,
        direction=common_pb2.DIRECTION_INBOUND,
    )
    live.call(
        "ingestion",
        ingestion_pb2_grpc.IngestionServiceStub,
        "Ingest",
        ingestion_pb2.IngestRequest(messages=[message]),
    )
    browser.get(live.url + "/")

    def open_mallorys_row(d: WebDriver) -> bool:
        rows = [r for r in d.find_elements(By.CSS_SELECTOR, "tr[data-conversation]") if "mallory" in r.text]
        if not rows:
            return False
        assert '"><b>mallory' in rows[0].text
        rows[0].find_element(By.TAG_NAME, "a").click()
        return True

    # The floor re-renders its table when an event arrives: a row found just before may be gone at the click.
    WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,)).until(open_mallorys_row)
    article = WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, 'article[data-message="x:9902"]')
    )
    assert article.find_element(By.CSS_SELECTOR, ".text").text == text
    assert browser.execute_script("return window.hacked") is None
    assert not browser.find_elements(By.CSS_SELECTOR, "main script, main img")
    assert article.find_element(By.CSS_SELECTOR, "header b").text == '"><b>mallory'
    screenshot(browser, shots, "conversation-escaped")


def test_pipeline_shows_partitions_health_and_requeues_a_dead_letter(
    live: Live, browser: WebDriver, shots: Path
):
    settings = live.settings

    async def dead_letter() -> None:
        redis = connect(settings)
        log = InboundLog(settings, redis, keys_for(settings))
        message = normalize(
            common_pb2.InboundMessage(
                channel=common_pb2.CHANNEL_X,
                visibility=common_pb2.VISIBILITY_PUBLIC,
                platform_message_id="9903",
                brand_account_id="AcmeCare",
                author=common_pb2.Author(id="777", handle="dora"),
                text="where is my refund",
            ),
            1_800_000_000,
        )
        entry_id = await redis.xadd(keys_for(settings).inbound_stream(0), {"m": message.SerializeToString()})
        from parley.ingestion.inbound_log import LogEntry

        await log.dead_letter(
            LogEntry(0, entry_id.decode(), message), "classify", "INVALID_ARGUMENT: refused"
        )
        await redis.aclose()

    live.loop.run(dead_letter())
    open_page(browser, live.url + "/pipeline")
    services = {
        e.get_attribute("data-service"): e.text
        for e in browser.find_elements(By.CSS_SELECTOR, "[data-service]")
    }
    assert set(services) == {"ingestion", "conversations", "classifier", "router", "dispatch"}
    assert all(text.endswith("serving") for text in services.values())
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr[data-partition]")) == settings.stream_partitions
    assert [
        w.get_attribute("data-worker") for w in browser.find_elements(By.CSS_SELECTOR, "tr[data-worker]")
    ] == ["worker-0"]
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-dead-letter="x:9903"]')
    assert "INVALID_ARGUMENT: refused" in row.text and "where is my refund" in row.text
    screenshot(browser, shots, "pipeline")
    row.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 10).until(lambda d: "requeued" in d.current_url)
    assert not browser.find_elements(By.CSS_SELECTOR, 'tr[data-dead-letter="x:9903"]')
    # The worker takes it again: it is threaded into a conversation like any message.
    WebDriverWait(browser, 30, poll_frequency=0.5).until(
        lambda d: (
            live.call(
                "conversations",
                conversations_pb2_grpc.ConversationsServiceStub,
                "ListConversations",
                conversations_pb2.ListConversationsRequest(owner_handle="dora"),
            ).conversations
        )
    )
    screenshot(browser, shots, "pipeline-requeued")
