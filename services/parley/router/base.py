"""The router's shared ground: settings, Redis, key names, clock, the policy in force (reloaded when its file
changes) and the Lua scripts; reading an agent's profile and a conversation's router state."""

from __future__ import annotations

import logging
from typing import Any

from parley import lua
from parley.clock import Clock, to_timestamp
from parley.config import Settings
from parley.router.common import (
    decode,
)
from parley.router.keys import RouterKeys
from parley.router.policy import Policy, PolicyError, load_policy, policy_path
from parley.rpc import FailedPrecondition, InvalidArgument, NotFound
from parley.store import Keys, Redis
from parley.v1 import router_pb2

log = logging.getLogger("parley.router")


class RouterBase:
    def __init__(
        self, settings: Settings, redis: Redis, keys: Keys, clock: Clock, policy: Policy | None = None
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.k = RouterKeys(keys)
        self.clock = clock
        self.policy_source = policy_path(settings.policy_file)
        self._policy_mtime = self._mtime()
        self.policy = policy or load_policy(settings.policy_file)
        self._route = lua.register(redis, "parley.router", "route")
        self._set_state = lua.register(redis, "parley.router", "set_state")
        self._enqueue = lua.register(redis, "parley.router", "enqueue")
        self._take = lua.register(redis, "parley.router", "take")
        self._best = lua.register(redis, "parley.router", "best")
        self._reserve = lua.register(redis, "parley.router", "reserve")
        self._commit = lua.register(redis, "parley.router", "commit")
        self._age = lua.register(redis, "parley.router", "age")
        self._assign_script = lua.register(redis, "parley.router", "assign")
        self._revoke = lua.register(redis, "parley.router", "revoke")
        self._settle = lua.register(redis, "parley.router", "settle")
        self._unhold = lua.register(redis, "parley.router", "unhold")
        self._withdraw_script = lua.register(redis, "parley.router", "withdraw")
        self._release = lua.register(redis, "parley.router", "release")

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

    async def agent_profile(self, agent_id: str) -> dict[str, Any]:
        raw = decode(await self.redis.hgetall(self.k.agent(agent_id)))
        if not raw:
            raise NotFound(f"agent {agent_id} has never set a presence")
        return {
            "presence": raw.get("presence", "offline"),
            "teams": [t for t in raw.get("teams", "").split(",") if t],
            "capacity": int(raw.get("capacity", "1")),
        }

    async def routed_state(self, cid: str) -> dict[str, str]:
        state = decode(await self.redis.hgetall(self.k.state(cid)))
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
