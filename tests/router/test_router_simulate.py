"""`parley simulate`: the day's replay through the real router, its report, and the CLI."""

import json

from typer.testing import CliRunner

from parley.cli import app
from parley.router.simulate import DEFAULT_TRAFFIC, Simulation, generate_traffic, load_yaml

TRAFFIC = {
    **load_yaml(None, DEFAULT_TRAFFIC),
    "conversations": 480,
    "hourly": [1] * 24,
    "intents": {"complaint": 1},
    "topics": {"billing": 1},
}


def roster(capacity: int) -> dict:
    return {
        "agents": [
            {"id": f"b{i}", "teams": ["billing"], "capacity": capacity, "skills": [], "shift": [0, 24]}
            for i in range(3)
        ]
    }


def test_traffic_is_seeded():
    day = load_yaml(None, DEFAULT_TRAFFIC)
    first, again = generate_traffic(day, 3, 24), generate_traffic(day, 3, 24)
    assert [a.item for a in first] == [a.item for a in again]
    assert len(first) == day["conversations"]
    assert generate_traffic(day, 4, 24)[0].item != first[0].item


async def test_ample_staff_answers_everything_at_once_and_none_twice(settings):
    simulation = Simulation(settings, roster(capacity=20), {**TRAFFIC, "reopen_after_resolve": 0}, hours=2)
    try:
        report = await simulation.run()
    finally:
        await simulation.close()
    billing = report["teams"]["billing"]
    assert report["conversations"] == billing["conversations"] == billing["answered"] == 40
    assert billing["service_level"] == 1.0 and billing["max_wait_seconds"] == 0
    assert report["double_assignments"] == 0 and report["still_waiting_at_end"] == 0
    assert 0 < billing["agent_utilisation"] < 1


async def test_reopened_conversations_go_back_to_their_agents(settings):
    simulation = Simulation(settings, roster(capacity=2), {**TRAFFIC, "reopen_after_resolve": 0.5}, hours=2)
    try:
        report = await simulation.run()
    finally:
        await simulation.close()
    reopened = report["reopened"]
    assert reopened["reopened"] > 0 and reopened["held"] > 0  # some came back while their agent was full
    assert reopened["back_with_previous_agent"] > reopened["reopened"] / 2
    assert report["loop"]["holds_released"] < reopened["held"]  # most holds ended with the agent taking it
    assert report["double_assignments"] == 0


async def test_short_staff_waits_and_escalates(settings):
    simulation = Simulation(settings, roster(capacity=1), {**TRAFFIC, "conversations": 1200}, hours=1)
    try:
        report = await simulation.run()
    finally:
        await simulation.close()
    billing = report["teams"]["billing"]
    assert billing["service_level"] < 0.5 and billing["p90_wait_seconds"] > 600
    assert billing["agent_utilisation"] > 0.8
    assert report["double_assignments"] == 0


def test_the_cli_prints_json(settings):
    result = CliRunner().invoke(
        app, ["simulate", "--hours", "1", "--json"], env={"REDIS_URL": settings.redis_url}
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["double_assignments"] == 0 and report["hours"] == 1
    assert set(report["teams"]["first_line"]) >= {"service_level", "mean_wait_seconds", "agent_utilisation"}
