"""Route's check beyond field shapes: every conversation is one that exists.

Route is called by the pipeline only, but a request that names a conversation the conversations service never
opened (or an intent numbered 99) would otherwise be queued and assigned to an agent as a phantom.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio.cluster import RedisCluster

from parley.store import Keys, Redis


async def unknown_conversations(redis: Redis, keys: Keys, conversation_ids: Sequence[str]) -> list[int]:
    """Positions of the ids with no conversation record (read only: the conversations service writes them).
    On a single server one EXISTS over the distinct records answers the usual case, all of them there; each
    record is asked about on its own only when some are missing, and always on a cluster (one EXISTS names one
    slot)."""
    records = [keys.conversation(conversation_id) for conversation_id in conversation_ids]
    distinct = list(dict.fromkeys(records))
    one_server = not isinstance(redis, RedisCluster)
    if one_server and distinct and await redis.exists(*distinct) == len(distinct):
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for record in records:
            pipe.exists(record)
        found = await pipe.execute()
    return [i for i, exists in enumerate(found) if not exists]
