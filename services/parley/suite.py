"""Starting the suite: every service and the worker, in this process (tests) or as child processes
(`parley up`).

Both ways use exactly the `create_server` of each service, on the ports in Settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from parley.auth import jwt_secret
from parley.config import SERVICES, Settings
from parley.rpc import RunningServer, wait_ready
from parley.supervision import Restarts, watch_redis

WORKER = "worker"
CONSOLE = "console"

log = logging.getLogger(__name__)


class PortInUse(OSError):
    """A port the suite needs is held by another process; the message names the setting that moves it."""

    def __init__(self, what: str, host: str, port: int, setting: str) -> None:
        super().__init__(
            errno.EADDRINUSE,
            f"{what}: port {port} on {host} is in use (another Parley still running?); "
            f"stop what holds it or set {setting} to a free port",
        )

    def __str__(self) -> str:
        return str(self.strerror)


async def start_service(name: str, settings: Settings, address: str | None = None) -> RunningServer:
    """Start one service's gRPC server (address defaults to host:port from settings)."""
    module = importlib.import_module(f"parley.{name}.server")
    address = address or f"{settings.host}:{settings.port(name)}"
    try:
        running: RunningServer = await module.create_server(settings, address)
    except OSError as error:
        if error.errno != errno.EADDRINUSE or isinstance(error, PortInUse):
            raise
        host, _, port = address.rpartition(":")
        raise PortInUse(f"{name} gRPC", host, int(port), f"PARLEY_{name.upper()}_PORT") from error
    watch_redis(running, settings)  # NOT_SERVING while Redis is unreachable
    return running


def ports_of(
    settings: Settings, process: str, worker_index: int | None = None
) -> list[tuple[str, str, int, str]]:
    """The (what, host, port, setting) one process listens on: its gRPC port, webhooks, /metrics. A worker's
    /metrics port follows its index (settings' own unless given)."""
    ports = []
    if process != WORKER:
        ports.append(
            (f"{process} gRPC", settings.host, settings.port(process), f"PARLEY_{process.upper()}_PORT")
        )
    if process == "ingestion" and settings.webhook_enabled:
        ports.append(("webhooks", settings.host, settings.webhook_port, "PARLEY_WEBHOOK_PORT"))
    metrics_port = settings.metrics_port_of(process, worker_index)
    ports.append((f"{process} metrics", settings.host, metrics_port, "PARLEY_METRICS_PORT"))
    return ports


def ports_needed(settings: Settings, workers: int) -> list[tuple[str, str, int, str]]:
    """Every port the whole suite listens on."""
    ports = [p for name in SERVICES for p in ports_of(settings, name)]
    ports.append(("console", settings.host, settings.console_port, "PARLEY_CONSOLE_PORT"))
    return ports + [p for i in range(workers) for p in ports_of(settings, WORKER, i)]


def check_ports_free(ports: Iterable[tuple[str, str, int, str]]) -> None:
    """Raise PortInUse for the first (what, host, port, setting) some other process listens on."""
    for what, host, port, setting in ports:
        if port == 0:
            continue
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            # As the servers bind: a port left in TIME_WAIT is free, one with a listener is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise PortInUse(what, host, port, setting) from None
                raise


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
        from parley.pipeline.worker import run_worker

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
    update: dict[str, object] = {f"{name}_port": port for name, port in ports.items()}
    update |= {f"{name}_addr": f"{settings.host}:{port}" for name, port in ports.items()}
    return settings.model_copy(update=update)


