"""The `parley` command: run the suite, one service, a replay, the benchmark, the model tools."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from parley.config import SERVICES, Settings
from parley.messages import CHANNEL_NAMES, INTENT_NAMES
from parley.v1 import dispatch_pb2

if TYPE_CHECKING:
    from parley.store import EmbeddedValkey
    from parley.telemetry.metrics import MetricsServer

T = TypeVar("T")

app = typer.Typer(
    help="Parley: social-media customer service triage as gRPC microservices.", no_args_is_help=True
)
console = Console()

DEMO_FILE = Path(__file__).parent / "demo" / "demo_conversations.csv"
ACTION_NAMES = {1: "bot reply", 2: "queued", 3: "assigned", 4: "no action", 5: "appended"}
ROLE_NAMES = {1: "customer", 2: "participant", 3: "brand"}
CONSOLE = "console"


def _start(what: str, verbose: bool, process: str = "") -> Settings:
    """The settings (a bad value is told in one line, naming its variable), and logging set up by them."""
    from parley.telemetry import logs

    settings = _one_line_errors(what, verbose, Settings)
    logs.configure(settings.log_format, verbose, process)
    return settings


def _one_line_errors(what: str, verbose: bool, run: Callable[[], T]) -> T:
    """Run `run`; a failure prints one line saying what failed (the whole trace with --verbose), exit 1."""
    try:
        return run()
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as error:
        if verbose:
            raise
        from parley.suite import PortInUse

        lines = str(error).strip().splitlines()
        detail = lines[0] if lines else ""
        if isinstance(error, ValidationError):  # a setting's value from the environment
            detail = "; ".join(f"{_variable(e['loc'])}: {e['msg']}" for e in error.errors())
        elif not isinstance(error, PortInUse):
            detail = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
        print(f"{what} failed: {detail}  (--verbose shows the trace)", file=sys.stderr)
        raise typer.Exit(1) from None


def _variable(loc: tuple[int | str, ...]) -> str:
    """The environment variable of a setting a validation error points at (REDIS_URL has no prefix)."""
    name = str(loc[0]) if loc else "?"
    return name if name.isupper() else f"PARLEY_{name.upper()}"


def _serve_metrics(process: str, settings: Settings) -> MetricsServer | None:
    """This process's /metrics on its port from settings (none when PARLEY_METRICS_PORT is 0)."""
    from parley.suite import PortInUse
    from parley.telemetry.collectors import collectors_for
    from parley.telemetry.metrics import serve_metrics

    port = settings.metrics_port_of(process)
    if not port:
        return None
    try:
        return serve_metrics(settings.host, port, collectors_for(process, settings))
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        raise PortInUse(f"{process} metrics", settings.host, port, "PARLEY_METRICS_PORT") from None


def _with_redis(settings: Settings, data_dir: str) -> tuple[Settings, EmbeddedValkey | None]:
    """Settings with a Redis URL: REDIS_URL when set, else a freshly started embedded Valkey."""
    if settings.redis_url:
        return settings, None
    from parley.store import EmbeddedValkey

    embedded = EmbeddedValkey(data_dir)
    url = embedded.start()
    return settings.model_copy(update={"redis_url": url}), embedded


def _with_secret(settings: Settings) -> Settings:
    """Settings with the shared JWT secret: the configured one, else the local file, created when absent."""
    if settings.auth_disabled:
        return settings
    from pydantic import SecretStr

    from parley.auth import ensure_local_secret, jwt_secret

    secret = jwt_secret(settings) or ensure_local_secret(settings.auth_jwt_secret_file)
    return settings.model_copy(update={"auth_jwt_secret": SecretStr(secret)})


def _as_operator(settings: Settings, subject: str) -> Settings:
    """Settings whose client token may ingest and read as a supervisor (replay, demo, bench): the configured
    PARLEY_AUTH_TOKEN, else one minted from the secret."""
    from pydantic import SecretStr

    from parley.auth import jwt_secret, mint
    from parley.authz import INGEST, SUPERVISOR
    from parley.config import reveal

    secret = jwt_secret(settings)
    if settings.auth_disabled or reveal(settings.auth_token) or not secret:
        return settings
    token = mint(secret, subject, [INGEST, SUPERVISOR], ttl=24 * 3600, audience=settings.auth_audience)
    return settings.model_copy(update={"auth_token": SecretStr(token)})


