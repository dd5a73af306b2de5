"""IngestionService: the gRPC front door over validation and the inbound log.

// IngestStream: each request is one batch and gets one response with its results, in order.
// A batch with a bad message is answered with INVALID_ARGUMENT (google.rpc.BadRequest naming each
// bad field, e.g. messages[3].text), which ends the stream: batches sent before it stay accepted,
// batches sent after it are not read. The client opens a new stream to go on. A batch refused because
// the inbound backlog is at its bound (RESOURCE_EXHAUSTED) or the log is unavailable (UNAVAILABLE) ends
// the stream the same way; both carry a google.rpc.RetryInfo, and nothing of that batch was accepted.

// WatchEvents: the response's initial metadata carries `parley-start-id`, the event id the watch
// starts after; every event appended after it that matches the filters follows, in order of event id
// over all partitions of the event stream, until the client cancels: one per response, or with
// `batched` the events of each read together.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import AsyncIterator, Sequence
from typing import TypeAlias

import grpc
from google.protobuf.message import DecodeError

from parley import events
from parley.aio_types import Context
from parley.clock import Clock, SystemClock
from parley.config import Settings
from parley.ingestion import admission, intake
from parley.ingestion.inbound_log import InboundLog
from parley.rpc import InvalidArgument, abort_for, mapped_errors
from parley.store import Keys, Redis
from parley.streams import StreamLimits, TooManyStreams, caller_of
from parley.v1 import common_pb2, ingestion_pb2, ingestion_pb2_grpc

# The most events one read of WatchEvents takes from one partition.
WATCH_BATCH = 100
# How long a caught-up watch lets new events gather before it reads again; a read that found nothing doubles
# the pause, up to `stream_poll_seconds`, so an idle watch costs a read a tenth of a second and a busy one
# delivers within milliseconds.
WATCH_GATHER_SECONDS = 0.005
DEFAULT_DEAD_LETTER_LIMIT = 100
START_ID_METADATA = "parley-start-id"
_EVENT_ID = re.compile(r"\d+(-\d+){0,2}")

log = logging.getLogger(__name__)

# Quoted: grpc's ServicerContext is generic only in the stubs.
WatchContext: TypeAlias = (
    "grpc.aio.ServicerContext[ingestion_pb2.WatchEventsRequest, ingestion_pb2.WatchEventsResponse]"
)


def watch_pause(idle_reads: int, poll_seconds: float) -> float:
    """How long a caught-up watch waits to read again, after `idle_reads` reads in a row found nothing."""
    return min(WATCH_GATHER_SECONDS * 2.0 ** min(idle_reads, 32), poll_seconds)  # a long idle never overflows


class IngestionService(ingestion_pb2_grpc.IngestionServiceServicer):
    def __init__(
        self, settings: Settings, log: InboundLog, redis: Redis, keys: Keys, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self.log = log
        self.redis = redis
        self.keys = keys
        self.clock = clock or SystemClock()
        self.streams = StreamLimits.from_settings(settings)

    async def ingest(self, messages: Sequence[common_pb2.InboundMessage]) -> list[ingestion_pb2.IngestResult]:
        """Validate, normalize and log one batch; one result per message, in request order."""
        batch = intake.admit_batch(messages, self.settings, self.clock.now())
        await admission.ensure_room(self.log, self.settings)
        statuses = await self.log.append(batch)
        return [
            ingestion_pb2.IngestResult(message_id=m.message_id, status=s)
            for m, s in zip(batch, statuses, strict=True)
        ]

    async def _ingest_or_abort(
        self, messages: Sequence[common_pb2.InboundMessage], context: Context
    ) -> list[ingestion_pb2.IngestResult]:
        try:
            return await self.ingest(messages)
        except InvalidArgument as error:
            await abort_for(context, error)
        except admission.BacklogFull as full:
            await context.abort_with_status(admission.backlog_status(full))
        except admission.NOT_NOW as error:
            await context.abort_with_status(admission.unavailable_status(error, self.settings))
        raise AssertionError("unreachable: abort raises")

    async def Ingest(
        self,
        request: ingestion_pb2.IngestRequest,
        context: grpc.aio.ServicerContext[ingestion_pb2.IngestRequest, ingestion_pb2.IngestResponse],
    ) -> ingestion_pb2.IngestResponse:
        return ingestion_pb2.IngestResponse(results=await self._ingest_or_abort(request.messages, context))

    async def IngestStream(
        self,
        request_iterator: AsyncIterator[ingestion_pb2.IngestStreamRequest],
        context: grpc.aio.ServicerContext[
            ingestion_pb2.IngestStreamRequest, ingestion_pb2.IngestStreamResponse
        ],
    ) -> AsyncIterator[ingestion_pb2.IngestStreamResponse]:
        async for request in request_iterator:
            results = await self._ingest_or_abort(request.messages, context)
            yield ingestion_pb2.IngestStreamResponse(results=results)

    async def WatchEvents(
        self,
        request: ingestion_pb2.WatchEventsRequest,
        context: WatchContext,
    ) -> AsyncIterator[ingestion_pb2.WatchEventsResponse]:
        if request.after_id and not _EVENT_ID.fullmatch(request.after_id):
            error = InvalidArgument(
                [("after_id", 'must be an event id like "1700000000000-0-3", "0" or empty')]
            )
            await abort_for(context, error)
        try:
            with self.streams.admit(caller_of(context)):
                async for response in self._watch_events(request, context):
                    yield response
        except TooManyStreams as error:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(error))

    async def _watch_events(
        self,
        request: ingestion_pb2.WatchEventsRequest,
        context: WatchContext,
    ) -> AsyncIterator[ingestion_pb2.WatchEventsResponse]:
        types = set(request.types)
        # The type is compared as stored (its enum number) before anything is decoded: a watch of a few
        # types never decodes the others.
        wanted = {str(events.TYPES[t]).encode() for t in types if t in events.TYPES}
        streams = self.keys.event_streams()
        start_id = request.after_id or await events.newest_id(self.redis, self.keys)
        await context.send_initial_metadata(((START_ID_METADATA, start_id),))
        last = events.starts_after(start_id, len(streams))
        idle = 0  # reads in a row that found nothing
        while True:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # a cancellation a Redis client call swallowed
                raise asyncio.CancelledError()
            batch, held_back = await self._next_events(streams, last)
            found = []
            for partition, entry_id, fields in batch:
                last[partition] = entry_id
                if types and fields.get(b"type") not in wanted:
                    continue
                try:
                    event = events.to_proto(entry_id, fields, partition)
                except (events.EventError, DecodeError) as error:  # never one entry ending every watch
                    log.warning("skipping event %s: %s", events.event_id(entry_id, partition), error)
                    continue
                if types and event.type not in types:
                    continue
                if request.conversation_id and event.conversation_id != request.conversation_id:
                    continue
                if request.batched:
                    found.append(event)
                else:
                    yield ingestion_pb2.WatchEventsResponse(event=event)
            if request.batched and found:
                yield ingestion_pb2.WatchEventsResponse(events=found)
            if len(batch) >= WATCH_BATCH:
                continue
            # Caught up: let a few milliseconds of events gather rather than read every partition again for
            # each new event (at a few thousand events a second that loop was most of the CPU). Events read
            # but held back (appended within the last millisecond) are read again after that pause too.
            idle = 0 if batch or held_back else idle + 1
            await asyncio.sleep(watch_pause(idle, self.settings.stream_poll_seconds))

    async def _next_events(
        self, streams: list[str], last: list[str]
    ) -> tuple[list[tuple[int, str, dict[bytes, bytes]]], bool]:
        """The events after `last` (an entry id per partition) in order of id over all partitions, up to those
        that no later read can put an earlier event before: older than the server's clock when the reads
        began, and no newer than the last of a partition that returned a full batch (it may have more). With
        them, whether any entry read was held back past that limit."""
        # Non-blocking reads, one per partition (a cluster keeps them on different nodes): a blocking read
        # would hold a pooled connection for as long as the watch is open. On one server the clock is read in
        # the same round trip, before the reads; a cluster pipeline runs per node, so there it is read first.
        async with self.redis.pipeline(transaction=False) as pipe:
            if self.settings.redis_cluster:
                seconds, micros = await self.redis.time()
            else:
                pipe.time()
            for stream, after in zip(streams, last, strict=True):
                pipe.xread({stream: after}, count=WATCH_BATCH)
            replies = await pipe.execute()
        if not self.settings.redis_cluster:
            (seconds, micros), *replies = replies
        limit = ((seconds * 1000 + micros // 1000) - 1, 2**64, 0)
        found = []
        for partition, reply in enumerate(replies):
            entries = reply[0][1] if reply else []
            for entry_id, fields in entries:
                entry = entry_id.decode()
                found.append((events.order(entry, partition), partition, entry, fields))
            if len(entries) == WATCH_BATCH:
                limit = min(limit, events.order(entries[-1][0].decode(), partition))
        found.sort(key=lambda item: item[0])
        ready = [(partition, entry, fields) for key, partition, entry, fields in found if key <= limit]
        return ready, len(ready) < len(found)

    @mapped_errors
    async def GetPipeline(
        self,
        request: ingestion_pb2.GetPipelineRequest,
        context: grpc.aio.ServicerContext[
            ingestion_pb2.GetPipelineRequest, ingestion_pb2.GetPipelineResponse
        ],
    ) -> ingestion_pb2.GetPipelineResponse:
        if not 0 <= request.dead_letter_limit <= self.settings.max_batch:
            raise InvalidArgument([("dead_letter_limit", f"must be between 0 and {self.settings.max_batch}")])
        limit = request.dead_letter_limit or DEFAULT_DEAD_LETTER_LIMIT
        partitions = await self.log.partitions(int(self.clock.now() * 1000))
        letters = await self.log.dead_letters(limit)
        return ingestion_pb2.GetPipelineResponse(
            partitions=partitions,
            dead_letters=[
                ingestion_pb2.DeadLetter(
                    message_id=letter["message_id"],
                    partition=int(letter["partition"]),
                    stage=letter["stage"],
                    reason=letter["reason"],
                    message=common_pb2.InboundMessage.FromString(base64.b64decode(letter["message"])),
                )
                for letter in letters
            ],
            dead_letter_count=await self.log.dead_letter_count(),
            workers=await self.log.workers(),
        )

    @mapped_errors
    async def RequeueDeadLetter(
        self,
        request: ingestion_pb2.RequeueDeadLetterRequest,
        context: grpc.aio.ServicerContext[
            ingestion_pb2.RequeueDeadLetterRequest, ingestion_pb2.RequeueDeadLetterResponse
        ],
    ) -> ingestion_pb2.RequeueDeadLetterResponse:
        if not request.message_id or len(request.message_id) > self.settings.max_id_chars:
            raise InvalidArgument(
                [("message_id", f"must be a message id of 1 to {self.settings.max_id_chars} characters")]
            )
        partition, entry_id = await self.log.requeue(request.message_id)
        return ingestion_pb2.RequeueDeadLetterResponse(partition=partition, entry_id=entry_id)
