"""The threading decision (parley.conversations.threading) on snapshots built by hand: every rule without
Redis. The tests beside this one run the same rules through the store."""

from __future__ import annotations

from parley.conversations.store import conversation_id_for
from parley.conversations.threading import (
    ROLE_BRAND,
    ROLE_OWNER,
    ROLE_PARTICIPANT,
    Claims,
    Placement,
    Plan,
    PublicExchange,
    Record,
    Rules,
    Snapshot,
    ThreadRef,
    assign_roles,
    brand_replies,
    decide,
    follow,
    owner_roles,
    reopen_late,
    settle,
    stored_parents,
    to_read,
)
from parley.v1 import common_pb2, conversations_pb2

from .builders import BRAND, T0, msg

X = common_pb2.CHANNEL_X
NOW = T0 + 100
RULES = Rules(private_window_seconds=600, reopen_window_seconds=3600)
RESOLVED = conversations_pb2.CONVERSATION_STATE_RESOLVED
ASSIGNED = conversations_pb2.CONVERSATION_STATE_ASSIGNED


def cid(pid: str) -> str:
    """The id of the conversation message `pid` (on X) opens."""
    return conversation_id_for(f"x:{pid}")


def where(plan: Plan) -> dict[str, str]:
    return {mid: p.conversation_id for mid, p in plan.placed.items()}


# ---- reply chains -----------------------------------------------------------------------------------------


def test_a_reply_to_a_stored_parent_joins_its_conversation() -> None:
    snapshot = Snapshot(NOW, conversation_of={"x:1": "cv-stored"})
    plan = decide(snapshot, [msg("2", reply_to="1", at=5)], RULES)
    [p] = plan.order
    assert (p.conversation_id, p.new_conversation, p.held, p.existing) == ("cv-stored", False, False, False)
    assert plan.opened == set() and plan.awaiting == {} and plan.merges == {}


def test_a_reply_listed_before_its_parent_in_the_batch_joins_it() -> None:
    plan = decide(
        Snapshot(NOW), [msg("3", reply_to="2", at=2), msg("2", reply_to="1", at=1), msg("1")], RULES
    )
    assert where(plan) == {"x:1": cid("1"), "x:2": cid("1"), "x:3": cid("1")}
    assert [p.message.message_id for p in plan.order] == ["x:3", "x:2", "x:1"]  # results in batch order
    assert plan.placed["x:1"].new_conversation and not plan.placed["x:2"].new_conversation
    assert plan.opened == {cid("1")}


def test_a_message_threaded_before_keeps_its_conversation_and_a_duplicate_is_placed_once() -> None:
    snapshot = Snapshot(NOW, conversation_of={"x:1": "cv-earlier"})
    plan = decide(snapshot, [msg("1"), msg("1")], RULES)
    [p, again] = plan.order
    assert p is again and p.existing and p.conversation_id == "cv-earlier"
    assert plan.fresh() == []


def test_a_reply_to_an_unknown_parent_opens_a_held_conversation_that_waits_for_it() -> None:
    plan = decide(Snapshot(NOW), [msg("r", reply_to="p", at=3)], RULES)
    [p] = plan.order
    assert (p.conversation_id, p.new_conversation, p.held) == (cid("r"), True, True)
    assert plan.awaiting == {"x:p": cid("r")}


def test_replies_to_the_same_unknown_parent_share_the_first_ones_conversation() -> None:
    in_batch = decide(Snapshot(NOW), [msg("a", reply_to="p", at=1), msg("b", reply_to="p", at=2)], RULES)
    assert where(in_batch) == {"x:a": cid("a"), "x:b": cid("a")}
    assert in_batch.awaiting == {"x:p": cid("a")}
    # The first reply was stored by an earlier batch: a later one joins its held conversation.
    stored = decide(Snapshot(NOW, awaiting={"x:p": "cv-held"}), [msg("c", reply_to="p", at=3)], RULES)
    assert where(stored) == {"x:c": "cv-held"} and stored.opened == set()


def test_a_parent_arriving_after_its_stored_replies_merges_their_conversation_into_its_own() -> None:
    plan = decide(Snapshot(NOW, awaiting={"x:p": "cv-held"}), [msg("p")], RULES)
    assert where(plan) == {"x:p": cid("p")}
    assert plan.merges == {"cv-held": cid("p")}


