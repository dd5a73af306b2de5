"""Threading rules: reply chains, platform threads, idempotency under retries and races, roles, context."""

from __future__ import annotations

import asyncio

from parley.config import Settings
from parley.conversations.core import Conversations
from parley.conversations.store import conversation_id_for
from parley.events import EventRecord, read_all
from parley.store import Keys, Redis, connect
from parley.v1 import conversations_pb2

from .builders import msg

OWNER = conversations_pb2.PARTICIPANT_ROLE_OWNER
PARTICIPANT = conversations_pb2.PARTICIPANT_ROLE_PARTICIPANT
BRAND = conversations_pb2.PARTICIPANT_ROLE_BRAND


async def events(redis: Redis, keys: Keys, kind: str) -> list[EventRecord]:
    return [event for _, event in await read_all(redis, keys) if event.type == kind]


async def test_reply_chain_within_one_batch(core: Conversations) -> None:
    results = await core.thread([msg("1"), msg("2", reply_to="1", at=1), msg("3", reply_to="2", at=2)])
    cids = {r.conversation_id for r in results}
    assert cids == {conversation_id_for("x:1")}
    assert [r.opened_conversation for r in results] == [True, False, False]
    assert all(r.state == conversations_pb2.CONVERSATION_STATE_NEW for r in results)


async def test_reply_chain_across_batches(core: Conversations) -> None:
    [first] = await core.thread([msg("1")])
    [second] = await core.thread([msg("2", reply_to="1", at=5)])
    [third] = await core.thread([msg("3", reply_to="2", at=9)])
    assert second.conversation_id == third.conversation_id == first.conversation_id
    assert not second.opened_conversation
    conv = await core.get(first.conversation_id)
    assert [m.message.message_id for m in conv.messages] == ["x:1", "x:2", "x:3"]


async def test_reply_finds_parent_listed_later_in_the_batch(core: Conversations) -> None:
    # Batches are placed in sent order, so a parent listed after its reply still opens the conversation.
    reply, parent = await core.thread([msg("2", reply_to="1", at=1), msg("1")])
    assert reply.conversation_id == parent.conversation_id == conversation_id_for("x:1")
    assert (parent.opened_conversation, reply.opened_conversation) == (True, False)


async def test_unknown_parent_opens_new_conversation(core: Conversations) -> None:
    [result] = await core.thread([msg("9", reply_to="never-seen")])
    assert result.opened_conversation
    assert result.conversation_id == conversation_id_for("x:9")


async def test_platform_thread_joins_open_conversation(core: Conversations) -> None:
    a, b = await core.thread(
        [msg("d1", thread="dm-7", private=True), msg("d2", thread="dm-7", private=True, at=1)]
    )
    [c] = await core.thread([msg("d3", thread="dm-7", private=True, at=2)])
    [other] = await core.thread([msg("d4", thread="dm-8", private=True, at=3)])
    assert a.conversation_id == b.conversation_id == c.conversation_id
    assert other.conversation_id != a.conversation_id
    assert [r.opened_conversation for r in (a, b, c, other)] == [True, False, False, True]


async def test_same_thread_id_on_another_channel_is_another_conversation(core: Conversations) -> None:
    from parley.v1 import common_pb2

    x, m = await core.thread(
        [msg("d1", thread="t"), msg("d1", thread="t", channel=common_pb2.CHANNEL_MESSENGER)]
    )
    assert x.conversation_id != m.conversation_id


async def test_rethread_is_idempotent(core: Conversations, redis: Redis, keys: Keys) -> None:
    batch = [
        msg("1"),
        msg("2", reply_to="1", author="bob", at=1),
        msg("3", outbound=True, reply_to="1", at=2),
    ]
    first = await core.thread(batch)
    again = await core.thread(batch)
    assert again == first
    assert (await core.thread([batch[1]]))[0] == first[1]
    conv = await core.get(first[0].conversation_id)
    assert len(conv.messages) == 3
    assert len(await events(redis, keys, "conversation.opened")) == 1
    assert len(await events(redis, keys, "message.threaded")) == 3
    summaries, _ = await core.list()
    assert [s.conversation_id for s in summaries] == [first[0].conversation_id]


