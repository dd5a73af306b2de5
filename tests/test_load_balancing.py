"""A client channel takes turns over every address its target names, so replicas of a service share its calls
with no balancer in front of them."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from parley import rpc
from parley.config import Settings


async def test_calls_take_turns_over_every_replica_the_target_names(settings: Settings) -> None:
    servers = []
    ports = []
    # Two servers that answer one health check differently, so each answer says which replica gave it.
    for status in (health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING):
        server = grpc.aio.server()
        health = HealthServicer()
        await health.set("replica", status)
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        ports.append(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        servers.append(server)
    try:
        target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for port in ports)
        async with rpc.channel(settings, target) as ch:
            check = rpc.health_check(ch)
            answers = [
                (await check(health_pb2.HealthCheckRequest(service="replica"), timeout=5)).status
                for _ in range(20)
            ]
        assert answers.count(health_pb2.HealthCheckResponse.SERVING) >= 5
        assert answers.count(health_pb2.HealthCheckResponse.NOT_SERVING) >= 5
    finally:
        for server in servers:
            await server.stop(0)
