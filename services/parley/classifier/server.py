"""The classifier's gRPC server: loads the models once at start, then serves ClassifierService."""

from __future__ import annotations

import asyncio

from parley.classifier.model import Triager
from parley.classifier.servicer import ClassifierServicer
from parley.config import Settings
from parley.rpc import RunningServer, start_server
from parley.telemetry import metrics
from parley.v1 import classifier_pb2, classifier_pb2_grpc

SERVICE_NAME = classifier_pb2.DESCRIPTOR.services_by_name["ClassifierService"].full_name


async def create_server(settings: Settings, address: str) -> RunningServer:
    """Load the models from settings.models_dir and start serving on `address` (port 0 picks one).

    The classifier keeps no state, so it opens no Redis connection.
    """
    triager = await asyncio.to_thread(Triager, settings.models_dir)
    metrics.MODEL.info({"version": triager.version})
    servicer = ClassifierServicer(settings, triager)
    return await start_server(
        settings,
        address,
        [(classifier_pb2_grpc.add_ClassifierServiceServicer_to_server, servicer, SERVICE_NAME)],
    )
