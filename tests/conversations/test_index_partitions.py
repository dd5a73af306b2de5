"""The listing indexes are partitioned by conversation id: no index key holds every conversation, the
partitions spread over the slot range, and ListConversations merges them into one order over pages (ties
included) while GetMetrics counts every partition."""

from __future__ import annotations

import base64
import itertools
import json
import random

import pytest
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from parley.clock import ManualClock
from parley.config import Settings
from parley.conversations.core import Conversations
from parley.conversations.reads import MIN_CHUNK, MergedIndex
from parley.conversations.store import ConversationKeys
from parley.rpc import InvalidArgument
from parley.store import Keys, Redis, keys_for
from parley.v1 import common_pb2, conversations_pb2

from .builders import T0, msg
from .test_outcomes_and_reads import QUEUED, in_conversation, outcome

S = conversations_pb2
MESSENGER = common_pb2.CHANNEL_MESSENGER


def core_with(settings: Settings, redis: Redis, clock: ManualClock, partitions: int) -> Conversations:
    tuned = settings.model_copy(update={"index_partitions": partitions})
    return Conversations(tuned, redis, keys_for(tuned), clock)


async def open_many(core: Conversations, clock: ManualClock) -> dict[str, common_pb2.InboundMessage]:
    """60 conversations: 25 updated at one same time (threaded in one call), then 35 in groups of 5 sharing
    a time, every fourth of those on Messenger. Returns each one's opening message by conversation id."""
    sent = [msg(f"tie{i}", at=i) for i in range(25)]
    results = await core.thread(sent)
    for group in range(7):
        clock.advance(1)
        batch = [
            msg(f"m{group}.{i}", thread=f"t{group}.{i}", channel=MESSENGER, at=100 + group)
            if (group * 5 + i) % 4 == 0
            else msg(f"g{group}.{i}", at=100 + group)
            for i in range(5)
        ]
        sent += batch
        results += await core.thread(batch)
    return {r.conversation_id: m for r, m in zip(results, sent, strict=True)}


async def every_page(core: Conversations, page_size: int, **filters: int) -> list[str]:
    seen: list[str] = []
    token = ""
    while True:
        page, token = await core.list(page_size=page_size, page_token=token, **filters)  # type: ignore[arg-type]
        assert len(page) <= page_size
        seen += [s.conversation_id for s in page]
        if not token:
            return seen


async def expected_order(redis: Redis, k: ConversationKeys, cids: list[str]) -> list[str]:
    """Newest updated first, ties by id descending (the order of one sorted set read backwards)."""
    scores = {cid: float(await redis.zscore(k.index_all(cid), cid)) for cid in cids}
    return sorted(cids, key=lambda cid: (scores[cid], cid), reverse=True)


