"""Team queues: putting a conversation in a queue, taking it out (the atomic ownership test), the best
waiting one for an agent, ageing, and the end of sticky holds."""

from __future__ import annotations

import logging
from typing import Any

from parley import lua
from parley.clock import to_timestamp
from parley.events import EventRecord, add_to_pipeline
from parley.router.base import Ground, Part
from parley.router.common import (
    text_of,
)
from parley.v1 import common_pb2, router_pb2

log = logging.getLogger("parley.router")


class Queues(Part):
    """Team queues, one slot per team: every change to a queue goes through a team-slot script."""

    def __init__(self, ground: Ground) -> None:
        super().__init__(ground)
        self._ageing_from: dict[str, int] = {}  # team -> rank in order of arrival the next slice starts at

    def add_on(
        self,
        pipe: lua.Pipeline,
        team: str,
        cid: str,
        priority: float,
        since: float,
        due: float,
        hold: str = "",
        once: str = "",
    ) -> None:
        """Queue on `pipe` the writes that put a conversation in a team's queue (keeping an earlier enqueue
        time), reserved for its previous agent when `hold` ("agent|until") is given, in one step so no other
        agent can take it in between. With `once` (a mark in the team's slot, `RouterKeys.enqueued_once`),
        only the first time the mark is seen: a Route decision's entry written again (its decision still
        pending after a failover that kept the entry) does not put back a conversation taken since. Plain
        writes (`lua.Pipeline.write`): they run after the pipeline's other commands."""
        k = self.k
        commands: list[tuple[Any, ...]] = [
            ("ZADD", k.queue(team), priority, cid),
            ("ZADD", k.base(team), priority, cid),
            ("ZADD", k.since(team), "NX", since, cid),
            ("ZADD", k.due(team), due, cid),
        ]
        if hold:
            commands.append(("HSET", k.held(team), cid, hold))
        if once:
            pipe.once(once, commands)
        else:
            pipe.write_together(commands)

    async def add(self, team: str, cid: str, priority: float, since: float, due: float) -> None:
        """Put a conversation in a team's queue now (`add_on`)."""
        async with lua.pipeline(self.redis) as pipe:
            self.add_on(pipe, team, cid, priority, since, due)
            await pipe.execute()

    async def raise_on(self, pipe: lua.Pipeline, team: str, cid: str, priority: float, due: float) -> None:
        """Queue RAISE.lua on `pipe`: lift a conversation still waiting in the team's queue to `priority` and
        tighten its deadline (a claimed one stays out). Safe to repeat."""
        k = self.k
        keys = [k.queue(team), k.since(team), k.due(team), k.base(team)]
        await self.scripts.raise_entry(keys=keys, args=[cid, priority, due], client=pipe)

    async def take_from(self, team: str, cid: str, agent_id: str = "", token: str = "") -> bool:
        """Remove a waiting conversation; with an agent, journal the claim until the assignment exists."""
        return await self._take_code(team, cid, agent_id, token) == 1

    async def _take_code(self, team: str, cid: str, agent_id: str = "", token: str = "") -> int:
        """TAKE's answer: 1 taken, 0 not waiting, -1 held for another agent."""
        args = [cid, agent_id, token, self.clock.now()]
        return int(await self.scripts.take(keys=self.k.team_keys(team), args=args))

    async def _take_best(self, team: str, agent_id: str, token: str) -> str | None:
        best = await self.scripts.best(
            keys=self.k.team_keys(team), args=["take", agent_id, token, self.clock.now()]
        )
        return text_of(best[0]) if best else None

    async def _best_waiting(self, teams: list[str], agent_id: str) -> tuple[str, str] | None:
        """(team, conversation id) of the best waiting conversation the agent may take (none held for
        another agent): highest priority, then longest wait."""
        now = self.clock.now()
        async with lua.pipeline(self.redis) as pipe:
            for team in teams:
                await self.scripts.best(
                    keys=self.k.team_keys(team), args=["peek", agent_id, "", now], client=pipe
                )
            tops = await pipe.execute()
        candidates = [
            (float(top[1]), -float(top[2]), team, text_of(top[0]))
            for team, top in zip(teams, tops, strict=True)
            if top
        ]
        if not candidates:
            return None
        _, _, team, cid = max(candidates)
        return team, cid

    async def age_queues(self) -> int:
        """Rescore waiting conversations: base priority plus time waited and SLA pressure. Each team's queue
        is aged a slice at a time, in order of arrival, so a tick costs at most `router_ageing_batch`
        conversations per team and Redis never blocks on a whole backlog: a queue within the slice is
        rescored every tick, a longer one over as many ticks as it has slices (its scores then lag by as
        many seconds, a fraction of a point at the default weights)."""
        w = self.policy.priority
        teams = [team.name for team in self.policy.teams]
        starts = [self._ageing_from.get(team, 0) for team in teams]
        async with lua.pipeline(self.redis) as pipe:
            for team, start in zip(teams, starts, strict=True):
                k = self.k
                await self.scripts.age(
                    keys=[k.queue(team), k.since(team), k.due(team), k.base(team)],
                    args=[
                        self.clock.now(),
                        w.ageing_per_minute,
                        w.ageing_max,
                        w.sla_pressure,
                        start,
                        self.settings.router_ageing_batch,
                    ],
                    client=pipe,
                )
            replies = await pipe.execute()
        aged = 0
        for team, start, (rescored, waiting) in zip(teams, starts, replies, strict=True):
            end = start + self.settings.router_ageing_batch
            self._ageing_from[team] = end if end < int(waiting) else 0
            aged += int(rescored)
        return aged

    async def release_hold(self, team: str, cid: str, entry: str, reason: str) -> bool:
        """End a hold (if it is still the one read): the conversation becomes an ordinary queue entry."""
        if not await self.scripts.unhold(keys=[self.k.held(team)], args=[cid, entry]):
            return False
        agent_id = entry.rsplit("|", 1)[0]
        now = self.clock.now()
        audit = router_pb2.RoutingAudit(
            kind="hold_released",
            at=to_timestamp(now),
            action=common_pb2.ROUTE_ACTION_QUEUED,
            team=team,
            agent_id=agent_id,
            why=reason,
        )
        event = EventRecord(
            "conversation.hold_released", cid, "", now, {"team": team, "agent_id": agent_id, "reason": reason}
        )
        async with lua.pipeline(self.redis) as pipe:
            pipe.srem(self.k.holds(agent_id), f"{team}|{cid}")
            pipe.hset(self.k.audit(cid), f"hold_released:{now:.6f}", audit.SerializeToString())
            add_to_pipeline(pipe, self.keys, [event], self.settings.events_maxlen)
            await pipe.execute()
        return True

    async def release_holds(self) -> int:
        """Holds that ended (their time is up, or their agent has been offline beyond the grace period):
        the conversations become ordinary queue entries, which the drain then hands out."""
        now, grace = self.clock.now(), self.policy.presence.offline_grace_seconds
        teams = [t.name for t in self.policy.teams]
        async with lua.pipeline(self.redis) as pipe:
            for team in teams:
                pipe.hgetall(self.k.held(team))
            tables = await pipe.execute()
        gone: dict[str, bool] = {}
        released = 0
        for team, table in zip(teams, tables, strict=True):
            for raw_cid, raw_entry in table.items():
                cid, entry = text_of(raw_cid), text_of(raw_entry)
                agent_id, until = entry.rsplit("|", 1)
                if float(until) <= now:
                    reason = f"the hold for agent {agent_id} ran out; any agent of {team} may take it"
                else:
                    if agent_id not in gone:
                        presence = text_of(await self.redis.hget(self.k.agent(agent_id), "presence") or "")
                        since = await self.redis.zscore(self.k.offline(), agent_id)
                        gone[agent_id] = presence in ("", "offline") and (
                            since is None or now - float(since) >= grace
                        )
                    if not gone[agent_id]:
                        continue
                    reason = f"agent {agent_id} has been offline for more than {grace:g}s"
                released += await self.release_hold(team, cid, entry, reason)
        return released

    async def give_back(self, team: str, cid: str, token: str) -> None:
        """A claim that may not be recorded (revoked, or its conversation is being merged away) puts the
        conversation back in its queue at once, rather than after `claim_idle_ms` (`recover_claims`)."""
        if not team:
            return
        entry = text_of(await self.redis.hget(self.k.taking(team), cid) or "")
        if entry and entry.split("|")[1] == token:
            await self.scripts.settle(keys=self.k.team_keys(team), args=[cid, entry, 1])
