"""Router key names, all under `<prefix>:router:` (the router is their only writer). Per-conversation state
carries the conversation's hash tag (`router:conv:{id}:...`, the slot of its record); each team's queue keys
share the tag `{team:NAME}` and each agent's keys `{agent:ID}`, so every Lua script or MULTI touches one
slot."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from parley.store import Keys, escape_key_part


@dataclass(frozen=True)
class RouterKeys:
    keys: Keys

    # Conversation slot: the router's own keys, under the conversation's hash tag (the slot of its record).
    def _conversation(self, conversation_id: str, part: str) -> str:
        return self.keys.namespaced("router", "conv", f"{{{conversation_id}}}", part)

    def state(self, conversation_id: str) -> str:
        return self._conversation(conversation_id, "state")

    def decision(self, conversation_id: str, message_id: str) -> str:
        return self._conversation(conversation_id, f"decision:{message_id}")

    def decided_in(self, message_id: str) -> str:
        """The conversation a message was first routed in; the message's own slot, so a retry that finds the
        message in another conversation (a merge since) still finds its one decision."""
        return self.keys.namespaced("router", "decided", f"{{{message_id}}}")

    def applied(self, conversation_id: str, message_id: str) -> str:
        """No longer written (the state's `pending:` field says whether a decision's effects are written);
        earlier versions set it for `dedupe_ttl_seconds`, so erasure still deletes it."""
        return self._conversation(conversation_id, f"applied:{message_id}")

    def audit(self, conversation_id: str) -> str:
        """Hash: one serialized RoutingAudit per decision (field: kind and its id, so rewrites are no-ops)."""
        return self._conversation(conversation_id, "audit")

    def conversation_keys(self, conversation_id: str, message_ids: Iterable[str]) -> list[str]:
        """Every router key of one conversation and its messages: what erasure deletes and retention
        expires with the conversation's own keys."""
        ids = list(message_ids)
        return [
            self.state(conversation_id),
            self.audit(conversation_id),
            *(self.decision(conversation_id, m) for m in ids),
            *(self.applied(conversation_id, m) for m in ids),
            *(self.decided_in(m) for m in ids),
        ]

    # Team slot: the queue (score = priority), enqueue times, SLA deadlines, arrivals, handling totals.
    def _team(self, team: str, part: str) -> str:
        return self.keys.namespaced("router", f"{{team:{team}}}", part)

    def queue(self, team: str) -> str:
        return self._team(team, "queue")

    def since(self, team: str) -> str:
        return self._team(team, "since")

    def due(self, team: str) -> str:
        return self._team(team, "due")

    def arrivals(self, team: str) -> str:
        return self._team(team, "arrivals")

    def handled(self, team: str) -> str:
        return self._team(team, "handled")

    def handled_once(self, team: str, action: str) -> str:
        """The mark of a resolution's handling time, counted once (`lua.Pipeline.once`)."""
        return self._team(team, f"handled-once:{escape_key_part(action)}")

    def enqueued_once(self, team: str, conversation_id: str, message_id: str) -> str:
        """The mark of a Route decision's queue entry, so it is added once (ENQUEUE.lua)."""
        effect = f"{escape_key_part(conversation_id)}:{escape_key_part(message_id)}"
        return self._team(team, f"enqueued-once:{effect}")

    def online(self, team: str) -> str:
        return self._team(team, "online")

    def base(self, team: str) -> str:
        """Base priorities of waiting conversations; the queue score adds ageing to them."""
        return self._team(team, "base")

    def taking(self, team: str) -> str:
        """Hash: conversations taken from the queue whose assignment is not yet recorded (claim journal)."""
        return self._team(team, "taking")

    def held(self, team: str) -> str:
        """Hash: waiting conversations reserved for their previous agent, as "agent|until" (sticky hold)."""
        return self._team(team, "held")

    def team_keys(self, team: str) -> list[str]:
        return [
            self.queue(team),
            self.since(team),
            self.due(team),
            self.base(team),
            self.taking(team),
            self.held(team),
        ]

    # Desk slot: conversations a desk action has marked (`leaving`), scored by when, for the loop to finish.
    def leaving(self) -> str:
        return self.keys.namespaced("router", "{desk}", "leaving")

    # Presence slot: agents that went offline (score: when), for the grace period; every agent seen.
    def offline(self) -> str:
        return self.keys.namespaced("router", "{presence}", "offline")

    def agents(self) -> str:
        return self.keys.namespaced("router", "{presence}", "agents")

    # Agent slot: profile, active conversations (capacity), the assignment feed.
    def _agent(self, agent_id: str, part: str) -> str:
        return self.keys.namespaced("router", f"{{agent:{agent_id}}}", part)

    def agent(self, agent_id: str) -> str:
        return self._agent(agent_id, "profile")

    def active(self, agent_id: str) -> str:
        return self._agent(agent_id, "active")

    def feed(self, agent_id: str) -> str:
        return self._agent(agent_id, "feed")

    def assigned_once(self, agent_id: str, token: str) -> str:
        """The mark of an assignment (its claim token) written to the agent's feed, so it is written once."""
        return self._agent(agent_id, f"assigned-once:{escape_key_part(token)}")

    def holds(self, agent_id: str) -> str:
        """Set of "team|conversation id" held for the agent: where to look when their capacity frees."""
        return self._agent(agent_id, "holds")
