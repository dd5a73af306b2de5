"""`parley chaos`'s router counts on a real Redis: a state the router itself left after claims, resolutions,
a reopening and a transfer counts zero everywhere; each kind of duplicate or leak, written into that state by
hand, is counted as what it is."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from parley import events
from parley.chaos.report import (
    Report,
    chain_examples,
    compare_chains,
    dead_letter_reasons,
    decided,
    merges_router_missed,
)
from parley.chaos.router_state import RouterEffects, router_effects
from parley.chaos.run import ClusterRedis
from parley.clock import ManualClock
from parley.dispatch.outbox import DispatchKeys
from parley.ingestion.inbound_log import InboundLog
from parley.messages import message_id
from parley.router.common import RESERVING
from parley.router.core import Router
from parley.router.keys import RouterKeys
from parley.v1 import common_pb2, router_pb2

COUNTS = (
    "duplicate_queue_entries",
    "queued_while_assigned",
    "waiting_in_no_queue",
    "duplicate_assignments",
    "duplicate_assignments_in_feeds",
    "leaked_capacity",
    "reservations_left",
    "unrecorded_assignments",
    "claims_in_flight",
)


def complaint(cid: str, n: int) -> router_pb2.RouteItem:
    message_id = f"x:{cid}-{n}"
    return router_pb2.RouteItem(
        conversation_id=cid,
        message=common_pb2.InboundMessage(
            channel=common_pb2.CHANNEL_X,
            visibility=common_pb2.VISIBILITY_PRIVATE,
            platform_message_id=f"{cid}-{n}",
            message_id=message_id,
            direction=common_pb2.DIRECTION_INBOUND,
            author=common_pb2.Author(id="u1", handle="someone"),
            text="this is not working",
        ),
        triage=common_pb2.Triage(message_id=message_id, intent=common_pb2.INTENT_COMPLAINT, topic="weather"),
    )


async def resolutions(redis, keys) -> dict[str, list[tuple[int, int]]]:
    found: dict[str, list[tuple[int, int]]] = {}
    for event_id, event in await events.read_all(redis, keys):
        if event.type == "conversation.resolved":
            ms, seq = event_id.split("-")[:2]
            found.setdefault(event.conversation_id, []).append((int(ms), int(seq)))
    return found


def counts(effects: RouterEffects) -> dict[str, int]:
    return {name: getattr(effects, name) for name in COUNTS}


@pytest.fixture
async def floor(settings, redis, keys):
    """The router's own work: c1 was ann's, resolved, reopened and hers again, then resolved; ann holds c3;
    c2 was ann's and is transferred to bob, who also holds c4; c5 waits in its queue."""
    clock = ManualClock()
    router = Router(settings, redis, keys, clock)
    rk = RouterKeys(keys)

    async def holder(cid: str) -> bytes | None:
        return await redis.hget(rk.state(cid), "agent")

    await router.route([complaint("c1", 1)])
    await router.set_presence("ann", "online", ["first_line", "priority"], capacity=2)
    assert await holder("c1") == b"ann"
    clock.advance(1)
    await router.resolve("c1", "ann")
    await router.route([complaint("c1", 2)])  # reopened: hers again
    assert await holder("c1") == b"ann"
    clock.advance(1)
    await router.resolve("c1", "ann")
    for cid in ("c2", "c3"):
        await router.route([complaint(cid, 1)])
        assert await holder(cid) == b"ann"
    await router.set_presence("bob", "online", ["first_line", "priority"], capacity=3)
    await router.route([complaint("c4", 1)])
    assert await holder("c4") == b"bob"  # ann is full
    await router.transfer("c2", to_agent_id="bob", reason="knows the case")
    assert await holder("c2") == b"bob"
    await router.set_presence("ann", "away")
    await router.set_presence("bob", "away")
    await router.route([complaint("c5", 1)])
    return router


