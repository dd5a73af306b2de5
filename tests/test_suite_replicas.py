"""A suite started with replicas runs a copy of every service on ports of its own, and peers reach all of
them: calls to a service take turns over its copies."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from pathlib import Path

import pytest

from parley import rpc
from parley.config import SERVICES, Settings
from parley.ports import free_port, free_port_block
from parley.suite import ChildProcessSuite, ReplicaPorts, replica_target, with_replicas
from parley.v1 import conversations_pb2, conversations_pb2_grpc


def test_the_target_of_a_service_names_every_copy() -> None:
    assert replica_target("127.0.0.1", [5001]) == "127.0.0.1:5001"
    assert replica_target("127.0.0.1", [5001, 5002]) == "ipv4:127.0.0.1:5001,127.0.0.1:5002"
    assert replica_target("::1", [5001, 5002]) == "ipv6:[::1]:5001,[::1]:5002"
    with pytest.raises(ValueError, match="IP address"):
        replica_target("localhost", [5001, 5002])


def handled(metrics_port: int, method: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    pattern = rf'^grpc_server_handled_total{{[^}}]*grpc_method="{method}"[^}}]*}} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.MULTILINE))


async def test_calls_to_a_service_reach_each_of_its_copies(settings: Settings, tmp_path: Path) -> None:
    ports = {f"{name}_port": free_port() for name in SERVICES} | {
        "webhook_port": free_port(),
        "console_port": free_port(),
        "metrics_port": free_port_block(len(SERVICES)),
    }
    extra = [ReplicaPorts({n: free_port() for n in SERVICES}, free_port_block(len(SERVICES)), free_port())]
    wired = with_replicas(settings.model_copy(update=ports), extra)
    suite = await ChildProcessSuite.start(wired, workers=0, log_dir=str(tmp_path), replicas=extra)
    try:
        assert sorted(suite.processes) == sorted([*SERVICES, *(f"{n}-1" for n in SERVICES), "console"])
        async with rpc.channel(wired, wired.address("conversations")) as ch:
            stub = conversations_pb2_grpc.ConversationsServiceStub(ch)
            for _ in range(10):
                await stub.ListConversations(conversations_pb2.ListConversationsRequest())
        index = SERVICES.index("conversations")
        # Each copy serves its own /metrics, and each counted its share of the calls.
        counts = await asyncio.to_thread(
            lambda: [
                handled(base + index, "ListConversations")
                for base in (wired.metrics_port, extra[0].metrics_port)
            ]
        )
        assert sum(counts) == 10 and min(counts) >= 3, counts
    finally:
        suite.stop()
