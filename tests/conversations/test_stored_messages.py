"""How a conversation's messages are stored: one hash entry each (`turns`: its role and body). Conversations
stored by earlier versions keep bodies and roles in two hashes; reads, context, merges and erasure still
reach them, and messages threaded into them since are stored the new way beside them."""

from __future__ import annotations

from parley.conversations.core import Conversations
from parley.conversations.store import ConversationKeys
from parley.store import Keys, Redis, unpack_turn
from parley.v1 import conversations_pb2

from .builders import msg, store_messages_as_earlier_versions_did

S = conversations_pb2
OWNER, BRAND = S.PARTICIPANT_ROLE_OWNER, S.PARTICIPANT_ROLE_BRAND


async def conversation_keys(redis: Redis, keys: Keys, cid: str) -> set[str]:
    pattern = keys.conversation(cid).replace("{", "[{]").replace("}", "[}]")
    return {key.decode() async for key in redis.scan_iter(match=pattern + "*")}


async def test_a_message_is_one_entry_holding_its_role_and_body(
    core: Conversations, redis: Redis, keys: Keys
) -> None:
    [first] = await core.thread([msg("1", text="my card was charged twice")])
    await core.thread([msg("2", outbound=True, reply_to="1", at=5, text="sorry, please DM us")])
    cid, k = first.conversation_id, ConversationKeys(keys)
    assert await conversation_keys(redis, keys, cid) == {
        k.meta(cid),
        k.messages(cid),
        k.turns(cid),
        k.transitions(cid),
    }
    stored = {mid: unpack_turn(v) for mid, v in (await redis.hgetall(k.turns(cid))).items()}
    assert {mid: role for mid, (role, _) in stored.items()} == {b"x:1": OWNER, b"x:2": BRAND}
    assert msg("1", text="my card was charged twice").SerializeToString() == stored[b"x:1"][1]


async def test_a_conversation_an_earlier_version_stored_is_read_continued_and_merged(
    core: Conversations, redis: Redis, keys: Keys
) -> None:
    await core.thread(
        [
            msg("1", text="t1"),
            msg("2", outbound=True, reply_to="1", at=1, text="brand"),
            msg("3", reply_to="2", at=2, text="t3"),
        ]
    )
    [leaf] = await core.thread([msg("6", reply_to="5", at=6, text="t6")])  # held: its parent is unknown
    [first] = await core.thread([msg("1", text="t1")])
    cid = first.conversation_id
    for stored in (cid, leaf.conversation_id):
        await store_messages_as_earlier_versions_did(redis, keys, stored)

    conv = await core.get(cid)
    assert [(m.message.text, m.role) for m in conv.messages] == [
        ("t1", OWNER),
        ("brand", BRAND),
        ("t3", OWNER),
    ]
    # The classifier's context reads the customer turns stored the old way, and skips the brand's.
    [reply] = await core.thread([msg("4", reply_to="3", at=4, text="t4")])
    assert list(reply.context) == ["t1", "t3"]
    # The parent of the held reply arrives: the held conversation, stored the old way, merges in.
    [parent] = await core.thread([msg("5", reply_to="4", at=5, text="t5")])
    assert parent.conversation_id == cid
    conv = await core.get(cid)
    assert [m.message.text for m in conv.messages] == ["t1", "brand", "t3", "t4", "t5", "t6"]
    assert [m.role for m in conv.messages] == [OWNER, BRAND, OWNER, OWNER, OWNER, OWNER]
    assert (await core.thread([msg("7", reply_to="6", at=7)]))[0].context[-3:] == ["t4", "t5", "t6"]
