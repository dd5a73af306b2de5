from pathlib import Path

import pytest

from parley.config import Settings
from parley.router.policy import DEFAULT_POLICY_FILE, PolicyError, load_policy

MINIMAL = """
tiers: [first_line, supervisor]
default_team: first_line
teams:
  - {name: first_line, tier: first_line}
  - {name: boss, tier: supervisor}
rules:
  - {name: all, then: {action: queue, team: first_line}}
sla:
  - {name: p4, min_priority: 0, first_response_seconds: 600}
bot: {after_reply_team: first_line}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_default_policy_loads_with_teams_rules_and_bands():
    policy = load_policy()
    assert {
        "priority",
        "billing",
        "orders_delivery",
        "account_access",
        "technical",
        "travel",
        "first_line",
    } <= {t.name for t in policy.teams}
    assert policy.team("priority").tier == "supervisor"
    assert policy.rules[0].name == "urgent"
    assert policy.bot.min_confidence == 0.6
    assert (
        policy.sla_band(90).name == "p1"
        and policy.sla_band(55).name == "p2"
        and policy.sla_band(1).name == "p4"
    )


def test_settings_policy_file_overrides_the_default(tmp_path: Path):
    path = write(tmp_path, MINIMAL)
    policy = load_policy(Settings(policy_file=path).policy_file)
    assert [t.name for t in policy.teams] == ["first_line", "boss"]
    assert load_policy(None).team("billing") is not None
    assert DEFAULT_POLICY_FILE.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("{action: queue, team: first_line}", "{action: queue, team: nobody}"), "rules[0].then.team"),
        (("{name: all, then", "{name: all, when: {intent: [urgent]}, then"), "rules[0].when.intent"),
        (
            ("{name: all, then", "{name: all, when: {min_confidence: 1.5}, then"),
            "rules[0].when.min_confidence",
        ),
        (("first_response_seconds: 600", "first_response_seconds: -1"), "sla[0].first_response_seconds"),
        (("{name: boss, tier: supervisor}", "{name: boss, tier: chief}"), "teams[1].tier"),
        (("{action: queue, team: first_line}", "{action: bot, team: first_line}"), "rules[0].then.team"),
        (("{action: queue, team: first_line}", "{action: fly}"), "rules[0].then.action"),
        (("default_team: first_line", "default_team: nobody"), "default_team"),
    ],
)
def test_a_bad_policy_names_the_field(tmp_path: Path, change: tuple[str, str], field: str):
    path = write(tmp_path, MINIMAL.replace(*change))
    with pytest.raises(PolicyError) as error:
        load_policy(path)
    assert field in [p for p, _ in error.value.problems]
    assert field in str(error.value)


def test_broken_yaml_is_a_policy_error(tmp_path: Path):
    with pytest.raises(PolicyError):
        load_policy(write(tmp_path, "teams: [unclosed"))


def test_escalation_goes_up_a_tier_by_topic():
    policy = load_policy()
    assert policy.escalation_target("first_line", "billing").name == "billing"
    # No specialist team takes the topic and the tier has several teams: up to the supervisors.
    assert policy.escalation_target("first_line", "weather").name == "priority"
    assert policy.escalation_target("billing", "billing").name == "priority"
    assert policy.escalation_target("priority") is None


def test_priority_grows_with_reach_public_and_tier_but_is_capped():
    policy = load_policy()
    base = policy.priority_of("complaint", False, 0, "")
    assert base == 50
    assert policy.priority_of("complaint", True, 0, "") == 60
    assert (
        base
        < policy.priority_of("complaint", False, 1_000, "")
        < policy.priority_of("complaint", False, 10**6, "")
    )
    assert policy.priority_of("complaint", False, 10**30, "") == 50 + policy.priority.followers_max
    assert policy.priority_of("complaint", False, 0, "vip") == 60
    assert policy.priority_of("praise", False, 0, "", -5) < policy.priority_of("question", False, 0, "")


def test_every_classifier_topic_but_general_has_a_specialist_team():
    policy = load_policy()
    for topic in ("billing", "orders_delivery", "account_access", "technical", "travel"):
        assert policy.team_for_topic(topic).name == topic
    assert policy.team_for_topic("general") is None
