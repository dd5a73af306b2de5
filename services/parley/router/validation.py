"""Route's check beyond field shapes: every conversation is one that exists.

Route is called by the pipeline only, but a request that names a conversation the conversations service never
opened (or an intent numbered 99) would otherwise be queued and assigned to an agent as a phantom.
"""

from __future__ import annotations

from collections.abc import Sequence

from parley.store import Keys, Redis


async def unknown_conversations(redis: Redis, keys: Keys, conversation_ids: Sequence[str]) -> list[int]:
    """Positions of the ids with no conversation record (read only: the conversations service writes them)."""
    async with redis.pipeline(transaction=False) as pipe:
        for conversation_id in conversation_ids:
            pipe.exists(keys.conversation(conversation_id))
        found = await pipe.execute()
    return [i for i, exists in enumerate(found) if not exists]
