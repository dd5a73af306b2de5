"""parley.lua: scripts from `.lua` files in plain calls and pipelines, surviving a server that forgot them."""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError

from parley import lua
from parley.cluster import LocalCluster
from parley.store import Keys, Redis

SERVICES = Path(lua.__file__).parent


def test_every_lua_file_loads_with_its_includes_expanded() -> None:
    files = sorted(SERVICES.glob("*/*.lua"))
    assert len(files) >= 20
    take = lua.load("parley.router", "take")
    assert "--#include" not in take
    assert "local function remove(" in take  # from remove.lua
    event = lua.load("parley.conversations", "event")
    assert "local function move(" in event


def test_constants_are_filled_in_and_a_missing_one_is_an_error() -> None:
    begin = lua.load("parley.dispatch", "begin", SENT=1, DEAD_LETTER=2, BLOCKED=9)
    assert "if s == '1' or s == '2' or s == '9' then return {'done'} end" in begin
    with pytest.raises(KeyError):
        lua.load("parley.dispatch", "begin", SENT=1)


async def test_a_plain_call_reloads_a_script_the_server_forgot(redis: Redis, keys: Keys) -> None:
    script = lua.register(redis, "parley.router", "set_state")
    real = script.sha
    # What a restart or a failover onto a replica does to the script cache (the Redis is shared: no FLUSH).
    script.sha = "0" * 40
    assert await script(keys=[keys.namespaced("state", "{c1}")], args=["state", "queued"]) == 1
    assert script.sha == real


async def test_a_pipeline_resends_only_the_calls_that_found_no_script(redis: Redis, keys: Keys) -> None:
    script = lua.register(redis, "parley.router", "set_state")
    script.sha = "0" * 40
    counter = keys.namespaced("counter")
    async with lua.pipeline(redis) as pipe:
        pipe.incr(counter)
        await script(keys=[keys.namespaced("state", "{c2}")], args=["a", "1"], client=pipe)
        pipe.incr(counter)
        await script(keys=[keys.namespaced("state", "{c2}")], args=["b", "2"], client=pipe)
        results = await pipe.execute()
    assert results == [1, 1, 2, 2]  # each command ran once, the scripts in their own order
    assert await redis.hgetall(keys.namespaced("state", "{c2}")) == {b"a": b"1", b"b": b"2", b"version": b"2"}


async def test_an_error_of_a_script_is_raised_after_the_rest_ran(redis: Redis, keys: Keys) -> None:
    script = lua.register(redis, "parley.router", "set_state")
    counter = keys.namespaced("counter")
    async with lua.pipeline(redis) as pipe:
        await script(keys=[keys.namespaced("state", "{c3}")], args=["odd"], client=pipe)  # no value: error
        pipe.incr(counter)
        with pytest.raises(Exception, match="(?i)wrong number of arg"):
            await pipe.execute()
    assert await redis.get(counter) == b"1"