def test_a_parent_later_in_the_same_batch_takes_its_replies_without_a_merge() -> None:
    # The reply's clock ran ahead: it is placed first, opens a held conversation, then its parent arrives.
    plan = decide(Snapshot(NOW), [msg("p", at=5), msg("r", reply_to="p", at=1)], RULES)
    assert where(plan) == {"x:r": cid("p"), "x:p": cid("p")}
    assert not plan.placed["x:r"].held and not plan.placed["x:r"].new_conversation
    assert plan.merges == {} and plan.awaiting == {} and plan.opened == {cid("p")}


# ---- platform threads -------------------------------------------------------------------------------------


def test_a_dm_joins_its_stored_platform_thread() -> None:
    thread = ThreadRef(X, BRAND, "dm-7")
    plan = decide(Snapshot(NOW, threads={thread: "cv-dm"}), [msg("d2", thread="dm-7", private=True)], RULES)
    assert where(plan) == {"x:d2": "cv-dm"} and plan.threads == {}


def test_dms_of_a_new_thread_share_the_conversation_the_first_opens() -> None:
    dms = [msg("d1", thread="dm-7", private=True), msg("d2", thread="dm-7", private=True, at=1)]
    plan = decide(Snapshot(NOW), [*dms, msg("d3", thread="dm-8", private=True, at=2)], RULES)
    assert where(plan) == {"x:d1": cid("d1"), "x:d2": cid("d1"), "x:d3": cid("d3")}
    assert plan.threads == {ThreadRef(X, BRAND, "dm-7"): cid("d1"), ThreadRef(X, BRAND, "dm-8"): cid("d3")}
    assert plan.placed["x:d1"].thread == ThreadRef(X, BRAND, "dm-7")


def test_the_same_thread_id_under_another_brand_account_is_another_thread() -> None:
    other = msg("d2", thread="dm-7", private=True)
    other.brand_account_id = "brand-2"
    plan = decide(Snapshot(NOW, threads={ThreadRef(X, BRAND, "dm-7"): "cv-dm"}), [other], RULES)
    assert where(plan) == {"x:d2": cid("d2")}


def test_a_reply_chain_wins_over_a_platform_thread() -> None:
    snapshot = Snapshot(NOW, conversation_of={"x:1": "cv-chain"}, threads={ThreadRef(X, BRAND, "t"): "cv-t"})
    plan = decide(snapshot, [msg("2", reply_to="1", thread="t")], RULES)
    assert where(plan) == {"x:2": "cv-chain"}


# ---- public to private ------------------------------------------------------------------------------------


def dm(at: float = 50, author: str = "alice") -> common_pb2.InboundMessage:
    return msg("dm", author=author, at=at, private=True)


def public(**fields: object) -> dict[str, PublicExchange]:
    exchange = {"conversation_id": "cv-public", "at": T0 + 10, "state": ASSIGNED, "brand_account_id": BRAND}
    exchange.update(fields)
    return {"x:alice": PublicExchange(**exchange)}  # type: ignore[arg-type]


def test_a_dm_within_the_window_continues_the_customers_open_public_conversation() -> None:
    plan = decide(Snapshot(NOW, last_public=public()), [dm(at=50)], RULES)
    assert where(plan) == {"x:dm": "cv-public"} and plan.opened == set()


def test_a_dm_continues_a_public_conversation_of_another_identity_of_the_same_person() -> None:
    snapshot = Snapshot(NOW, persons={"x:alt": "x:alice"}, last_public=public())
    plan = decide(snapshot, [dm(author="alt")], RULES)
    assert where(plan) == {"x:dm": "cv-public"}
    assert plan.placed["x:dm"].person == "x:alice"


def test_a_dm_opens_its_own_conversation_when_the_public_one_does_not_fit() -> None:
    cases = {
        "too late": (public(), dm(at=10 + RULES.private_window_seconds + 1)),
        "before the exchange": (public(), dm(at=5)),
        "another brand account": (public(brand_account_id="brand-2"), dm()),
        "resolved": (public(state=RESOLVED), dm()),
        "merged away": (public(merged=True), dm()),
        "someone else's": (public(), dm(author="bob")),
    }
    for case, (last_public, message) in cases.items():
        plan = decide(Snapshot(NOW, last_public=last_public), [message], RULES)
        assert where(plan) == {"x:dm": cid("dm")}, case


def test_a_public_message_never_joins_by_the_private_rule() -> None:
    message = msg("pub", at=50)
    plan = decide(Snapshot(NOW, last_public=public()), [message], RULES)
    assert where(plan) == {"x:pub": cid("pub")}


