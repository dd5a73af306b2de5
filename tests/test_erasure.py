"""EraseCustomer on the real conversations and dispatch servers: everything about the customer goes, across
channels and services, and nobody else's data is touched."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest
from conversations.builders import store_messages_as_earlier_versions_did

from parley import rpc
from parley.clock import ManualClock, to_timestamp
from parley.config import Settings
from parley.conversations.server import create_server as conversations_server
from parley.conversations.store import ConversationKeys
from parley.dispatch.server import create_server as dispatch_server
from parley.v1 import common_pb2, conversations_pb2, conversations_pb2_grpc, dispatch_pb2, dispatch_pb2_grpc

S = conversations_pb2
T0 = 1_700_000_000.0
X, MESSENGER = common_pb2.CHANNEL_X, common_pb2.CHANNEL_MESSENGER


def message(pid: str, author: str, text: str, channel: int = X, reply_to: str = "", at: float = 0):
    prefix = {X: "x", MESSENGER: "messenger"}[channel]
    return common_pb2.InboundMessage(
        channel=channel,
        visibility=common_pb2.VISIBILITY_PRIVATE if channel == MESSENGER else common_pb2.VISIBILITY_PUBLIC,
        platform_message_id=pid,
        message_id=f"{prefix}:{pid}",
        in_reply_to_id=reply_to,
        brand_account_id="brand-1",
        author=common_pb2.Author(id=author, handle=author),
        text=text,
        sent_at=to_timestamp(T0 + at),
        direction=common_pb2.DIRECTION_INBOUND,
    )


def reply(reply_id: str, conversation_id: str, recipient: str, text: str) -> dispatch_pb2.Reply:
    return dispatch_pb2.Reply(
        reply_id=reply_id,
        conversation_id=conversation_id,
        channel=X,
        visibility=common_pb2.VISIBILITY_PRIVATE,
        brand_account_id="brand-1",
        recipient=common_pb2.Author(id=recipient),
        text=text,
        sent_by="agent",
    )


@pytest.fixture
async def suite(settings: Settings, tmp_path: Path, redis):  # noqa: ANN201 - (conversations, dispatch) stubs
    log = tmp_path / "outbox.log"
    dispatch = await dispatch_server(settings.model_copy(update={"dispatch_log_path": log}), "127.0.0.1:0")
    wired = settings.model_copy(
        update={"dispatch_addr": f"127.0.0.1:{dispatch.port}", "dispatch_log_path": log}
    )
    conversations = await conversations_server(wired, "127.0.0.1:0", clock=ManualClock(T0 + 100))
    channels = [rpc.channel(settings, f"127.0.0.1:{s.port}") for s in (conversations, dispatch)]
    try:
        yield (
            conversations_pb2_grpc.ConversationsServiceStub(channels[0]),
            dispatch_pb2_grpc.DispatchServiceStub(channels[1]),
            log,
        )
    finally:
        for ch in channels:
            await ch.close()
        await conversations.stop(0)
        await dispatch.stop(settings.shutdown_grace_seconds)


async def sent(dispatch: dispatch_pb2_grpc.DispatchServiceStub, reply_id: str) -> dispatch_pb2.Delivery:
    for _ in range(400):  # bounded wait for the delivery loop, not a timing assertion
        got = (await dispatch.GetDelivery(dispatch_pb2.GetDeliveryRequest(reply_id=reply_id))).delivery
        if got.status == dispatch_pb2.DELIVERY_STATUS_SENT:
            return got
        await asyncio.sleep(0.025)
    raise AssertionError(f"{reply_id} was not sent")


async def test_erase_customer_removes_them_everywhere_and_only_them(suite, redis, keys) -> None:  # noqa: ANN001
    conversations, dispatch, log = suite
    threaded = await conversations.Thread(
        S.ThreadRequest(
            messages=[
                message("1", "alice", "my card 4111 1111 1111 1111 was charged twice"),
                message("m1", "alice-fb", "it's alice again, from Messenger", channel=MESSENGER, at=1),
                message("2", "bob", "my parcel is late", at=2),
                message("3", "alice", "same here, bob", reply_to="2", at=3),
            ]
        )
    )
    own_x, own_messenger, bobs, _ = (r.conversation_id for r in threaded.results)
    assert threaded.results[3].conversation_id == bobs  # alice's reply joined bob's conversation
    await conversations.LinkIdentities(
        S.LinkIdentitiesRequest(
            identity=S.Identity(channel=X, author_id="alice"),
            other=S.Identity(channel=MESSENGER, author_id="alice-fb"),
        )
    )
    await dispatch.SendReply(
        dispatch_pb2.SendReplyRequest(
            replies=[
                reply("agent:1", own_x, "alice", "Alice, we refunded the card ending 1111"),
                reply("agent:2", bobs, "bob", "Bob, your parcel ships today"),
            ]
        )
    )
    await sent(dispatch, "agent:1")
    await sent(dispatch, "agent:2")
    before = await conversations.GetProfile(
        S.GetProfileRequest(identity=S.Identity(channel=X, author_id="alice"))
    )
    assert len(before.profile.identities) == 2

    erased = await conversations.EraseCustomer(
        S.EraseCustomerRequest(identity=S.Identity(channel=X, author_id="alice"))
    )
    assert (erased.identities, erased.conversations, erased.messages) == (2, 2, 3)
    assert (erased.deliveries, erased.outbox_lines) == (1, 1)

    for cid in (own_x, own_messenger):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await conversations.GetConversation(S.GetConversationRequest(conversation_id=cid))
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await conversations.ListConversations(S.ListConversationsRequest())
    assert [c.conversation_id for c in listed.conversations] == [bobs]
    # Out of every listing index partition; bob's conversation stays in its own. (The state indexes are left
    # out: the lifecycle follower may still be applying the reply's event, whose state write races erasure.)
    indexed = {
        ConversationKeys(keys).index_all(bobs),
        *[key.decode() async for key in redis.scan_iter(match=keys.namespaced("convidx", "*"))],
    }
    assert len(indexed) > 3
    for key in (key for key in indexed if ":state:" not in key):
        assert await redis.zscore(key, own_x) is None and await redis.zscore(key, own_messenger) is None, key
    assert await redis.zscore(ConversationKeys(keys).index_all(bobs), bobs) is not None
    left = (await conversations.GetConversation(S.GetConversationRequest(conversation_id=bobs))).conversation
    assert [m.message.text for m in left.messages] == ["my parcel is late"]
    for identity in (
        S.Identity(channel=X, author_id="alice"),
        S.Identity(channel=MESSENGER, author_id="alice-fb"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await conversations.GetProfile(S.GetProfileRequest(identity=identity))
        assert error.value.code() == grpc.StatusCode.NOT_FOUND

    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(line["text"] for line in lines) == ["", "Bob, your parcel ships today"]
    assert "alice" not in log.read_text().lower()
    mine = (await dispatch.GetDelivery(dispatch_pb2.GetDeliveryRequest(reply_id="agent:1"))).delivery
    assert mine.status == dispatch_pb2.DELIVERY_STATUS_SENT  # still guards against a second post
    stored = [
        dispatch_pb2.Reply.FromString(await redis.hget(key, "reply"))
        async for key in redis.scan_iter(match=keys.namespaced("dispatch", "*", "delivery", "*"))
    ]
    assert sorted((r.text, r.recipient.id) for r in stored) == [
        ("", ""),
        ("Bob, your parcel ships today", "bob"),
    ]

    again = await conversations.EraseCustomer(
        S.EraseCustomerRequest(identity=S.Identity(channel=X, author_id="alice"))
    )
    assert (again.conversations, again.messages, again.deliveries, again.outbox_lines) == (0, 0, 0, 0)


async def test_erase_customer_validates_the_identity(settings: Settings, redis) -> None:  # noqa: ANN001
    # Refused before anything is read or dispatch is asked (none runs here).
    running = await conversations_server(
        settings.model_copy(update={"dispatch_addr": "127.0.0.1:1"}), "127.0.0.1:0"
    )
    async with rpc.channel(settings, f"127.0.0.1:{running.port}") as ch:
        stub = conversations_pb2_grpc.ConversationsServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.EraseCustomer(S.EraseCustomerRequest(identity=S.Identity(channel=99)))
    await running.stop(0)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in rpc.field_violations(error.value)] == ["identity.channel", "identity.author_id"]


async def test_erasure_reaches_the_parts_an_earlier_version_wrote(suite, redis, keys) -> None:  # noqa: ANN001
    """Texts and inbound turns were once stored apart from the bodies, and bodies apart from roles:
    conversations stored then keep those keys, and erasure takes the customer's messages out of them too."""
    conversations, _, _ = suite
    threaded = await conversations.Thread(
        S.ThreadRequest(
            messages=[
                message("1", "alice", "my card was charged twice"),
                message("2", "bob", "my parcel is late", at=2),
                message("3", "alice", "same here, bob", reply_to="2", at=3),
            ]
        )
    )
    own, bobs, _ = (r.conversation_id for r in threaded.results)
    legacy = {
        own: {"x:1": ("my card was charged twice", 1)},
        bobs: {"x:2": ("my parcel is late", 2), "x:3": ("same here, bob", 3)},
    }
    for cid, turns in legacy.items():
        await redis.hset(keys.conversation_part(cid, "texts"), mapping={m: t for m, (t, _) in turns.items()})
        await redis.zadd(keys.conversation_part(cid, "inbound"), {m: at for m, (_, at) in turns.items()})
        await store_messages_as_earlier_versions_did(redis, keys, cid)  # bodies and roles apart

    erased = await conversations.EraseCustomer(
        S.EraseCustomerRequest(identity=S.Identity(channel=X, author_id="alice"))
    )

    assert erased.messages == 2  # found in the bodies of her own conversation and of bob's
    for part in ("texts", "inbound", "bodies", "roles"):
        assert not await redis.exists(keys.conversation_part(own, part))
    assert await redis.hgetall(keys.conversation_part(bobs, "texts")) == {b"x:2": b"my parcel is late"}
    assert await redis.zrange(keys.conversation_part(bobs, "inbound"), 0, -1) == [b"x:2"]
    assert list(await redis.hgetall(keys.conversation_part(bobs, "bodies"))) == [b"x:2"]
    assert list(await redis.hgetall(keys.conversation_part(bobs, "roles"))) == [b"x:2"]


async def test_erasure_removes_a_profile_an_earlier_version_stored(suite, redis, keys) -> None:  # noqa: ANN001
    """Earlier versions kept a customer's identities and latest public exchange in keys of their own."""
    conversations, _, _ = suite
    await conversations.Thread(S.ThreadRequest(messages=[message("1", "alice", "my card was charged twice")]))
    c = ConversationKeys(keys).customers
    fields = await redis.hgetall(c.profile("x:alice"))
    await redis.hdel(c.profile("x:alice"), "id:x:alice", "public")
    await redis.sadd(c.legacy_identities("x:alice"), "x:alice", "messenger:alice-fb")
    await redis.set(c.legacy_last_public("x:alice"), fields[b"public"])
    await redis.set(c.identity("messenger:alice-fb"), "x:alice")

    erased = await conversations.EraseCustomer(
        S.EraseCustomerRequest(identity=S.Identity(channel=X, author_id="alice"))
    )
    assert (erased.identities, erased.conversations) == (2, 1)
    left = [key async for key in redis.scan_iter(match=keys.namespaced("person", "{x:alice}") + "*")]
    assert left == []
    assert await redis.exists(c.identity("messenger:alice-fb")) == 0
