"""Read-only views: queue status, staffing (Erlang C), an agent's assignment feed and a conversation's
routing audit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from parley import lua
from parley.clock import from_timestamp
from parley.router import erlang
from parley.router.base import Part
from parley.router.common import (
    RESERVING,
    bytes_of,
    decode_hash,
    text_of,
)
from parley.router.roster import roster_of_team
from parley.rpc import InvalidArgument, NotFound
from parley.v1 import router_pb2

log = logging.getLogger("parley.router")


class Views(Part):
    """Read-only: queue status, staffing, an agent's assignments and a conversation's routing audit."""

    async def list_queues(self) -> list[router_pb2.QueueStatus]:
        now = self.clock.now()
        teams = [t.name for t in self.policy.teams]
        async with lua.pipeline(self.redis) as pipe:
            for team in teams:
                pipe.zcard(self.k.queue(team))
                pipe.zrange(self.k.since(team), 0, 0, withscores=True)
                pipe.zcount(self.k.due(team), "-inf", now + self.policy.sla_at_risk_seconds)
                pipe.scard(self.k.online(team))
                pipe.zcount(self.k.due(team), "-inf", now)
            raw = await pipe.execute()
        roster = await self._roster()
        out = []
        for n, team in enumerate(teams):
            depth, oldest, at_risk, online, breached = raw[5 * n : 5 * n + 5]
            staff = roster_of_team(roster, team)
            out.append(
                router_pb2.QueueStatus(
                    team=team,
                    depth=depth,
                    oldest_wait_seconds=max(0.0, now - oldest[0][1]) if oldest else 0.0,
                    sla_at_risk=at_risk,
                    agents_online=online,
                    sla_breached=breached,
                    agents_available=staff.available,
                    agents_away=staff.away,
                    occupancy=staff.occupancy,
                )
            )
        return out

    async def _roster(self) -> list[tuple[dict[str, str], int]]:
        """Every agent's profile and the number of conversations they hold, in two round trips."""
        agents = sorted(text_of(a) for a in await self.redis.smembers(self.k.agents()))
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent_id in agents:
                pipe.hgetall(self.k.agent(agent_id))
                pipe.scard(self.k.active(agent_id))
            raw = await pipe.execute()
        return [(decode_hash(raw[2 * i]), int(raw[2 * i + 1])) for i in range(len(agents))]

    async def get_staffing(
        self, service_level: float, target_answer_seconds: float
    ) -> list[router_pb2.QueueStaffing]:
        """Agents needed per team (Erlang C) from the arrivals of the trailing window and the mean
        handling time of resolved conversations (the policy's default until there is one)."""
        problems = []
        if not 0 < service_level < 1:
            problems.append(("service_level", "must be between 0 and 1, exclusive"))
        if target_answer_seconds < 0:
            problems.append(("target_answer_seconds", "must not be negative"))
        if problems:
            raise InvalidArgument(problems)
        now, window = self.clock.now(), self.policy.staffing.window_seconds
        teams = [t.name for t in self.policy.teams]
        async with lua.pipeline(self.redis) as pipe:
            for team in teams:
                pipe.zcount(self.k.arrivals(team), f"({now - window}", "+inf")
                pipe.hgetall(self.k.handled(team))
                pipe.scard(self.k.online(team))
            raw = await pipe.execute()
        out = []
        for n, team in enumerate(teams):
            arrivals, handled, online = raw[3 * n], decode_hash(raw[3 * n + 1]), raw[3 * n + 2]
            count = int(handled.get("count", 0))
            aht = (
                float(handled["seconds"]) / count if count else self.policy.staffing.default_handling_seconds
            )
            rate = arrivals / window
            agents, level = erlang.agents_needed(rate, aht, target_answer_seconds, service_level)
            out.append(
                router_pb2.QueueStaffing(
                    team=team,
                    arrivals_per_hour=rate * 3600,
                    mean_handling_seconds=aht,
                    agents_needed=agents,
                    expected_service_level=level,
                    agents_online=online,
                )
            )
        return out

    async def watch(self, agent_id: str, poll_ms: int = 100) -> AsyncIterator[router_pb2.Assignment]:
        """The agent's current assignments, then each new one as it is made (the feed is polled every
        `poll_ms` with non-blocking reads: a blocking one would hold a pooled connection per watcher)."""
        await self.agent_profile(agent_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.smembers(self.k.active(agent_id))
            pipe.xrevrange(self.k.feed(agent_id), count=1)
            active, last = await pipe.execute()
        position = text_of(last[0][0]) if last else "0-0"
        for cid in sorted(text_of(m) for m in active if not text_of(m).startswith(RESERVING)):
            state = decode_hash(await self.redis.hgetall(self.k.state(cid)))
            yield self.assignment(cid, agent_id, state)
        while True:
            entries: Any = await self.redis.xread({self.k.feed(agent_id): position}, count=100)
            if not entries:
                await asyncio.sleep(poll_ms / 1000)
            for _, messages in entries or []:
                for entry_id, fields in messages:
                    position = text_of(entry_id)
                    yield router_pb2.Assignment.FromString(fields[b"assignment"])

    async def get_audit(self, conversation_id: str) -> list[router_pb2.RoutingAudit]:
        """Every decision about the conversation, oldest first."""
        raw = await self.redis.hgetall(self.k.audit(conversation_id))
        if not raw:
            raise NotFound(f"conversation {conversation_id} has no routing decisions")
        entries = [router_pb2.RoutingAudit.FromString(bytes_of(v)) for v in raw.values()]
        # At one instant: the route, then a hold placed or ended, then what followed from them.
        order = {"route": 0, "hold": 1, "hold_released": 2}
        return sorted(entries, key=lambda e: (from_timestamp(e.at), order.get(e.kind, 3)))
