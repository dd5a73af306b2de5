"""Threading a batch: the Redis reads before the decision (`threading.decide`), the claims, the writes after.

Round trips: a batch of messages that are all new takes three (read what is known, claim, write). Joining
stored conversations adds one read of their records per merge hop and one of their recent customer turns; a
customer DM that may continue a public conversation adds two reads; state changes (a customer's turn moving
a conversation) one or two writes; a reply to a stored message one read (is it the brand's?); each merge of
a held conversation into its parent's several. Two callers threading the same message agree without a lock:
conversation ids derive from the opening message id, and the claims (SET NX) settle every race.
"""

from __future__ import annotations

from collections.abc import Sequence

from parley import lua
from parley.clock import Clock
from parley.config import Settings
from parley.events import EventRecord, add_to_pipeline
from parley.messages import CHANNEL_NAMES
from parley.store import Redis, stored_body
from parley.v1 import common_pb2, conversations_pb2

from .lifecycle import publish_state_changes
from .merging import AWAITING_TTL_SECONDS, Merges
from .profiles import Tiers, identity_of
from .scripts import Scripts, message_args, thread_args
from .store import PUBLIC_FIELD, ConversationKeys, as_text, conversation_id_for, identity_field, read_many
from .threading import (
    ROLE_BRAND,
    ROLE_OWNER,
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
    earliest,
    follow,
    is_outbound,
    parent_of,
    public_candidates,
    reopen_late,
    sent_at,
    settle,
    stored_parents,
    thread_of,
    to_read,
)

STATE_NEW = conversations_pb2.CONVERSATION_STATE_NEW
MERGE_HOPS = 4  # a merge chain is short; each read of the records follows one step
State = tuple[int, bool, str]  # a conversation's state, held, the message that moved it to private
Message = common_pb2.InboundMessage
Result = conversations_pb2.ThreadResult