async def test_the_routers_own_state_counts_zero(floor, redis, keys):
    rk = RouterKeys(keys)
    effects = await router_effects(redis, keys, await resolutions(redis, keys))
    assert counts(effects) == dict.fromkeys(COUNTS, 0), effects.examples
    assert effects.clean
    assert effects.assignments == 6  # c1 twice, c2 and c3 to ann; c4 and c2 to bob
    # The state is not trivial: c1 was assigned to ann twice (a resolution between), c2 withdrawn from her
    # and assigned to bob, one conversation waits.
    feed = [router_pb2.Assignment.FromString(f[b"assignment"]) for _, f in await redis.xrange(rk.feed("ann"))]
    assert [a.conversation_id for a in feed if not a.withdrawn].count("c1") == 2
    assert [a.conversation_id for a in feed if a.withdrawn] == ["c2"]
    assert (await redis.hget(rk.state("c5"), "state")) == b"queued"


async def test_without_the_resolutions_a_reassignment_reads_as_a_duplicate(floor, redis, keys):
    """The feed check needs the resolutions: it is what tells a reopening from a second assignment."""
    effects = await router_effects(redis, keys, {})
    assert effects.duplicate_assignments_in_feeds >= 1


async def test_a_conversation_in_two_queues(floor, redis, keys):
    rk = RouterKeys(keys)
    await redis.zadd(rk.queue("billing"), {"c5": 10})
    effects = await router_effects(redis, keys, await resolutions(redis, keys))
    assert counts(effects) == {**dict.fromkeys(COUNTS, 0), "duplicate_queue_entries": 1}
    assert not effects.clean


async def test_a_conversation_queued_while_an_agent_holds_it(floor, redis, keys):
    rk = RouterKeys(keys)
    await redis.zadd(rk.queue("first_line"), {"c2": 10})
    effects = await router_effects(redis, keys, await resolutions(redis, keys))
    assert counts(effects) == {**dict.fromkeys(COUNTS, 0), "queued_while_assigned": 1}


async def test_a_conversation_waiting_in_no_queue(floor, redis, keys):
    """The router's state says it waits, but no queue holds it and no claim took it: no agent would get it."""
    rk = RouterKeys(keys)
    await redis.zrem(rk.queue("first_line"), "c5")
    effects = await router_effects(redis, keys, await resolutions(redis, keys))
    assert counts(effects) == {**dict.fromkeys(COUNTS, 0), "waiting_in_no_queue": 1}
    assert effects.examples["waiting_in_no_queue"] == ["c5 waiting for first_line"]
    await redis.hset(rk.taking("first_line"), "c5", f"ann|{RESERVING}1.0:x|1.0|10|1|2")
    assert (await router_effects(redis, keys, await resolutions(redis, keys))).waiting_in_no_queue == 0


async def test_one_conversation_with_two_agents(floor, redis, keys):
    rk = RouterKeys(keys)
    await redis.sadd(rk.active("ann"), "c2")  # bob's
    effects = await router_effects(redis, keys, await resolutions(redis, keys))
    # ann counts a conversation that is not hers: a second holder, and capacity she does not really use.
    assert counts(effects) == {**dict.fromkeys(COUNTS, 0), "duplicate_assignments": 1, "leaked_capacity": 1}
    assert effects.examples["duplicate_assignments"] == ["c2 with ['ann', 'bob']"]


async def test_a_second_assignment_in_a_feed_without_a_release(floor, redis, keys):
    rk = RouterKeys(keys)
    again = router_pb2.Assignment(conversation_id="c3", agent_id="ann", team="first_line")
    await redis.xadd(rk.feed("ann"), {"assignment": again.SerializeToString()})
    effects = await router_effects(redis, keys, await resolutions(redis, keys))
    assert counts(effects) == {**dict.fromkeys(COUNTS, 0), "duplicate_assignments_in_feeds": 1}


async def test_an_assignment_to_another_agent_without_a_withdrawal(floor, redis, keys):
    rk = RouterKeys(keys)
    other = router_pb2.Assignment(conversation_id="c4", agent_id="ann", team="first_line")
    await redis.xadd(rk.feed("ann"), {"assignment": other.SerializeToString()})  # c4 is bob's
    effects = await router_effects(redis, keys, await resolutions(redis, keys))
    assert effects.duplicate_assignments_in_feeds == 1


