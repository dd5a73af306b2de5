"""The console's web server (aiohttp): server-rendered pages, static files from the package, and one
Server-Sent Events stream that tells open pages something happened so they fetch themselves again.

All data comes from the services' gRPC APIs through `ConsoleClient`; one `WatchEvents` call feeds every open
page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import grpc
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from parley.config import Settings
from parley.console import conversation as conversation_views
from parley.console import pages, views
from parley.console.client import ConsoleClient
from parley.recent import Recent
from parley.telemetry import metrics as metrics_defs

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
FRAGMENT_HEADER = "X-Parley-Fragment"
SECURITY_HEADERS = {
    # Only the console's own script and style; customer text can never run as script.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
SSE_KEEPALIVE_SECONDS = 15.0
SSE_MIN_INTERVAL_SECONDS = 0.5
# The traffic page reads many conversations: one read serves every page asking within this time.
TRAFFIC_CACHE_SECONDS = 5.0
CLIENT = web.AppKey("client", ConsoleClient)
SETTINGS = web.AppKey("settings", Settings)
TRAFFIC = web.AppKey("traffic", Recent[str])


@dataclass
class Broadcaster:
    """Follows the suite's event stream once and flags every open page that something changed.

    A flag, not a queue: however fast events come, a page hears about them at most once per
    `SSE_MIN_INTERVAL_SECONDS` and then fetches itself once.
    """

    client: ConsoleClient
    subscribers: set[asyncio.Event] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    listened: asyncio.Event = field(default_factory=asyncio.Event)  # set while a page listens

    def start(self) -> None:
        self.task = asyncio.create_task(self._follow())

    def subscribe(self, changed: asyncio.Event) -> None:
        self.subscribers.add(changed)
        self.listened.set()

    def unsubscribe(self, changed: asyncio.Event) -> None:
        self.subscribers.discard(changed)
        if not self.subscribers:
            self.listened.clear()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _follow(self) -> None:
        """Follow the events only while a page listens: every event costs the ingestion service a read and
        this process a decode, which no one needs while no page is open."""
        while True:
            await self.listened.wait()
            try:
                async for _ in self.client.watch():
                    for changed in self.subscribers:
                        changed.set()
                    if not self.subscribers:
                        break  # the last page closed
                else:
                    await asyncio.sleep(1.0)  # the stream ended (the ingestion service stopping)
            except grpc.aio.AioRpcError as error:
                log.warning("event stream interrupted (%s); following again in 1 s", error.code().name)
                await asyncio.sleep(1.0)


BROADCASTER = web.AppKey("broadcaster", Broadcaster)


def render(request: web.Request, html: str, status: int = 200) -> web.Response:
    """The whole page, or only its <main> when the page's script asks for a refresh."""
    if request.headers.get(FRAGMENT_HEADER):
        html = html.split('<main id="main">', 1)[1].rsplit("</main>", 1)[0]
    return web.Response(text=html, content_type="text/html", status=status, headers=SECURITY_HEADERS)


async def floor(request: web.Request) -> web.Response:
    data = await request.app[CLIENT].floor()
    return render(request, pages.floor_page(views.floor_view(data)))


async def queue(request: web.Request) -> web.Response:
    team = request.match_info["team"]
    rows = await request.app[CLIENT].team_conversations(team)
    title = f"Queue {team}: waiting and assigned"
    return render(request, pages.list_page(title, [views.conversation_row(s) for s in rows]))


async def traffic(request: web.Request) -> web.Response:
    async def read() -> str:
        data = await request.app[CLIENT].traffic(request.app[SETTINGS].console_traffic_sample)
        return pages.traffic_page(views.traffic_view(data))

    return render(request, await request.app[TRAFFIC].get(read))


async def conversation(request: web.Request) -> web.Response:
    data = await request.app[CLIENT].conversation(request.match_info["conversation_id"])
    if data is None:
        return render(request, pages.not_found_page("No conversation with this id."), 404)
    return render(request, pages.conversation_page(conversation_views.conversation_view(data)))


