"""What a chaos run left behind, counted from Redis and the outbox log against the file's reply chains."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from parley import events
from parley.chaos.router_state import COUNTS, RouterEffects, named_keys, router_clean, router_effects
from parley.config import Settings
from parley.dispatch.outbox import DispatchKeys
from parley.ingestion.inbound_log import InboundLog
from parley.messages import message_id
from parley.replay import reply_chains
from parley.router.common import decode_hash
from parley.router.keys import RouterKeys
from parley.store import Keys, connect, keys_for
from parley.v1 import common_pb2


@dataclass
class Report:
    messages: int = 0
    acked: int = 0
    threaded: int = 0
    processed: int = 0
    routed: int = 0  # customer messages with a routing decision (one needs a triage first)
    true_conversations: int = 0
    conversations: int = 0
    chains_split: int = 0  # reply chains spread over more than one conversation
    conversations_mixed: int = 0  # conversations holding more than one reply chain
    # Up to 5 split or mixed chains: each message (in the file's order) with its reply link, its conversation
    # and that conversation's record fields that explain how it came to be (held, awaits, merged_into, ...).
    chain_examples: list[dict[str, Any]] = field(default_factory=list)
    duplicate_routing_decisions: int = 0
    # Messages with a routing decision stored and no `conversation.routed` event: what followers never saw.
    decisions_without_event: int = 0
    merged_conversations: int = 0  # conversations merged away (a reply chain joined them)
    # Of those, the ones whose routing state the router never folded into the surviving one.
    merges_router_missed: int = 0
    merges_missed_examples: list[dict[str, Any]] = field(default_factory=list)
    duplicate_replies_posted: int = 0
    assignments: int = 0
    duplicate_queue_entries: int = 0
    queued_while_assigned: int = 0
    waiting_in_no_queue: int = 0
    duplicate_assignments: int = 0
    duplicate_assignments_in_feeds: int = 0
    leaked_capacity: int = 0
    reservations_left: int = 0
    unrecorded_assignments: int = 0
    claims_in_flight: int = 0
    router_examples: dict[str, list[str]] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    pending: int = 0
    backlog: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)
    kills: dict[str, int] = field(default_factory=dict)
    redis: str = ""
    agents: int = 0
    resolved: int = 0  # resolutions the agents made during the run
    desk_errors: dict[str, int] = field(default_factory=dict)  # agents' calls refused or unanswered
    drained: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        duplicates = self.duplicate_routing_decisions + self.duplicate_replies_posted
        # The file is taken to be clean: a message set aside on a dead-letter list fails the run as a loss
        # does, and a reply chain spread over two conversations (or two chains in one) as a duplicate does.
        return (
            self.drained
            and not self.lost
            and not duplicates
            and not self.decisions_without_event
            and self.router_clean
            and self.acked == self.messages
            and self.processed == self.messages
            and not self.chains_split
            and not self.conversations_mixed
        )

    @property
    def router_clean(self) -> bool:
        return router_clean(self)

    def take_router_effects(self, effects: RouterEffects) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(effects, name))
        self.router_examples = effects.examples

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lost"] = len(self.lost)
        out["lost_examples"] = self.lost[:10]
        out["ok"] = self.ok
        return out


async def measure(
    settings: Settings, messages: list[common_pb2.InboundMessage], acked: set[str], outbox_log: Path
) -> Report:
    redis = connect(settings)
    keys = keys_for(settings)
    try:
        ids = [message_id(m.channel, m.platform_message_id) for m in messages]
        conversation_of = {
            mid: cid.decode() for mid, cid in (await get_each(redis, ids, keys.message_index)).items()
        }
        counts: dict[str, Counter[str]] = {"message.processed": Counter(), "conversation.routed": Counter()}
        resolved: dict[str, list[tuple[int, int]]] = {}
        for eid, event in await events.read_all(redis, keys):
            if event.type in counts:
                counts[event.type][event.message_id] += 1
            elif event.type == "conversation.resolved":
                ms, seq = eid.split("-")[:2]
                resolved.setdefault(event.conversation_id, []).append((int(ms), int(seq)))
        inbound = InboundLog(settings, redis, keys)
        report = Report(
            messages=len(messages),
            acked=len(acked),
            threaded=len(conversation_of),
            processed=sum(1 for i in ids if counts["message.processed"][i]),
            routed=sum(1 for i in ids if counts["conversation.routed"][i]),
            duplicate_routing_decisions=sum(n - 1 for n in counts["conversation.routed"].values() if n > 1),
            duplicate_replies_posted=_duplicate_posts(outbox_log),
            pending=await inbound.pending_count(),
            backlog=await inbound.backlog(),
        )
        report.decisions_without_event = sum(
            1 for i in await decided(redis, keys, ids) if not counts["conversation.routed"][i]
        )
        missed = await merges_router_missed(redis, keys, report.merges_missed_examples)
        report.merged_conversations, report.merges_router_missed = missed
        report.dead_lettered = await dead_letter_reasons(settings, redis, keys, inbound)
        report.take_router_effects(await router_effects(redis, keys, resolved))
        dead_ids = {d["message_id"] for d in await inbound.dead_letters()}
        report.lost = [
            i
            for m, i in zip(messages, ids, strict=True)
            if m.platform_message_id in acked
            and i not in dead_ids
            and not (i in conversation_of and counts["message.processed"][i])
        ]
        wrong = compare_chains(report, messages, ids, conversation_of)
        report.chain_examples = await chain_examples(redis, keys, wrong, conversation_of)
        return report
    finally:
        await redis.aclose()


async def decided(redis: Any, keys: Keys, ids: list[str]) -> set[str]:
    """The messages of `ids` the router stored a decision for (found where each was first routed)."""
    rk = RouterKeys(keys)
    routed_in = {mid: cid.decode() for mid, cid in (await get_each(redis, ids, rk.decided_in)).items()}
    return set(await get_each(redis, list(routed_in), lambda mid: rk.decision(routed_in[mid], mid)))


async def get_each(redis: Any, names: list[str], key_of: Callable[[str], str]) -> dict[str, bytes]:
    """Each name whose key (`key_of(name)`) has a value, with it: one GET each, not MGET (on a cluster the
    keys are in many slots), pipelined a thousand at a time."""
    out: dict[str, bytes] = {}
    for start in range(0, len(names), 1000):
        chunk = names[start : start + 1000]
        async with redis.pipeline(transaction=False) as pipe:
            for name in chunk:
                pipe.get(key_of(name))
            found = await pipe.execute()
        out.update((name, value) for name, value in zip(chunk, found, strict=True) if value is not None)
    return out


async def merges_router_missed(
    redis: Any, keys: Keys, examples: list[dict[str, Any]] | None = None
) -> tuple[int, int]:
    """Conversations merged away (their record points at the surviving one), and those of them the router has
    a routing state for and never fenced or merged: their `conversation.merged` event was lost or never
    followed."""
    rk = RouterKeys(keys)
    merged = missed = 0
    async for cid, key in named_keys(redis, keys.conversation):
        if key != keys.conversation(cid) or not await redis.hget(key, "merged_into"):
            continue  # another key of the conversation's, or not merged
        merged += 1
        version, done, going = await redis.hmget(rk.state(cid), ["version", "merged_into", "merging_into"])
        if version is not None and not (done or going):
            missed += 1
            if examples is not None and len(examples) < 5:
                record = decode_hash(await redis.hgetall(key))
                state = decode_hash(await redis.hgetall(rk.state(cid)))
                examples.append({"conversation": cid, "record": record, "routing_state": state})
    return merged, missed


async def dead_letter_reasons(
    settings: Settings, redis: Any, keys: Keys, inbound: InboundLog
) -> dict[str, int]:
    """Dead letters of every kind, counted by where and why: the inbound log's, each event follower's and
    dispatch's."""
    dead: Counter[str] = Counter(
        f"inbound {d.get('stage', '')}: {d.get('reason', '')}" for d in await inbound.dead_letters()
    )
    prefix = keys.namespaced("events-dead", "")
    async for raw in redis.scan_iter(match=prefix + "*", count=1000):
        key = raw.decode()
        for entry in await redis.lrange(key, 0, -1):
            dead[f"events {key[len(prefix) :]}: {_reason(entry)}"] += 1
    dispatch = DispatchKeys(keys, settings.dispatch_partitions)
    for partition in range(settings.dispatch_partitions):
        for entry in await redis.lrange(dispatch.dead(partition), 0, -1):
            dead[f"dispatch: {_reason(entry)}"] += 1
    return dict(dead)