def test_a_dm_continuing_a_public_conversation_claims_its_platform_thread_for_it() -> None:
    message = msg("dm", at=50, private=True, thread="dm-1")
    plan = decide(Snapshot(NOW, last_public=public()), [message], RULES)
    assert where(plan) == {"x:dm": "cv-public"}
    assert plan.threads == {ThreadRef(X, BRAND, "dm-1"): "cv-public"}


# ---- races settled by the claims --------------------------------------------------------------------------


def test_a_message_another_caller_threaded_first_stays_where_that_caller_put_it() -> None:
    snapshot = Snapshot(NOW)
    plan = decide(snapshot, [msg("1"), msg("2", reply_to="1", at=1)], RULES)
    claims = Claims(messages={"x:1": ("cv-other", ""), "x:2": ("", "")})
    settle(plan, snapshot, claims)
    # The reply follows its parent to the winning conversation; its own claimed index is rewritten.
    assert where(plan) == {"x:1": "cv-other", "x:2": "cv-other"}
    assert plan.placed["x:1"].existing and not plan.placed["x:1"].claimed
    assert plan.placed["x:2"].claimed and plan.overwrite == [plan.placed["x:2"]]


def test_a_thread_another_caller_opened_first_is_joined() -> None:
    snapshot = Snapshot(NOW)
    plan = decide(snapshot, [msg("d1", thread="dm-7", private=True)], RULES)
    settle(
        plan, snapshot, Claims(threads={ThreadRef(X, BRAND, "dm-7"): "cv-won"}, messages={"x:d1": ("", "")})
    )
    assert where(plan) == {"x:d1": "cv-won"}
    assert not plan.placed["x:d1"].new_conversation and plan.overwrite == [plan.placed["x:d1"]]


def test_a_parent_threaded_while_its_reply_registered_its_wait_is_joined() -> None:
    snapshot = Snapshot(NOW)
    plan = decide(snapshot, [msg("r", reply_to="p")], RULES)
    settle(plan, snapshot, Claims(messages={"x:r": ("", "")}, parents={"x:p": "cv-parent"}))
    assert where(plan) == {"x:r": "cv-parent"}


def test_a_reply_that_started_waiting_after_the_snapshot_is_merged_in() -> None:
    snapshot = Snapshot(NOW)
    plan = decide(snapshot, [msg("p")], RULES)
    settle(plan, snapshot, Claims(messages={"x:p": ("", "cv-late-reply")}))
    assert plan.waited == {"x:p": "cv-late-reply"}
    assert plan.merges == {"cv-late-reply": cid("p")}


def test_a_merge_follows_its_target_when_that_lost_a_race() -> None:
    snapshot = Snapshot(NOW, awaiting={"x:p": "cv-held"})
    plan = decide(snapshot, [msg("p")], RULES)
    settle(plan, snapshot, Claims(messages={"x:p": ("cv-winner", "")}))
    assert plan.merges == {"cv-held": "cv-winner"}
    # ... and one whose target is itself is dropped.
    plan = decide(snapshot, [msg("p")], RULES)
    settle(plan, snapshot, Claims(messages={"x:p": ("cv-held", "")}))
    assert plan.merges == {}


# ---- stored conversations ---------------------------------------------------------------------------------


def test_placements_follow_a_stored_conversation_that_was_merged_away() -> None:
    snapshot = Snapshot(NOW, conversation_of={"x:1": "cv-old"})
    plan = decide(snapshot, [msg("2", reply_to="1")], RULES)
    settle(plan, snapshot, Claims(messages={"x:2": ("", "")}))
    assert to_read(plan, {}) == ["cv-old"]
    follow(plan, {"cv-old": "cv-new"})
    assert where(plan) == {"x:2": "cv-new"} and plan.overwrite == [plan.placed["x:2"]]
    assert to_read(plan, {"cv-new": Record()}) == []


def resolved(resolved_at: float, owner: str = "alice") -> dict[str, Record]:
    return {"cv-done": Record(owner=owner, state=RESOLVED, resolved_at=resolved_at)}


def placed_in_done(*messages: common_pb2.InboundMessage) -> Plan:
    snapshot = Snapshot(NOW, conversation_of={"x:0": "cv-done"})
    plan = decide(snapshot, list(messages), RULES)
    settle(plan, snapshot, Claims(messages={m.message_id: ("", "") for m in messages}))
    return plan


