"""The router's keys: its own prefix, the conversation's slot, and expiry with the conversation."""

from redis.crc import key_slot
from router_testkit import make_item

from parley.conversations import retention
from parley.conversations.store import ConversationKeys
from parley.router.core import Router
from parley.v1 import conversations_pb2


def test_per_conversation_keys_are_the_routers_and_share_the_conversations_slot(router: Router, keys):
    record = keys.conversation("c1")
    for key in router.k.conversation_keys("c1", ["x:1"])[:4]:
        assert key.startswith(f"{keys.prefix}:router:")
        assert key_slot(key.encode()) == key_slot(record.encode())


async def test_a_closed_conversations_routing_state_expires_with_it(router: Router, redis, keys, settings):
    await router.route([make_item("c1", "x:1", "praise")])
    closed = conversations_pb2.CONVERSATION_STATE_RESOLVED
    opened = conversations_pb2.CONVERSATION_STATE_QUEUED
    await retention.apply(redis, ConversationKeys(keys), settings, {"c1": [(opened, closed)]})
    assert 0 < await redis.ttl(router.k.state("c1")) <= settings.conversations_retention_seconds
    await retention.apply(redis, ConversationKeys(keys), settings, {"c1": [(closed, opened)]})
    assert await redis.ttl(router.k.state("c1")) == -1
