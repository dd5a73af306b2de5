"""The lock files pin every dependency of pyproject.toml, each with its hashes (scripts/lock writes them)."""

from __future__ import annotations

import re
import tomllib

import pytest

from parley.config import REPO_ROOT

PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pins(lock: str) -> dict[str, list[str]]:
    """Package -> its --hash options, from a lock file in pip's format."""
    pins: dict[str, list[str]] = {}
    current = ""
    for line in (REPO_ROOT / lock).read_text().splitlines():
        pin = re.match(r"^([A-Za-z0-9._-]+)==\S+", line)
        if pin:
            current = pin[1].lower().replace("_", "-")
            pins[current] = []
        elif current and "--hash=sha256:" in line:
            pins[current].append(line.strip())
    return pins


@pytest.mark.parametrize(
    "lock, extras",
    [("requirements.lock", []), ("requirements-dev.lock", ["dev", "train"])],
)
def test_every_dependency_is_pinned_with_hashes(lock: str, extras: list[str]) -> None:
    pins = _pins(lock)
    wanted = {_name(r) for r in PROJECT["dependencies"]}
    for extra in extras:
        wanted |= {_name(r) for r in PROJECT["optional-dependencies"][extra]}
    missing = sorted(wanted - set(pins))
    assert not missing, f"{lock} lacks {missing}: run scripts/lock"
    assert all(pins.values()), f"{lock} has pins without hashes"


def test_the_dev_lock_keeps_every_runtime_pin() -> None:
    runtime = (REPO_ROOT / "requirements.lock").read_text()
    dev = (REPO_ROOT / "requirements-dev.lock").read_text()
    for pin in re.findall(r"^[A-Za-z0-9._-]+==\S+", runtime, re.MULTILINE):
        assert re.search(rf"^{re.escape(pin)}\b", dev, re.MULTILINE), pin
