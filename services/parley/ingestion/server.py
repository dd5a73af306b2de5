"""Builds and starts the ingestion service: its Redis client, the inbound log, the gRPC server and the
networks' HTTP webhooks."""

from __future__ import annotations

from dataclasses import dataclass, fields

from parley import rpc, store
from parley.clock import Clock
from parley.config import Settings
from parley.ingestion.inbound_log import InboundLog
from parley.ingestion.servicer import IngestionService
from parley.ingestion.webhooks import start_webhook_server
from parley.supervision import start_up
from parley.v1 import ingestion_pb2, ingestion_pb2_grpc

SERVICE_NAME = ingestion_pb2.DESCRIPTOR.services_by_name["IngestionService"].full_name


@dataclass
class IngestionServer(rpc.RunningServer):
    """The running gRPC server, plus the port its webhooks listen on (0 when they are disabled)."""

    webhook_port: int = 0


async def create_server(settings: Settings, address: str, clock: Clock | None = None) -> IngestionServer:
    redis = store.connect(settings)
    keys = store.keys_for(settings)
    log = InboundLog(settings, redis, keys)
    servicer = IngestionService(settings, log, redis, keys, clock)
    try:
        await start_up(redis, settings, "ingestion start-up", wait=False)
        running = await rpc.start_server(
            settings,
            address,
            [(ingestion_pb2_grpc.add_IngestionServiceServicer_to_server, servicer, SERVICE_NAME)],
        )
    except BaseException:
        await redis.aclose()
        raise
    running.on_stop.append(redis.aclose)
    server = IngestionServer(**{f.name: getattr(running, f.name) for f in fields(running)})
    if settings.webhook_enabled:
        host, _, grpc_port = address.rpartition(":")
        # An ephemeral gRPC port (tests, an in-process suite) means an ephemeral webhook port too.
        port = 0 if grpc_port == "0" else settings.webhook_port
        try:
            webhooks = await start_webhook_server(settings, log, redis, keys, host.strip("[]"), port, clock)
        except BaseException:
            await server.stop(0)
            raise
        server.webhook_port = webhooks.port
        server.on_stop.append(webhooks.stop)
    return server