async def test_duplicate_in_one_batch_gets_the_same_result(core: Conversations) -> None:
    a, b = await core.thread([msg("1"), msg("1")])
    assert a == b
    assert len((await core.get(a.conversation_id)).messages) == 1


async def test_concurrent_thread_of_same_message_makes_one_conversation(
    settings: Settings, redis: Redis, keys: Keys, core: Conversations
) -> None:
    other_client = connect(settings)
    try:
        other = Conversations(settings, other_client, keys, core.clock)
        results = await asyncio.gather(
            core.thread([msg("1"), msg("2", reply_to="1", at=1)]),
            other.thread([msg("1"), msg("2", reply_to="1", at=1)]),
        )
    finally:
        await other_client.aclose()
    cids = {r.conversation_id for batch in results for r in batch}
    assert cids == {conversation_id_for("x:1")}
    assert len((await core.get(conversation_id_for("x:1"))).messages) == 2
    assert len(await events(redis, keys, "conversation.opened")) == 1
    assert len(await events(redis, keys, "message.threaded")) == 2


async def test_concurrent_new_messages_on_one_platform_thread_share_a_conversation(
    settings: Settings, redis: Redis, keys: Keys, core: Conversations
) -> None:
    other_client = connect(settings)
    try:
        other = Conversations(settings, other_client, keys, core.clock)
        [a], [b] = await asyncio.gather(
            core.thread([msg("d1", thread="dm-1", private=True)]),
            other.thread([msg("d2", thread="dm-1", private=True, at=1)]),
        )
    finally:
        await other_client.aclose()
    assert a.conversation_id == b.conversation_id
    assert [a.opened_conversation, b.opened_conversation].count(True) == 1
    conv = await core.get(a.conversation_id)
    assert [m.message.message_id for m in conv.messages] == ["x:d1", "x:d2"]
    # The loser's own conversation was never written.
    loser = "x:d2" if a.opened_conversation else "x:d1"
    assert not await redis.exists(keys.conversation(conversation_id_for(loser)))


async def test_roles(core: Conversations) -> None:
    results = await core.thread(
        [
            msg("1", author="alice"),
            msg("2", author="bob", reply_to="1", at=1),
            msg("3", outbound=True, reply_to="2", at=2),
            msg("4", author="alice", reply_to="3", at=3),
        ]
    )
    assert [r.role for r in results] == [OWNER, PARTICIPANT, BRAND, OWNER]
    [later] = await core.thread([msg("5", author="bob", reply_to="4", at=4)])
    assert later.role == PARTICIPANT
    conv = await core.get(results[0].conversation_id)
    assert conv.owner.id == "alice"
    assert [(p.author.id, p.role) for p in conv.participants] == [
        ("alice", OWNER),
        ("bob", PARTICIPANT),
        ("brand-1", BRAND),
    ]


async def test_brand_opened_conversation_is_owned_by_first_customer(core: Conversations) -> None:
    brand, customer = await core.thread(
        [msg("1", outbound=True, thread="dm"), msg("2", author="carol", thread="dm", at=1)]
    )
    assert (brand.role, customer.role) == (BRAND, OWNER)
    assert (await core.get(brand.conversation_id)).owner.id == "carol"


async def test_context_is_last_five_customer_turns_oldest_first(core: Conversations) -> None:
    await core.thread([msg("1", text="t1"), msg("2", text="t2", reply_to="1", at=1)])
    await core.thread([msg("3", outbound=True, text="brand", reply_to="2", at=2)])
    await core.thread([msg(str(i), text=f"t{i}", reply_to=str(i - 1), at=i) for i in range(4, 7)])
    batch = await core.thread(
        [msg("7", text="t7", reply_to="6", at=7), msg("8", text="t8", reply_to="7", at=8)]
    )
    assert list(batch[0].context) == ["t1", "t2", "t4", "t5", "t6"]
    assert list(batch[1].context) == ["t2", "t4", "t5", "t6", "t7"]
    # A re-thread sees the same context as the first time.
    assert list((await core.thread([msg("7", text="t7", reply_to="6", at=7)]))[0].context) == list(
        batch[0].context
    )


