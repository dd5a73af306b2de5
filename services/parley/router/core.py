"""The router: routing decisions, team queues, the agent desk (claim, decline, transfer, escalate, resolve,
presence), queue status and staffing. `Router` wires one part per responsibility, each in its own module,
and offers the operations the servicer, the merges follower and the tools call:

- `decide`: the routing decision, agent ranking and sticky-hold choice as pure functions (no Redis);
- `base`: the shared ground (settings, Redis, keys, clock, scripts, the policy in force);
- `queues` (`Queues`): team queues, taking a conversation out, ageing, the end of sticky holds;
- `assignment` (`Assignments`): capacity, claims, recording and withdrawing assignments;
- `holds` (`Arrivals`): a Route batch's newly queued conversations, assigned at once or held;
- `routing` (`Routing`): Route, its stored decisions and their effects;
- `desk` (`Desk`): presence, decline, transfer, escalation, resolution;
- `loop` (`Loop`): the background step `tick()`;
- `views` (`Views`): queue status, staffing, the assignment feed, the routing audit.

State per conversation (hash `router:conv:{id}:state`, see `keys`): state (queued, assigned, bot, resolved,
merged), team, tier, priority, sla_due, enqueued_at, agent, assigned_at, reason (of the assignment), topic,
language, bot_replied, resolved_at, last_agent (for sticky assignment), declined_by, sla_alerted (the deadline
already escalated for), claim_token / revoked (claim recovery), pending:<message id> (a Route decision whose
effects are not written yet), merging_into / merged_into / merge_action (a merge fencing, then pointing at,
the surviving conversation: see `merges`), leaving / leaving_agent / leaving_token / leaving_at /
leaving_since / leaving_args / leaving_claim (a desk action's mark while it moves the conversation: see
`desk`), version.

A reopened conversation whose previous agent is busy, away or briefly offline waits for them (the sticky
hold): its queue entry is reserved for that agent in the team's `held` hash, written with the entry itself,
and the queue scripts give it to nobody else until the hold ends. Taking a conversation away from an agent
(re-queue after the grace period, transfer, escalation, merge) pushes a withdrawn assignment to their feed in
the same step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from parley.clock import Clock
from parley.config import Settings
from parley.router.assignment import Assignments
from parley.router.base import Ground
from parley.router.common import PRESENCES
from parley.router.desk import Desk
from parley.router.holds import Arrivals
from parley.router.loop import Loop
from parley.router.policy import Policy
from parley.router.queues import Queues
from parley.router.routing import Routing
from parley.router.views import Views
from parley.store import Keys, Redis
from parley.v1 import common_pb2, router_pb2

__all__ = ["PRESENCES", "Router"]


class Router:
    """The router's parts, wired together, and its operations; the server runs `tick()` in a loop, tests
    call it with a manual clock."""

    def __init__(
        self, settings: Settings, redis: Redis, keys: Keys, clock: Clock, policy: Policy | None = None
    ) -> None:
        self.ground = ground = Ground(settings, redis, keys, clock, policy)
        self.settings, self.redis, self.keys, self.k, self.clock = settings, redis, keys, ground.k, clock
        self.queues = Queues(ground)
        self.assignments = Assignments(ground, self.queues)
        self.arrivals = Arrivals(ground, self.queues, self.assignments)
        self.routing = Routing(ground, self.queues, self.assignments, self.arrivals)
        self.desk = Desk(ground, self.queues, self.assignments)
        self.loop = Loop(ground, self.queues, self.assignments, self.desk)
        self.views = Views(ground)

    @property
    def policy(self) -> Policy:
        return self.ground.policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        """Put a policy in force for every part at once (as a reload does)."""
        self.ground.policy = policy

    @property
    def policy_source(self) -> Path:
        return self.ground.policy_source

    def reload_policy(self, force: bool = False) -> bool:
        return self.ground.reload_policy(force)

    # Routing.
    async def route(self, items: list[router_pb2.RouteItem]) -> list[common_pb2.RoutingDecision]:
        return await self.routing.route(items)

    async def current(self, cids: list[str]) -> dict[str, str]:
        return await self.routing.current(cids)

    # The desk.
    async def set_presence(
        self,
        agent_id: str,
        presence: str,
        teams: list[str] | None = None,
        capacity: int | None = None,
        skills: list[str] | None = None,
    ) -> list[router_pb2.Assignment]:
        return await self.desk.set_presence(agent_id, presence, teams, capacity, skills)

    async def claim(self, agent_id: str, conversation_id: str = "") -> router_pb2.Assignment | None:
        return await self.assignments.claim(agent_id, conversation_id)

    async def decline(self, agent_id: str, conversation_id: str, reason: str = "") -> str:
        return await self.desk.decline(agent_id, conversation_id, reason)

    async def transfer(
        self, conversation_id: str, to_team: str = "", to_agent_id: str = "", reason: str = ""
    ) -> common_pb2.RoutingDecision:
        return await self.desk.transfer(conversation_id, to_team, to_agent_id, reason)

    async def escalate(self, conversation_id: str, reason: str = "") -> common_pb2.RoutingDecision:
        return await self.desk.escalate(conversation_id, reason)

    async def resolve(self, conversation_id: str, agent_id: str = "") -> float:
        return await self.desk.resolve(conversation_id, agent_id)

    # Views and the loop.
    async def list_queues(self) -> list[router_pb2.QueueStatus]:
        return await self.views.list_queues()

    async def get_staffing(
        self, service_level: float, target_answer_seconds: float
    ) -> list[router_pb2.QueueStaffing]:
        return await self.views.get_staffing(service_level, target_answer_seconds)

    def watch(self, agent_id: str, poll_ms: int = 100) -> AsyncIterator[router_pb2.Assignment]:
        return self.views.watch(agent_id, poll_ms)

    async def get_audit(self, conversation_id: str) -> list[router_pb2.RoutingAudit]:
        return await self.views.get_audit(conversation_id)

    async def tick(self) -> dict[str, int]:
        return await self.loop.tick()