async def search(request: web.Request) -> web.Response:
    """A conversation id opens that conversation; anything else is looked up as a customer handle."""
    query = request.query.get("q", "").strip()
    client = request.app[CLIENT]
    if query and await client.conversation_exists(query):
        raise web.HTTPSeeOther(pages.conversation_href(query))
    found = await client.search(query) if query else []
    if len(found) == 1:
        raise web.HTTPSeeOther(pages.conversation_href(found[0].conversation_id))
    note = "" if found else "No conversation has this id, and no customer has this handle."
    rows = [views.conversation_row(s) for s in found]
    return render(request, pages.list_page(f"Conversations of {query}", rows, query, note))


async def pipeline(request: web.Request) -> web.Response:
    data = await request.app[CLIENT].pipeline()
    notice = request.query.get("requeued", "")
    text = f"{notice} is back on the inbound log." if notice else ""
    view = views.pipeline_view(data, request.app[SETTINGS].claim_idle_ms / 1000)
    return render(request, pages.pipeline_page(view, text))


async def requeue(request: web.Request) -> web.Response:
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise web.HTTPForbidden(text="cross-site request refused")
    form = await request.post()
    message_id = str(form.get("message_id", ""))
    await request.app[CLIENT].requeue(message_id)
    raise web.HTTPSeeOther(f"/pipeline?requeued={quote(message_id, safe='')}")


async def events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: `data: changed` when the suite changed; a comment now and then keeps it open."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", **SECURITY_HEADERS}
    )
    await response.prepare(request)
    broadcaster = request.app[BROADCASTER]
    changed = asyncio.Event()
    broadcaster.subscribe(changed)
    try:
        await response.write(b": connected\n\n")
        while True:
            try:
                await asyncio.wait_for(changed.wait(), SSE_KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            changed.clear()
            await response.write(b"data: changed\n\n")
            await asyncio.sleep(SSE_MIN_INTERVAL_SECONDS)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        broadcaster.unsubscribe(changed)
    return response


@web.middleware
async def counted(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request counted by its route (the pattern, never the ids in the path) and status."""
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    try:
        response = await handler(request)
    except web.HTTPException as error:
        metrics_defs.CONSOLE_REQUESTS.labels(name, str(error.status)).inc()
        raise
    metrics_defs.CONSOLE_REQUESTS.labels(name, str(response.status)).inc()
    return response


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics of the console process, on its own port like every page."""
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def grpc_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A service that is down or refuses a call gives a page that says so, not a traceback."""
    try:
        return await handler(request)
    except grpc.aio.AioRpcError as error:
        status = 400 if error.code() == grpc.StatusCode.INVALID_ARGUMENT else 503
        if error.code() == grpc.StatusCode.NOT_FOUND:
            status = 404
        page = pages.layout(
            "Error", "error", f"<h1>{error.code().name}</h1><p>{pages.e(error.details())}</p>"
        )
        return render(request, page, status)


def build_app(settings: Settings, client: ConsoleClient) -> web.Application:
    app = web.Application(middlewares=[counted, grpc_errors])
    app[CLIENT] = client
    app[SETTINGS] = settings
    app[BROADCASTER] = Broadcaster(client)
    app[TRAFFIC] = Recent(TRAFFIC_CACHE_SECONDS)
    app.router.add_get("/", floor)
    app.router.add_get("/queues/{team}", queue)
    app.router.add_get("/traffic", traffic)
    app.router.add_get("/conversations/{conversation_id}", conversation)
    app.router.add_get("/search", search)
    app.router.add_get("/pipeline", pipeline)
    app.router.add_post("/pipeline/requeue", requeue)
    app.router.add_get("/events", events)
    app.router.add_get("/metrics", metrics)
    app.router.add_static("/static", STATIC)
    return app


@dataclass
class ConsoleServer:
    runner: web.AppRunner
    client: ConsoleClient
    broadcaster: Broadcaster
    port: int

    async def stop(self) -> None:
        await self.broadcaster.stop()
        await self.runner.cleanup()
        await self.client.close()


async def create_console(settings: Settings, host: str, port: int) -> ConsoleServer:
    """Start the console on host:port (0 picks a free port), reading the services at settings' addresses."""
    client = ConsoleClient(settings)
    app = build_app(settings, client)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=False)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        await client.close()
        raise
    app[BROADCASTER].start()
    # The port the system chose for port 0: aiohttp keeps the listening server in a private attribute.
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return ConsoleServer(runner, client, app[BROADCASTER], bound)
