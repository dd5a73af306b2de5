"""`parley simulate`: a day of synthetic traffic against a roster, through the real router, on a simulated
clock. Reports per-team service level, waiting times, agent utilisation and double assignments."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer

from parley.config import Settings

commands = typer.Typer()


async def _simulate(settings: Settings, **options: Any) -> dict[str, Any]:
    from parley.router.simulate import DEFAULT_ROSTER, DEFAULT_TRAFFIC, Simulation, load_yaml
    from parley.store import EmbeddedValkey

    embedded = None
    if not settings.redis_url:
        embedded = EmbeddedValkey()
        settings = settings.model_copy(update={"redis_url": embedded.start()})
    roster = load_yaml(options.pop("roster"), DEFAULT_ROSTER)
    traffic = load_yaml(options.pop("traffic"), DEFAULT_TRAFFIC)
    simulation = Simulation(settings, roster, traffic, **options)
    try:
        return await simulation.run()
    finally:
        await simulation.close()
        if embedded is not None:
            embedded.stop()


def _table(report: dict[str, Any]) -> str:
    within = f"{report['answer_within_seconds']:g}s"
    lines = [
        f"{report['conversations']} conversations over {report['hours']:g} h (seed {report['seed']}): "
        f"{report['bot_replies']} bot replies, {report['human_conversations']} to people, "
        f"{report['no_action']} needing no action, {report['still_waiting_at_end']} still waiting at the end",
        f"double assignments: {report['double_assignments']}",
        "reopened: {reopened}, held for their previous agent {held}, back with their previous agent "
        "{back_with_previous_agent}".format(**report["reopened"]),
        "loop: " + ", ".join(f"{k} {v}" for k, v in report["loop"].items()),
        "",
        f"{'team':<16}{'convs':>7}{'SL ' + within:>10}{'SLA met':>9}{'mean wait':>11}{'p90 wait':>10}"
        f"{'max wait':>10}{'util':>7}{'agents':>8}",
    ]
    for team, row in report["teams"].items():
        lines.append(
            f"{team:<16}{row['conversations']:>7}{row['service_level']:>10.1%}{row['sla_met']:>9.1%}"
            f"{row['mean_wait_seconds']:>10.0f}s{row['p90_wait_seconds']:>9.0f}s{row['max_wait_seconds']:>9.0f}s"
            f"{row['agent_utilisation']:>7.0%}{row['agents']:>8}"
        )
    return "\n".join(lines)


@commands.command()
def simulate(
    roster: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Roster YAML (default: shipped)."
    ),
    traffic: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Traffic profile YAML (default: shipped)."
    ),
    policy: Path | None = typer.Option(None, exists=True, dir_okay=False, help="Escalation policy YAML."),
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same day."),
    hours: float = typer.Option(24.0, min=1, max=24, help="Hours of the day to replay."),
    step: float = typer.Option(5.0, min=1, help="Simulated seconds per step."),
    tick: float = typer.Option(15.0, min=1, help="Simulated seconds between background loop steps."),
    answer_within: float = typer.Option(60.0, help="Service level threshold in seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Replay a day of synthetic traffic against a roster and report service level, waits and utilisation."""
    settings = Settings()
    if policy is not None:
        settings = settings.model_copy(update={"policy_file": policy})
    report = asyncio.run(
        _simulate(
            settings,
            roster=roster,
            traffic=traffic,
            seed=seed,
            hours=hours,
            step=step,
            tick=tick,
            answer_within=answer_within,
        )
    )
    typer.echo(json.dumps(report, indent=2) if as_json else _table(report))
    if report["double_assignments"]:
        raise typer.Exit(1)