def test_the_partitions_spread_over_the_slot_range(settings: Settings) -> None:
    k = ConversationKeys(keys_for(settings))
    partitions = settings.index_partitions
    for family in (k.listing_partitions(), k.opened_partitions(), k.listing_partitions(state=2)):
        slots = [key_slot(key.encode()) for key in family]
        assert len(family) == partitions
        # Partition p's slot lies in the p-th share of the slot range: one per master of an even split.
        assert [slot * partitions // REDIS_CLUSTER_HASH_SLOTS for slot in slots] == list(range(partitions))
    # A conversation's entries in every index share its partition's slot.
    cid = "cv-0123"
    slots = {key_slot(key.encode()) for key in (k.index_all(cid), k.index_opened(cid), k.index_state(3, cid))}
    assert slots == {key_slot(k.index_channel(1, cid).encode())}


@pytest.mark.parametrize(("partitions", "page_size"), [(12, 7), (12, 1), (3, 4), (2, 100), (1, 5)])
async def test_listing_merges_the_partitions_in_order_over_pages(
    settings: Settings, redis: Redis, clock: ManualClock, partitions: int, page_size: int
) -> None:
    core = core_with(settings, redis, clock, partitions)
    k = core.keys
    opened = await open_many(core, clock)
    cids = list(opened)
    assert len(cids) == 60
    sizes = [await redis.zcard(key) for key in k.listing_partitions()]
    assert sum(sizes) == 60
    if partitions > 1:  # no key holds every conversation
        assert max(sizes) < 60 and sum(1 for size in sizes if size) >= min(partitions, 2)

    everything = await every_page(core, page_size)
    assert everything == await expected_order(redis, k, cids)

    messenger = [cid for cid, m in opened.items() if m.channel == MESSENGER]
    assert len(messenger) == 9
    assert await every_page(core, page_size, channel=MESSENGER) == await expected_order(redis, k, messenger)

    queued = cids[::6]
    clock.advance(1)
    await core.record_outcomes(
        [in_conversation(outcome(opened[cid].message_id, QUEUED, at=500), cid) for cid in queued]
    )
    listed_queued = await every_page(core, page_size, state=S.CONVERSATION_STATE_QUEUED)
    assert listed_queued == await expected_order(redis, k, queued)
    new = await every_page(core, page_size, state=S.CONVERSATION_STATE_NEW)
    assert sorted(new) == sorted(set(cids) - set(queued))
    # The queued moved up the full listing; still every conversation once.
    assert await every_page(core, page_size) == await expected_order(redis, k, cids)


async def test_a_tie_larger_than_a_read_is_paged_through(
    settings: Settings, redis: Redis, clock: ManualClock
) -> None:
    # 80 conversations at one time in 2 partitions: each partition's tie is longer than two reads of it.
    core = core_with(settings, redis, clock, 2)
    cids = [r.conversation_id for r in await core.thread([msg(f"t{i}", at=i) for i in range(80)])]
    sizes = [await redis.zcard(key) for key in core.keys.listing_partitions()]
    assert min(sizes) > 2 * MIN_CHUNK
    assert await every_page(core, 1) == sorted(cids, reverse=True)
    assert await every_page(core, 2) == sorted(cids, reverse=True)
    assert await every_page(core, 3) == sorted(cids, reverse=True)


async def test_metrics_count_every_partition(settings: Settings, redis: Redis, clock: ManualClock) -> None:
    core = core_with(settings, redis, clock, 12)
    cids = list(await open_many(core, clock))
    opened = [await redis.zcard(key) for key in core.keys.opened_partitions()]
    assert sum(opened) == 60 and max(opened) < 60
    [overall] = await core.metrics(T0, T0 + 1000)
    assert overall.conversations == len(cids) == 60
    by_channel = {g.key: g.conversations for g in await core.metrics(T0, T0 + 1000, "channel")}
    assert by_channel == {"x": 51, "messenger": 9}
    assert [g.conversations for g in await core.metrics(T0 + 100, T0 + 1000)] == [35]


@pytest.mark.parametrize(
    "cursor",
    [["NaN", "cv-1"], [float("inf"), "cv-1"], [1.0, 2], [1.0], [1.0, "cv-1", 3], {"a": 1}, "x"],
)
async def test_a_token_not_made_by_the_listing_is_refused(core: Conversations, cursor: object) -> None:
    raw = json.dumps(cursor).replace('"NaN"', "NaN")
    with pytest.raises(InvalidArgument):
        await core.list(page_token=base64.urlsafe_b64encode(raw.encode()).decode())


@pytest.mark.parametrize("chunk", [1, 2, 3, 5])
async def test_merged_index_reads_partitions_as_one_sorted_set(redis: Redis, keys: Keys, chunk: int) -> None:
    # Skewed partitions (one holds most entries, one is empty) with long ties, read a few entries at a time.
    rng = random.Random(chunk)
    partitions = [keys.namespaced("merge", str(p)) for p in range(4)]
    everything: list[tuple[float, str]] = []
    for n in range(70):
        member, score = f"c{n:02d}", float(rng.choice([1, 2, 2, 2, 3, 5, 8, 8]))
        p = 0 if n % 3 else 1 + n % 2  # partition 3 stays empty
        await redis.zadd(partitions[p], {member: score})
        everything.append((score, member))
    everything.sort(reverse=True)

    index = MergedIndex(redis, partitions, None, chunk)
    taken: list[tuple[float, str]] = []
    for n in itertools.cycle([1, 4, 2, 7]):
        got = await index.take(n)
        taken += got
        if len(got) < n:
            break
    assert taken == everything
    # From a cursor in the middle of a tie: everything after it, once.
    below = everything[31]
    assert below[0] == everything[30][0] or below[0] == everything[32][0]
    assert await MergedIndex(redis, partitions, below, chunk).take(100) == everything[32:]


async def test_held_conversations_spread_over_the_partitions_and_the_sweep_opens_them_all(
    settings: Settings, redis: Redis, clock: ManualClock
) -> None:
    core = core_with(settings, redis, clock, 4)
    results = await core.thread([msg(f"r{i}", reply_to=f"never{i}", at=i) for i in range(40)])
    assert all(r.held for r in results)
    sizes = [await redis.zcard(key) for key in core.keys.held_partitions()]
    assert sum(sizes) == 40 and max(sizes) < 40  # no one key holds every held conversation
    for r in results:
        assert await redis.zscore(core.keys.held(r.conversation_id), r.conversation_id) is not None
    clock.advance(settings.conversations_held_timeout_seconds + 1)

    assert await core.sweep_held() == 40

    assert [await redis.zcard(key) for key in core.keys.held_partitions()] == [0, 0, 0, 0]