async def test_capacity_used_by_a_resolved_conversation_and_a_reservation_left(floor, redis, keys):
    rk = RouterKeys(keys)
    await redis.sadd(rk.active("ann"), "c1")  # resolved: ann's capacity would be short by one for good
    await redis.sadd(rk.active("bob"), f"{RESERVING}1.0:dead-claimer")
    effects = await router_effects(redis, keys, await resolutions(redis, keys))
    assert counts(effects) == {**dict.fromkeys(COUNTS, 0), "leaked_capacity": 2, "reservations_left": 1}


async def test_an_assignment_the_agents_capacity_does_not_count(floor, redis, keys):
    rk = RouterKeys(keys)
    await redis.srem(rk.active("ann"), "c3")
    effects = await router_effects(redis, keys, await resolutions(redis, keys))
    assert counts(effects) == {**dict.fromkeys(COUNTS, 0), "unrecorded_assignments": 1}


async def test_a_claim_journal_never_settled(floor, redis, keys):
    rk = RouterKeys(keys)
    await redis.hset(rk.taking("first_line"), "c5", f"ann|{RESERVING}1.0:x|1.0|10|1|2")
    effects = await router_effects(redis, keys, await resolutions(redis, keys))
    assert counts(effects) == {**dict.fromkeys(COUNTS, 0), "claims_in_flight": 1}


def test_any_router_effect_fails_the_run():
    clean = Report(messages=1, acked=1, processed=1, drained=True)
    assert clean.ok
    for name in COUNTS:
        if name == "reservations_left":
            continue  # counted within leaked_capacity
        report = Report(messages=1, acked=1, processed=1, drained=True)
        report.take_router_effects(RouterEffects(**{name: 1}))
        assert not report.ok, name
        assert report.as_dict()[name] == 1


def test_a_dead_lettered_message_or_a_split_reply_chain_fails_the_run():
    """The replayed file is clean: a message set aside unprocessed is as much a failure as a lost one, and a
    reply chain in two conversations is a conversation opened twice."""
    assert not Report(messages=2, acked=2, processed=1, drained=True, dead_lettered={"inbound": 1}).ok
    assert not Report(messages=2, acked=2, processed=2, drained=True, chains_split=1).ok
    assert not Report(messages=2, acked=2, processed=2, drained=True, conversations_mixed=1).ok
    assert not Report(messages=2, acked=2, processed=2, drained=True, decisions_without_event=1).ok
    assert Report(messages=2, acked=2, processed=2, drained=True).ok


async def test_the_messages_the_router_decided_are_found_where_they_were_first_routed(floor, redis, keys):
    """What `decisions_without_event` counts against the events: every stored decision, none made up."""
    ids = ["x:c1-1", "x:c1-2", "x:c5-1", "x:c9-1"]
    assert await decided(redis, keys, ids) == {"x:c1-1", "x:c1-2", "x:c5-1"}
    await redis.delete(RouterKeys(keys).decision("c5", "x:c5-1"))
    assert await decided(redis, keys, ids) == {"x:c1-1", "x:c1-2"}


async def test_a_merge_the_router_never_folded_is_counted(redis, keys):
    """A conversation merged away whose routing state still stands alone: the router missed the merge."""
    rk = RouterKeys(keys)
    await redis.hset(keys.conversation("c1"), mapping={"channel": 1})
    await redis.hset(keys.conversation("c2"), mapping={"channel": 1, "merged_into": "c1"})
    await redis.hset(keys.conversation("c3"), mapping={"channel": 1, "merged_into": "c1"})  # never routed
    await redis.rpush(keys.conversation_messages("c2"), "x:1")  # another key of c2's: not a record
    for cid in ("c1", "c2"):
        await redis.hset(rk.state(cid), mapping={"version": 1, "state": "queued"})
    examples: list[dict] = []
    assert await merges_router_missed(redis, keys, examples) == (2, 1)
    assert examples == [
        {
            "conversation": "c2",
            "record": {"channel": "1", "merged_into": "c1"},
            "routing_state": {"version": "1", "state": "queued"},
        }
    ]
    await redis.hset(rk.state("c2"), "merging_into", "c1")
    assert await merges_router_missed(redis, keys) == (2, 0)


