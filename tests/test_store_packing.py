"""parley.store.HiredisPacking: commands packed by hiredis alone reach Redis as redis-py packs them."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import DataError

from parley.store import HiredisPacking, Keys, Redis

ARGUMENTS = [
    0,
    -5,
    2**64,
    1.5,
    0.1,
    1e-07,
    1e22,
    -0.0,
    float("inf"),
    1733500000.123456,
    "héllo",
    "",
    "a b",
    b"\x00\xff",
    memoryview(b"view"),
    bytearray(b"array"),
]


def test_a_command_packs_to_the_bytes_redis_py_sends() -> None:
    fast, usual = HiredisPacking(), aioredis.Connection()
    for argument in ARGUMENTS:
        command = ("SET", "key", argument)
        assert b"".join(fast.pack_command(*command)) == b"".join(usual.pack_command(*command)), argument
    # A command name of two words is split into two, as redis-py does.
    assert b"".join(fast.pack_command("CONFIG GET", "maxmemory")) == b"".join(
        usual.pack_command("CONFIG", "GET", "maxmemory")
    )
    # What redis-py refuses is still refused with its error.
    with pytest.raises(DataError):
        fast.pack_command("SET", "key", True)
    with pytest.raises(DataError):
        fast.pack_command("SET", "key", None)


async def test_the_suite_clients_write_every_kind_of_argument_as_redis_py_would(
    redis: Redis, keys: Keys
) -> None:
    if not isinstance(redis, RedisCluster):  # a cluster client takes no connection class
        assert redis.connection_pool.connection_class is HiredisPacking
    key = keys.namespaced("{packing}")
    async with redis.pipeline(transaction=False) as pipe:
        for n, argument in enumerate(ARGUMENTS):
            pipe.hset(key, str(n), argument)
        await pipe.execute()
    stored = await redis.hgetall(key)
    for n, argument in enumerate(ARGUMENTS):
        if isinstance(argument, (bytes, bytearray, memoryview)):
            expected = bytes(argument)
        elif isinstance(argument, str):
            expected = argument.encode()
        else:
            expected = repr(argument).encode()
        assert stored[str(n).encode()] == expected, argument
