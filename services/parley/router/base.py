"""The router's shared ground (settings, Redis, key names, clock, Lua scripts, the policy in force, reloaded
when its file changes) and `Part`, what each part of the router starts from: the ground, an agent's profile
and a conversation's router state."""

from __future__ import annotations

import logging
from typing import Any

from parley import lua
from parley.clock import Clock, to_timestamp
from parley.config import Settings
from parley.router.common import (
    decode_hash,
)
from parley.router.keys import RouterKeys
from parley.router.policy import Policy, PolicyError, load_policy, policy_path
from parley.rpc import FailedPrecondition, InvalidArgument, NotFound
from parley.store import Keys, Redis, Replicas
from parley.v1 import router_pb2

log = logging.getLogger("parley.router")


class Scripts:
    """The router's Lua scripts (`*.lua` beside this module), registered once on the router's client."""

    def __init__(self, redis: Redis) -> None:
        def script(name: str) -> lua.Script:
            return lua.register(redis, "parley.router", name)

        self.route = script("route")
        self.set_state = script("set_state")
        self.raise_entry = script("raise")
        self.take = script("take")
        self.best = script("best")
        self.reserve = script("reserve")
        self.commit = script("commit")
        self.age = script("age")
        self.assign = script("assign")
        self.revoke = script("revoke")
        self.settle = script("settle")
        self.unhold = script("unhold")
        self.withdraw = script("withdraw")
        self.release = script("release")
        self.leave = script("leave")
        self.relet = script("relet")
        self.left = script("left")
        self.unlist = script("unlist")


class Ground:
    """What every part of the router shares: settings, Redis, key names, clock, scripts, and the policy in
    force (one object, so a reload is seen by every part at once)."""

    def __init__(
        self, settings: Settings, redis: Redis, keys: Keys, clock: Clock, policy: Policy | None = None
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.k = RouterKeys(keys)
        self.clock = clock
        self.scripts = Scripts(redis)
        # On a cluster, the steps of an assignment, a desk action or a merge span slots: each is on a replica
        # before the next is made.
        self.replicas = Replicas(settings, redis)
        self.policy_source = policy_path(settings.policy_file)
        self._policy_mtime = self._mtime()
        self.policy = policy or load_policy(settings.policy_file)

    def _mtime(self) -> int:
        try:
            return self.policy_source.stat().st_mtime_ns
        except OSError:
            return 0

    def reload_policy(self, force: bool = False) -> bool:
        """Re-read the policy file if it changed on disk (always when `force`); True when the policy in force
        changed. A bad file is refused: the running policy stays, the problems are logged, and with `force`
        raised as InvalidArgument."""
        mtime = self._mtime()
        if not force and mtime == self._policy_mtime:
            return False
        self._policy_mtime = mtime  # a bad file is reported once, not on every tick
        try:
            policy = load_policy(self.policy_source)
        except PolicyError as error:
            log.warning("policy not reloaded, the running one stays: %s", error)
            if force:
                raise InvalidArgument(error.problems) from None
            return False
        except OSError as error:
            log.warning("policy not reloaded: %s", error)
            if force:
                raise FailedPrecondition(f"cannot read {self.policy_source}: {error}") from None
            return False
        if policy == self.policy:
            return False
        self.policy = policy
        log.info("policy reloaded from %s", self.policy_source)
        return True


class Part:
    """A part of the router: the shared ground under short names, and the reads every part needs."""

    def __init__(self, ground: Ground) -> None:
        self.ground = ground
        self.settings = ground.settings
        self.redis = ground.redis
        self.keys = ground.keys
        self.k = ground.k
        self.replicas = ground.replicas
        self.clock = ground.clock
        self.scripts = ground.scripts

    @property
    def policy(self) -> Policy:
        return self.ground.policy

    async def agent_profile(self, agent_id: str) -> dict[str, Any]:
        raw = decode_hash(await self.redis.hgetall(self.k.agent(agent_id)))
        if not raw:
            raise NotFound(f"agent {agent_id} has never set a presence")
        return {
            "presence": raw.get("presence", "offline"),
            "teams": [t for t in raw.get("teams", "").split(",") if t],
            "capacity": int(raw.get("capacity", "1")),
        }

    async def routed_state(self, cid: str) -> dict[str, str]:
        state = decode_hash(await self.redis.hgetall(self.k.state(cid)))
        if not state.get("state"):
            raise NotFound(f"conversation {cid} has not been routed to a team")
        into = state.get("merged_into") or state.get("merging_into")
        if into:
            raise FailedPrecondition(f"conversation {cid} was merged into {into}")
        return state

    @staticmethod
    def assignment(cid: str, agent_id: str, state: dict[str, str]) -> router_pb2.Assignment:
        return router_pb2.Assignment(
            conversation_id=cid,
            agent_id=agent_id,
            team=state.get("team", ""),
            priority=float(state.get("priority", 0)),
            assigned_at=to_timestamp(float(state.get("assigned_at", 0))),
            sla_due_at=to_timestamp(float(state.get("sla_due", 0))),
            reason=state.get("reason", ""),
        )
