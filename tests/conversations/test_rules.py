"""Threading rules: out-of-order chains (held, merged, opened after a timeout), duplicates, public to
private, several people, linked identities, tiers, reopening after the window."""

from __future__ import annotations

from parley.clock import ManualClock
from parley.config import Settings
from parley.conversations.core import Conversations
from parley.conversations.store import conversation_id_for
from parley.events import EventRecord, read_all
from parley.store import Keys, Redis
from parley.v1 import common_pb2, conversations_pb2

from .builders import msg

S = conversations_pb2
OWNER, PARTICIPANT = S.PARTICIPANT_ROLE_OWNER, S.PARTICIPANT_ROLE_PARTICIPANT


async def event_types(redis: Redis, keys: Keys) -> list[str]:
    return [event.type for _, event in await read_all(redis, keys)]


async def listed(core: Conversations) -> list[str]:
    return [s.conversation_id for s in (await core.list())[0]]


async def test_middle_of_a_chain_arriving_last_merges_root_and_leaf(core: Conversations) -> None:
    [root] = await core.thread([msg("r", at=0)])
    [leaf] = await core.thread([msg("l", reply_to="m", at=20)])
    assert leaf.held and leaf.conversation_id != root.conversation_id
    assert await listed(core) == [root.conversation_id]  # a held reply opens nothing yet
    [middle] = await core.thread([msg("m", outbound=True, reply_to="r", at=10)])
    assert middle.conversation_id == root.conversation_id and not middle.held
    conv = await core.get(root.conversation_id)
    assert [m.message.message_id for m in conv.messages] == ["x:r", "x:m", "x:l"]
    assert (await core.get(leaf.conversation_id)).conversation_id == root.conversation_id
    assert await listed(core) == [root.conversation_id]


async def test_chain_arriving_in_reverse_in_one_batch_and_across_batches_is_one_conversation(
    core: Conversations,
) -> None:
    chain = [
        msg("a", at=0),
        msg("b", reply_to="a", at=1),
        msg("c", reply_to="b", at=2),
        msg("d", reply_to="c", at=3),
    ]
    for m in reversed(chain[2:]):
        await core.thread([m])
    results = await core.thread([chain[1], chain[0]])
    conv = await core.get(results[0].conversation_id)
    assert [m.message.message_id for m in conv.messages] == ["x:a", "x:b", "x:c", "x:d"]
    assert conv.conversation_id == conversation_id_for("x:a")


async def test_held_reply_opens_its_conversation_after_the_timeout(
    core: Conversations, clock: ManualClock, settings: Settings, redis: Redis, keys: Keys
) -> None:
    [held] = await core.thread([msg("x", reply_to="gone", at=0)])
    assert held.held and held.conversation_id
    assert await core.sweep_held() == 0
    clock.advance(settings.conversations_held_timeout_seconds - 1)
    assert await core.sweep_held() == 0 and await listed(core) == []
    clock.advance(2)
    assert await core.sweep_held() == 1
    assert await listed(core) == [held.conversation_id]
    assert "conversation.opened" in await event_types(redis, keys)
    assert await core.sweep_held() == 0
    # A parent arriving after all still gathers its reply.
    [parent] = await core.thread([msg("gone", at=-5)])
    conv = await core.get(parent.conversation_id)
    assert [m.message.message_id for m in conv.messages] == ["x:gone", "x:x"]
    assert await listed(core) == [parent.conversation_id]


async def test_outcome_recorded_under_a_held_id_follows_the_merge(core: Conversations) -> None:
    [held] = await core.thread([msg("c", reply_to="p", at=5)])
    [parent] = await core.thread([msg("p", at=0)])
    outcome = S.Outcome(
        conversation_id=held.conversation_id,
        message_id="x:c",
        triage=common_pb2.Triage(message_id="x:c", intent=common_pb2.INTENT_COMPLAINT, topic="billing"),
        routing=common_pb2.RoutingDecision(
            message_id="x:c", action=common_pb2.ROUTE_ACTION_QUEUED, team="care"
        ),
    )
    assert await core.record_outcomes([outcome]) == 1
    conv = await core.get(parent.conversation_id)
    assert conv.state == S.CONVERSATION_STATE_QUEUED and conv.topic == "billing"
    assert conv.messages[1].routing.team == "care"


async def test_duplicates_never_open_a_second_conversation(core: Conversations) -> None:
    first = await core.thread([msg("1"), msg("1"), msg("2", reply_to="1", at=1)])
    again = await core.thread([msg("2", reply_to="1", at=1), msg("1")])
    assert {r.conversation_id for r in first + again} == {conversation_id_for("x:1")}
    [held] = await core.thread([msg("9", reply_to="8", at=9)])
    [held_again] = await core.thread([msg("9", reply_to="8", at=9)])
    assert held_again.conversation_id == held.conversation_id
    await core.thread([msg("8", at=8)])
    await core.thread([msg("9", reply_to="8", at=9), msg("8", at=8)])
    assert sorted(await listed(core)) == sorted([conversation_id_for("x:1"), conversation_id_for("x:8")])


