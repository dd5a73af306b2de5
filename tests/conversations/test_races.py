"""Two callers threading at the same moment (two pipeline workers): the reply chains still decide the
grouping, and nothing is written into a conversation that was merged away."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from parley import events
from parley.clock import ManualClock
from parley.config import Settings
from parley.conversations.core import Conversations
from parley.conversations.merging import REUNITE_AFTER_SECONDS, Merges
from parley.conversations.store import conversation_id_for
from parley.events import EventRecord
from parley.rpc import Aborted
from parley.store import Keys, Redis

from .builders import T0, msg

PAIRS = 40


async def test_a_reply_and_its_parent_threaded_at_once_share_one_conversation(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    # Two workers: one threads the parents, the other their replies, at the same moment.
    first = Conversations(settings, redis, keys, ManualClock(T0))
    second = Conversations(settings, redis, keys, ManualClock(T0))
    parents = [msg(f"p{i}", author=f"u{i}", at=i) for i in range(PAIRS)]
    replies = [msg(f"r{i}", author=f"u{i}", reply_to=f"p{i}", at=i + 0.5) for i in range(PAIRS)]
    await asyncio.gather(first.thread(parents), second.thread(replies))

    split = []
    for i in range(PAIRS):
        parent = await first.get(conversation_id_for(f"x:p{i}"))
        ids = [m.message.message_id for m in parent.messages]
        if ids != [f"x:p{i}", f"x:r{i}"]:
            split.append((i, ids))
    assert split == []
    # Nothing is left held: the sweep has no second conversation to open for any reply.
    first.clock.advance(settings.conversations_held_timeout_seconds + 1)
    assert await first.sweep_held() == 0


async def test_a_thread_racing_a_merge_never_writes_into_the_merged_record(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    # Replies wait in a held conversation for a parent; the parent arrives (merging the held one into its
    # own) while more replies to the same parent are threaded by another worker.
    early = [msg(f"e{i}", author=f"u{i}", reply_to="p", at=10 + i) for i in range(5)]
    core = Conversations(settings, redis, keys, ManualClock(T0))
    await core.thread(early)
    other = Conversations(settings, redis, keys, ManualClock(T0))
    late = [msg(f"l{i}", author=f"v{i}", reply_to=f"e{i}", at=30 + i) for i in range(5)]
    await asyncio.gather(core.thread([msg("p", at=0)]), other.thread(late))

    conv = await core.get(conversation_id_for("x:p"))
    ids = sorted(m.message.message_id for m in conv.messages)
    assert ids == sorted(["x:p", *(m.message_id for m in early), *(m.message_id for m in late)])
    held = conversation_id_for("x:e0")
    # The merged-away record is a bare pointer: no message of the late replies went into it.
    assert await redis.exists(*core.keys.parts(held)) == 0


async def test_a_reply_claimed_by_a_killed_worker_before_a_merge_is_indexed_where_it_went(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    # A reply waits for its parent in a held conversation. A worker claims a second reply for the held
    # conversation and is killed before writing it; the parent arrives and the held conversation merges into
    # the parent's; then the killed worker's batch is threaded again.
    core = Conversations(settings, redis, keys, ManualClock(T0))
    await core.thread([msg("e0", author="u0", reply_to="p", at=10)])
    held = conversation_id_for("x:e0")
    late = msg("l0", author="v0", reply_to="e0", at=30)
    await redis.set(core.keys.message_index(late.message_id), held)  # the killed worker's claim
    await core.thread([msg("p", at=0)])

    [result] = await core.thread([late])

    parent = conversation_id_for("x:p")
    assert result.conversation_id == parent
    assert (await redis.get(core.keys.message_index(late.message_id))).decode() == parent


async def test_a_merge_is_announced_before_the_merged_conversation_is_retired_and_once(
    settings: Settings, redis: Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The router learns of a merge from its event alone: one that a failover took back after the retirement
    # was never written again. Seen at each replica wait, with the first retirement losing a race (the pass
    # is made again, and the event is not).
    core = Conversations(settings, redis, keys, ManualClock(T0))
    [reply] = await core.thread([msg("r", author="bob", reply_to="p", at=5)])
    merges = core.threader.merges
    seen = []

    async def confirm() -> int:
        retired = await redis.hget(core.keys.meta(reply.conversation_id), "merged_into")
        announced = [e for _, e in await events.read_all(redis, keys) if e.type == "conversation.merged"]
        seen.append((retired is not None, len(announced)))
        return 1

    retire, tries = merges.scripts.retire, []

    async def lose_the_first_race(*args: object, **kwargs: object) -> object:
        tries.append(1)
        return 0 if len(tries) == 1 else await retire(*args, **kwargs)

    monkeypatch.setattr(merges.replicas, "confirm", confirm)
    monkeypatch.setattr(merges, "scripts", dataclasses.replace(merges.scripts, retire=lose_the_first_race))
    [parent] = await core.thread([msg("p", at=0)])

    assert parent.conversation_id != reply.conversation_id and len(tries) == 2
    # (retired, merge events): copy, event, (retire lost) copy, event again, retire.
    assert seen == [(False, 0), (False, 1), (False, 1), (False, 1), (True, 1)]


class EverChanging(Merges):
    """Every merge pass finds one of the two conversations changed under it (a busy pair of workers)."""

    async def merge_once(self, src: str, dst: str) -> bool | None:
        return None


async def test_a_merge_that_keeps_losing_races_asks_for_a_retry(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    # ABORTED, not FAILED_PRECONDITION: the pipeline worker retries the batch instead of dead-lettering a
    # message that only lost a race.
    core = Conversations(settings, redis, keys, ManualClock(T0))
    merges = core.threader.merges
    core.threader.merges = EverChanging(settings, redis, core.keys, core.clock, merges.scripts)
    await core.thread([msg("c1", at=1, reply_to="p1")])
    with pytest.raises(Aborted, match="kept changing"):
        await core.thread([msg("p1", at=0)])


class RacedByTheGrandparent(Merges):
    """Right after finding where the parent's conversation is, another worker threads the grandparent, whose
    own Thread merges the parent's conversation away."""

    other: Conversations
    raced = False

    async def current(self, cid: str) -> str:
        found = await super().current(cid)
        if cid == conversation_id_for("x:p") and not self.raced:
            self.raced = True
            await self.other.thread([msg("g", author="u0", at=0)])
        return found