def test_the_owner_back_after_the_reopen_window_opens_a_new_conversation_linked_to_the_old() -> None:
    plan = placed_in_done(msg("1", reply_to="0", at=50), msg("2", reply_to="0", at=60))
    reopen_late(plan, resolved(NOW - RULES.reopen_window_seconds - 1), RULES, NOW)
    first, second = plan.placed["x:1"], plan.placed["x:2"]
    assert (first.conversation_id, first.new_conversation, first.previous) == (cid("1"), True, "cv-done")
    assert (second.conversation_id, second.new_conversation) == (cid("1"), False)
    assert plan.overwrite == [first, second]


def test_within_the_window_or_from_someone_else_the_resolved_conversation_is_joined() -> None:
    plan = placed_in_done(msg("1", reply_to="0", at=50))
    reopen_late(plan, resolved(NOW - 10), RULES, NOW)  # thread.lua reopens it
    assert where(plan) == {"x:1": "cv-done"}
    plan = placed_in_done(msg("1", reply_to="0", at=50, author="bob"))
    reopen_late(plan, resolved(NOW - RULES.reopen_window_seconds - 1), RULES, NOW)
    assert where(plan) == {"x:1": "cv-done"}
    plan = placed_in_done(msg("1", reply_to="0", at=50, outbound=True))
    reopen_late(plan, resolved(NOW - RULES.reopen_window_seconds - 1, owner=BRAND), RULES, NOW)
    assert where(plan) == {"x:1": "cv-done"}


# ---- roles, context, brand replies ------------------------------------------------------------------------


def test_roles_owner_first_customer_participants_and_the_brand() -> None:
    batch = [
        msg("1", author="alice", text="my order is late"),
        msg("2", outbound=True, reply_to="1", at=1, text="please DM us"),
        msg("3", author="bob", reply_to="1", at=2, text="same here"),
        msg("4", author="alice", reply_to="2", at=3, text="done"),
    ]
    plan = decide(Snapshot(NOW), batch, RULES)
    assign_roles(plan, {}, {}, RULES, NOW)
    roles = {mid: p.role for mid, p in plan.placed.items()}
    assert roles == {"x:1": ROLE_OWNER, "x:2": ROLE_BRAND, "x:3": ROLE_PARTICIPANT, "x:4": ROLE_OWNER}
    # Context: the customer turns before each message, not the brand's.
    assert plan.placed["x:4"].context == ["my order is late", "same here"]
    assert plan.placed["x:1"].context == []


def test_a_stored_conversation_keeps_its_owner_and_its_history_leads_the_context() -> None:
    snapshot = Snapshot(NOW, conversation_of={"x:0": "cv-a"})
    plan = decide(snapshot, [msg("5", author="bob", reply_to="0", at=5, text="me too")], RULES)
    history = {"cv-a": [f"turn {i}" for i in range(6)]}
    assign_roles(plan, {"cv-a": Record(owner="alice")}, history, RULES, NOW)
    p = plan.placed["x:5"]
    assert p.role == ROLE_PARTICIPANT
    assert p.context == [f"turn {i}" for i in range(1, 6)]  # the last context_turns


def test_roles_of_messages_merged_into_a_conversation() -> None:
    moved = [Placement(m, "cv", existing=True) for m in (msg("a", author="carol"), msg("b", outbound=True))]
    owner_roles(moved, "alice")
    assert [p.role for p in moved] == [ROLE_PARTICIPANT, ROLE_BRAND]
    owner_roles(moved, "")
    assert [p.role for p in moved] == [ROLE_OWNER, ROLE_BRAND]


def test_a_customer_answering_the_brand_carries_the_brand_messages_text() -> None:
    batch = [
        msg("b1", outbound=True, text="please DM us your order number"),
        msg("c1", reply_to="b1", at=1, text="here it is"),
        msg("c2", reply_to="c1", at=2),  # answers a customer: nothing
        msg("c3", reply_to="stored-brand", at=3),
        msg("c4", reply_to="stored-customer", at=4),
    ]
    snapshot = Snapshot(NOW, conversation_of={"x:stored-brand": "cv-s", "x:stored-customer": "cv-s"})
    plan = decide(snapshot, batch, RULES)
    assert stored_parents(plan, snapshot) == {"x:stored-brand": "cv-s", "x:stored-customer": "cv-s"}
    stored = {
        "x:stored-brand": msg("stored-brand", outbound=True, text="sorry about that"),
        "x:stored-customer": msg("stored-customer", text="hello?"),
    }
    assert brand_replies(plan, stored) == {
        "x:c1": "please DM us your order number",
        "x:c3": "sorry about that",
    }
