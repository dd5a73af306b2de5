"""The pipeline worker: drives each accepted message through Thread → Classify → Route, then SendReply and
RecordOutcomes side by side.

It reads batches from the inbound log's consumer group through the one stream consumer (`consumer.py`) and
acks them only after every stage succeeded, so a worker that dies mid-batch leaves its entries pending;
another worker re-claims them once they have been idle for `claim_idle_ms` (it looks four times per that
period; a live worker renews its claim while a slow batch runs). Every stage is idempotent by message id,
which makes the re-run harmless.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError

from parley import events
from parley.config import Settings
from parley.events import EventRecord
from parley.ingestion.inbound_log import InboundLog, LogEntry
from parley.pipeline.consumer import StreamEntry
from parley.rpc import channel, field_violations
from parley.telemetry import metrics, tracing
from parley.v1 import (
    classifier_pb2,
    classifier_pb2_grpc,
    common_pb2,
    conversations_pb2,
    conversations_pb2_grpc,
    dispatch_pb2,
    dispatch_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)

log = logging.getLogger(__name__)

# Called after each stage with the stage's name; tests use it to kill a worker mid-batch.
StageHook = Callable[[str], Awaitable[None]]
# Told False while Redis or a peer is unreachable, True once a pass succeeds again.
HealthHook = Callable[[bool], None]


@dataclass
class Peers:
    """Stubs for the four services the worker calls, with their channels."""

    conversations: conversations_pb2_grpc.ConversationsServiceAsyncStub
    classifier: classifier_pb2_grpc.ClassifierServiceAsyncStub
    router: router_pb2_grpc.RouterServiceAsyncStub
    dispatch: dispatch_pb2_grpc.DispatchServiceAsyncStub
    channels: list[grpc.aio.Channel]

    @classmethod
    def connect(cls, settings: Settings) -> Peers:
        chans = {name: channel(settings, settings.address(name)) for name in SERVICES_CALLED}
        return cls(
            conversations=conversations_pb2_grpc.ConversationsServiceStub(chans["conversations"]),
            classifier=classifier_pb2_grpc.ClassifierServiceStub(chans["classifier"]),
            router=router_pb2_grpc.RouterServiceStub(chans["router"]),
            dispatch=dispatch_pb2_grpc.DispatchServiceStub(chans["dispatch"]),
            channels=list(chans.values()),
        )

    async def close(self) -> None:
        for ch in self.channels:
            await ch.close()


SERVICES_CALLED = ("conversations", "classifier", "router", "dispatch")

# How many times one batch is threaded again after its placements were found lost (see `placement_lost`).
RETHREADS = 3


def placement_lost(error: grpc.aio.AioRpcError) -> bool:
    """Whether RecordOutcomes refused the batch because a message is not (or no longer) in the conversation
    Thread placed it in, or that conversation is gone. Redis Cluster replicates asynchronously: a master
    that fails over loses the writes it had not yet passed on, so a placement Thread was told is stored can
    vanish before the record stage. Thread is idempotent by message id and places such a message again."""
    if error.code() == grpc.StatusCode.NOT_FOUND:
        return True
    if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
        return False
    violations = field_violations(error)
    return bool(violations) and all(
        field.endswith(".message_id") and " is not in conversation " in description
        for field, description in violations
    )


class PlacementLost(Exception):
    """The record stage found a placement of the batch lost; the batch is threaded again."""

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        super().__init__(error.details())
        self.error = error


def bot_reply_for(
    message: common_pb2.InboundMessage, decision: common_pb2.RoutingDecision
) -> dispatch_pb2.Reply:
    """The bot's one reply to `message`, in the same channel and visibility, keyed by the message id."""
    return dispatch_pb2.Reply(
        reply_id=f"bot:{message.message_id}",
        conversation_id=decision.conversation_id,
        channel=message.channel,
        visibility=message.visibility,
        in_reply_to_id=message.platform_message_id,
        brand_account_id=message.brand_account_id,
        recipient=message.author,
        text=decision.bot_reply_text,
        sent_by="bot",
        platform_thread_id=message.platform_thread_id,
        # Messenger's and WhatsApp's reply windows run from the customer's last message.
        customer_last_message_at=message.sent_at,
    )