async def test_plain_writes_go_in_one_script_call_after_the_other_commands_in_order(
    redis: Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One hash tag, so one slot on a cluster as on a single server.
    listing, profile, seen = (keys.namespaced("{w}", name) for name in ("list", "profile", "seen"))
    await redis.set(seen, "before")
    async with lua.pipeline(redis) as pipe:
        pipe.write("ZADD", listing, "NX", 1.5, "c1")
        pipe.write("ZADD", listing, "NX", 9, "c1")  # NX: the first score stays
        pipe.get(seen)
        pipe.write("HSET", profile, "handle", "ann", "verified", 0)
        pipe.write("ZADD", listing, "GT", 3, "c1")
        pipe.write("SET", seen, "after")
        replies = await pipe.execute()
    # The GET kept its place and ran before the writes; the four writes were one call naming three keys.
    assert replies == [b"before", 3]
    assert await redis.zscore(listing, "c1") == 3.0
    assert await redis.hgetall(profile) == {b"handle": b"ann", b"verified": b"0"}
    assert await redis.get(seen) == b"after"

    monkeypatch.setattr(lua, "WRITES_PER_CALL", 2)
    async with lua.pipeline(redis) as pipe:
        for n in range(5):
            pipe.write("RPUSH", keys.namespaced("{w}", "order"), n)
        assert len(await pipe.execute()) == 3  # calls of at most two writes
    assert await redis.lrange(keys.namespaced("{w}", "order"), 0, -1) == [b"0", b"1", b"2", b"3", b"4"]


def test_writes_to_the_members_of_one_key_are_folded_until_something_else_touches_it() -> None:
    writes = lua.SlotWrites()
    writes.add(("ZADD", "a", "GT", 1, "c1"))
    writes.add(("ZADD", "b", "GT", 1, "c1"))
    writes.add(("ZADD", "a", "GT", 2, "c2"))  # joins the first: only a write to b between
    writes.add(("ZADD", "a", 3, "c3"))  # other flags: a write of its own
    writes.add(("EXPIRE", "b", 60))
    writes.add(("ZADD", "b", "GT", 2, "c2"))  # after b's EXPIRE: not folded ahead of it
    writes.add(("HSET", "h", "f1", "v1"))
    writes.add_group([("RPUSH", "log", "x"), ("HDEL", "other", "f0")])  # a group: a barrier for every key
    writes.add(("HSET", "h", "f2", "v2"))
    writes.add(("ZADD", "a", "INCR", 5, "c1"))  # not plain pairs: never folded

    assert writes.groups == [
        [[["ZADD", "a", "GT", 1, "c1", 2, "c2"]], 2],
        [[["ZADD", "b", "GT", 1, "c1"]], 1],
        [[["ZADD", "a", 3, "c3"]], 1],
        [[("EXPIRE", "b", 60)], 1],
        [[["ZADD", "b", "GT", 2, "c2"]], 1],
        [[["HSET", "h", "f1", "v1"]], 1],
        [[("RPUSH", "log", "x"), ("HDEL", "other", "f0")], 2],
        [[["HSET", "h", "f2", "v2"]], 1],
        [[("ZADD", "a", "INCR", 5, "c1")], 1],
    ]


def test_a_folded_write_takes_at_most_merged_words() -> None:
    writes = lua.SlotWrites()
    for n in range(lua.FOLDED_WORDS + 5):
        writes.add(("SADD", "s", f"m{n}"))
    # SADD and its key, then 998 members; the 7 left over in a second SADD.
    assert [(len(commands[0]), count) for commands, count in writes.groups] == [
        (lua.FOLDED_WORDS, 998),
        (9, 7),
    ]


async def test_folded_writes_leave_what_the_same_writes_one_by_one_leave(redis: Redis, keys: Keys) -> None:
    # Random writes over a few keys of one slot, some in groups written together, made once through a
    # pipeline (folded) and once command by command: every key ends the same.
    rng = random.Random(7)
    for trial in range(5):
        folded, one_by_one = (keys.namespaced(f"{{f{trial}}}", side) for side in ("folded", "plain"))
        writes: list[list[tuple[object, ...]]] = []
        for _ in range(300):
            n, m = rng.randrange(3), f"m{rng.randrange(6)}"
            writes.append(
                rng.choice(
                    [
                        [("ZADD", f"z{n}", rng.choice(["GT", "NX", "LT"]), rng.randrange(9), m)],
                        [("ZADD", f"z{n}", rng.randrange(9), m)],
                        [("ZREM", f"z{n}", m)],
                        [("HSET", f"h{n}", m, rng.randrange(9))],
                        [("HDEL", f"h{n}", m)],
                        [("SADD", f"s{n}", m)],
                        [("DEL", rng.choice([f"z{n}", f"h{n}", f"s{n}"]))],
                        [("RPUSH", f"l{n}", m), ("ZADD", f"z{n}", 99, m)],
                    ]
                )
            )
        async with lua.pipeline(redis) as pipe:
            for group in writes:
                if len(group) == 1:
                    pipe.write(group[0][0], f"{folded}:{group[0][1]}", *group[0][2:])
                else:
                    pipe.write_together([(c[0], f"{folded}:{c[1]}", *c[2:]) for c in group])
            await pipe.execute()
        for group in writes:
            for command in group:
                await redis.execute_command(command[0], f"{one_by_one}:{command[1]}", *command[2:])
        for name in [f"{kind}{n}" for kind in "zhsl" for n in range(3)]:
            a, b = f"{folded}:{name}", f"{one_by_one}:{name}"
            kind = name[0]
            if kind == "z":
                assert await redis.zrange(a, 0, -1, withscores=True) == await redis.zrange(
                    b, 0, -1, withscores=True
                ), name
            elif kind == "h":
                assert await redis.hgetall(a) == await redis.hgetall(b), name
            elif kind == "s":
                assert await redis.smembers(a) == await redis.smembers(b), name
            else:
                assert await redis.lrange(a, 0, -1) == await redis.lrange(b, 0, -1), name


async def test_an_effect_queued_once_is_made_the_first_time_its_mark_is_seen_and_never_again(
    redis: Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark, log, counts = (keys.namespaced("{o}", name) for name in ("mark", "log", "counts"))
    effect = [("RPUSH", log, "event"), ("HINCRBY", counts, "handled", 1)]
    async with lua.pipeline(redis) as pipe:
        pipe.write("RPUSH", log, "before")
        pipe.once(mark, effect)
        pipe.once(mark, effect)  # the same effect again in the same call: skipped
        pipe.write("RPUSH", log, "after")  # a write after a skipped effect still runs
        await pipe.execute()
    async with lua.pipeline(redis) as pipe:
        pipe.once(mark, effect)  # a retried call
        await pipe.execute()
    assert await redis.lrange(log, 0, -1) == [b"before", b"event", b"after"]
    assert await redis.hget(counts, "handled") == b"1"
    assert 0 < await redis.ttl(mark) <= lua.ONCE_KEPT_SECONDS

    # A mark and its commands are never split between two calls, however small the calls.
    monkeypatch.setattr(lua, "WRITES_PER_CALL", 2)
    other = keys.namespaced("{o}", "other")
    async with lua.pipeline(redis) as pipe:
        pipe.write("RPUSH", log, "w1")
        pipe.once(other, effect)
        pipe.once(other, effect)
        assert len(await pipe.execute()) == 3  # the lone write, then each marked effect in a call of its own
    assert await redis.lrange(log, 3, -1) == [b"w1", b"event"]
    assert await redis.hget(counts, "handled") == b"2"


async def test_scripts_in_a_cluster_pipeline_survive_a_failover_onto_a_replica() -> None:
    # A cluster of its own: one of its masters is killed and its replica, which never loaded a script,
    # takes over.
    cluster = LocalCluster(node_timeout_ms=1000)
    await asyncio.to_thread(cluster.start)
    client = RedisCluster.from_url(cluster.url)
    try:
        script = lua.register(client, "parley.router", "set_state")
        states = [f"failover:{{c{i}}}" for i in range(24)]  # spread over every master

        async def set_all(value: str) -> list[int]:
            async with lua.pipeline(client) as pipe:
                for key in states:
                    await script(keys=[key], args=["state", value], client=pipe)
                return await pipe.execute()

        assert await set_all("queued") == [1] * len(states)  # every master loads it on first use
        victim = cluster.master_of(states[0])
        cluster.kill(victim)
        await asyncio.to_thread(cluster.wait_for_failover, victim)
        # The client's first call after the failover may still reach the dead node (a connection error, no
        # script involved; callers retry); then it knows the new map. The promoted replica never loaded the
        # script: NOSCRIPT there is loaded and re-sent inside the call.
        with contextlib.suppress(ConnectionError):
            await set_all("assigned")
        assert all(version >= 2 for version in await set_all("assigned"))
        assert {await client.hget(key, "state") for key in states} == {b"assigned"}
        assert await client.script_exists(script.sha) == [True]  # on every master, the promoted one too
        # Plain writes go as one call per hash slot (a cluster script touches one slot), and the promoted
        # replica learns their script the same way.
        async with lua.pipeline(client) as pipe:
            for key in states:
                pipe.write("HSET", key, "note", "written")
                pipe.write("HSET", key, "note2", "too")
            assert len(await pipe.execute()) == len(states)
        assert {tuple(await client.hmget(key, ["note", "note2"])) for key in states} == {(b"written", b"too")}
    finally:
        await client.aclose()
        await asyncio.to_thread(cluster.stop)
