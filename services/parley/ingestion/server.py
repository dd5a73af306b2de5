"""Builds and starts the ingestion service: its Redis client, the inbound log and the gRPC server."""

from __future__ import annotations

from parley import rpc, store
from parley.clock import Clock
from parley.config import Settings
from parley.ingestion.inbound_log import InboundLog
from parley.ingestion.servicer import IngestionService
from parley.v1 import ingestion_pb2, ingestion_pb2_grpc

SERVICE_NAME = ingestion_pb2.DESCRIPTOR.services_by_name["IngestionService"].full_name


async def create_server(settings: Settings, address: str, clock: Clock | None = None) -> rpc.RunningServer:
    redis = store.connect(settings)
    keys = store.keys_for(settings)
    servicer = IngestionService(settings, InboundLog(settings, redis, keys), redis, keys, clock)
    try:
        running = await rpc.start_server(
            settings,
            address,
            [(ingestion_pb2_grpc.add_IngestionServiceServicer_to_server, servicer, SERVICE_NAME)],
        )
    except BaseException:
        await redis.aclose()
        raise
    running.on_stop.append(redis.aclose)
    return running