class PipelineWorker:
    def __init__(
        self,
        settings: Settings,
        inbound: InboundLog,
        peers: Peers,
        consumer: str = "",
        stage_hook: StageHook | None = None,
    ) -> None:
        self.settings = settings
        self.inbound = inbound
        self.peers = peers
        self.consumer = consumer or settings.worker_name or f"{socket.gethostname()}-{os.getpid()}"
        self._stage_hook = stage_hook
        self.processed = 0
        self.current_stage = ""
        self._partition = {name: p for p, name in enumerate(inbound.streams)}
        self.reader = inbound.reader(self.consumer, self._dead_letter)

    async def run(self, stop: asyncio.Event, on_health: HealthHook | None = None) -> None:
        """Process batches until `stop` is set; a Redis or peer outage is ridden out (entries stay pending),
        a refused message is set aside on the dead-letter list with its reason."""
        await self.reader.run(self.handle, stop, on_health)

    async def handle(self, batch: list[StreamEntry]) -> None:
        self.current_stage = "decode"
        entries = [self.inbound.decode(e) for e in batch]
        with (
            tracing.pipeline_span([e.traceparent for e in entries], len(entries)),
            metrics.PIPELINE_BATCH_SECONDS.time(),
        ):
            await self.process(entries)

    async def _dead_letter(self, entry: StreamEntry, reason: str) -> None:
        try:
            message = common_pb2.InboundMessage.FromString(entry.fields[b"m"])
        except (DecodeError, KeyError):
            message = common_pb2.InboundMessage(message_id=f"undecodable:{entry.entry_id}")
        logged = LogEntry(self._partition[entry.stream], entry.entry_id, message)
        stage = self.current_stage or "decode"
        await self.inbound.dead_letter(logged, stage, reason)
        metrics.PIPELINE_DEAD_LETTERS.labels(str(logged.partition), stage).inc()
        ids = {"message_id": message.message_id, "partition": logged.partition, "stage": stage}
        log.error("dead-lettered %s at %s", message.message_id, stage, extra=ids)

    async def process(self, entries: Sequence[LogEntry]) -> None:
        """Run one batch through every stage (the consumer acks it after)."""
        # Entries come partition by partition; every stage sees them in the order they were sent, so a
        # follow-up is never routed before the message it follows.
        messages = sorted(
            (entry.message for entry in entries), key=lambda m: (m.sent_at.seconds, m.sent_at.nanos)
        )
        for attempt in range(RETHREADS + 1):
            try:
                threaded = await self._through_stages(messages)
                break
            except PlacementLost as lost:
                if attempt == RETHREADS:
                    raise lost.error from None  # still lost: refused like any other answer
                log.warning(
                    "record found %d message(s) no longer placed (a Redis failover?): threading the batch "
                    "again (%d of %d)",
                    len(messages),
                    attempt + 1,
                    RETHREADS,
                )

        # "Done" for whoever follows the events (replay waits for it); at-least-once, like every stage.
        finished = [
            EventRecord("message.processed", result.conversation_id, message.message_id, time.time())
            for message, result in zip(messages, threaded.results, strict=True)
        ]
        await events.publish(self.inbound.redis, self.inbound.keys, finished, self.settings.events_maxlen)
        self.current_stage = ""
        self.processed += len(entries)

    async def _through_stages(
        self, messages: Sequence[common_pb2.InboundMessage]
    ) -> conversations_pb2.ThreadResponse:
        """Thread, classify, route, send and record `messages`; PlacementLost when the record stage finds a
        placement that Thread made lost since."""
        timeout = self.settings.rpc_timeout_seconds
        self.current_stage = "thread"
        threaded = await self.peers.conversations.Thread(
            conversations_pb2.ThreadRequest(messages=messages), timeout=timeout
        )
        await self._stage("thread", len(messages))

        inbound = [
            (message, result)
            for message, result in zip(messages, threaded.results, strict=True)
            if message.direction != common_pb2.DIRECTION_OUTBOUND
        ]
        if inbound:
            self.current_stage = "classify"
            classified = await self.peers.classifier.Classify(
                classifier_pb2.ClassifyRequest(
                    items=[
                        classifier_pb2.ClassifyItem(
                            message_id=message.message_id,
                            text=message.text,
                            channel=message.channel,
                            visibility=message.visibility,
                            context=result.context,
                            brand_reply=result.brand_reply,
                        )
                        for message, result in inbound
                    ]
                ),
                timeout=timeout,
            )
            await self._stage("classify", len(inbound))

            self.current_stage = "route"
            routed = await self.peers.router.Route(
                router_pb2.RouteRequest(
                    items=[
                        router_pb2.RouteItem(
                            conversation_id=result.conversation_id,
                            message=message,
                            triage=triage,
                            opened_conversation=result.opened_conversation,
                            customer_tier=result.customer_tier,
                        )
                        for (message, result), triage in zip(inbound, classified.results, strict=True)
                    ]
                ),
                timeout=timeout,
            )
            await self._stage("route", len(inbound))

            replies = [
                bot_reply_for(message, decision)
                for (message, _), decision in zip(inbound, routed.decisions, strict=True)
                if decision.action == common_pb2.ROUTE_ACTION_BOT_REPLY and decision.bot_reply_text
            ]
            outcomes = [
                conversations_pb2.Outcome(
                    conversation_id=result.conversation_id,
                    message_id=message.message_id,
                    triage=triage,
                    routing=decision,
                )
                for (message, result), triage, decision in zip(
                    inbound, classified.results, routed.decisions, strict=True
                )
            ]
            # Both follow from the routing decisions alone and each is idempotent, so they run side by side;
            # both finish before a failure of either is raised, and the batch is run again whole.
            self.current_stage = "dispatch and record"
            sent, recorded = await asyncio.gather(
                self._send(replies), self._record(outcomes), return_exceptions=True
            )
            for stage, failure in (("dispatch", sent), ("record", recorded)):
                if isinstance(failure, BaseException):
                    self.current_stage = stage  # where a refused message is dead-lettered
                    raise failure

        return threaded

    async def _send(self, replies: list[dispatch_pb2.Reply]) -> None:
        """Hand the bot's replies to dispatch, which keeps them until they are delivered."""
        if not replies:
            return
        await self.peers.dispatch.SendReply(
            dispatch_pb2.SendReplyRequest(replies=replies), timeout=self.settings.rpc_timeout_seconds
        )
        await self._stage("dispatch", len(replies))

    async def _record(self, outcomes: list[conversations_pb2.Outcome]) -> None:
        """Store each message's triage and routing in its conversation; PlacementLost when a placement that
        Thread made is gone."""
        try:
            await self.peers.conversations.RecordOutcomes(
                conversations_pb2.RecordOutcomesRequest(outcomes=outcomes),
                timeout=self.settings.rpc_timeout_seconds,
            )
        except grpc.aio.AioRpcError as error:
            if placement_lost(error):
                raise PlacementLost(error) from error
            raise
        await self._stage("record", len(outcomes))

    async def _stage(self, name: str, messages: int) -> None:
        metrics.PIPELINE_MESSAGES.labels(name).inc(messages)
        if self._stage_hook is not None:
            await self._stage_hook(name)


async def run_worker(settings: Settings, stop: asyncio.Event, consumer: str = "") -> None:
    """Run one pipeline worker with its own Redis client and peer channels until `stop` is set."""
    from parley.store import connect, keys_for
    from parley.supervision import start_up

    redis = connect(settings)
    peers = Peers.connect(settings)
    try:
        await start_up(redis, settings, "worker start-up")
        worker = PipelineWorker(settings, InboundLog(settings, redis, keys_for(settings)), peers, consumer)
        await worker.run(stop)
    finally:
        await peers.close()
        await redis.aclose()