def env_for(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process the same Redis, namespace and addresses as `settings`."""
    env = {
        "REDIS_URL": settings.redis_url or "",
        "PARLEY_REDIS_CLUSTER": "true" if settings.redis_cluster else "false",
        "PARLEY_KEY_PREFIX": settings.key_prefix,
        "PARLEY_HOST": settings.host,
        "PARLEY_STREAM_PARTITIONS": str(settings.stream_partitions),
        "PARLEY_EVENT_PARTITIONS": str(settings.event_partitions),
        "PARLEY_INDEX_PARTITIONS": str(settings.index_partitions),
        "PARLEY_WEBHOOK_PORT": str(settings.webhook_port),
        # Every child signs its own internal tokens with the shared secret (never an operator's token).
        "PARLEY_AUTH_JWT_SECRET": jwt_secret(settings),
        "PARLEY_AUTH_TOKEN": "",
        "PARLEY_AUTH_DISABLED": str(settings.auth_disabled).lower(),
        "PARLEY_METRICS_PORT": str(settings.metrics_port),
        "PARLEY_LOG_FORMAT": settings.log_format,
        "PARLEY_CONSOLE_PORT": str(settings.console_port),
        # A child stops by itself once this process is gone, even when it was killed without stopping them.
        "PARLEY_SUPERVISOR_PID": str(os.getpid()),
    }
    for name in SERVICES:
        env[f"PARLEY_{name.upper()}_PORT"] = str(settings.port(name))
        env[f"PARLEY_{name.upper()}_ADDR"] = settings.address(name)
    return env


@dataclass(frozen=True)
class ReplicaPorts:
    """One more copy of every service: its gRPC ports, the base of its /metrics ports, its webhook port."""

    ports: dict[str, int]
    metrics_port: int
    webhook_port: int

    def env(self, service: str) -> dict[str, str]:
        return {
            f"PARLEY_{service.upper()}_PORT": str(self.ports[service]),
            "PARLEY_METRICS_PORT": str(self.metrics_port),
            "PARLEY_WEBHOOK_PORT": str(self.webhook_port),
        }


def replica_target(host: str, ports: Sequence[int]) -> str:
    """The address of a service run as `ports` on `host`: `host:port` for one, else a list naming each, which
    client channels take turns over (`ipv4:127.0.0.1:a,127.0.0.1:b`)."""
    if len(ports) == 1:
        return f"{host}:{ports[0]}"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"replicas on one host need an IP address to list them by, not {host!r}") from None
    if ip.version == 4:
        return "ipv4:" + ",".join(f"{host}:{port}" for port in ports)
    return "ipv6:" + ",".join(f"[{host}]:{port}" for port in ports)


def with_replicas(settings: Settings, replicas: Sequence[ReplicaPorts]) -> Settings:
    """`settings` whose peer addresses name every replica of each service."""
    return settings.model_copy(
        update={
            f"{name}_addr": replica_target(
                settings.host, [settings.port(name), *(r.ports[name] for r in replicas)]
            )
            for name in SERVICES
        }
    )


@dataclass
class ChildProcessSuite:
    """Each service and each worker as its own `parley serve NAME` process (uses every core)."""

    settings: Settings
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)  # child name -> what it runs
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)  # child name -> its own settings
    log_dir: str = ".parley/logs"
    stopping: bool = False

    @classmethod
    async def start(
        cls,
        settings: Settings,
        workers: int = 1,
        log_dir: str = ".parley/logs",
        replicas: Sequence[ReplicaPorts] = (),
    ) -> ChildProcessSuite:
        """Every service (and a copy of each per `replicas`, named `<service>-<n>`), then the workers and the
        console. With replicas, `settings` should come from `with_replicas`, so that peers reach them all."""
        env = dict(os.environ) | env_for(settings)
        os.makedirs(log_dir, exist_ok=True)
        suite = cls(settings, env)
        try:
            for name in SERVICES:
                suite._spawn(name, name, log_dir)
                for n, replica in enumerate(replicas, 1):
                    suite._spawn(f"{name}-{n}", name, log_dir, replica.env(name))
            # Each replica's own port; without replicas, the address peers use (a TLS name may need it).
            addresses = [settings.address(name) for name in SERVICES]
            if replicas:
                addresses = [f"{settings.host}:{settings.port(name)}" for name in SERVICES]
                addresses += [f"{settings.host}:{r.ports[name]}" for r in replicas for name in SERVICES]
            await suite._wait_ready(log_dir, addresses)
            # Workers only once every service listens: a client that keeps dialling a port in the ephemeral
            # range before its server binds can end up connected to itself and hold that port.
            for i in range(workers):
                suite._spawn(f"{WORKER}-{i}", WORKER, log_dir)
            suite._spawn(CONSOLE, CONSOLE, log_dir)
            await suite._wait_listening(CONSOLE, settings.console_port, log_dir)
        except Exception:
            suite.stop()
            raise
        return suite

    def _spawn(self, name: str, service: str, log_dir: str, overrides: dict[str, str] | None = None) -> None:
        self.services[name], self.log_dir = service, log_dir
        if overrides is not None:
            self.overrides[name] = overrides
        env = self.env | self.overrides.get(name, {}) | {"PARLEY_WORKER_NAME": name}
        if service == WORKER:  # worker-<i>: its /metrics port follows its number
            env["PARLEY_WORKER_INDEX"] = name.rpartition("-")[2]
        with open(os.path.join(log_dir, f"{name}.log"), "ab") as out:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "parley", "serve", service], env=env, stdout=out, stderr=out
            )

    async def _wait_ready(self, log_dir: str, addresses: Sequence[str], timeout: float = 120.0) -> None:
        """Wait for the health check of the server at each address; fail at once, with its log, if a child
        exits first."""
        ready = asyncio.ensure_future(
            asyncio.gather(*(wait_ready(address, timeout, self.settings) for address in addresses))
        )
        try:
            while not ready.done():
                dead = self.failed()
                if dead:
                    log = Path(log_dir, f"{dead[0]}.log")
                    lines = log.read_text(errors="replace").strip().splitlines()  # noqa: ASYNC240 - failing
                    said = lines[-1].strip() if lines else "no output"
                    raise RuntimeError(f"{dead[0]} exited during start-up: {said} (whole log: {log})")
                await asyncio.sleep(0.1)
            await ready
        finally:
            ready.cancel()

    async def _wait_listening(self, name: str, port: int, log_dir: str, timeout: float = 30.0) -> None:
        """Wait until `name` accepts connections on `port`; fail with its log if it exits first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self.processes[name].poll() is not None:
                tail = Path(log_dir, f"{name}.log").read_text(errors="replace")[-2000:]  # noqa: ASYNC240
                raise RuntimeError(f"{name} exited during start-up; its log ends:\n{tail}")
            try:
                _, writer = await asyncio.open_connection(self.settings.host, port)
            except OSError:
                if loop.time() > deadline:
                    raise TimeoutError(f"{name} not listening on port {port} after {timeout}s") from None
                await asyncio.sleep(0.1)
                continue
            writer.close()
            return

    def failed(self) -> list[str]:
        return [name for name, proc in self.processes.items() if proc.poll() is not None]

    async def supervise(self, every: float = 0.5) -> None:
        """Start again each child that dies (with backoff per child) until `stop`; runs until cancelled."""
        restarts = Restarts()
        due: dict[str, float] = {}
        loop = asyncio.get_running_loop()
        while not self.stopping:
            for name in self.failed():
                if name not in due:
                    delay = restarts.next_delay(name)
                    code = self.processes[name].returncode
                    log.warning("%s exited with code %s; restarting it in %.1fs", name, code, delay)
                    due[name] = loop.time() + delay
                elif loop.time() >= due[name] and not self.stopping:
                    del due[name]
                    self._spawn(name, self.services[name], self.log_dir)
                    restarts.started_now(name)
            await asyncio.sleep(every)

    def stop(self) -> None:
        self.stopping = True
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
