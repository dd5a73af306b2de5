"""`parley replay`: send a twcs-layout CSV through Ingest and report each conversation.

The twcs layout (tweet_id, author_id, inbound, created_at, text, response_tweet_id,
in_response_to_tweet_id) is that of the public "Customer Support on Twitter" corpus: every row is a public
tweet, by a customer (inbound) or a brand. A brand's account is the author of its own tweets; for a customer
tweet it is the brand met in the same reply chain, else the first non-numeric @mention.
"""

from __future__ import annotations

import asyncio
import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import grpc

from parley.clock import to_timestamp
from parley.config import Settings
from parley.messages import message_id
from parley.rpc import channel
from parley.v1 import (
    common_pb2,
    conversations_pb2,
    conversations_pb2_grpc,
    dispatch_pb2,
    dispatch_pb2_grpc,
    ingestion_pb2,
    ingestion_pb2_grpc,
)

TWCS_COLUMNS = (
    "tweet_id",
    "author_id",
    "inbound",
    "created_at",
    "text",
    "response_tweet_id",
    "in_response_to_tweet_id",
)
TWCS_TIME = "%a %b %d %H:%M:%S %z %Y"
MENTION = re.compile(r"@(\w+)")


def parse_time(value: str) -> float:
    value = value.strip()
    try:
        return datetime.strptime(value, TWCS_TIME).timestamp()
    except ValueError:
        return datetime.fromisoformat(value).timestamp()


def read_twcs(path: Path | str, id_prefix: str = "") -> list[common_pb2.InboundMessage]:
    """Read a twcs-layout CSV into inbound messages on channel X (all public), in file order.

    `id_prefix` is put before every tweet id, so the same file can be replayed again as new traffic.
    """
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in TWCS_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not the twcs layout, missing columns {missing}")
        rows = list(reader)
    by_id = {row["tweet_id"]: row for row in rows}

    def is_inbound(row: dict[str, str]) -> bool:
        return row["inbound"].strip().lower() in {"true", "1", "yes"}

    def brand_of(row: dict[str, str]) -> str:
        if not is_inbound(row):
            return row["author_id"]
        seen: set[str] = set()
        frontier = [row["tweet_id"]]
        while frontier:  # walk the reply chain both ways for a brand tweet
            tweet = by_id.get(frontier.pop())
            if tweet is None or tweet["tweet_id"] in seen:
                continue
            seen.add(tweet["tweet_id"])
            if not is_inbound(tweet):
                return tweet["author_id"]
            frontier.append(tweet["in_response_to_tweet_id"])
            frontier.extend(t.strip() for t in tweet["response_tweet_id"].split(",") if t.strip())
        mentions = [m for m in MENTION.findall(row["text"]) if not m.isdigit()]
        return mentions[0] if mentions else "unknown"

    messages = []
    for row in rows:
        inbound = is_inbound(row)
        messages.append(
            common_pb2.InboundMessage(
                channel=common_pb2.CHANNEL_X,
                visibility=common_pb2.VISIBILITY_PUBLIC,
                platform_message_id=id_prefix + row["tweet_id"].strip(),
                in_reply_to_id=id_prefix + parent
                if (parent := row["in_response_to_tweet_id"].strip())
                else "",
                brand_account_id=brand_of(row),
                author=common_pb2.Author(id=row["author_id"], handle=row["author_id"]),
                text=row["text"],
                sent_at=to_timestamp(parse_time(row["created_at"])),
                direction=common_pb2.DIRECTION_INBOUND if inbound else common_pb2.DIRECTION_OUTBOUND,
            )
        )
    return messages


def reply_chains(messages: Iterable[common_pb2.InboundMessage]) -> dict[str, str]:
    """The true conversations of a twcs file: each message's platform id -> its reply chain, named by one
    member (the connected components of the reply links)."""
    messages = list(messages)
    parent = {m.platform_message_id: m.platform_message_id for m in messages}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for m in messages:
        if m.in_reply_to_id in parent:
            parent[root(m.platform_message_id)] = root(m.in_reply_to_id)
    return {m.platform_message_id: root(m.platform_message_id) for m in messages}


def _prefixed(prefix: str, tweet_id: str) -> str:
    return prefix + tweet_id.strip() if tweet_id.strip() else ""