@contextlib.asynccontextmanager
async def _stopping(settings: Settings | None = None) -> AsyncIterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM, or once the suite that started this process is gone."""
    from parley.supervision import stop_when_orphaned

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    supervisor = settings.supervisor_pid if settings is not None else 0
    watch = asyncio.create_task(stop_when_orphaned(supervisor, stop))
    try:
        yield stop
    finally:
        watch.cancel()


async def _wait_for_signal(settings: Settings | None = None) -> None:
    async with _stopping(settings) as stop:
        await stop.wait()


@app.command()
def up(
    demo: bool = typer.Option(True, help="Replay the bundled demo conversations once the suite is up."),
    exit_after_demo: bool = typer.Option(False, "--exit", help="Stop the suite after the demo."),
    workers: int = typer.Option(1, min=1, help="Pipeline worker processes."),
    verbose: bool = False,
) -> None:
    """Start the whole suite on this machine: five services and the worker, on an embedded Valkey when
    REDIS_URL is unset."""
    settings = _start("parley up", verbose)
    from parley.suite import ChildProcessSuite, check_ports_free, ports_needed

    # Before anything starts: a port held by another process (a forgotten suite) fails here, in one line.
    _one_line_errors("parley up", verbose, lambda: check_ports_free(ports_needed(settings, workers)))
    settings, embedded = _one_line_errors(
        "parley up: the embedded Valkey",
        verbose,
        lambda: _with_redis(settings, settings.embedded_data_dir or ".parley/valkey"),
    )
    settings = _with_secret(settings)

    def metrics_url(process: str, index: int = 0) -> str:
        port = settings.metrics_port_of(process, index)
        return f"http://{settings.host}:{port}/metrics" if port else "-"

    async def main() -> int:
        suite = await ChildProcessSuite.start(settings, workers=workers)
        try:
            table = Table(title="Parley is up")
            table.add_column("process")
            table.add_column("gRPC")
            table.add_column("metrics")
            for name in SERVICES:
                table.add_row(name, settings.address(name), metrics_url(name))
            for i in range(workers):
                table.add_row(f"worker-{i}", "-", metrics_url("worker", i))
            console.print(table)
            endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            for what, where in (
                ("console", console_url(settings) + "  (open it in a browser)"),
                ("webhooks", f"http://{settings.host}:{settings.webhook_port}/webhooks/{{meta,x}}"),
                ("inbound log", f"{settings.stream_partitions} partitions, one consumer group"),
                ("redis", (settings.redis_url or "") + ("  (embedded Valkey)" if embedded else "")),
                ("logs", f".parley/logs/ ({settings.log_format})"),
                ("traces", f"OTLP to {endpoint}" if endpoint else "off (set OTEL_EXPORTER_OTLP_ENDPOINT)"),
            ):
                console.print(f"  {what:<12} {where}")
            _print_supervisor_token(settings)
            # Fresh ids per run: the embedded Valkey keeps its data, and the demo should show new traffic.
            demo_run = f"demo{int(time.time())}-"
            operator = _as_operator(settings, "parley-demo")
            demo_code = await _replay_and_print(DEMO_FILE, operator, id_prefix=demo_run) if demo else 0
            if exit_after_demo:
                return 1 if demo_code or suite.failed() else 0
            console.print("[bold]Ctrl-C stops the suite.[/bold]")
            supervisor = asyncio.create_task(suite.supervise())  # a child that dies is started again
            await _wait_for_signal()
            supervisor.cancel()
            return 0
        finally:
            suite.stop()

    try:
        code = _one_line_errors("parley up", verbose, lambda: asyncio.run(main()))
    finally:
        if embedded is not None:
            embedded.stop()
    raise typer.Exit(code)


def _print_supervisor_token(settings: Settings) -> None:
    if settings.auth_disabled:
        console.print("[yellow]authentication is OFF (PARLEY_AUTH_DISABLED)[/yellow]")
        return
    from parley.auth import jwt_secret, mint
    from parley.authz import SUPERVISOR

    token = mint(
        jwt_secret(settings), "supervisor", [SUPERVISOR], ttl=12 * 3600, audience=settings.auth_audience
    )
    console.print(f"supervisor token (12 h; `parley token` makes others):\n{token}", soft_wrap=True)


@app.command()
def token(
    subject: str = typer.Option(..., help="Who the token stands for: an agent id, a person, a client."),
    scope: str = typer.Option(..., help="Comma-separated scopes: ingest, agent, supervisor, admin."),
    ttl: int = typer.Option(3600, min=1, help="Seconds until the token expires."),
) -> None:
    """Print a bearer token signed with the configured secret (PARLEY_AUTH_JWT_SECRET or the local file)."""
    from parley.auth import jwt_secret, mint
    from parley.authz import INTERNAL, SCOPES

    settings = Settings()
    scopes = [s.strip() for s in scope.split(",") if s.strip()]
    unknown = [s for s in scopes if s not in SCOPES or s == INTERNAL]
    if not scopes or unknown:
        raise typer.BadParameter(
            f"unknown or reserved scope {unknown}; use ingest, agent, supervisor, admin", param_hint="--scope"
        )
    secret = jwt_secret(settings)
    if not secret:
        print(
            "no secret: set PARLEY_AUTH_JWT_SECRET (or run `parley up` once to create one)", file=sys.stderr
        )
        raise typer.Exit(1)
    print(mint(secret, subject, scopes, ttl, audience=settings.auth_audience))


@app.command()
def serve(
    service: str = typer.Argument(
        ..., help="ingestion, conversations, classifier, router, dispatch, worker or console"
    ),
    verbose: bool = False,
) -> None:
    """Run one service (or one pipeline worker, or the supervisor console) alone, until SIGTERM or Ctrl-C."""
    settings = _start(f"parley serve {service}", verbose, service)
    if service not in (*SERVICES, "worker", CONSOLE):
        choices = ", ".join((*SERVICES, "worker", CONSOLE))
        raise typer.BadParameter(f"unknown service {service!r}; one of {choices}")
    if service == CONSOLE:
        _one_line_errors(f"parley serve {service}", verbose, lambda: asyncio.run(_serve_console(settings)))
        return
    from parley.suite import check_ports_free, ports_of

    # Before anything starts: a port held by another process fails here, in one line.
    _one_line_errors(
        f"parley serve {service}", verbose, lambda: check_ports_free(ports_of(settings, service))
    )
    if not settings.auth_disabled and not settings.auth_jwks:
        from parley.auth import jwt_secret

        if not jwt_secret(settings):
            print(
                "authentication is on and there is no secret: set PARLEY_AUTH_JWT_SECRET (the same for every "
                "service) or PARLEY_AUTH_DISABLED=true",
                file=sys.stderr,
            )
            raise typer.Exit(2)
    settings, embedded = _one_line_errors(
        f"parley serve {service}: the embedded Valkey",
        verbose,
        lambda: _with_redis(settings, settings.embedded_data_dir),
    )
    if embedded is not None:
        console.print("[yellow]REDIS_URL is unset: this service runs on its own embedded Valkey[/yellow]")

    async def main() -> None:
        from parley.telemetry import tracing

        tracing.configure(f"parley-{service}")
        metrics = _serve_metrics(service, settings)
        if metrics is not None:
            console.print(f"{service} metrics on http://{settings.host}:{metrics.port}/metrics")
        try:
            await serve_until_stopped()
        finally:
            if metrics is not None:
                metrics.stop()
            tracing.shutdown()

    async def serve_until_stopped() -> None:
        if service == "worker":
            from parley.pipeline.worker import run_worker

            async with _stopping(settings) as stop:
                await run_worker(settings, stop)
            return
        from parley.suite import start_service

        running = await start_service(service, settings)
        if service == "classifier":
            from parley.classifier.server import settle_process

            settle_process()  # the models are loaded: this process serves classification until it ends
        console.print(f"{service} serving gRPC on {settings.host}:{running.port}")
        webhook_port = getattr(running, "webhook_port", None)
        if webhook_port:
            console.print(f"webhooks on http://{settings.host}:{webhook_port}/webhooks/{{meta,x}}")
        await _wait_for_signal(settings)
        await running.stop(settings.shutdown_grace_seconds)

    try:
        _one_line_errors(f"parley serve {service}", verbose, lambda: asyncio.run(main()))
    finally:
        if embedded is not None:
            embedded.stop()


async def _serve_console(settings: Settings) -> None:
    """The console reads the services over gRPC only: it needs no Redis of its own."""
    from parley.console.server import create_console

    running = await create_console(settings, settings.host, settings.console_port)
    console.print(f"console on {console_url(settings, running.port)}")
    await _wait_for_signal(settings)
    await running.stop()


def console_url(settings: Settings, port: int | None = None) -> str:
    return f"http://{settings.host}:{port or settings.console_port}/"


@app.command()
def replay(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A CSV in the twcs layout."),
    timeout: float = typer.Option(60.0, help="Seconds to wait for the pipeline."),
) -> None:
    """Send a twcs-layout CSV through Ingest and print each conversation: messages, intent, route, replies."""
    code = asyncio.run(_replay_and_print(file, _as_operator(Settings(), "parley-replay"), timeout))
    raise typer.Exit(code)


async def _replay_and_print(
    file: Path, settings: Settings, timeout: float = 60.0, id_prefix: str = ""
) -> int:
    from parley.replay import read_twcs
    from parley.replay import replay as run_replay

    messages = read_twcs(file, id_prefix)
    report = await run_replay(messages, settings, timeout=timeout)
    console.print(
        f"[bold]{file.name}[/bold]: {len(messages)} messages, {report.accepted} accepted, "
        f"{report.duplicates} duplicates, {len(report.conversations)} conversations"
    )
    if report.duplicates:
        console.print(
            f"{report.duplicates} of these messages were already ingested (the file was replayed before): "
            "nothing new was done for them; the conversations they are in follow."
        )
    for conversation in report.conversations:
        console.rule(
            f"{conversation.conversation_id} · {CHANNEL_NAMES.get(conversation.channel, '?')} · "
            f"@{conversation.brand_account_id} · {len(conversation.messages)} messages"
        )
        for item in conversation.messages:
            message = item.message
            who = ROLE_NAMES.get(item.role, "?")
            console.print(
                f"  [cyan]{who:<11}[/cyan] @{message.author.handle or message.author.id}: {message.text}"
            )
            if item.HasField("triage"):
                triage = item.triage
                top = max(triage.scores, key=lambda s: s.probability, default=None)
                probability = f" {top.probability:.2f}" if top else ""
                reasons = f" ({', '.join(triage.urgency_reasons)})" if triage.urgency_reasons else ""
                console.print(
                    f"              intent [bold]{INTENT_NAMES.get(triage.intent, '?')}[/bold]{probability}"
                    f"{reasons} · topic {triage.topic or '-'}"
                )
            if item.HasField("routing"):
                routing = item.routing
                target = routing.team or routing.agent_id or "-"
                console.print(
                    f"              route [bold]{ACTION_NAMES.get(routing.action, '?')}[/bold] → {target} "
                    f"(rule {routing.rule or '-'}, priority {routing.priority:.1f})"
                )
                delivery = report.deliveries.get(f"bot:{message.message_id}")
                if routing.bot_reply_text:
                    status = dispatch_pb2.DeliveryStatus.Name(delivery.status) if delivery else "unknown"
                    console.print(
                        f"              bot reply: {routing.bot_reply_text}  [dim](delivery {status})[/dim]"
                    )
    if report.unfinished:
        console.print(f"[red]{len(report.unfinished)} messages not through the pipeline in time[/red]")
        return 1
    return 0


@app.command()
def bench(
    messages: int = typer.Option(4000, help="Messages for the saturation run."),
    rate: float = typer.Option(500.0, help="Offered rate (msgs/s) for the latency run."),
    duration: float = typer.Option(10.0, help="Seconds of the latency run."),
    workers: int = typer.Option(2, min=1, help="Pipeline worker processes."),
    replicas: int = typer.Option(
        1, min=1, max=4, help="Processes of each service; peers take turns over them (round robin)."
    ),
    cluster: bool = typer.Option(
        False, "--cluster", help="On a local 3-master Redis Cluster with a replica each, started for the run."
    ),
    soak: int = typer.Option(
        0,
        "--soak",
        min=0,
        help="Instead of the latency run, this many messages in saturation rounds (at most 20,000 each),"
        " reporting each process's memory after every round and whether it stayed flat (±10%).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Measure the running suite: saturation throughput, Ingest→routed latency at a fixed rate, and the ratio
    to a bare grpc.aio echo stream on this machine. Starts its own suite (REDIS_URL or an embedded Valkey, or
    with --cluster a local Redis Cluster)."""
    from parley.bench import run_bench
    from parley.cluster import LocalCluster

    local = LocalCluster() if cluster else None
    settings, embedded = Settings(), None
    if local is not None:
        settings = settings.model_copy(update={"redis_url": local.start(), "redis_cluster": True})
    else:
        settings, embedded = _with_redis(settings, "")
    settings = _as_operator(_with_secret(settings), "parley-bench")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped like Ctrl-C: its suite and Redis too
    try:
        result = asyncio.run(
            run_bench(
                settings,
                messages,
                rate,
                duration,
                workers,
                progress=not as_json,
                soak_messages=soak,
                replicas=replicas,
            )
        )
    finally:
        if embedded is not None:
            embedded.stop()
        if local is not None:
            local.stop()
    if as_json:
        print(json.dumps(result, indent=2))
        return
    table = Table(title="parley bench")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key == "soak_samples":
            continue
        parts = value.items() if isinstance(value, dict) else [("", value)]
        for part, v in parts:
            table.add_row(f"{key} {part}".strip(), f"{v:,.2f}" if isinstance(v, float) else str(v))
    console.print(table)


@app.command()
def health(address: str = typer.Argument(..., help="host:port of a Parley service")) -> None:
    """Exit 0 when the service at ADDRESS answers its gRPC health check with SERVING (for probes)."""
    from parley.rpc import wait_ready

    try:
        asyncio.run(wait_ready(address, 3.0, Settings()))
    except TimeoutError:
        print(f"{address}: not serving", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"{address}: serving")


def _mount_optional_commands() -> None:
    """Commands that each service package contributes (for example the classifier's train/eval/classify)."""
    import importlib
    import importlib.util

    for name in (*SERVICES, "chaos"):
        package = importlib.util.find_spec(f"parley.{name}")
        if package is not None and importlib.util.find_spec(f"parley.{name}.commands") is not None:
            module = importlib.import_module(f"parley.{name}.commands")
            app.registered_commands.extend(module.commands.registered_commands)


_mount_optional_commands()
