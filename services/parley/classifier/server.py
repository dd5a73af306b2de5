"""The classifier's gRPC server: loads the models once at start, then serves ClassifierService."""

from __future__ import annotations

import asyncio
import gc

from parley.classifier.model import Triager
from parley.classifier.servicer import ClassifierServicer
from parley.config import Settings
from parley.rpc import RunningServer, start_server
from parley.telemetry import metrics
from parley.v1 import classifier_pb2, classifier_pb2_grpc

SERVICE_NAME = classifier_pb2.DESCRIPTOR.services_by_name["ClassifierService"].full_name

# A batch of a thousand messages allocates tens of thousands of short-lived containers (results, token
# lists), none in a reference cycle: at the default threshold (700) the collector would run a young-generation
# pass every few dozen messages. Measured by `parley classify-bench`.
GC_YOUNG_THRESHOLD = 50_000


def settle_process() -> None:
    """Tune the garbage collector of a process that serves classification, once its models are loaded.

    The loaded models are a few hundred thousand objects that live as long as the process: frozen, they leave
    the collector's generations and are no longer re-scanned by every full collection. Process-wide, so only
    a process's entry point calls this (`parley serve classifier`, `parley classify-bench`), never a library
    constructor: a test run or an application embedding a Triager keeps its own collector settings.
    """
    gc.freeze()
    threshold = gc.get_threshold()
    if threshold[0] < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, *threshold[1:])


async def create_server(settings: Settings, address: str) -> RunningServer:
    """Load the models from settings.models_dir and start serving on `address` (port 0 picks one).

    The classifier keeps no state, so it opens no Redis connection.
    """
    triager = await asyncio.to_thread(
        Triager,
        settings.models_dir,
        urgent_threshold=settings.urgent_review_threshold,
        review_file=settings.urgent_review_file,
        knowledge_base=settings.knowledge_base,
        bot_min_confidence=settings.bot_min_confidence,
    )
    metrics.MODEL.info({"version": triager.version})
    servicer = ClassifierServicer(settings, triager)
    return await start_server(
        settings,
        address,
        [(classifier_pb2_grpc.add_ClassifierServiceServicer_to_server, servicer, SERVICE_NAME)],
    )