@dataclass
class ReplayReport:
    accepted: int = 0
    duplicates: int = 0
    conversations: list[conversations_pb2.Conversation] = field(default_factory=list)
    deliveries: dict[str, dispatch_pb2.Delivery] = field(default_factory=dict)
    unfinished: list[str] = field(default_factory=list)


async def replay(
    messages: list[common_pb2.InboundMessage],
    settings: Settings,
    batch: int = 200,
    timeout: float = 60.0,
) -> ReplayReport:
    """Ingest `messages`, wait until the pipeline has finished each one, then fetch the conversations."""
    report = ReplayReport()
    ids = {message_id(m.channel, m.platform_message_id) for m in messages}
    accepted: set[str] = set()  # only these will come through the pipeline now
    duplicates: list[str] = []  # ingested before: shown from the conversations they are already in
    all_ingested = asyncio.Event()
    async with (
        channel(settings, settings.address("ingestion")) as ingestion_ch,
        channel(settings, settings.address("conversations")) as conversations_ch,
        channel(settings, settings.address("dispatch")) as dispatch_ch,
    ):
        ingestion = ingestion_pb2_grpc.IngestionServiceStub(ingestion_ch)
        watch = ingestion.WatchEvents(
            ingestion_pb2.WatchEventsRequest(types=["message.processed"], batched=True)
        )
        await watch.initial_metadata()  # the server has fixed its start position: no event can be missed
        threaded: dict[str, str] = {}

        async def follow() -> None:
            async for reply in watch:
                for event in reply.events:
                    if event.message_id in ids:
                        threaded[event.message_id] = event.conversation_id
                if all_ingested.is_set() and accepted <= threaded.keys():
                    return

        follower = asyncio.create_task(follow())
        for start in range(0, len(messages), batch):
            result = await ingestion.Ingest(
                ingestion_pb2.IngestRequest(messages=messages[start : start + batch]), timeout=timeout
            )
            for item in result.results:
                if item.status == ingestion_pb2.INGEST_STATUS_ACCEPTED:
                    accepted.add(item.message_id)
                else:
                    duplicates.append(item.message_id)
        report.duplicates = len(duplicates)
        report.accepted = len(accepted)
        all_ingested.set()
        try:
            if not accepted <= threaded.keys():
                await asyncio.wait_for(follower, timeout)
        except TimeoutError:
            report.unfinished = sorted(accepted - threaded.keys())
        finally:
            watch.cancel()
            follower.cancel()

        conversations = conversations_pb2_grpc.ConversationsServiceStub(conversations_ch)
        order = _order(messages)
        requests = [
            conversations_pb2.GetConversationRequest(conversation_id=conversation_id)
            for conversation_id in dict.fromkeys(threaded[i] for i in sorted(threaded, key=order))
        ] + [conversations_pb2.GetConversationRequest(message_id=i) for i in sorted(duplicates, key=order)]
        for request in requests:
            try:
                got = await conversations.GetConversation(request, timeout=timeout)
            except grpc.aio.AioRpcError as error:
                if request.message_id and error.code() == grpc.StatusCode.NOT_FOUND:
                    continue  # ingested before, but still waiting in the log for a worker
                raise
            # A merged conversation resolves to its survivor, which may be listed already.
            if got.conversation.conversation_id not in {c.conversation_id for c in report.conversations}:
                report.conversations.append(got.conversation)
        dispatch = dispatch_pb2_grpc.DispatchServiceStub(dispatch_ch)
        for conversation in report.conversations:
            for entry in conversation.messages:
                if entry.routing.action == common_pb2.ROUTE_ACTION_BOT_REPLY:
                    reply_id = f"bot:{entry.message.message_id}"
                    try:
                        got_delivery = await dispatch.GetDelivery(
                            dispatch_pb2.GetDeliveryRequest(reply_id=reply_id), timeout=timeout
                        )
                        report.deliveries[reply_id] = got_delivery.delivery
                    except grpc.aio.AioRpcError:
                        pass
    return report


def _order(messages: Iterable[common_pb2.InboundMessage]) -> Callable[[str], int]:
    position = {message_id(m.channel, m.platform_message_id): i for i, m in enumerate(messages)}
    return lambda mid: position.get(mid, 0)