class Threader:
    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        keys: ConversationKeys,
        clock: Clock,
        scripts: Scripts,
        tiers: Tiers,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.scripts = scripts
        self.tiers = tiers
        self.rules = Rules.from_settings(settings)
        self.merges = Merges(settings, redis, keys, clock, scripts)

    async def thread(self, messages: Sequence[Message]) -> list[Result]:
        """Place each message in a conversation (see `threading`), store it, and say where it went."""
        if not messages:
            return []
        now = self.clock.now()
        snapshot = await self._snapshot(messages, now)
        plan = decide(snapshot, messages, self.rules)
        settle(plan, snapshot, await self._claim(plan))
        records = await self._records(plan)
        reopen_late(plan, records, self.rules, now)
        assign_roles(plan, records, await self._history(plan, records, now), self.rules, now)
        states, refused = await self._write(plan, records, now)
        redirected = await self._redirect(plan, refused) if refused else {}
        final = await self._merge(plan, snapshot)
        brand = brand_replies(plan, await self._stored_bodies(stored_parents(plan, snapshot)))
        results = []
        for p in plan.order:
            if p.message.message_id in redirected:
                results.append(redirected[p.message.message_id])
                continue
            cid = final.get(p.conversation_id, p.conversation_id)
            state, held, moved_by = states.get(cid) or states[p.conversation_id]
            results.append(
                Result(
                    message_id=p.message.message_id,
                    conversation_id=cid,
                    opened_conversation=cid == conversation_id_for(p.message.message_id),
                    role=p.role,
                    state=state,  # type: ignore[arg-type]  # a stored number; the stubs take the enum's
                    context=p.context,
                    held=held,
                    customer_tier="" if is_outbound(p.message) else self.tiers.tier(p.person, p.message),
                    moved_to_private=moved_by == p.message.message_id,
                    brand_reply=brand.get(p.message.message_id, ""),
                )
            )
        return results

    def _thread_key(self, thread: ThreadRef) -> str:
        return self.keys.thread(thread.channel, thread.brand_account_id, thread.thread_id)

    # ---- before the decision ----------------------------------------------------------------------------

    async def _snapshot(self, messages: Sequence[Message], now: float) -> Snapshot:
        """What is known already: each message, each parent, each platform thread, any reply that arrived
        before the message itself, and the person behind each customer identity (one round trip); then the
        latest public exchange of each customer whose DM may continue it (two more, only then)."""
        k = self.keys
        indexed: dict[str, str] = {}  # key -> message id, for each of the tables below
        awaited: dict[str, str] = {}
        threads: dict[str, ThreadRef] = {}
        identities: dict[str, str] = {}
        for m in messages:
            for mid in filter(None, (m.message_id, parent_of(m))):
                indexed[k.message_index(mid)] = mid
                awaited[k.awaiting(mid)] = mid
            if thread := thread_of(m):
                threads[self._thread_key(thread)] = thread
            if not is_outbound(m):
                identity = identity_of(m.channel, m.author.id)
                identities[k.customers.identity(identity)] = identity
        lookups = [*indexed, *awaited, *threads, *identities]
        values = await read_many(self.redis, self.settings.redis_cluster, lookups)
        found = {key: as_text(v) for key, v in zip(lookups, values, strict=True) if v}
        snapshot = Snapshot(
            now,
            conversation_of={mid: found[key] for key, mid in indexed.items() if key in found},
            awaiting={mid: found[key] for key, mid in awaited.items() if key in found},
            threads={thread: found[key] for key, thread in threads.items() if key in found},
            persons={identity: found[key] for key, identity in identities.items() if key in found},
        )
        candidates = public_candidates(snapshot, messages)
        if candidates:
            snapshot.last_public = await self._last_public([snapshot.person(m) for m in candidates])
        return snapshot

    async def _last_public(self, persons: list[str]) -> dict[str, PublicExchange]:
        """Each person's latest public exchange, with the state of its conversation."""
        people = list(dict.fromkeys(persons))
        c = self.keys.customers
        async with lua.pipeline(self.redis) as pipe:
            for person in people:
                pipe.hget(c.profile(person), PUBLIC_FIELD)
                pipe.get(c.legacy_last_public(person))  # the field, once written, is the later one
            values = await pipe.execute()
        found: dict[str, tuple[str, float]] = {}
        for person, current, legacy in zip(people, values[::2], values[1::2], strict=True):
            if raw := current or legacy:
                cid, at = as_text(raw).split(" ")
                found[person] = (cid, float(at))
        if not found:
            return {}
        async with lua.pipeline(self.redis) as pipe:
            for cid, _ in found.values():
                pipe.hmget(self.keys.meta(cid), ["state", "brand_account_id", "merged_into"])
            rows = await pipe.execute()
        out = {}
        for (person, (conversation, when)), row in zip(found.items(), rows, strict=True):
            state, brand, merged = (as_text(v) for v in row)
            out[person] = PublicExchange(conversation, when, int(state or 0), brand, bool(merged))
        return out

    # ---- claims ---------------------------------------------------------------------------------------

    async def _claim(self, plan: Plan) -> Claims:
        """Claim each new message's index, each new thread and each awaited parent, unless a concurrent call
        got there first. A message and the replies waiting for it share a hash slot, so a reply that
        registers its wait at the same moment its parent is claimed is seen by one side or the other."""
        k = self.keys
        fresh = plan.fresh()
        threads, parents = list(plan.threads.items()), list(plan.awaiting.items())
        async with lua.pipeline(self.redis) as pipe:
            for thread, cid in threads:
                pipe.set(self._thread_key(thread), cid, nx=True, get=True)
            for p in fresh:
                mid = p.message.message_id
                keys = [k.message_index(mid), k.awaiting(mid)]
                await self.scripts.claim(keys=keys, args=[p.conversation_id], client=pipe)
            for parent, cid in parents:
                keys = [k.message_index(parent), k.awaiting(parent)]
                await self.scripts.wait(keys=keys, args=[cid, AWAITING_TTL_SECONDS], client=pipe)
            replies = iter(await pipe.execute())
        claims = Claims()
        for thread, _ in threads:
            claims.threads[thread] = as_text(next(replies))
        for p in fresh:
            winner, waiting = (as_text(v) for v in next(replies))
            claims.messages[p.message.message_id] = (winner, waiting)
        for parent, _ in parents:
            claims.parents[parent] = as_text(next(replies)[1])
        return claims

    # ---- the conversations joined -----------------------------------------------------------------------

    async def _records(self, plan: Plan) -> dict[str, Record]:
        """The stored conversations the batch joins, following merges (the placements move with them)."""
        fields = ["owner", "state", "resolved_at", "merged_into", "owner_person", "held", "previous"]
        records: dict[str, Record] = {}
        for _ in range(MERGE_HOPS):
            todo = to_read(plan, records)
            if not todo:
                break
            async with lua.pipeline(self.redis) as pipe:
                for cid in todo:
                    pipe.hmget(self.keys.meta(cid), fields)
                rows = await pipe.execute()
            into: dict[str, str] = {}
            for cid, row in zip(todo, rows, strict=True):
                owner, state, resolved_at, merged_into, owner_person, held, previous = map(as_text, row)
                if merged_into:
                    into[cid] = merged_into
                elif cid in plan.rejoin and not state:  # opened ahead of a parent now known, never stored
                    into[cid] = plan.rejoin[cid]
                else:  # empty when claimed by a call whose writes are not stored yet: written as new
                    records[cid] = Record(
                        owner, int(state or 0), float(resolved_at or 0), owner_person, bool(held), previous
                    )
                    if cid in plan.rejoin and not previous:  # stored: merged after this call's writes
                        parent_at = plan.rejoin[cid]
                        plan.merges.setdefault(cid, plan.moved.get(parent_at, parent_at))
            follow(plan, into)
        return records

    async def _history(self, plan: Plan, records: dict[str, Record], now: float) -> dict[str, list[str]]:
        """Each stored conversation's customer turns before the batch's earliest message in it, oldest
        first."""
        first = earliest(plan, now)
        cids = [cid for cid in first if cid in records]
        if not cids:
            return {}
        k = self.keys
        async with lua.pipeline(self.redis) as pipe:
            for cid in cids:
                keys = [k.messages(cid), k.turns(cid), k.legacy_roles(cid), k.legacy_bodies(cid)]
                args = [repr(first[cid]), self.rules.context_turns]
                await self.scripts.context(keys=keys, args=args, client=pipe)
            out = await pipe.execute()
        return {
            cid: [Message.FromString(body).text for body in reversed(bodies)]
            for cid, bodies in zip(cids, out, strict=True)
        }

    # ---- writes -----------------------------------------------------------------------------------------

    async def _write(
        self, plan: Plan, records: dict[str, Record], now: float
    ) -> tuple[dict[str, State], dict[str, str]]:
        """Write every placed message (re-writing one already threaded is harmless and repairs a crash
        between claim and write), the indexes, the customer profiles, and the events of what is new.

        Returns each conversation's state, and the conversations merged away before this call wrote them
        (thread.lua wrote nothing there) with where they went."""
        k = self.keys
        events: list[EventRecord] = []
        script_at: dict[str, int] = {}  # conversation id -> position of its script's reply
        async with lua.pipeline(self.redis) as pipe:
            for p in plan.overwrite:
                pipe.set(k.message_index(p.message.message_id), p.conversation_id)
                if p.thread:
                    pipe.set(self._thread_key(p.thread), p.conversation_id)
            for cid, group in plan.groups().items():
                script_at[cid] = len(pipe)
                await self._write_conversation(pipe, cid, group, records.get(cid, Record()), now, events)
            for p in plan.placed.values():
                if p.claimed:
                    attrs = {"role": p.role}
                    events.append(
                        EventRecord("message.threaded", p.conversation_id, p.message.message_id, now, attrs)
                    )
            add_to_pipeline(pipe, k.keys, events, self.settings.events_maxlen)
            written = await pipe.execute()
        states: dict[str, State] = {}
        changes: list[tuple[str, list[str]]] = []
        refused: dict[str, str] = {}
        for cid, at in script_at.items():
            reply = [as_text(v) for v in written[at]]
            if reply[0] == "merged":
                refused[cid] = reply[1]
                continue
            state, held, moved_by, *flat = reply
            states[cid] = (int(state or STATE_NEW), bool(held), moved_by)
            if flat:
                changes.append((cid, flat))
        held_now = {cid: held for cid, (_, held, _) in states.items()}
        await publish_state_changes(self.redis, k, self.settings, changes, held_now)
        return states, refused

    async def _write_conversation(
        self,
        pipe: lua.Pipeline,
        cid: str,
        group: list[Placement],
        record: Record,
        now: float,
        events: list[EventRecord],
    ) -> None:
        """Queue the writes of one conversation's messages: thread.lua, its owner's profile, its listing."""
        k = self.keys
        opener = next((p for p in group if p.new_conversation), None) or next(
            (p for p in group if p.held), group[0]
        )
        owner_person = record.owner_person or next((p.person for p in group if p.role == ROLE_OWNER), "")
        # Held when this call opens it, or writes again the record of a held reply that a failover took back.
        held = opener.held and (opener.new_conversation or not record.state)
        thread_key = self._thread_key(opener.thread) if opener.thread else ""
        args = thread_args(now, opener, len(group), held, owner_person, thread_key)
        for p in group:
            args += message_args(p, now)
        await self.scripts.thread(keys=k.thread_script_keys(cid), args=args, client=pipe)
        if owner_person:
            pipe.write(
                "ZADD", k.customers.profile_conversations(owner_person), "NX", _score(opener, now), cid
            )
        for p in group:
            self._profile_writes(pipe, p, cid, owner_person, now)
        if held or record.held:  # listed nowhere until its parent arrives or the sweep opens it
            if held:
                pipe.write("ZADD", k.held(cid), "NX", repr(now), cid)
            return
        # New messages move the conversation up the lists; a re-thread only restores a missing entry.
        touched = any(p.claimed for p in group)
        flag = "GT" if touched else "NX"
        pipe.write("ZADD", k.index_all(cid), flag, repr(now), cid)
        pipe.write("ZADD", k.index_channel(opener.message.channel, cid), flag, repr(now), cid)
        pipe.write("ZADD", k.index_opened(cid), "NX", _score(opener, now), cid)
        if any(p.new_conversation and p.claimed for p in group):
            pipe.write("ZADD", k.index_state(STATE_NEW, cid), repr(now), cid)
            attrs = {"channel": CHANNEL_NAMES.get(opener.message.channel, "")}
            if opener.previous:
                attrs["previous_conversation_id"] = opener.previous
            events.append(EventRecord("conversation.opened", cid, opener.message.message_id, now, attrs))
        elif touched:
            pipe.write("ZADD", k.index_state(record.state, cid), "XX", "GT", repr(now), cid)

    def _profile_writes(
        self, pipe: lua.Pipeline, p: Placement, cid: str, owner_person: str, now: float
    ) -> None:
        """The customer's reach and identities, and their latest public exchange (a DM may continue it)."""
        k, m = self.keys, p.message
        if not is_outbound(m):
            fields = ["handle", m.author.handle, "verified", int(m.author.verified)]
            fields += [identity_field(identity_of(m.channel, m.author.id)), 1]
            if m.author.follower_count:
                fields += ["followers", m.author.follower_count]
            pipe.write("HSET", k.customers.profile(p.person), *fields)
        person = p.person if p.role == ROLE_OWNER else owner_person if p.role == ROLE_BRAND else ""
        if person and m.visibility == common_pb2.VISIBILITY_PUBLIC:
            pipe.write("HSET", k.customers.profile(person), PUBLIC_FIELD, f"{cid} {sent_at(m, now)!r}")

    # ---- after the writes -------------------------------------------------------------------------------

    async def _redirect(self, plan: Plan, refused: dict[str, str]) -> dict[str, Result]:
        """Thread again, where it went, the messages of each conversation merged away between this call's
        claim and its write; what the call listed it in is undone."""
        k = self.keys
        groups = plan.groups()
        async with lua.pipeline(self.redis) as pipe:
            for cid, into in refused.items():
                for index in (
                    k.held(cid),
                    k.index_all(cid),
                    k.index_opened(cid),
                    k.index_state(STATE_NEW, cid),
                ):
                    pipe.zrem(index, cid)
                for p in groups[cid]:
                    pipe.zrem(k.index_channel(p.message.channel, cid), cid)
                    if p.person:
                        pipe.zrem(k.customers.profile_conversations(p.person), cid)
                    pipe.set(k.message_index(p.message.message_id), into)
                    if p.thread:
                        pipe.set(self._thread_key(p.thread), into)
            await pipe.execute()
        again = await self.thread([p.message for cid in refused for p in groups[cid]])
        return {result.message_id: result for result in again}

    async def _merge(self, plan: Plan, snapshot: Snapshot) -> dict[str, str]:
        """Merge the conversations of replies that arrived before this batch's messages; returns the merged
        ones and where they went, with any target a concurrent merge moved meanwhile (so the answer names
        the conversation, not a pointer to it). The replies' waits are done with."""
        final: dict[str, str] = {}
        for src, dst in plan.merges.items():
            if into := await self.merges.merge(src, dst):
                final[src] = into
                if into != dst:
                    final[dst] = into
        if plan.merges:
            async with lua.pipeline(self.redis) as pipe:
                for mid in plan.placed:
                    if (snapshot.awaiting.get(mid) or plan.waited.get(mid, "")) in plan.merges:
                        pipe.delete(self.keys.awaiting(mid))
                await pipe.execute()
        return final

    async def _stored_bodies(self, parents: dict[str, str]) -> dict[str, Message]:
        """The stored messages of `parents` (message id -> its conversation)."""
        if not parents:
            return {}
        async with lua.pipeline(self.redis) as pipe:
            for parent, cid in parents.items():
                pipe.hget(self.keys.turns(cid), parent)
                pipe.hget(self.keys.legacy_bodies(cid), parent)
            found = await pipe.execute()
        out = {}
        for parent, turn, legacy in zip(parents, found[::2], found[1::2], strict=True):
            if body := stored_body(turn, legacy):
                out[parent] = Message.FromString(body)
        return out


def _score(p: Placement, now: float) -> str:
    """A listing score: when the message was sent."""
    return repr(sent_at(p.message, now))