def _reason(raw: bytes) -> str:
    try:
        record = json.loads(raw)
    except ValueError:
        return "undecodable dead letter"
    return str(record.get("reason", "")) if isinstance(record, dict) else "undecodable dead letter"


def _duplicate_posts(outbox_log: Path) -> int:
    """Parts of replies the outbox log shows more than once."""
    if not outbox_log.exists():
        return 0
    seen: Counter[tuple[str, int]] = Counter()
    for line in outbox_log.read_text(errors="replace").splitlines():
        with_fields = line.strip()
        if not with_fields:
            continue
        try:
            entry = json.loads(with_fields)
        except ValueError:
            continue  # a line torn by a kill mid-write
        seen[(entry["reply_id"], entry["part"])] += 1
    return sum(n - 1 for n in seen.values() if n > 1)


Chain = list[tuple[common_pb2.InboundMessage, str]]  # a reply chain's messages with their ids, file order


def compare_chains(
    report: Report, messages: list[common_pb2.InboundMessage], ids: list[str], conversation_of: dict[str, str]
) -> list[Chain]:
    """The true conversations are the reply chains of the file (connected components of reply links).
    Counts them into `report`; returns the chains split over conversations or sharing one."""
    chain_of = reply_chains(messages)
    members: dict[str, Chain] = {}
    chain_conversations: dict[str, set[str]] = {}
    conversation_chains: dict[str, set[str]] = {}
    for m, i in zip(messages, ids, strict=True):
        chain = chain_of[m.platform_message_id]
        members.setdefault(chain, []).append((m, i))
        chain_conversations.setdefault(chain, set())
        if i in conversation_of:
            chain_conversations[chain].add(conversation_of[i])
            conversation_chains.setdefault(conversation_of[i], set()).add(chain)
    report.true_conversations = len(chain_conversations)
    report.conversations = len(conversation_chains)
    report.chains_split = sum(1 for c in chain_conversations.values() if len(c) > 1)
    report.conversations_mixed = sum(1 for c in conversation_chains.values() if len(c) > 1)
    return [
        members[chain]
        for chain, cids in chain_conversations.items()
        if len(cids) > 1 or any(len(conversation_chains[cid]) > 1 for cid in cids)
    ]


CHAIN_EXAMPLES = 5
EXPLAINING_FIELDS = ("held", "awaits", "merged_into", "previous", "opened_at", "state", "rev")


async def chain_examples(
    redis: Any, keys: Keys, wrong: list[Chain], conversation_of: dict[str, str]
) -> list[dict[str, Any]]:
    """The first of the `wrong` chains, message by message, with the records of their conversations."""
    examples = []
    for group in wrong[:CHAIN_EXAMPLES]:
        cids = sorted({conversation_of[i] for _, i in group if i in conversation_of})
        async with redis.pipeline(transaction=False) as pipe:
            for cid in cids:
                pipe.hmget(keys.conversation(cid), EXPLAINING_FIELDS)
            rows = await pipe.execute()
        examples.append(
            {
                "messages": [
                    {
                        "id": i,
                        "in_reply_to": m.in_reply_to_id,
                        "conversation": conversation_of.get(i, ""),
                    }
                    for m, i in group
                ],
                "conversations": {
                    cid: {f: (v.decode() if v else "") for f, v in zip(EXPLAINING_FIELDS, row, strict=True)}
                    for cid, row in zip(cids, rows, strict=True)
                },
            }
        )
    return examples
