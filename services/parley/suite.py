"""Starting the suite: every service and the worker, in this process (tests) or as child processes
(`parley up`).

Both ways use exactly the `create_server` of each service, on the ports in Settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from parley.auth import jwt_secret
from parley.config import SERVICES, Settings
from parley.rpc import RunningServer, wait_ready

WORKER = "worker"


async def start_service(name: str, settings: Settings, address: str | None = None) -> RunningServer:
    """Start one service's gRPC server (address defaults to host:port from settings)."""
    module = importlib.import_module(f"parley.{name}.server")
    return await module.create_server(settings, address or f"{settings.host}:{settings.port(name)}")


@dataclass
class InProcessSuite:
    """All five services on ephemeral ports and N workers, in one event loop."""

    settings: Settings
    servers: dict[str, RunningServer] = field(default_factory=dict)
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    stop_workers: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def start(cls, settings: Settings, workers: int = 1) -> InProcessSuite:
        suite = cls(settings)
        for name in SERVICES:
            suite.servers[name] = await start_service(name, settings, f"{settings.host}:0")
        # Peers find each other at the ports actually bound.
        suite.settings = replace_ports(settings, {n: s.port for n, s in suite.servers.items()})
        for i in range(workers):
            suite.add_worker(f"worker-{i}")
        return suite

    def add_worker(self, consumer: str) -> asyncio.Task[None]:
        from parley.ingestion.worker import run_worker

        task = asyncio.create_task(run_worker(self.settings, self.stop_workers, consumer))
        self.workers.append(task)
        return task

    def address(self, name: str) -> str:
        return self.settings.address(name)

    async def stop(self) -> None:
        self.stop_workers.set()
        for task in self.workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=5)
        for server in self.servers.values():
            await server.stop(self.settings.shutdown_grace_seconds)


def replace_ports(settings: Settings, ports: dict[str, int]) -> Settings:
    update = {f"{name}_port": port for name, port in ports.items()}
    update |= {f"{name}_addr": f"{settings.host}:{port}" for name, port in ports.items()}
    return settings.model_copy(update=update)


def env_for(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process the same Redis, namespace and addresses as `settings`."""
    env = {
        "REDIS_URL": settings.redis_url or "",
        "PARLEY_KEY_PREFIX": settings.key_prefix,
        "PARLEY_HOST": settings.host,
        "PARLEY_STREAM_PARTITIONS": str(settings.stream_partitions),
        "PARLEY_WEBHOOK_PORT": str(settings.webhook_port),
        # Every child signs its own internal tokens with the shared secret (never an operator's token).
        "PARLEY_AUTH_JWT_SECRET": jwt_secret(settings),
        "PARLEY_AUTH_TOKEN": "",
        "PARLEY_AUTH_DISABLED": str(settings.auth_disabled).lower(),
    }
    for name in SERVICES:
        env[f"PARLEY_{name.upper()}_PORT"] = str(settings.port(name))
        env[f"PARLEY_{name.upper()}_ADDR"] = settings.address(name)
    return env


@dataclass
class ChildProcessSuite:
    """Each service and each worker as its own `parley serve NAME` process (uses every core)."""

    settings: Settings
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    async def start(
        cls, settings: Settings, workers: int = 1, log_dir: str = ".parley/logs"
    ) -> ChildProcessSuite:
        env = dict(os.environ) | env_for(settings)
        os.makedirs(log_dir, exist_ok=True)
        suite = cls(settings, env)
        try:
            for name in SERVICES:
                suite._spawn(name, name, log_dir)
            await suite._wait_ready(log_dir)
            # Workers only once every service listens: a client that keeps dialling a port in the ephemeral
            # range before its server binds can end up connected to itself and hold that port.
            for i in range(workers):
                suite._spawn(f"{WORKER}-{i}", WORKER, log_dir)
        except Exception:
            suite.stop()
            raise
        return suite

    def _spawn(self, name: str, service: str, log_dir: str) -> None:
        env = self.env | {"PARLEY_WORKER_NAME": name}
        with open(os.path.join(log_dir, f"{name}.log"), "ab") as out:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "parley", "serve", service], env=env, stdout=out, stderr=out
            )

    async def _wait_ready(self, log_dir: str, timeout: float = 120.0) -> None:
        """Wait for every service's health check; fail at once, with its log, if a child exits first."""
        ready = asyncio.ensure_future(
            asyncio.gather(*(wait_ready(self.settings.address(n), timeout, self.settings) for n in SERVICES))
        )
        try:
            while not ready.done():
                dead = self.failed()
                if dead:
                    log = Path(log_dir, f"{dead[0]}.log")
                    tail = log.read_text(errors="replace")[-2000:]  # noqa: ASYNC240 - failing anyway
                    raise RuntimeError(f"{dead[0]} exited during start-up; its log ends:\n{tail}")
                await asyncio.sleep(0.1)
            await ready
        finally:
            ready.cancel()

    def failed(self) -> list[str]:
        return [name for name, proc in self.processes.items() if proc.poll() is not None]

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
