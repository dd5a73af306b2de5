"""Router key names. Per-conversation state lives under the conversation's hash tag (`Keys`); each team's
queue keys share the tag `{team:NAME}` and each agent's keys `{agent:ID}`, so every Lua script or MULTI
touches one slot."""

from __future__ import annotations

from dataclasses import dataclass

from parley.store import Keys


@dataclass(frozen=True)
class RouterKeys:
    keys: Keys

    # Conversation slot.
    def state(self, conversation_id: str) -> str:
        return self.keys.conversation_part(conversation_id, "route")

    def decision(self, conversation_id: str, message_id: str) -> str:
        return self.keys.conversation_part(conversation_id, f"route:msg:{message_id}")

    def applied(self, conversation_id: str, message_id: str) -> str:
        """Set once a decision's queue entry and event are written."""
        return self.keys.conversation_part(conversation_id, f"route:applied:{message_id}")

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

    def online(self, team: str) -> str:
        return self._team(team, "online")

    # Agent slot: profile, active conversations (capacity), the assignment feed.
    def _agent(self, agent_id: str, part: str) -> str:
        return self.keys.namespaced("router", f"{{agent:{agent_id}}}", part)

    def agent(self, agent_id: str) -> str:
        return self._agent(agent_id, "profile")

    def active(self, agent_id: str) -> str:
        return self._agent(agent_id, "active")

    def feed(self, agent_id: str) -> str:
        return self._agent(agent_id, "feed")
