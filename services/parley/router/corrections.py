"""Triage corrections from the desk: an agent corrects the intent, topic or urgency of a message in the
conversation assigned to them, a supervisor on any conversation.

Each correction is kept in the conversation's slot (`corrections`, read by GetConversation), in a log of all
corrections that `parley train --corrections` exports as hand labels, and as a `triage.corrected` event.
"""

from __future__ import annotations

import json
from typing import Any

from parley import lua
from parley.classifier.labels import INTENTS, TOPICS
from parley.clock import Clock
from parley.corrections import corrections_key, from_json, log_key
from parley.events import EventRecord, add_to_pipeline
from parley.messages import INTENT_NAMES
from parley.router.keys import RouterKeys
from parley.rpc import FailedPrecondition, InvalidArgument, NotFound
from parley.store import Keys, Redis
from parley.v1 import common_pb2


class Corrections:
    def __init__(self, redis: Redis, keys: Keys, clock: Clock, events_maxlen: int) -> None:
        self.redis = redis
        self.keys = keys
        self.k = RouterKeys(keys)
        self.clock = clock
        self.events_maxlen = events_maxlen

    async def assigned_agent(self, conversation_id: str) -> str:
        """The agent the conversation is assigned to now ("" when none)."""
        agent = await self.redis.hget(self.k.state(conversation_id), "agent")
        return agent.decode() if isinstance(agent, bytes) else agent or ""

    async def check_may_correct(self, conversation_id: str, agent_id: str, supervisor: bool) -> None:
        """Raises FailedPrecondition unless `agent_id` may correct this conversation: a supervisor anywhere,
        an agent only on a conversation assigned to them."""
        if supervisor:
            return
        if await self.assigned_agent(conversation_id) != agent_id:
            raise FailedPrecondition(f"conversation {conversation_id} is not assigned to agent {agent_id}")

    async def correct(
        self,
        conversation_id: str,
        message_id: str,
        agent_id: str,
        supervisor: bool = False,
        intent: str = "",
        topic: str = "",
        urgent: bool | None = None,
        note: str = "",
    ) -> common_pb2.TriageCorrection:
        """Record a correction and return it. Repeating the latest correction of a message changes nothing
        (a retried call records it once)."""
        problems = []
        if intent and intent not in INTENTS:
            problems.append(("intent", f"must be one of {', '.join(INTENTS)}"))
        if topic and topic not in TOPICS:
            problems.append(("topic", f"must be one of {', '.join(TOPICS)}"))
        if not intent and not topic and urgent is None:
            problems.append(("intent", "at least one of intent, topic and urgent is required"))
        if problems:
            raise InvalidArgument(problems)
        await self.check_may_correct(conversation_id, agent_id, supervisor)
        raw = await self.redis.hget(self.keys.conversation_part(conversation_id, "triage"), message_id)
        if raw is None:
            raise NotFound(f"message {message_id} has no triage in conversation {conversation_id}")
        before = common_pb2.Triage.FromString(raw if isinstance(raw, bytes) else raw.encode())
        record: dict[str, Any] = {
            "message_id": message_id,
            "intent": intent,
            "topic": topic,
            "urgent": urgent,
            "by": agent_id,
            "supervisor": supervisor,
            "note": note,
            "previous_intent": INTENT_NAMES.get(before.intent, ""),
            "previous_topic": before.topic,
            "previous_urgent_review": before.urgent_review,
        }
        key = corrections_key(self.keys, conversation_id)
        last = await self.redis.lindex(key, -1)
        if last is not None:
            previous = json.loads(last)
            if {k: v for k, v in previous.items() if k != "at"} == record:
                return from_json(last)
        record["at"] = self.clock.now()
        encoded = json.dumps(record, separators=(",", ":"))
        async with lua.pipeline(self.redis) as pipe:
            pipe.rpush(key, encoded)
            pipe.rpush(log_key(self.keys), json.dumps([conversation_id, message_id]))
            attrs = {
                "by": agent_id,
                "supervisor": supervisor,
                "intent": intent,
                "topic": topic,
                "urgent": urgent,
            }
            event = EventRecord("triage.corrected", conversation_id, message_id, record["at"], attrs)
            add_to_pipeline(pipe, self.keys, [event], self.events_maxlen)
            await pipe.execute()
        return from_json(encoded)
