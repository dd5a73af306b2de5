"""On a Redis Cluster, a call that changes state answers only once a replica of each master has its writes, so
a master killed right after it answered (its replica taking over) takes back nothing a caller was told is
done. Runs on a cluster of its own, whose replica processes it can stop and resume."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Iterator

import pytest
import redis as sync_redis
from conversations.builders import msg
from prometheus_client import REGISTRY
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import TimeoutError as RedisTimeoutError

from parley import rpc
from parley.clock import ManualClock
from parley.cluster import LocalCluster, Node
from parley.config import Settings
from parley.conversations.core import Conversations
from parley.conversations.server import create_server
from parley.dispatch.outbox import RedisPartProgress
from parley.router.core import Router
from parley.router.merges import Merges
from parley.store import Replicas, keys_for, live_replicas
from parley.v1 import common_pb2, conversations_pb2, conversations_pb2_grpc, router_pb2


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    local = LocalCluster()
    local.start()
    yield local
    local.stop()


@pytest.fixture
async def on_cluster(
    cluster: LocalCluster, settings: Settings
) -> AsyncIterator[tuple[Settings, RedisCluster]]:
    cluster.wait_healthy()
    settings = settings.model_copy(
        update={"redis_url": cluster.url, "redis_cluster": True, "redis_replica_wait_ms": 3000}
    )
    client = RedisCluster.from_url(cluster.url)
    yield settings, client
    await client.aclose()


def replica_of(cluster: LocalCluster, master: Node) -> Node:
    for node in cluster.alive():
        info = node.client().info("replication")
        if info.get("role") == "slave" and int(info.get("master_port", 0)) == master.port:
            return node
    raise LookupError(f"no replica of {master.port}")


def stopped(node: Node) -> int:
    """SIGSTOP `node` (alive, connected, answering nothing, acknowledging no replication); returns its pid."""
    assert node.process is not None
    os.kill(node.process.pid, signal.SIGSTOP)
    return node.process.pid


def counted(outcome: str) -> float:
    labels = {"outcome": outcome}
    return REGISTRY.get_sample_value("parley_redis_replica_confirmations_total", labels) or 0.0


async def test_confirm_returns_only_once_the_replica_has_the_write(
    cluster: LocalCluster, on_cluster: tuple[Settings, RedisCluster]
) -> None:
    settings, client = on_cluster
    key = f"{settings.key_prefix}:promise:{{a}}"
    replica = replica_of(cluster, cluster.master_of(key))
    pid = stopped(replica)
    try:
        await client.set(key, "kept")  # the master has it; its stopped replica cannot
        asyncio.get_running_loop().call_later(0.5, os.kill, pid, signal.SIGCONT)
        assert await Replicas(settings, client).confirm() == 1  # waited for the replica to come back
    finally:
        os.kill(pid, signal.SIGCONT)
    reader = sync_redis.Redis(port=replica.port, single_connection_client=True)
    reader.execute_command("READONLY")
    assert reader.get(key) == b"kept"  # so a failover onto it now would keep the write
    reader.close()


async def test_a_master_without_a_live_replica_is_counted_and_logged_and_the_call_goes_on(
    cluster: LocalCluster, on_cluster: tuple[Settings, RedisCluster], caplog: pytest.LogCaptureFixture
) -> None:
    """A replica silent for longer than it may be (stopped, cut off) could not take over: nothing to lose."""
    settings, client = on_cluster
    settings = settings.model_copy(update={"redis_replica_wait_ms": 200})
    key = f"{settings.key_prefix}:promise:{{b}}"
    master = cluster.master_of(key)
    pid = stopped(replica_of(cluster, master))
    timed_out = counted("timed_out")
    try:
        await asyncio.sleep(Replicas.LIVE_REPLICA_LAG_SECONDS + 1.0)  # its last acknowledgement is that old
        await client.set(key, "kept")
        with caplog.at_level(logging.WARNING, logger="parley.store"):
            assert await Replicas(settings, client).confirm() == 0
    finally:
        os.kill(pid, signal.SIGCONT)
    assert counted("timed_out") == timed_out + 1  # that master only: the others' replicas answered
    assert f"no replica of 127.0.0.1:{master.port} confirmed" in caplog.text


async def test_a_live_replica_that_is_only_slow_is_waited_for(
    cluster: LocalCluster, on_cluster: tuple[Settings, RedisCluster]
) -> None:
    """A WAIT that times out while the replica still acknowledges is not taken for a missing replica: a
    failover onto it would lose the writes, so the call waits on until it has them."""
    settings, client = on_cluster
    settings = settings.model_copy(update={"redis_replica_wait_ms": 100})
    key = f"{settings.key_prefix}:promise:{{c}}"
    replica = replica_of(cluster, cluster.master_of(key))
    pid = stopped(replica)
    timed_out, late = counted("timed_out"), counted("late")
    try:
        await client.set(key, "kept")
        asyncio.get_running_loop().call_later(0.5, os.kill, pid, signal.SIGCONT)  # after several WAITs
        assert await Replicas(settings, client).confirm() == 1
    finally:
        os.kill(pid, signal.SIGCONT)
    assert (counted("timed_out"), counted("late")) == (timed_out, late + 1)
    reader = sync_redis.Redis(port=replica.port, single_connection_client=True)
    reader.execute_command("READONLY")
    assert reader.get(key) == b"kept"
    reader.close()


async def test_a_live_replica_that_does_not_catch_up_makes_the_call_retry(
    cluster: LocalCluster, on_cluster: tuple[Settings, RedisCluster]
) -> None:
    """Rather than promise what a failover could take back, the confirmation fails as an outage does (the
    servicer answers UNAVAILABLE, a follower does not ack)."""
    settings, client = on_cluster
    settings = settings.model_copy(update={"redis_replica_wait_ms": 100})
    key = f"{settings.key_prefix}:promise:{{d}}"
    pid = stopped(replica_of(cluster, cluster.master_of(key)))
    replicas = Replicas(settings, client)
    replicas.SLOW_REPLICA_PATIENCE = 3  # 400 ms in all
    # Judged live throughout: Redis reports lag in whole seconds and a replica acknowledges once a second, so
    # at the default of 2 s a slow run could already see the stopped replica as silent (that judgement has a
    # test of its own, test_live_replicas_are_synced_and_acknowledging).
    replicas.LIVE_REPLICA_LAG_SECONDS = 30
    refused = counted("refused")
    try:
        await client.set(key, "kept")
        with pytest.raises(RedisTimeoutError, match="has not confirmed its writes within 400 ms"):
            await replicas.confirm()
    finally:
        os.kill(pid, signal.SIGCONT)
    assert counted("refused") == refused + 1


def test_live_replicas_are_synced_and_acknowledging() -> None:
    def replica(state: str, offset: int, lag: int) -> dict[str, object]:
        return {"ip": "127.0.0.1", "port": 7001, "state": state, "offset": offset, "lag": lag}

    def info(*replicas: dict[str, object]) -> dict[str, object]:
        listed = {f"slave{n}": r for n, r in enumerate(replicas)}
        return {"role": "master", "connected_slaves": len(replicas), **listed, "master_repl_offset": 900}

    assert live_replicas(info(), 2) == 0
    assert live_replicas(info(replica("online", 880, 0)), 2) == 1
    assert live_replicas(info(replica("online", 880, 2)), 2) == 0  # silent too long: stopped or cut off
    assert live_replicas(info(replica("wait_bgsave", 0, 0)), 2) == 0  # still syncing
    assert live_replicas(info(replica("online", 0, 0)), 2) == 0  # still loading what it was sent
    assert live_replicas(info(replica("online", 880, 1), replica("send_bulk", 0, 0)), 2) == 1


async def test_nothing_to_confirm_on_a_single_server(settings: Settings, on_cluster) -> None:  # type: ignore[no-untyped-def]
    _, client = on_cluster
    assert await Replicas(settings.model_copy(update={"redis_cluster": False}), client).confirm() == -1
    assert await Replicas(settings.model_copy(update={"redis_replica_wait_ms": 0}), client).confirm() == -1


async def test_calls_that_change_state_confirm_and_reads_do_not(
    on_cluster: tuple[Settings, RedisCluster],
) -> None:
    settings, _ = on_cluster
    running = await create_server(settings, "127.0.0.1:0")
    channel = rpc.channel(settings, f"127.0.0.1:{running.port}")
    stub = conversations_pb2_grpc.ConversationsServiceStub(channel)
    try:
        before = counted("confirmed")
        threaded = await stub.Thread(conversations_pb2.ThreadRequest(messages=[msg("1")]))
        after_thread = counted("confirmed")
        assert after_thread == before + 3  # one confirmation from each of the three masters
        cid = threaded.results[0].conversation_id
        await stub.GetConversation(conversations_pb2.GetConversationRequest(conversation_id=cid))
        await stub.ListConversations(conversations_pb2.ListConversationsRequest())
        assert counted("confirmed") == after_thread
    finally:
        await channel.close()
        await running.stop(0)


async def test_a_reply_part_is_marked_on_a_replica_before_the_network_is_called(
    on_cluster: tuple[Settings, RedisCluster],
) -> None:
    settings, client = on_cluster
    progress = RedisPartProgress(
        client, f"{settings.key_prefix}:delivery:{{d0}}", None, Replicas(settings, client)
    )
    before = counted("confirmed")
    await progress.started(0)  # else a failover could drop the mark, and the part be posted twice
    assert counted("confirmed") == before + 3
    await progress.posted(0, "platform-1")
    assert counted("confirmed") == before + 6
    assert await progress.load() == ({0: "platform-1"}, set())


async def router_with_ann(settings: Settings, client: RedisCluster) -> Router:
    """A router on the cluster with one agent, ann, online in billing for one conversation at a time."""
    router = Router(settings, client, keys_for(settings), ManualClock(1_700_000_000.0))
    await router.set_presence("ann", "online", ["billing"], capacity=1)
    return router


def billing_complaint(cid: str) -> router_pb2.RouteItem:
    triage = common_pb2.Triage(message_id=f"x:{cid}", intent=common_pb2.INTENT_COMPLAINT, topic="billing")
    return router_pb2.RouteItem(conversation_id=cid, message=msg(cid), triage=triage)


async def test_each_step_of_a_route_an_assignment_or_a_desk_action_is_on_a_replica_before_the_next(
    on_cluster: tuple[Settings, RedisCluster],
) -> None:
    router = await router_with_ann(*on_cluster)
    before = counted("confirmed")
    [decision] = await router.route([billing_complaint("c1")])
    assert (decision.action, decision.agent_id) == (common_pb2.ROUTE_ACTION_ASSIGNED, "ann")
    # Route: the decision before its effects (queue entry, event), those before its applied mark, that before
    # the effects' marks are let go. Then the assignment: before it is recorded (capacity and queue entry),
    # after (before ann's feed has it), and after her capacity and feed count it (before the claim's journal
    # closes).
    assert counted("confirmed") == before + (3 + 3) * 3
    before = counted("confirmed")
    await router.resolve("c1", "ann")
    # A desk action likewise: its mark before the conversation leaves ann, that before its final state.
    assert counted("confirmed") == before + 2 * 3


async def test_each_step_of_a_merge_is_on_a_replica_before_the_next(
    on_cluster: tuple[Settings, RedisCluster],
) -> None:
    router = await router_with_ann(*on_cluster)
    for cid in ("c1", "parent"):  # c1 goes to ann; parent waits in the queue (ann is full)
        await router.route([billing_complaint(cid)])
    before = counted("confirmed")
    outcome = await Merges(router).apply("parent", "c1")
    assert outcome.applied and outcome.agent_id == "ann"
    # The fence, the queue entry taken, and the moves before the merged conversation points at c1.
    assert counted("confirmed") >= before + 3 * 3


async def test_a_threading_merge_keeps_its_copy_on_a_replica_before_it_retires_the_merged_conversation(
    on_cluster: tuple[Settings, RedisCluster],
) -> None:
    settings, client = on_cluster
    core = Conversations(settings, client, keys_for(settings), ManualClock(1_700_000_100.0))
    [reply] = await core.thread([msg("2", reply_to="1", author="bob", at=5)])  # its parent not seen yet
    before = counted("confirmed")
    [parent] = await core.thread([msg("1")])  # the reply's conversation is merged into the parent's
    assert parent.conversation_id != reply.conversation_id
    merged = await client.hget(keys_for(settings).conversation(reply.conversation_id), "merged_into")
    assert merged is not None and merged.decode() == parent.conversation_id
    # The copy before the event, the event before the retirement, the retirement before the listings.
    assert counted("confirmed") == before + 3 * 3
