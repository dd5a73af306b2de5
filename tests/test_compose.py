"""docker-compose.yml must start what the code runs: Docker cannot run here, so check the file against it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from parley.cli import app
from parley.config import REPO_ROOT, SERVICES, Settings

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES_IN_FILE = COMPOSE["services"]


def test_one_container_per_service_plus_worker_and_redis() -> None:
    assert set(SERVICES_IN_FILE) == {*SERVICES, "worker", "redis"}


def test_each_container_runs_its_own_service() -> None:
    for name in (*SERVICES, "worker"):
        assert SERVICES_IN_FILE[name]["command"] == ["serve", name]
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert {"serve", "health"} <= commands


def test_published_ports_are_the_ports_the_services_bind() -> None:
    defaults = Settings(_env_file=None)
    for name in SERVICES:
        container_ports = {int(p.split(":")[1]) for p in SERVICES_IN_FILE[name]["ports"]}
        assert defaults.port(name) in container_ports, name
    assert defaults.webhook_port in {int(p.split(":")[1]) for p in SERVICES_IN_FILE["ingestion"]["ports"]}


def test_environment_names_are_settings_the_code_reads() -> None:
    fields = {f"PARLEY_{name.upper()}" for name in Settings.model_fields} | {"REDIS_URL"}
    defaults = Settings(_env_file=None)
    for name in (*SERVICES, "worker"):
        env = SERVICES_IN_FILE[name]["environment"]
        assert set(env) <= fields, set(env) - fields
        assert env["REDIS_URL"].startswith("redis://redis:")
        # Peer addresses name the peer's container and the port it binds.
        for peer in SERVICES:
            assert env[f"PARLEY_{peer.upper()}_ADDR"] == f"{peer}:{defaults.port(peer)}"
        # Services bind all interfaces inside their container.
        assert env["PARLEY_HOST"] == "0.0.0.0"


def test_health_checks_use_grpc_health_on_the_service_port() -> None:
    defaults = Settings(_env_file=None)
    for name in SERVICES:
        test = SERVICES_IN_FILE[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "parley", "health"]
        assert test[3] == f"127.0.0.1:{defaults.port(name)}"
    worker_needs = SERVICES_IN_FILE["worker"]["depends_on"]
    assert all(worker_needs[p]["condition"] == "service_healthy" for p in SERVICES if p != "ingestion")


def test_dockerfile_builds_the_parley_command() -> None:
    dockerfile = Path(REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["parley"\]', dockerfile, re.M)
    assert "COPY models" in dockerfile and "pip install" in dockerfile


def test_the_image_runs_in_a_working_directory_its_user_owns() -> None:
    """Relative paths (`.parley/outbox.log` of the default adapter) land in the working directory."""
    dockerfile = Path(REPO_ROOT / "Dockerfile").read_text()
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)[-1]
    workdir = re.findall(r"^WORKDIR (\S+)", dockerfile, re.M)[-1]
    assert re.search(rf"chown {user}(:\S+)? {re.escape(workdir)}\b", dockerfile), (user, workdir)