async def test_dead_letters_of_every_kind_are_counted_with_their_reasons(settings, redis, keys):
    inbound = InboundLog(settings, redis, keys)
    assert await dead_letter_reasons(settings, redis, keys, inbound) == {}
    await redis.rpush(
        keys.namespaced("inbound-dead"),
        json.dumps({"message_id": "x:1", "stage": "classify", "reason": "no text"}),
    )
    await redis.rpush(keys.namespaced("events-dead", "router"), json.dumps({"reason": "undecodable event"}))
    dispatch = DispatchKeys(keys, settings.dispatch_partitions)
    await redis.rpush(dispatch.dead(1), json.dumps({"reason": "refused by the platform"}))
    await redis.rpush(dispatch.dead(2), json.dumps({"reason": "refused by the platform"}))
    assert await dead_letter_reasons(settings, redis, keys, inbound) == {
        "inbound classify: no text": 1,
        "events router: undecodable event": 1,
        "dispatch: refused by the platform": 2,
    }


async def test_a_cluster_crash_fails_a_master_over_and_the_killed_node_rejoins_as_a_replica(tmp_path):
    """What `parley chaos --cluster` does to Redis: a master SIGKILLed, its replica takes its slots over, the
    killed node started again on its own folder comes back as a replica, and what was written stays."""
    nodes = ClusterRedis(tmp_path / "cluster")
    await asyncio.to_thread(nodes.start)
    client = RedisCluster.from_url(nodes.url)
    try:
        written = {f"crash:{{k{i}}}": str(i) for i in range(30)}  # spread over every master
        for key, value in written.items():
            await client.set(key, value)
        masters_before = {n.port for n in nodes.nodes.masters_now()}
        assert await nodes.crash(random.Random(3)) == "redis master"
        await asyncio.to_thread(nodes.nodes.wait_healthy, 60.0)
        masters_after = {n.port for n in nodes.nodes.masters_now()}
        assert len(masters_after) == 3 and masters_after != masters_before
        (killed,) = masters_before - masters_after
        rejoined = next(n for n in nodes.nodes.nodes if n.port == killed)
        assert rejoined.client().info("replication")["role"] == "slave"
        for _ in range(50):  # the client's first calls may still reach the dead node
            try:
                found = {key: (await client.get(key)).decode() for key in written}
                break
            except (ConnectionError, RedisError):
                await asyncio.sleep(0.2)
        assert found == written
    finally:
        await client.aclose()
        await asyncio.to_thread(nodes.stop)


async def test_a_split_chain_is_shown_message_by_message_with_its_conversations_records(redis, keys):
    """The report says where each message of a split chain went, and how those conversations came to be:
    here a reply held for its parent that the parent's conversation never took in."""

    def tweet(pid: str, parent: str = "") -> common_pb2.InboundMessage:
        return common_pb2.InboundMessage(
            channel=common_pb2.CHANNEL_X, platform_message_id=pid, in_reply_to_id=parent, text="hello"
        )

    messages = [tweet("1"), tweet("2", "1"), tweet("3"), tweet("4", "3")]
    ids = [message_id(m.channel, m.platform_message_id) for m in messages]
    where = {ids[0]: "conv-a", ids[1]: "conv-b", ids[2]: "conv-c", ids[3]: "conv-c"}
    await redis.hset(keys.conversation("conv-b"), mapping={"held": "1", "awaits": ids[0], "rev": "1"})
    await redis.hset(keys.conversation("conv-a"), mapping={"state": "1", "rev": "3"})

    wrong = compare_chains(Report(), messages, ids, where)
    examples = await chain_examples(redis, keys, wrong, where)

    assert len(examples) == 1  # the chain of 3 and 4 is whole
    (split,) = examples
    assert [(m["id"], m["in_reply_to"], m["conversation"]) for m in split["messages"]] == [
        (ids[0], "", "conv-a"),
        (ids[1], "1", "conv-b"),
    ]
    assert split["conversations"]["conv-b"]["held"] == "1"
    assert split["conversations"]["conv-b"]["awaits"] == ids[0]
    assert split["conversations"]["conv-a"]["merged_into"] == ""
    assert split["conversations"]["conv-a"]["rev"] == "3"
