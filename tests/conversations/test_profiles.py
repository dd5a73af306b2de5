"""How a customer's profile is stored: one hash (reach, linked identities, latest public exchange) beside
the sorted set of their conversations. Profiles stored by earlier versions, with the identities and the
exchange in keys of their own, are still read, and folded into the hash when the customer is linked."""

from __future__ import annotations

from parley.conversations.core import Conversations
from parley.conversations.store import ConversationKeys
from parley.store import Keys, Redis
from parley.v1 import common_pb2

from .builders import T0, msg


async def person_keys(redis: Redis, keys: Keys, person: str) -> set[str]:
    pattern = keys.namespaced("person", f"{{{person}}}") + "*"
    return {key.decode() async for key in redis.scan_iter(match=pattern)}


async def store_as_earlier_versions_did(redis: Redis, keys: Keys, person: str) -> None:
    """Move the identities and the latest public exchange out of the profile hash, into their old keys."""
    c = ConversationKeys(keys).customers
    fields = {k.decode(): v.decode() for k, v in (await redis.hgetall(c.profile(person))).items()}
    identities = [f.removeprefix("id:") for f in fields if f.startswith("id:")]
    await redis.hdel(c.profile(person), "public", *(f"id:{i}" for i in identities))
    await redis.sadd(c.legacy_identities(person), *identities)
    await redis.set(c.legacy_last_public(person), fields["public"])


async def test_a_customer_is_one_profile_hash_beside_their_conversations(
    core: Conversations, redis: Redis, keys: Keys
) -> None:
    [public] = await core.thread([msg("t1", at=0)])
    await core.thread([msg("b1", outbound=True, reply_to="t1", at=30)])
    c = ConversationKeys(keys).customers
    assert await person_keys(redis, keys, "x:alice") == {
        c.profile("x:alice"),
        c.profile_conversations("x:alice"),
    }
    profile = await redis.hgetall(c.profile("x:alice"))
    assert profile[b"id:x:alice"] == b"1"
    # The brand's public reply is the customer's latest public exchange.
    assert profile[b"public"].decode() == f"{public.conversation_id} {T0 + 30!r}"


async def test_a_profile_an_earlier_version_stored_is_read_continued_and_folded_when_linked(
    core: Conversations, redis: Redis, keys: Keys
) -> None:
    [public] = await core.thread([msg("t1", at=0)])
    await store_as_earlier_versions_did(redis, keys, "x:alice")
    c = ConversationKeys(keys).customers
    profile = await core.profile("x:alice")
    assert [(i.channel, i.author_id) for i in profile.identities] == [(common_pb2.CHANNEL_X, "alice")]
    assert [cv.conversation_id for cv in profile.conversations] == [public.conversation_id]
    # The latest public exchange, read from its old key, lets a DM continue the public conversation.
    [dm] = await core.thread([msg("d1", thread="dm-1", private=True, at=600)])
    assert dm.conversation_id == public.conversation_id and dm.moved_to_private

    assert await core.link_identities("x:alice", "messenger:psid-9") == "x:alice"
    assert await person_keys(redis, keys, "x:alice") == {
        c.profile("x:alice"),
        c.profile_conversations("x:alice"),
    }
    stored = await redis.hgetall(c.profile("x:alice"))
    assert {b"id:x:alice", b"id:messenger:psid-9"} <= set(stored)
    assert stored[b"public"].decode() == f"{public.conversation_id} {T0!r}"
    linked = await core.profile("messenger:psid-9")
    assert {(i.channel, i.author_id) for i in linked.identities} == {
        (common_pb2.CHANNEL_X, "alice"),
        (common_pb2.CHANNEL_MESSENGER, "psid-9"),
    }


async def test_linking_keeps_the_later_public_exchange_of_the_two_customers(
    core: Conversations, redis: Redis, keys: Keys
) -> None:
    await core.thread([msg("t1", at=0)])
    [later] = await core.thread([msg("t2", author="alice-2", at=500)])
    await store_as_earlier_versions_did(redis, keys, "x:alice")  # one old, one new: both are compared
    await core.link_identities("x:alice", "x:alice-2")
    stored = await redis.hget(ConversationKeys(keys).customers.profile("x:alice"), "public")
    assert stored.decode() == f"{later.conversation_id} {T0 + 500!r}"
    assert await person_keys(redis, keys, "x:alice-2") == set()
