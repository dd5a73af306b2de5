"""A day of synthetic traffic replayed against a roster through the real router (its Redis scripts, queues and
background loop) on a simulated clock.

Agents learn of their assignments the way a desk does, from their assignment feeds; they resolve each after a
random handling time. Some resolved conversations reopen a little later (the customer writes again), which
exercises the sticky hold: the report says how many came back to the agent who had them. Every loop step the
state in Redis is checked for a conversation held by two agents at once, or held while still waiting in a
queue (a double assignment).
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from parley import store
from parley.clock import ManualClock, from_timestamp
from parley.config import Settings
from parley.messages import INTENTS_BY_NAME as INTENTS
from parley.router.common import text_of
from parley.router.core import Router
from parley.router.keys import RouterKeys
from parley.rpc import FailedPrecondition
from parley.v1 import common_pb2, router_pb2

HERE = Path(__file__).parent
DEFAULT_ROSTER = HERE / "sim_roster.yaml"
DEFAULT_TRAFFIC = HERE / "sim_traffic.yaml"
MIDNIGHT = 1_699_920_000.0  # a UTC midnight: the simulated day starts here
URGENCY_REASONS = ["safety", "fraud", "legal", "stranded"]


@dataclass(order=True)
class Arrival:
    at: float
    cid: str = field(compare=False)
    item: router_pb2.RouteItem = field(compare=False)
    follow_up: router_pb2.RouteItem | None = field(default=None, compare=False)


@dataclass
class Episode:
    """One stretch of a conversation from being queued to its first assignment."""

    team: str
    queued_at: float
    sla_due: float
    assigned_at: float | None = None


@dataclass
class AgentClock:
    online_seconds: float = 0.0
    busy_seconds: float = 0.0  # conversation-seconds held, divided by capacity when reported


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    names = list(weights)
    return rng.choices(names, [float(weights[n]) for n in names])[0]


def generate_traffic(traffic: dict[str, Any], seed: int, hours: float) -> list[Arrival]:
    """The day's conversations, seeded: first messages, and a second one for some answered by the bot."""
    rng = random.Random(seed)
    hourly = [float(w) for w in traffic["hourly"]]
    total = int(traffic["conversations"] * sum(hourly[: math.ceil(hours)]) / sum(hourly))
    out = []
    for n in range(total):
        hour = rng.choices(range(min(24, math.ceil(hours))), hourly[: math.ceil(hours)])[0]
        at = MIDNIGHT + (hour + rng.random()) * 3600
        if at >= MIDNIGHT + hours * 3600:
            continue
        cid = f"sim-{n}"
        intent = _pick(rng, traffic["intents"])
        topic = _pick(rng, traffic["topics"]) if intent in ("question", "complaint") else ""
        triage = common_pb2.Triage(
            message_id=f"x:{cid}-1",
            intent=INTENTS[intent],
            topic=topic,
            language=_pick(rng, traffic["languages"]),
        )
        triage.scores.add(intent=INTENTS[intent], probability=0.6 + 0.4 * rng.random())
        if intent == "urgent":
            triage.urgency_reasons.append(rng.choice(URGENCY_REASONS))
        bot = intent == "question" and rng.random() < traffic["bot_answer_share"]
        if bot:
            triage.bot_answer.CopyFrom(
                common_pb2.BotAnswer(
                    answer_id="kb", text="See our help page.", confidence=traffic["bot_confidence"]
                )
            )
        followers = int(rng.lognormvariate(math.log(traffic["followers_median"]), traffic["followers_sigma"]))
        public = rng.random() < traffic["public_share"]
        message = common_pb2.InboundMessage(
            channel=common_pb2.CHANNEL_X,
            visibility=common_pb2.VISIBILITY_PUBLIC if public else common_pb2.VISIBILITY_PRIVATE,
            message_id=f"x:{cid}-1",
            direction=common_pb2.DIRECTION_INBOUND,
            author=common_pb2.Author(id=cid, follower_count=followers),
            text="...",
        )
        tier = _pick(rng, traffic["customer_tiers"])
        item = router_pb2.RouteItem(conversation_id=cid, message=message, triage=triage, customer_tier=tier)
        follow_up = None
        if bot and rng.random() < traffic["writes_again_after_bot"]:
            follow_up = router_pb2.RouteItem()
            follow_up.CopyFrom(item)
            follow_up.message.message_id = follow_up.triage.message_id = f"x:{cid}-2"
            follow_up.triage.intent = INTENTS["complaint"]
            follow_up.triage.ClearField("bot_answer")
            follow_up.triage.ClearField("scores")
        out.append(Arrival(at, cid, item, follow_up))
    return sorted(out)


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Simulation:
    def __init__(
        self,
        settings: Settings,
        roster: dict[str, Any],
        traffic: dict[str, Any],
        seed: int = 7,
        hours: float = 24.0,
        step: float = 5.0,
        tick: float = 15.0,
        answer_within: float = 60.0,
    ) -> None:
        self.settings = settings.model_copy(update={"key_prefix": f"sim{uuid.uuid4().hex[:10]}"})
        self.roster, self.traffic = roster, traffic
        self.seed, self.hours, self.step, self.tick_every = seed, hours, step, tick
        self.answer_within = answer_within
        self.rng = random.Random(seed + 1)
        self.clock = ManualClock(MIDNIGHT)
        self.redis = store.connect(self.settings)
        self.keys = store.keys_for(self.settings)
        self.k = RouterKeys(self.keys)
        self.router = Router(self.settings, self.redis, self.keys, self.clock)
        self.episodes: dict[str, Episode] = {}
        self.done: list[Episode] = []
        self.holding: dict[str, tuple[str, float]] = {}  # cid -> (agent, since)
        self.resolutions: list[tuple[float, str, str]] = []
        self.feed_positions = {a["id"]: "0-0" for a in roster["agents"]}
        self.usage = {a["id"]: AgentClock() for a in roster["agents"]}
        self.presence = {a["id"]: "offline" for a in roster["agents"]}
        self.counts: dict[str, Any] = {"bot_replies": 0, "no_action": 0, "double_assignments": 0, "loop": {}}
        self.items: dict[str, router_pb2.RouteItem] = {}
        self.reopens: list[tuple[float, int, str, router_pb2.RouteItem]] = []
        self.previous: dict[str, str] = {}  # reopened conversation -> the agent who resolved it
        self.reopened = {"reopened": 0, "held": 0, "back_with_previous_agent": 0}
        self.end = MIDNIGHT + hours * 3600
        self.doubles: set[str] = set()
        self.total = 0

    async def close(self) -> None:
        await store.drop_namespace(self.redis, self.settings.key_prefix)
        await self.redis.aclose()

    # ---------------------------------------------------------------------------------------------- agents

    def _on_shift(self, agent: dict[str, Any], hour: float) -> bool:
        start, end = agent["shift"]
        return bool(start <= hour < end)

    def _dropped(self, agent_id: str, hour: float) -> bool:
        return any(
            d["agent"] == agent_id and d["at"] <= hour < d["at"] + d["minutes"] / 60
            for d in self.roster.get("dropouts", [])
        )

    async def _presence(self, now: float) -> None:
        hour = (now - MIDNIGHT) / 3600
        for agent in self.roster["agents"]:
            aid = agent["id"]
            if self._dropped(aid, hour):
                wanted = "offline"
            elif self._on_shift(agent, hour):
                wanted = "online"
            elif any(holder == aid for holder, _ in self.holding.values()):
                wanted = "away"  # the shift is over: finish what is open, take nothing new
            else:
                wanted = "offline"
            if wanted != self.presence[aid]:
                await self.router.set_presence(
                    aid, wanted, agent["teams"], agent["capacity"], agent.get("skills") or None
                )
                self.presence[aid] = wanted

    async def _read_feeds(self, now: float) -> None:
        owner = {self.k.feed(a): a for a in self.feed_positions}
        # One XREAD per feed, pipelined: on a cluster the feeds live in different slots.
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent_id, position in self.feed_positions.items():
                pipe.xread({self.k.feed(agent_id): position}, count=1000)
            replies = await pipe.execute()
        for stream, entries in (item for reply in replies for item in reply or []):
            agent_id = owner[text_of(stream)]
            for entry_id, fields in entries:
                self.feed_positions[agent_id] = text_of(entry_id)
                assignment = router_pb2.Assignment.FromString(fields[b"assignment"])
                cid = assignment.conversation_id
                if assignment.withdrawn:
                    # Taken away from the agent (offline too long, say): they stop working on it.
                    if self.holding.get(cid, ("",))[0] == agent_id:
                        self._release(cid, now)
                    continue
                episode = self.episodes.get(cid)
                if episode is not None and episode.assigned_at is None:
                    episode.assigned_at = from_timestamp(assignment.assigned_at)
                    episode.team = assignment.team
                if self.previous.get(cid):
                    self.reopened["back_with_previous_agent"] += self.previous.pop(cid) == agent_id
                if cid in self.holding:
                    self._release(cid, now)  # it was taken from its previous agent (offline too long)
                self.holding[cid] = (agent_id, now)
                mean = self.traffic["handling_seconds"].get(
                    assignment.team, self.traffic["handling_seconds"]["default"]
                )
                heapq.heappush(self.resolutions, (now + self.rng.expovariate(1 / mean), cid, agent_id))

    async def _resolve_due(self, now: float) -> None:
        while self.resolutions and self.resolutions[0][0] <= now:
            _, cid, agent_id = heapq.heappop(self.resolutions)
            if self.holding.get(cid, ("",))[0] != agent_id:
                continue  # moved away from this agent meanwhile
            try:
                await self.router.resolve(cid, agent_id)
            except FailedPrecondition:
                # Re-queued (offline past the grace period) before the agent finished: it waits again.
                self._release(cid, now)
                continue
            self._release(cid, now)
            episode = self.episodes.pop(cid, None)
            if episode is not None:
                self.done.append(episode)
            self._maybe_reopen(cid, agent_id, now)

    def _maybe_reopen(self, cid: str, agent_id: str, now: float) -> None:
        """The customer writes again a few minutes after some resolutions: a complaint, to a person."""
        at = now + 60 + self.rng.random() * 840
        if cid not in self.items or at >= self.end:
            return
        if self.rng.random() >= float(self.traffic.get("reopen_after_resolve", 0.0)):
            return
        n = len(self.reopens) + self.reopened["reopened"]
        item = router_pb2.RouteItem()
        item.CopyFrom(self.items[cid])
        item.message.message_id = item.triage.message_id = f"x:{cid}-r{n}"
        item.triage.intent = INTENTS["complaint"]
        item.triage.ClearField("bot_answer")
        item.triage.ClearField("scores")
        self.previous[cid] = agent_id
        heapq.heappush(self.reopens, (at, n, cid, item))

    def _release(self, cid: str, now: float) -> None:
        agent_id, since = self.holding.pop(cid)
        self.usage[agent_id].busy_seconds += now - since

    async def _check_doubles(self) -> None:
        """A conversation in two agents' active sets, or in an active set and a queue, is a double."""
        agents = list(self.feed_positions)
        teams = [t.name for t in self.router.policy.teams]
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent_id in agents:
                pipe.smembers(self.k.active(agent_id))
            for team in teams:
                pipe.zrange(self.k.queue(team), 0, -1)
            raw = await pipe.execute()
        held: dict[str, int] = {}
        for members in raw[: len(agents)]:
            for m in members:
                cid = text_of(m)
                if not cid.startswith("reserving:"):
                    held[cid] = held.get(cid, 0) + 1
        waiting = {text_of(m) for members in raw[len(agents) :] for m in members}
        for cid, n in held.items():
            if (n > 1 or cid in waiting) and cid not in self.doubles:
                self.doubles.add(cid)
        self.counts["double_assignments"] = len(self.doubles)

    # ---------------------------------------------------------------------------------------------- run

    async def _route(self, items: list[router_pb2.RouteItem], now: float) -> None:
        for n in range(0, len(items), 256):
            for decision in await self.router.route(items[n : n + 256]):
                cid = decision.conversation_id
                if decision.action == common_pb2.ROUTE_ACTION_BOT_REPLY:
                    self.counts["bot_replies"] += 1
                elif decision.action == common_pb2.ROUTE_ACTION_NO_ACTION:
                    self.counts["no_action"] += 1
                elif cid not in self.episodes and decision.action in (
                    common_pb2.ROUTE_ACTION_QUEUED,
                    common_pb2.ROUTE_ACTION_ASSIGNED,
                ):
                    self.episodes[cid] = Episode(decision.team, now, from_timestamp(decision.sla_due_at))
                    if cid in self.previous and decision.action == common_pb2.ROUTE_ACTION_QUEUED:
                        self.reopened["held"] += bool(
                            await self.redis.hexists(self.k.held(decision.team), cid)
                        )

    async def run(self) -> dict[str, Any]:
        arrivals = generate_traffic(self.traffic, self.seed, self.hours)
        self.total = len(arrivals)
        self.items = {a.cid: a.item for a in arrivals}
        pending: list[tuple[float, int, router_pb2.RouteItem]] = []
        for n, a in enumerate(arrivals):
            pending.append((a.at, n, a.item))
            if a.follow_up is not None:
                pending.append((a.at + 60 + self.rng.random() * 540, n, a.follow_up))
        pending.sort(key=lambda p: (p[0], p[1]))
        end = MIDNIGHT + self.hours * 3600
        now, index, next_tick = MIDNIGHT, 0, MIDNIGHT
        while now < end or self.holding:
            self.clock.set(now)
            if now < end:
                await self._presence(now)
            batch = []
            while index < len(pending) and pending[index][0] <= now:
                batch.append(pending[index][2])
                index += 1
            while self.reopens and self.reopens[0][0] <= now:
                batch.append(heapq.heappop(self.reopens)[3])
                self.reopened["reopened"] += 1
            if batch:
                await self._route(batch, now)
            await self._read_feeds(now)
            await self._resolve_due(now)
            await self._read_feeds(now)
            if now >= next_tick:
                for kind, n in (await self.router.tick()).items():
                    self.counts["loop"][kind] = self.counts["loop"].get(kind, 0) + n
                await self._read_feeds(now)
                await self._check_doubles()
                next_tick = now + self.tick_every
            for aid, state in self.presence.items():
                if state in ("online", "away"):
                    self.usage[aid].online_seconds += self.step
            now += self.step
            if now > end + 6 * 3600:
                break  # whatever is still open six hours after the day ends stays open
        await self._check_doubles()
        return self.report(end)

    def report(self, end: float) -> dict[str, Any]:
        teams: dict[str, dict[str, Any]] = {}
        still_waiting = [e for e in self.episodes.values() if e.assigned_at is None]
        for e in [*self.done, *self.episodes.values()]:
            teams.setdefault(e.team, {"waits": [], "sla_met": 0, "unanswered": 0})
            row = teams[e.team]
            if e.assigned_at is None:
                row["unanswered"] += 1
                continue
            row["waits"].append(e.assigned_at - e.queued_at)
            row["sla_met"] += e.assigned_at <= e.sla_due
        capacity = {a["id"]: a["capacity"] for a in self.roster["agents"]}
        out_teams = {}
        for team, row in sorted(teams.items()):
            waits = row["waits"]
            offered = len(waits) + row["unanswered"]
            members = [a["id"] for a in self.roster["agents"] if team in a["teams"]]
            online = sum(self.usage[a].online_seconds * capacity[a] for a in members)
            busy = sum(self.usage[a].busy_seconds for a in members)
            out_teams[team] = {
                "conversations": offered,
                "answered": len(waits),
                "service_level": round(sum(w <= self.answer_within for w in waits) / offered, 4)
                if offered
                else 1.0,
                "sla_met": round(row["sla_met"] / offered, 4) if offered else 1.0,
                "mean_wait_seconds": round(sum(waits) / len(waits), 1) if waits else 0.0,
                "p90_wait_seconds": round(_percentile(waits, 0.9), 1),
                "max_wait_seconds": round(max(waits), 1) if waits else 0.0,
                "agent_utilisation": round(busy / online, 4) if online else 0.0,
                "agents": len(members),
            }
        agents = {
            a: round(u.busy_seconds / (u.online_seconds * capacity[a]), 4) if u.online_seconds else 0.0
            for a, u in self.usage.items()
        }
        return {
            "hours": self.hours,
            "seed": self.seed,
            "answer_within_seconds": self.answer_within,
            "conversations": self.total,
            "human_conversations": len(self.done) + len(self.episodes),
            "bot_replies": self.counts["bot_replies"],
            "no_action": self.counts["no_action"],
            "still_waiting_at_end": len(still_waiting),
            "double_assignments": self.counts["double_assignments"],
            "reopened": self.reopened,
            "loop": self.counts["loop"],
            "teams": out_teams,
            "agent_utilisation": agents,
        }


def load_yaml(path: Path | None, default: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((path or default).read_text(encoding="utf-8"))
    return loaded
