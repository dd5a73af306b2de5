"""The `parley chaos` command."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

commands = typer.Typer()
console = Console()
DEMO_FILE = Path(__file__).parent.parent / "demo" / "demo_conversations.csv"


@commands.command()
def chaos(
    csv: Path = typer.Option(DEMO_FILE, help="A twcs-layout CSV to replay."),
    copies: int = typer.Option(1, min=1, help="Copies of the file, each with its ids re-prefixed."),
    workers: int = typer.Option(2, min=1, help="Pipeline worker processes."),
    kill_every: float = typer.Option(3.0, help="Mean seconds between two SIGKILLs."),
    chaos_seconds: float = typer.Option(30.0, help="Keep killing at least this long."),
    seed: int = typer.Option(0, help="Seed of the kill schedule."),
    data_dir: Path = typer.Option(Path(".parley/chaos"), help="Where the Redis data, logs and outbox go."),
    cluster: bool = typer.Option(
        False,
        "--cluster",
        help="Run on a 3-master cluster with a replica each; a Redis kill is then a master's, and its "
        "replica takes over.",
    ),
    agents: int = typer.Option(6, min=0, help="Agents online in every team, resolving at random."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Run the suite as separate processes on a Redis of its own, replay CSV through an at-least-once client
    while agents take and resolve conversations and every service, worker and the Redis server (with
    --cluster: a master) is killed at random, then drain and report what was lost or happened twice, and
    capacity leaked. Exits 1 on any loss, duplicate or leak; the file is taken to be clean, so a message
    dead-lettered or a reply chain split over two conversations fails the run too."""
    from parley.chaos.run import ChaosPlan, run_chaos

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    plan = ChaosPlan(
        csv=csv,
        copies=copies,
        workers=workers,
        kill_every=kill_every,
        chaos_seconds=chaos_seconds,
        seed=seed,
        data_dir=data_dir,
        cluster=cluster,
        agents=agents,
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped like Ctrl-C: its suite and Redis too
    report = asyncio.run(run_chaos(plan))
    if as_json:
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        table = Table(title="parley chaos" + ("" if report.ok else " — FAILED"))
        table.add_column("measure")
        table.add_column("value", justify="right")
        for name, value in report.as_dict().items():
            table.add_row(name, json.dumps(value) if isinstance(value, (dict, list)) else str(value))
        console.print(table)
    raise typer.Exit(0 if report.ok else 1)