async def test_context_looks_past_any_number_of_brand_turns(core: Conversations) -> None:
    await core.thread([msg("1", text="t1"), msg("2", text="t2", reply_to="1", at=1)])
    brand = [msg(str(i), outbound=True, text=f"b{i}", reply_to=str(i - 1), at=i) for i in range(3, 20)]
    await core.thread(brand)
    [last] = await core.thread([msg("20", text="t20", reply_to="19", at=20)])
    assert list(last.context) == ["t1", "t2"]


async def test_first_message_has_no_context(core: Conversations) -> None:
    [result] = await core.thread([msg("1")])
    assert list(result.context) == []


async def test_messages_kept_in_sent_order(core: Conversations) -> None:
    # Arrives late but was sent earlier: the thread shows time order.
    await core.thread([msg("1", at=0), msg("3", reply_to="1", at=30)])
    await core.thread([msg("2", reply_to="1", at=10)])
    conv = await core.get(conversation_id_for("x:1"))
    assert [m.message.message_id for m in conv.messages] == ["x:1", "x:2", "x:3"]


async def test_moved_to_private(core: Conversations) -> None:
    await core.thread([msg("1"), msg("2", reply_to="1", private=True, at=1)])
    assert (await core.get(conversation_id_for("x:1"))).moved_to_private
    await core.thread([msg("9")])
    assert not (await core.get(conversation_id_for("x:9"))).moved_to_private


async def test_parent_arriving_after_its_replies_gathers_them_into_its_conversation(
    core: Conversations,
) -> None:
    # Brand reply b1 and customer reply c2 arrive before the customer's root tweet c1.
    [c2] = await core.thread([msg("c2", reply_to="b1", at=20)])
    [b1] = await core.thread([msg("b1", outbound=True, reply_to="c1", at=10)])
    [c1] = await core.thread([msg("c1", at=0)])
    assert c2.held and b1.held and not c1.held
    assert c1.opened_conversation and c1.conversation_id == conversation_id_for("x:c1")
    conv = await core.get(c1.conversation_id)
    assert [m.message.message_id for m in conv.messages] == ["x:c1", "x:b1", "x:c2"]
    # The ids handed out while they were held still lead to the conversation.
    assert (await core.get(c2.conversation_id)).conversation_id == c1.conversation_id
    assert (await core.get(b1.conversation_id)).conversation_id == c1.conversation_id


async def test_replies_to_the_same_missing_parent_share_a_conversation(core: Conversations) -> None:
    [a] = await core.thread([msg("r1", reply_to="p", at=10)])
    [b] = await core.thread([msg("r2", reply_to="p", author="bob", at=11)])
    assert a.conversation_id == b.conversation_id and a.held and b.held
    assert b.role == PARTICIPANT
    [p] = await core.thread([msg("p", at=0)])
    conv = await core.get(p.conversation_id)
    assert [m.message.message_id for m in conv.messages] == ["x:p", "x:r1", "x:r2"]
    assert [m.role for m in conv.messages] == [OWNER, OWNER, PARTICIPANT]


async def test_rethread_repairs_a_claim_whose_writes_were_lost(
    core: Conversations, redis: Redis, keys: Keys
) -> None:
    # As if a caller died between claiming the message and writing its conversation.
    cid = conversation_id_for("x:1")
    await redis.set(keys.message_index("x:1"), cid)
    [result] = await core.thread([msg("1")])
    assert result.conversation_id == cid
    conv = await core.get(cid)
    assert [m.message.message_id for m in conv.messages] == ["x:1"]
    assert conv.owner.id == "alice"
    summaries, _ = await core.list()
    assert [s.conversation_id for s in summaries] == [cid]


async def test_a_reply_to_the_brand_carries_the_brand_message_for_the_classifier(core: Conversations) -> None:
    ask = "Sorry! Please DM us your order number."
    same_batch = await core.thread(
        [
            msg("1", text="my order is late"),
            msg("2", at=60, reply_to="1", outbound=True, text=ask),
            msg("3", at=120, reply_to="2", text="done"),
        ]
    )
    assert [r.brand_reply for r in same_batch] == ["", "", ask]
    # Across batches the brand message is read back from the store; a reply to a customer carries nothing.
    later = await core.thread(
        [msg("4", at=180, reply_to="2", text="sent it"), msg("5", at=200, reply_to="3")]
    )
    assert [r.brand_reply for r in later] == [ask, ""]
