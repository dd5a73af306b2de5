"""Following conversation merges: a reply that arrived before its parent was routed under a conversation of
its own; when conversations merges it into the parent's (`conversation.merged`), the router folds its state
into the surviving conversation, so one issue never waits in two queue entries or sits with two agents.

Every step touches one hash slot and is safe to repeat; the last one turns the merged conversation into a
pointer (which Route follows), so a replayed event finds nothing left to do. The follower has a consumer
group of its own on the merges streams (a copy of each partition's conversation.merged events) and
acknowledges an event only after applying it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from parley import lua
from parley.clock import to_timestamp
from parley.events import EventRecord, add_to_pipeline, decode
from parley.pipeline.consumer import ConsumerOptions, Handler, StreamConsumer, StreamEntry
from parley.router.common import FEED_MAXLEN, PENDING, decode_hash, flat, text_of
from parley.router.core import Router
from parley.v1 import common_pb2, router_pb2

GROUP = "router-merges"
MERGED = "conversation.merged"
BATCH = 128
ATTEMPTS = 5
# Seconds to wait, times the attempt, for a Route to finish writing a decision's effects.
PENDING_PAUSE = 0.005

log = logging.getLogger(__name__)

# Set on the surviving conversation's state between its state write and its queue entry (see `_fold_waiting`).
ENTRY_MARK = "merge_entry"
# Routing fields the surviving conversation takes over when it had no routing of its own.
CARRIED = ("team", "tier", "priority", "sla_due", "enqueued_at", "topic", "language")


class MergeDeferred(Exception):
    """The merge cannot be applied now (an agent's claim of one of the conversations is in flight); the
    event stays unacknowledged and is applied on a later pass."""


class _Replan(Exception):
    """Something moved one of the conversations meanwhile: read both again."""


@dataclass
class MergeOutcome:
    merged: str
    into: str
    action: str  # joined_queue, joined_agent, moved_queue, moved_to_agent, same_agent, withdrawn, bot, none
    agent_id: str = ""
    withdrawn_agent: str = ""
    team: str = ""
    applied: bool = True  # False when an earlier pass already did it
    why: str = ""


class Merges:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.redis = router.redis
        self.k = router.k
        # On a cluster, each step of a merge is on a replica before the next touches another slot.
        self.replicas = router.ground.replicas
        self.join = lua.register(self.redis, "parley.router", "join")
        self._merge_state = lua.register(self.redis, "parley.router", "merge_state")
        self.swap = lua.register(self.redis, "parley.router", "swap")
        self._finalize = lua.register(self.redis, "parley.router", "finalize_merge")
        self._fence = lua.register(self.redis, "parley.router", "fence_merge")

    async def apply_events(self, entries: list[tuple[str, EventRecord]]) -> list[MergeOutcome]:
        """Apply the `conversation.merged` events among stream entries (others are ignored)."""
        out = []
        for _, event in entries:
            if event.type != MERGED:
                continue
            merged, into = event.conversation_id, str(event.attributes.get("into") or "")
            if merged and into:
                out.append(await self.apply(merged, into))
        return out

    async def apply(self, merged: str, into: str) -> MergeOutcome:
        """Fold the router's state of `merged` into `into` (or where `into` itself went since).

        The merged conversation is fenced first (once no Route decision's effects are still being written in
        either conversation): from then on Route sends its messages to the surviving one and no claim records
        it, so the moves below race only with claims already in flight, which they wait for."""
        into = (await self.router.current([into]))[into]
        if into == merged:
            return MergeOutcome(merged, into, "none", applied=False, why="a conversation merged into itself")
        prior: str | None = None
        for attempt in range(ATTEMPTS):
            src, dst = await self._read(merged, into)
            if src.get("merged_into"):
                return MergeOutcome(merged, src["merged_into"], "none", applied=False, why="already merged")
            if prior is None:
                # A pass that died half-way left its plan: the steps it did make the case look different
                # now (an agent holding both, say), but the report is of what the merge did as a whole.
                prior = src.get("merge_action", "")
            settled = [
                await self.router.routing.settle_route_effects(c, s) for c, s in ((merged, src), (into, dst))
            ]
            if not all(settled):
                await asyncio.sleep(PENDING_PAUSE * (attempt + 1))  # a Route is writing its queue entry
                continue
            fenced = await self._fence(keys=[self.k.state(merged)], args=[into, self._plan(src, dst)])
            if int(fenced[0]) != 1:
                continue  # a Route stored a decision meanwhile, or another pass finished the merge
            if text_of(fenced[1]) != into:  # an earlier pass fenced it towards where `into` was then
                into = (await self.router.current([text_of(fenced[1])]))[text_of(fenced[1])]
                continue
            await self.replicas.confirm()
            src, dst = await self._read(merged, into)
            if any(name.startswith(PENDING) for name in dst) or "leaving" in dst:
                # A Route decided, or a desk action is moving the surviving conversation, meanwhile: the
                # moves below are made against effects all written.
                continue
            if await self._claimed(merged, src) or await self._claimed(into, dst):
                continue  # an agent's claim is in flight: it is recorded or given back shortly
            try:
                outcome = await self._reconcile(merged, into, src, dst)
                if prior and prior != outcome.action:
                    outcome.action, outcome.why = prior, f"{outcome.why} (finishing an interrupted merge)"
                await self.finish(outcome, src, dst)
            except _Replan:
                continue
            if outcome.withdrawn_agent:
                await self.router.assignments.fill(
                    outcome.withdrawn_agent
                )  # the freed capacity takes the next one
            return outcome
        raise MergeDeferred(f"merging {merged} into {into}: a claim or a Route is in flight; retry later")

    async def _read(self, merged: str, into: str) -> tuple[dict[str, str], dict[str, str]]:
        async with lua.pipeline(self.redis) as pipe:
            pipe.hgetall(self.k.state(merged))
            pipe.hgetall(self.k.state(into))
            src, dst = (decode_hash(raw) for raw in await pipe.execute())
        return src, dst

    async def _claimed(self, cid: str, state: dict[str, str]) -> bool:
        """Whether an agent's claim of the conversation is journaled and not yet settled."""
        return bool(state.get("team")) and bool(await self.redis.hexists(self.k.taking(state["team"]), cid))

    # ------------------------------------------------------------------------------------------- steps

    @staticmethod
    def _plan(src: dict[str, str], dst: dict[str, str]) -> str:
        """The case at hand, as `_reconcile` names its outcome."""
        s, d = src.get("state", ""), dst.get("state", "")
        if s == "queued":
            return {"queued": "joined_queue", "assigned": "joined_agent"}.get(d, "moved_queue")
        if s == "assigned":
            if d == "assigned":
                return "same_agent" if dst.get("agent") == src.get("agent") else "withdrawn"
            return "moved_to_agent"
        return "bot" if s == "bot" or src.get("bot_replied") == "1" else "none"

    async def _reconcile(
        self, merged: str, into: str, src: dict[str, str], dst: dict[str, str]
    ) -> MergeOutcome:
        """Move what the merged conversation has (a queue entry, an agent) to the surviving one, by case."""
        s, d = src.get("state", ""), dst.get("state", "")
        version = dst.get("version", "0")
        carry = self._carried_marks(src, dst)
        if s == "queued":
            return await self._fold_waiting(merged, into, src, dst, carry)
        if s == "assigned":
            return await self._fold_assigned(merged, into, src, dst, carry)
        # Routed to the bot, or nothing to act on: nothing moves, but the bot's one reply is remembered.
        if s == "bot" and not d:
            carry.update(state="bot", topic=src.get("topic", ""))
        if carry:
            await self.write_survivor(into, carry, "", "", "", version)
        bot = s == "bot" or src.get("bot_replied") == "1"
        return MergeOutcome(
            merged,
            into,
            "bot" if bot else "none",
            why="the bot already answered in it" if bot else "nothing to move",
        )

    async def _restore_entry(self, dst: dict[str, str], into: str) -> None:
        """Put back the surviving conversation's queue entry: taken by a move that could not finish, or not
        yet written by a pass that died."""
        await self.router.queues.add(
            dst["team"], into, float(dst["priority"]), float(dst["enqueued_at"]), float(dst["sla_due"])
        )

    async def _fold_waiting(
        self, merged: str, into: str, src: dict[str, str], dst: dict[str, str], carry: dict[str, str]
    ) -> MergeOutcome:
        """The merged conversation waits in a queue: its entry joins or becomes the surviving one's."""
        d, version = dst.get("state", ""), dst.get("version", "0")
        team = src["team"]
        priority, due, since = src["priority"], src["sla_due"], src["enqueued_at"]
        if d == "queued" and dst.get(ENTRY_MARK) == merged:
            # An earlier pass of this merge wrote the surviving state and died before its queue entry.
            await self._restore_entry(dst, into)
            await self.redis.hdel(self.k.state(into), ENTRY_MARK)
        if d == "queued":
            if not await self.join(keys=self._queue_keys(dst["team"]), args=[into, priority, since, due]):
                raise _Replan  # taken by an agent meanwhile: it is assigned now, or about to be
            await self.write_survivor(into, carry, priority, due, since, version)
            await self.remove_waiting(team, merged)
            return MergeOutcome(
                merged,
                into,
                "joined_queue",
                team=dst["team"],
                why=(
                    f"its queue entry in {team} joined {into}'s in {dst['team']} "
                    f"(priority {max(float(priority), float(dst['priority'])):g})"
                ),
            )
        if d == "assigned":
            await self.write_survivor(into, carry, priority, due, "", version)
            await self.remove_waiting(team, merged)
            return MergeOutcome(
                merged,
                into,
                "joined_agent",
                agent_id=dst["agent"],
                team=dst["team"],
                why=(f"its queue entry in {team} left: agent {dst['agent']} already has {into}"),
            )
        # The surviving conversation had no waiting entry: the merged one's entry becomes its. Its state is
        # written first (refused if a Route changed it since it was read), with a mark naming this merge, and
        # only then the queue entry: an entry written first would stay behind, beside the one a concurrent
        # Route gives it in another team's queue, when the state write is refused. A pass that dies between
        # the two leaves the mark, and the next pass writes the entry (above).
        fields = {name: src[name] for name in CARRIED if name in src}
        state = {**carry, **fields, "state": "queued", "agent": "", ENTRY_MARK: merged}
        await self.write_survivor(into, state, priority, due, since, version)
        await self.router.queues.add(team, into, float(priority), float(since), float(due))
        await self.redis.hdel(self.k.state(into), ENTRY_MARK)
        await self.remove_waiting(team, merged)
        return MergeOutcome(
            merged, into, "moved_queue", team=team, why=f"its queue entry in {team} moved to {into}"
        )

    async def _fold_assigned(
        self, merged: str, into: str, src: dict[str, str], dst: dict[str, str], carry: dict[str, str]
    ) -> MergeOutcome:
        """An agent has the merged conversation: the surviving one is counted once, with one agent."""
        d, version = dst.get("state", ""), dst.get("version", "0")
        agent = src["agent"]
        mine = d == "assigned" and dst.get("agent") == agent
        if mine and not await self.redis.sismember(self.k.active(agent), into):
            d = ""  # a move cut short after the state was written: the agent gets it now
        if d == "assigned" and dst.get("agent") == agent:
            await self.router.assignments.withdraw(
                agent, merged, src, f"merged into {into}, which agent {agent} has"
            )
            await self.write_survivor(
                into, carry, src.get("priority", ""), src.get("sla_due", ""), "", version
            )
            return MergeOutcome(
                merged,
                into,
                "same_agent",
                agent_id=agent,
                team=dst.get("team", ""),
                why=(f"agent {agent} had both; counted once"),
            )
        if d == "assigned":
            # Two agents: the surviving conversation's agent keeps it; the other one is released, and
            # their feed is told in the same step.
            await self.router.assignments.withdraw(
                agent, merged, src, f"merged into {into}, which stays with agent {dst['agent']}"
            )
            await self.write_survivor(
                into, carry, src.get("priority", ""), src.get("sla_due", ""), "", version
            )
            return MergeOutcome(
                merged,
                into,
                "withdrawn",
                agent_id=dst["agent"],
                withdrawn_agent=agent,
                team=dst["team"],
                why=f"agent {dst['agent']} keeps {into}; {merged} withdrawn from agent {agent}",
            )
        return await self._move_to_agent(merged, into, src, dst, carry, d)

    async def _move_to_agent(
        self,
        merged: str,
        into: str,
        src: dict[str, str],
        dst: dict[str, str],
        carry: dict[str, str],
        d: str,
    ) -> MergeOutcome:
        """The merged conversation's agent gets the surviving one (waiting, or never with an agent), in place
        of the merged one: capacity counts it once."""
        agent, version = src["agent"], dst.get("version", "0")
        took = False
        if d == "queued":
            took = await self.router.queues.take_from(dst["team"], into)
            if not took and await self.redis.hexists(self.k.taking(dst["team"]), into):
                raise _Replan  # an agent is claiming it right now
        # A waiting surviving conversation keeps the higher priority and earlier deadline of the two.
        kept = ("priority", "sla_due", "enqueued_at") if d == "queued" else ()
        state = {name: src[name] for name in CARRIED if name in src and name not in kept}
        state.update(carry, state="assigned", agent=agent, last_agent=agent)
        state["assigned_at"] = src.get("assigned_at", str(self.router.clock.now()))
        state["reason"] = f"merged: {merged} joined {into}, which stays with agent {agent}"
        assignment = self.router.assignments.assignment(into, agent, {**src, **state})
        withdrawn = self.router.assignments.assignment(merged, agent, src)
        withdrawn.reason, withdrawn.withdrawn = f"merged into {into}, which is now agent {agent}'s", True
        # The surviving conversation's state is written before the agent gets it: a Route or claim that
        # changed it since it was read makes this write fail (read again), and once it says assigned no
        # Route queues it for another agent.
        try:
            written = str(await self.write_survivor(into, state, *self._times(src), version))
        except _Replan:
            if took:
                await self._restore_entry(dst, into)
            raise
        moved = await self.swap(
            keys=[self.k.active(agent), self.k.feed(agent)],
            args=[
                merged,
                into,
                assignment.SerializeToString(),
                FEED_MAXLEN,
                withdrawn.SerializeToString(),
            ],
        )
        if moved == -1:  # the agent let go of the merged conversation meanwhile: as it was
            await self.write_survivor(into, {name: dst.get(name, "") for name in state}, "", "", "", written)
            if took:
                await self._restore_entry(dst, into)
            raise _Replan
        return MergeOutcome(
            merged,
            into,
            "moved_to_agent",
            agent_id=agent,
            team=state.get("team", ""),
            why=(
                f"{into} goes to agent {agent}, who had {merged}"
                + (f"; its queue entry in {dst['team']} left" if d == "queued" else "")
            ),
        )

    @staticmethod
    def _times(src: dict[str, str]) -> tuple[str, str, str]:
        return src.get("priority", ""), src.get("sla_due", ""), src.get("enqueued_at", "")

    @staticmethod
    def _carried_marks(src: dict[str, str], dst: dict[str, str]) -> dict[str, str]:
        """What the surviving conversation learns whatever the case: the bot answered, who declined, who
        handled it before."""
        out = {}
        if src.get("bot_replied") == "1":
            out["bot_replied"] = "1"
        declined = set(src.get("declined_by", "").split(",")) | set(dst.get("declined_by", "").split(","))
        if declined - {""} != set(dst.get("declined_by", "").split(",")) - {""}:
            out["declined_by"] = ",".join(sorted(declined - {""}))
        if src.get("last_agent") and not dst.get("last_agent"):
            out["last_agent"] = src["last_agent"]
        return out

    def _queue_keys(self, team: str) -> list[str]:
        return [self.k.queue(team), self.k.since(team), self.k.due(team), self.k.base(team)]

    async def write_survivor(
        self, cid: str, fields: dict[str, Any], priority: Any, due: Any, since: Any, version: str
    ) -> int:
        """Write the surviving conversation's state if it is still the `version` read (else read both again);
        the new version."""
        written = await self._merge_state(
            keys=[self.k.state(cid)], args=[version, str(priority), str(due), str(since), *flat(fields)]
        )
        if not written:
            raise _Replan
        await self.replicas.confirm()
        return int(written)

    async def remove_waiting(self, team: str, cid: str) -> None:
        """Take the merged conversation out of its queue; if an agent's claim of it is in flight, read again
        (it is about to be assigned). Gone already is fine: an earlier pass removed it."""
        if not await self.router.queues.take_from(team, cid) and await self.redis.hexists(
            self.k.taking(team), cid
        ):
            raise _Replan
        await self.replicas.confirm()

    async def finish(self, outcome: MergeOutcome, src: dict[str, str], dst: dict[str, str]) -> None:
        """Audit on both conversations (the surviving one also gets the merged one's history), then the
        pointer and the event. The pointer is written only if no Route changed the merged conversation."""
        now = self.router.clock.now()
        merged, into = outcome.merged, outcome.into
        audit = router_pb2.RoutingAudit(
            kind="merge",
            at=to_timestamp(now),
            action=common_pb2.ROUTE_ACTION_ASSIGNED if outcome.agent_id else common_pb2.ROUTE_ACTION_QUEUED,
            team=outcome.team,
            agent_id=outcome.agent_id,
            priority=float(self._value(src, dst, "priority")),
            why=f"{merged} merged into {into}: {outcome.why}",
        )
        if outcome.action in ("bot", "none"):
            audit.action = common_pb2.ROUTE_ACTION_NO_ACTION
        history = await self.redis.hgetall(self.k.audit(merged))
        async with lua.pipeline(self.redis) as pipe:
            if history:
                pipe.hset(self.k.audit(into), mapping=history)
            pipe.hset(self.k.audit(into), f"merge:{merged}", audit.SerializeToString())
            pipe.expire(self.k.audit(into), self.router.settings.dedupe_ttl_seconds)
            pipe.hset(self.k.audit(merged), f"merge:{merged}", audit.SerializeToString())
            await pipe.execute()
        await self.replicas.confirm()  # every move of the merge is kept before the pointer says it is done
        done = await self._finalize(
            keys=[self.k.state(merged)],
            args=[src.get("version", "0"), self.router.settings.dedupe_ttl_seconds, into],
        )
        if not done:
            raise _Replan
        event = EventRecord(
            "conversation.merged_routing",
            merged,
            "",
            now,
            {
                "into": into,
                "action": outcome.action,
                "agent_id": outcome.agent_id,
                "withdrawn_agent": outcome.withdrawn_agent,
                "team": outcome.team,
                "why": outcome.why,
            },
        )
        published = [event]
        if outcome.action == "moved_to_agent":
            # Conversations learns the surviving conversation is with an agent now, as for any assignment.
            attrs = {"agent_id": outcome.agent_id, "team": outcome.team, "how": "merged", "why": outcome.why}
            published.append(EventRecord("conversation.assigned", into, "", now, attrs))
        async with lua.pipeline(self.redis) as pipe:
            add_to_pipeline(pipe, self.router.keys, published, self.router.settings.events_maxlen)
            await pipe.execute()

    @staticmethod
    def _value(src: dict[str, str], dst: dict[str, str], name: str) -> float:
        values = [float(s[name]) for s in (src, dst) if s.get(name)]
        return max(values) if values else 0.0


# ----------------------------------------------------------------------------------------------- follower


def reader(merges: Merges, consumer: str) -> StreamConsumer:
    """The merges follower's reader: its own group on the merges streams, which carry only the
    conversation.merged events (from their end the first time); a malformed event is set aside with its
    reason, so it never holds up the merges behind it."""
    settings, keys = merges.router.settings, merges.router.keys
    options = ConsumerOptions(
        batch=BATCH,
        block_ms=settings.worker_block_ms,
        claim_idle_ms=settings.claim_idle_ms,
        read_each_stream=settings.redis_cluster,
    )
    dead_key = keys.namespaced("events-dead", GROUP)
    return StreamConsumer(
        merges.redis,
        keys.merge_streams(),
        GROUP,
        consumer,
        options,
        dead_key=dead_key,
        replicas=merges.replicas,
    )


async def ensure_group(merges: Merges) -> None:
    await reader(merges, "").ensure_group()


def applier(merges: Merges) -> Handler:
    """Apply each merge; one whose conversation has a claim in flight is held back (it stays pending and is
    tried again on the next pass) without holding up the others."""

    async def apply(entries: list[StreamEntry]) -> list[str]:
        held = []
        for entry in entries:
            try:
                await merges.apply_events([(entry.entry_id, decode(entry.fields))])
            except MergeDeferred as error:
                log.info("%s", error)
                held.append(entry.entry_id)
        return held

    return apply


async def follow_once(merges: Merges, consumer: str, block_ms: int | None = 1000) -> int:
    """One pass: how many entries were settled, or minus how many merges were held back when none was."""
    result = await reader(merges, consumer).once(applier(merges), block_ms)
    settled = len(result.done) + len(result.dead)
    return settled if settled or not result.held else -len(result.held)


async def run_follower(merges: Merges, consumer: str, stopping: asyncio.Event) -> None:
    """Follow merges until `stopping` is set; a failed batch stays unacknowledged and is retried."""
    await reader(merges, consumer).run(applier(merges), stopping)