async def test_a_merge_whose_target_is_merged_away_meanwhile_follows_it(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    # A chain g <- p <- r arriving r, p, g: r waits for p, p for g. While p's Thread merges r's held
    # conversation into p's, g's Thread (another worker) merges p's into g's. The merge of r's must follow
    # p's conversation to g's; it used to stop there as if nothing was to be done, dropping r's wait, and r
    # stayed in a conversation of its own.
    core = Conversations(settings, redis, keys, ManualClock(T0))
    raced = RacedByTheGrandparent(settings, redis, core.keys, core.clock, core.threader.merges.scripts)
    raced.other = Conversations(settings, redis, keys, ManualClock(T0))
    core.threader.merges = raced
    [reply] = await core.thread([msg("r", author="u1", reply_to="p", at=20)])
    assert reply.held

    [parent] = await core.thread([msg("p", author="u0", reply_to="g", at=10)])

    assert raced.raced
    grandparent = conversation_id_for("x:g")
    # The answer names where the parent is now, not the conversation the race turned into a pointer.
    assert parent.conversation_id == grandparent and not parent.opened_conversation
    conv = await core.get(grandparent)
    assert sorted(m.message.message_id for m in conv.messages) == ["x:g", "x:p", "x:r"]
    assert (await core.conversation_of("x:r")) == grandparent
    core.clock.advance(settings.conversations_held_timeout_seconds + 1)
    assert await core.sweep_held() == 0  # nothing left held to open on its own


async def test_a_parent_that_missed_its_replys_wait_is_reunited_by_the_sweep(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    # A failover lost the reply's wait for its parent (acknowledged, not yet replicated): the parent arrives,
    # sees no wait and opens a conversation of its own.
    clock = ManualClock(T0)
    core = Conversations(settings, redis, keys, clock)
    [reply] = await core.thread([msg("r", author="u1", reply_to="p", at=10)])
    await redis.delete(core.keys.awaiting("x:p"))
    [parent] = await core.thread([msg("p", at=0)])
    assert reply.held and parent.conversation_id != reply.conversation_id
    assert await core.sweep_held() == 0  # too young: the parent's own Thread may still be merging it
    assert (await core.conversation_of("x:r")) == reply.conversation_id

    clock.advance(REUNITE_AFTER_SECONDS)
    assert await core.sweep_held() == 0  # none opened: it joined its parent

    conv = await core.get(parent.conversation_id)
    assert sorted(m.message.message_id for m in conv.messages) == ["x:p", "x:r"]
    assert (await core.conversation_of("x:r")) == parent.conversation_id


async def test_a_reply_waiting_for_a_parent_whose_index_was_lost_is_reunited_by_the_sweep(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    clock = ManualClock(T0)
    core = Conversations(settings, redis, keys, clock)
    [parent] = await core.thread([msg("p", at=0)])
    await redis.delete(core.keys.message_index("x:p"))  # lost in a failover
    [reply] = await core.thread([msg("r", author="u1", reply_to="p", at=10)])
    assert reply.held
    clock.advance(REUNITE_AFTER_SECONDS)

    assert await core.sweep_held() == 0

    assert (await core.conversation_of("x:r")) == parent.conversation_id
    clock.advance(settings.conversations_held_timeout_seconds)
    assert await core.sweep_held() == 0  # nothing left held to open


@pytest.mark.parametrize(("record_lost", "wait_lost"), [(True, False), (True, True), (False, True)])
async def test_a_reply_whose_hold_or_wait_was_lost_waits_again_when_threaded_again(
    settings: Settings, redis: Redis, keys: Keys, record_lost: bool, wait_lost: bool
) -> None:
    # On a cluster the reply's claim (its own slot) can outlive a failover that takes back its held record
    # (the conversation's slot) or its wait for the parent (the parent's slot). The worker threads the reply
    # again; the parent arrives later and the chain is one conversation, before any sweep.
    clock = ManualClock(T0)
    core = Conversations(settings, redis, keys, clock)
    [first] = await core.thread([msg("r", author="u1", reply_to="p", at=10)])
    assert first.held
    held = first.conversation_id
    if record_lost:
        await redis.delete(core.keys.meta(held), *core.keys.parts(held))
    if wait_lost:
        await redis.delete(core.keys.awaiting("x:p"))

    [again] = await core.thread([msg("r", author="u1", reply_to="p", at=10)])
    assert (again.conversation_id, again.held) == (held, True)
    [parent] = await core.thread([msg("p", at=0)])

    conv = await core.get(parent.conversation_id)
    assert sorted(m.message.message_id for m in conv.messages) == ["x:p", "x:r"]
    clock.advance(settings.conversations_held_timeout_seconds + 1)
    assert await core.sweep_held() == 0  # nothing left held to open on its own


async def test_a_reply_whose_wait_was_lost_and_taken_by_another_reply_joins_it_when_threaded_again(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    clock = ManualClock(T0)
    core = Conversations(settings, redis, keys, clock)
    [first] = await core.thread([msg("r", author="u1", reply_to="p", at=10)])
    await redis.delete(core.keys.awaiting("x:p"))  # lost in a failover
    [other] = await core.thread([msg("s", author="u2", reply_to="p", at=11)])
    assert other.conversation_id != first.conversation_id  # it saw no wait: it waits in its own

    [again] = await core.thread([msg("r", author="u1", reply_to="p", at=10)])

    assert again.conversation_id == other.conversation_id
    [parent] = await core.thread([msg("p", at=0)])
    conv = await core.get(parent.conversation_id)
    assert sorted(m.message.message_id for m in conv.messages) == ["x:p", "x:r", "x:s"]


@pytest.mark.parametrize("child", [False, True])
async def test_a_reply_threaded_again_after_its_parent_joins_it_when_its_wait_and_record_were_lost(
    settings: Settings, redis: Redis, keys: Keys, child: bool
) -> None:
    # The reply's first Thread claimed it and asked to wait for its parent, then died before storing the
    # conversation it opened; a failover took back the wait. A reply to the reply may arrive meanwhile (and
    # store that conversation). The parent arrives and sees no wait, and only then does the worker thread
    # the reply again.
    clock = ManualClock(T0)
    core = Conversations(settings, redis, keys, clock)
    [first] = await core.thread([msg("r", author="u1", reply_to="p", at=10)])
    opened = first.conversation_id
    await redis.delete(core.keys.meta(opened), *core.keys.parts(opened))
    await redis.zrem(core.keys.held(opened), opened)
    await redis.delete(core.keys.awaiting("x:p"))
    if child:
        [answer] = await core.thread([msg("s", author="u2", reply_to="r", at=20)])
        assert answer.conversation_id == opened
    [parent] = await core.thread([msg("p", at=0)])
    assert parent.conversation_id != opened

    [again] = await core.thread([msg("r", author="u1", reply_to="p", at=10)])

    assert (again.conversation_id, again.held) == (parent.conversation_id, False)
    conv = await core.get(parent.conversation_id)
    chain = ["x:p", "x:r", "x:s"] if child else ["x:p", "x:r"]
    assert [m.message.message_id for m in conv.messages] == chain
    for mid in chain:
        assert await core.conversation_of(mid) == parent.conversation_id
    assert [s.conversation_id for s in (await core.list())[0]] == [parent.conversation_id]
    clock.advance(settings.conversations_held_timeout_seconds + 1)
    assert await core.sweep_held() == 0


async def test_a_late_reply_threaded_again_stays_in_the_conversation_it_opened_after_the_reopen_window(
    core: Conversations, settings: Settings, clock: ManualClock
) -> None:
    """The one conversation a reply opens apart from its parent's on purpose: the owner back after the
    reopen window. Threaded again, it stays there."""
    [first] = await core.thread([msg("1", at=0)])
    resolved = EventRecord("conversation.resolved", first.conversation_id, "", clock.now())
    await core.apply_events([("1-0", resolved)])
    clock.advance(settings.conversations_reopen_window_seconds + 60)
    late = msg("2", reply_to="1", at=settings.conversations_reopen_window_seconds + 60)
    [back] = await core.thread([late])
    assert back.conversation_id != first.conversation_id and back.opened_conversation
    [again] = await core.thread([late])
    assert again.conversation_id == back.conversation_id
    assert (await core.get(back.conversation_id)).conversation_id == back.conversation_id
