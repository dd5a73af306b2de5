"""The background step (`tick`): policy reload, recovery of half-done claims and reservations, presence
grace expiry, SLA escalation, the end of sticky holds, ageing and backlog draining."""

from __future__ import annotations

import logging
from typing import Any, cast

from parley import lua
from parley.events import EventRecord, add_to_pipeline
from parley.router.assignment import Assignments
from parley.router.base import Ground, Part
from parley.router.common import (
    DRAIN_PER_TEAM,
    RESERVING,
    as_float,
    decode_hash,
    flat,
    text_of,
)
from parley.router.desk import Desk
from parley.router.queues import Queues
from parley.rpc import FailedPrecondition

log = logging.getLogger("parley.router")


class Loop(Part):
    """The background step, safe to run on several routers at once."""

    def __init__(self, ground: Ground, queues: Queues, assignments: Assignments, desk: Desk) -> None:
        super().__init__(ground)
        self.queues = queues
        self.assignments = assignments
        self.desk = desk

    async def tick(self) -> dict[str, int]:
        """One step of the background loop; what it did, by kind."""
        return {
            "policy_reloaded": int(self.ground.reload_policy()),
            "desk_finished": await self.finish_marks(),
            "claims_recovered": await self.recover_claims(),
            "reservations_released": await self.release_stale_reservations(),
            "requeued_offline": await self.expire_offline(),
            "sla_at_risk": await self.escalate_at_risk(),
            "holds_released": await self.queues.release_holds(),
            "aged": await self.queues.age_queues(),
            "drained": await self.drain(),
        }

    async def finish_marks(self) -> int:
        """Desk actions (decline, transfer, escalate, resolve) marked longer than `claim_idle_ms` ago whose
        router died before finishing them (and whose caller never retried): finished as asked."""
        lease = self.settings.claim_idle_ms / 1000
        now = self.clock.now()
        finished = 0
        marked = cast(
            list[tuple[Any, float]],
            await self.redis.zrangebyscore(self.k.leaving(), "-inf", now - lease, withscores=True),
        )
        for raw_cid, since in marked:
            cid = text_of(raw_cid)
            state = decode_hash(await self.redis.hgetall(self.k.state(cid)))
            if not state.get("leaving"):
                await self.scripts.unlist(keys=[self.k.leaving()], args=[cid, repr(float(since))])
                continue
            if now - as_float(state["leaving_at"]) < lease:
                continue  # its router (or a retry) is finishing it
            try:
                await self.desk.finish(cid, state)
            except FailedPrecondition as error:
                log.info("desk action on %s not finished: %s", cid, error)
                continue
            finished += 1
        return finished

    async def _marked_claims(self) -> set[str]:
        """Capacity reserved by marked transfers to an agent: the mark's, not a stale reservation."""
        marked = [text_of(c) for c in await self.redis.zrange(self.k.leaving(), 0, -1)]
        async with lua.pipeline(self.redis) as pipe:
            for cid in marked:
                pipe.hget(self.k.state(cid), "leaving_claim")
            claims = await pipe.execute()
        return {text_of(c) for c in claims if c}

    async def recover_claims(self) -> int:
        """Claims journaled longer than `claim_idle_ms` ago whose claimer died before recording the
        assignment: the conversation goes back to its queue (the claim is revoked, so a late claimer
        cannot record it); if the assignment was recorded, the agent's capacity entry is completed instead."""
        lease = self.settings.claim_idle_ms / 1000
        now = self.clock.now()
        teams = [t.name for t in self.policy.teams]
        async with lua.pipeline(self.redis) as pipe:
            for team in teams:
                pipe.hgetall(self.k.taking(team))
            journals = await pipe.execute()
        recovered = 0
        for team, journal in zip(teams, journals, strict=True):
            for raw_cid, raw_entry in journal.items():
                cid, entry = text_of(raw_cid), text_of(raw_entry)
                agent_id, token, at, *_ = entry.rsplit("|", 5)
                if now - float(at) < lease:
                    continue
                done = await self.scripts.revoke(keys=[self.k.state(cid)], args=[token, agent_id])
                if done:  # recorded: counted in the agent's capacity and feed before the journal closes
                    await self._complete_claim(cid, agent_id, token)
                settled = await self.scripts.settle(
                    keys=self.k.team_keys(team), args=[cid, entry, 0 if done else 1]
                )
                if not settled or done:
                    continue  # another router settled it, or nothing goes back to the queue
                async with lua.pipeline(self.redis) as pipe:
                    pipe.srem(self.k.active(agent_id), token)
                    event = EventRecord(
                        "conversation.requeued",
                        cid,
                        "",
                        now,
                        {"team": team, "agent_id": agent_id, "reason": "the claim was never recorded"},
                    )
                    add_to_pipeline(pipe, self.keys, [event], self.settings.events_maxlen)
                    await pipe.execute()
                recovered += 1
        return recovered

    async def _complete_claim(self, cid: str, agent_id: str, token: str) -> None:
        """Finish an assignment its claimer recorded before it died: what `Assignments.assign` writes after
        the record, from the record (each part once per claim token, so nothing is written twice)."""
        state = decode_hash(await self.redis.hgetall(self.k.state(cid)))
        await self.assignments.complete(cid, token, self.assignment(cid, agent_id, state), "recovered")

    async def release_stale_reservations(self) -> int:
        """Capacity reserved longer than `claim_idle_ms` ago by a claimer that never wrote its claim journal
        (it died in between): given back. A reservation named in a journal is `recover_claims`' to settle."""
        lease = self.settings.claim_idle_ms / 1000
        now = self.clock.now()
        agents = sorted(text_of(a) for a in await self.redis.smembers(self.k.agents()))
        teams = [t.name for t in self.policy.teams]
        async with lua.pipeline(self.redis) as pipe:
            for agent_id in agents:
                pipe.smembers(self.k.active(agent_id))
            for team in teams:
                pipe.hvals(self.k.taking(team))
            raw = await pipe.execute()
        # Journal entries are "agent|token|at|base|since|due".
        journaled = {text_of(entry).split("|")[1] for entries in raw[len(agents) :] for entry in entries}
        journaled |= await self._marked_claims()
        released = 0
        for agent_id, members in zip(agents, raw[: len(agents)], strict=False):
            for token in (text_of(m) for m in members):
                if not token.startswith(RESERVING) or token in journaled:
                    continue
                at = token[len(RESERVING) :].split(":", 1)[0]
                if now - as_float(at) < lease:
                    continue
                released += await self.scripts.release(keys=[self.k.active(agent_id)], args=[token])
        return released

    async def expire_offline(self) -> int:
        """Agents offline for longer than the grace period: their open conversations go back to their queues
        with the priority, enqueue time and deadline they had."""
        now = self.clock.now()
        grace = self.policy.presence.offline_grace_seconds
        gone = [text_of(a) for a in await self.redis.zrangebyscore(self.k.offline(), "-inf", now - grace)]
        requeued = 0
        for agent_id in gone:
            profile = decode_hash(await self.redis.hgetall(self.k.agent(agent_id)))
            if profile.get("presence") == "offline":
                for raw in await self.redis.smembers(self.k.active(agent_id)):
                    cid = text_of(raw)
                    if cid.startswith(RESERVING):
                        continue
                    state = decode_hash(await self.redis.hgetall(self.k.state(cid)))
                    if state.get("leaving"):
                        continue  # a desk action is moving it: finished by its caller or `finish_marks`
                    if state.get("state") != "assigned" or state.get("agent") != agent_id:
                        await self.redis.srem(self.k.active(agent_id), cid)  # a stale entry
                        continue
                    try:
                        await self.desk.requeue_offline(agent_id, cid, grace, state)
                    except FailedPrecondition:
                        continue  # moved meanwhile (resolved, transferred, another router requeued it)
                    requeued += 1
            await self.redis.zrem(self.k.offline(), agent_id)
        return requeued

    async def escalate_at_risk(self) -> int:
        """Waiting conversations whose first-response deadline is within `sla_at_risk_seconds`: once per
        deadline, a `conversation.sla_at_risk` event for supervisors and a move to the next tier."""
        now, policy = self.clock.now(), self.policy
        horizon = now + policy.sla_at_risk_seconds
        teams = [t.name for t in policy.teams]
        async with lua.pipeline(self.redis) as pipe:
            for team in teams:
                pipe.zrangebyscore(self.k.due(team), "-inf", horizon, start=0, num=DRAIN_PER_TEAM)
            at_risk = await pipe.execute()
        flagged = 0
        for team, members in zip(teams, at_risk, strict=True):
            for raw in members:
                cid = text_of(raw)
                state = decode_hash(await self.redis.hgetall(self.k.state(cid)))
                if state.get("state") != "queued" or state.get("team") != team:
                    continue
                if state.get("sla_alerted") == state.get("sla_due"):
                    continue
                due_in = float(state["sla_due"]) - now
                entry = text_of(await self.redis.hget(self.k.held(team), cid) or "")
                if entry:
                    # The SLA comes first: nobody waits for one agent at the cost of the deadline.
                    await self.queues.release_hold(
                        team, cid, entry, f"SLA at risk (due in {due_in:.0f}s): the hold ends"
                    )
                target = policy.escalation_target(team, state.get("topic", ""))
                mark = {"sla_alerted": state["sla_due"]}
                escalated_to = ""
                if target is not None and policy.escalation.on_sla_risk:
                    try:
                        await self.desk.escalate(cid, f"SLA at risk: due in {due_in:.0f}s", state, mark)
                        escalated_to = target.name
                    except FailedPrecondition:
                        continue  # taken by an agent meanwhile
                else:
                    await self.scripts.set_state(keys=[self.k.state(cid)], args=flat(mark))
                event = EventRecord(
                    "conversation.sla_at_risk",
                    cid,
                    "",
                    now,
                    {"team": team, "due_in_seconds": round(due_in, 3), "escalated_to": escalated_to},
                )
                async with lua.pipeline(self.redis) as pipe:
                    add_to_pipeline(pipe, self.keys, [event], self.settings.events_maxlen)
                    await pipe.execute()
                flagged += 1
        return flagged

    async def drain(self) -> int:
        """Hand waiting conversations, best first, to online agents with free capacity. A conversation that
        only its declining agents could take is skipped, not a block for the ones behind it. Reads at most
        DRAIN_PER_TEAM waiting conversations of a team with someone online, whatever the backlog."""
        teams = [t.name for t in self.policy.teams]
        async with lua.pipeline(self.redis) as pipe:
            for team in teams:
                pipe.scard(self.k.online(team))
                pipe.zrevrange(self.k.queue(team), 0, DRAIN_PER_TEAM - 1, withscores=True)
            raw = await pipe.execute()
        candidates = {
            team: waiting
            for team, online, waiting in zip(teams, raw[::2], raw[1::2], strict=True)
            if online and waiting
        }
        if not candidates:
            return 0
        async with lua.pipeline(self.redis) as pipe:
            for team, waiting in candidates.items():
                pipe.zmscore(self.k.since(team), [member for member, _ in waiting])
            arrivals = await pipe.execute()
        handed = 0
        for (team, waiting), since in zip(candidates.items(), arrivals, strict=True):
            # Best score first; on equal scores, the earliest arrival (`since`).
            enqueued = [t or 0.0 for t in since]
            order = sorted(zip(waiting, enqueued, strict=True), key=lambda e: (-e[0][1], e[1]))
            for (member, _), _ in order:
                assignment, anyone_free = await self.assignments._assign_waiting(
                    team, text_of(member), "assigned from the queue"
                )
                if assignment is not None:
                    handed += 1
                elif not anyone_free:
                    break
        return handed
