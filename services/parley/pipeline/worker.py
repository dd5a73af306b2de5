"""The pipeline worker: drives each accepted message through Thread → Classify → Route → SendReply.

It reads batches from the inbound log's consumer group and acks them only after every stage succeeded, so a
worker that dies mid-batch leaves its entries pending; another worker re-claims them once they have been idle
for `claim_idle_ms`. Every stage is idempotent by message id, which makes the re-run harmless.
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

from parley import events
from parley.config import Settings
from parley.events import EventRecord
from parley.ingestion.inbound_log import InboundLog, LogEntry
from parley.rpc import channel
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


@dataclass
class Peers:
    """Stubs for the four services the worker calls, with their channels."""

    conversations: conversations_pb2_grpc.ConversationsServiceStub
    classifier: classifier_pb2_grpc.ClassifierServiceStub
    router: router_pb2_grpc.RouterServiceStub
    dispatch: dispatch_pb2_grpc.DispatchServiceStub
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
# Answers that mean "this request will never succeed": retrying the same batch would only repeat them.
REFUSALS = frozenset(
    {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE}
)


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

    async def run(self, stop: asyncio.Event) -> None:
        """Process batches until `stop` is set; a failed batch stays pending and is retried later."""
        await self.inbound.ensure_groups()
        loop = asyncio.get_running_loop()
        next_claim = 0.0
        failures = 0
        while not stop.is_set():
            try:
                entries: list[LogEntry] = []
                if loop.time() >= next_claim:
                    entries = await self.inbound.claim_stale(
                        self.consumer, self.settings.claim_idle_ms, self.settings.worker_batch
                    )
                    next_claim = loop.time() + self.settings.claim_idle_ms / 2000
                if not entries:
                    entries = await self.inbound.read(
                        self.consumer, self.settings.worker_batch, self.settings.worker_block_ms
                    )
                if entries:
                    with (
                        tracing.pipeline_span([e.traceparent for e in entries], len(entries)),
                        metrics.PIPELINE_BATCH_SECONDS.time(),
                    ):
                        await self.process_isolating(entries)
                failures = 0
            except (grpc.aio.AioRpcError, ConnectionError, OSError) as error:
                failures += 1
                delay = min(0.05 * 2**failures, 2.0)
                log.warning("batch failed (%s); entries stay pending, retrying in %.2fs", error, delay)
                await asyncio.sleep(delay)
                next_claim = 0.0

    async def process_isolating(self, entries: Sequence[LogEntry]) -> None:
        """Process a batch; when a stage refuses it outright, halve it until the refused message is alone,
        and set that one aside on the dead-letter list, so one bad message never blocks its partition."""
        try:
            await self.process(entries)
        except grpc.aio.AioRpcError as error:
            if error.code() not in REFUSALS:
                raise
            if len(entries) == 1:
                entry, stage = entries[0], self.current_stage
                log.error(
                    "dead-lettering %s at %s: %s",
                    entry.message.message_id,
                    stage,
                    error.code().name,
                    extra={
                        "message_id": entry.message.message_id,
                        "partition": entry.partition,
                        "stage": stage,
                    },
                )
                reason = f"{error.code().name}: {error.details()}"
                await self.inbound.dead_letter(entry, stage, reason)
                metrics.PIPELINE_DEAD_LETTERS.labels(str(entry.partition), stage).inc()
                return
            middle = len(entries) // 2
            await self.process_isolating(entries[:middle])
            await self.process_isolating(entries[middle:])

    async def process(self, entries: Sequence[LogEntry]) -> None:
        """Run one batch through every stage, then ack it."""
        timeout = self.settings.rpc_timeout_seconds
        # Entries come partition by partition; every stage sees them in the order they were sent, so a
        # follow-up is never routed before the message it follows.
        messages = sorted(
            (entry.message for entry in entries), key=lambda m: (m.sent_at.seconds, m.sent_at.nanos)
        )
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
            if replies:
                self.current_stage = "dispatch"
                await self.peers.dispatch.SendReply(
                    dispatch_pb2.SendReplyRequest(replies=replies), timeout=timeout
                )
                await self._stage("dispatch", len(replies))

            self.current_stage = "record"
            await self.peers.conversations.RecordOutcomes(
                conversations_pb2.RecordOutcomesRequest(
                    outcomes=[
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
                ),
                timeout=timeout,
            )
            await self._stage("record", len(inbound))

        # "Done" for whoever follows the events (replay waits for it); at-least-once, like every stage.
        finished = [
            EventRecord("message.processed", result.conversation_id, message.message_id, time.time())
            for message, result in zip(messages, threaded.results, strict=True)
        ]
        await events.publish(self.inbound.redis, self.inbound.keys, finished, self.settings.events_maxlen)
        await self.inbound.ack(entries)
        self.processed += len(entries)

    async def _stage(self, name: str, messages: int) -> None:
        metrics.PIPELINE_MESSAGES.labels(name).inc(messages)
        if self._stage_hook is not None:
            await self._stage_hook(name)


async def run_worker(settings: Settings, stop: asyncio.Event, consumer: str = "") -> None:
    """Run one pipeline worker with its own Redis client and peer channels until `stop` is set."""
    from parley.store import connect, keys_for

    redis = connect(settings)
    peers = Peers.connect(settings)
    try:
        worker = PipelineWorker(settings, InboundLog(settings, redis, keys_for(settings)), peers, consumer)
        await worker.run(stop)
    finally:
        await peers.close()
        await redis.aclose()