async def test_dm_after_a_public_message_joins_it_marked_private(
    core: Conversations, settings: Settings
) -> None:
    [public] = await core.thread([msg("t1", at=0, text="my card was charged twice")])
    [dm] = await core.thread([msg("d1", thread="dm-1", private=True, at=600, text="here is my order number")])
    assert dm.conversation_id == public.conversation_id and dm.moved_to_private
    [dm2] = await core.thread([msg("d2", thread="dm-1", private=True, at=700)])
    assert dm2.conversation_id == public.conversation_id and not dm2.moved_to_private
    conv = await core.get(public.conversation_id)
    assert conv.moved_to_private and conv.metrics.moved_to_private
    assert [m.message.visibility for m in conv.messages] == [
        common_pb2.VISIBILITY_PUBLIC,
        common_pb2.VISIBILITY_PRIVATE,
        common_pb2.VISIBILITY_PRIVATE,
    ]
    # Outside the window, another customer, or another brand account: a conversation of its own.
    late = settings.conversations_private_window_seconds + 10
    [other] = await core.thread([msg("d3", thread="dm-2", private=True, at=late)])
    [bob] = await core.thread([msg("d4", author="bob", thread="dm-3", private=True, at=800)])
    brand2 = msg("d5", thread="dm-4", private=True, at=800)
    brand2.brand_account_id = "brand-2"
    [elsewhere] = await core.thread([brand2])
    assert (
        len({public.conversation_id, other.conversation_id, bob.conversation_id, elsewhere.conversation_id})
        == 4
    )


async def test_dm_right_after_the_brand_asked_for_it_joins(core: Conversations, settings: Settings) -> None:
    window = settings.conversations_private_window_seconds
    [public] = await core.thread([msg("t1", at=0)])
    await core.thread([msg("b1", outbound=True, reply_to="t1", at=window - 100, text="please DM us")])
    [dm] = await core.thread([msg("d1", thread="dm-1", private=True, at=window + 100)])
    assert dm.conversation_id == public.conversation_id and dm.moved_to_private


async def test_linked_identities_bring_a_messenger_dm_into_the_facebook_conversation(
    core: Conversations,
) -> None:
    comment = msg("c1", author="fb-1", at=0)
    comment.channel, comment.message_id = common_pb2.CHANNEL_FACEBOOK, "facebook:c1"
    [public] = await core.thread([comment])
    dm = msg("m1", author="psid-9", thread="t-9", private=True, at=60, channel=common_pb2.CHANNEL_MESSENGER)
    [unlinked] = await core.thread([dm])
    assert unlinked.conversation_id != public.conversation_id
    person = await core.link_identities("facebook:fb-1", "messenger:psid-9")
    assert person == "facebook:fb-1"
    dm2 = msg(
        "m2", author="psid-9", thread="t-10", private=True, at=120, channel=common_pb2.CHANNEL_MESSENGER
    )
    [linked] = await core.thread([dm2])
    assert linked.conversation_id == public.conversation_id and linked.moved_to_private
    profile = await core.profile("messenger:psid-9")
    assert profile.person_id == person
    assert {(i.channel, i.author_id) for i in profile.identities} == {
        (common_pb2.CHANNEL_FACEBOOK, "fb-1"),
        (common_pb2.CHANNEL_MESSENGER, "psid-9"),
    }
    assert {c.conversation_id for c in profile.conversations} == {
        public.conversation_id,
        unlinked.conversation_id,
    }
    assert await core.link_identities("messenger:psid-9", "facebook:fb-1") == person  # already one customer


async def test_participant_in_the_thread_and_bystander_with_a_new_problem(core: Conversations) -> None:
    [alice] = await core.thread([msg("1", at=0)])
    [bob_reply] = await core.thread([msg("2", author="bob", reply_to="1", at=5)])
    [bob_new] = await core.thread([msg("3", author="bob", at=9, text="and my own order is late")])
    assert bob_reply.conversation_id == alice.conversation_id and bob_reply.role == PARTICIPANT
    assert bob_new.conversation_id != alice.conversation_id and bob_new.role == OWNER
    conv = await core.get(alice.conversation_id)
    assert conv.owner.id == "alice"
    assert {(p.author.id, p.role) for p in conv.participants} == {("alice", OWNER), ("bob", PARTICIPANT)}
    assert (await core.get(bob_new.conversation_id)).owner.id == "bob"


async def test_customer_tier_from_mapping_then_followers_then_default(
    settings: Settings, redis: Redis, keys: Keys, clock: ManualClock, tmp_path
) -> None:
    tiers = tmp_path / "tiers.yaml"
    tiers.write_text("x:alice: platinum\n")
    core = Conversations(
        settings.model_copy(
            update={"conversations_tier_file": tiers, "conversations_tier_thresholds": "vip:1000,gold:100"}
        ),
        redis,
        keys,
        clock,
    )
    famous, known, plain = msg("1", author="carol"), msg("2", author="alice"), msg("3", author="dan")
    famous.author.follower_count, famous.author.verified = 5000, True
    results = await core.thread([famous, known, plain, msg("4", outbound=True, reply_to="1", at=1)])
    assert [r.customer_tier for r in results] == ["vip", "platinum", "standard", ""]
    profile = await core.profile("x:carol")
    assert (profile.follower_count, profile.verified, profile.tier) == (5000, True, "vip")


async def test_customer_back_after_the_reopen_window_gets_a_new_linked_conversation(
    core: Conversations, clock: ManualClock, settings: Settings
) -> None:
    [first] = await core.thread([msg("d1", thread="dm-1", private=True)])
    await core.apply_events(
        [
            ("1-0", EventRecord("conversation.resolved", first.conversation_id, "", clock.now())),
        ]
    )
    clock.advance(settings.conversations_reopen_window_seconds + 1)
    [back] = await core.thread([msg("d2", thread="dm-1", private=True, at=10)])
    assert back.conversation_id != first.conversation_id and back.opened_conversation
    conv = await core.get(back.conversation_id)
    assert conv.previous_conversation_id == first.conversation_id
    assert (await core.get(first.conversation_id)).state == S.CONVERSATION_STATE_RESOLVED
    # The DM thread now leads to the new conversation.
    [more] = await core.thread([msg("d3", thread="dm-1", private=True, at=20)])
    assert more.conversation_id == back.conversation_id
    past = (await core.profile("x:alice")).conversations
    assert [c.conversation_id for c in past] == [back.conversation_id, first.conversation_id]
