"""The conversations core the servicer, the event follower and tests call: one object that hands each kind
of work to the module that does it.

- threading (`threader`, the decision itself in `threading`, held conversations and merges in `merging`);
- the lifecycle: routing outcomes (`outcomes`) set BOT/QUEUED/ASSIGNED/CLOSED_NO_ACTION; the router's and
  dispatch's events (`lifecycle`, applied by the follower) set ASSIGNED, WAITING_ON_CUSTOMER, QUEUED and
  RESOLVED; the owner's next message (thread.lua) moves WAITING back to ASSIGNED (or QUEUED) and reopens a
  RESOLVED one within the reopen window, after which it opens a new conversation linked to the old. A brand
  message threaded here sets the first response time but does not move the state;
- customers (`profiles`), reading and listing (`reads`), metrics (`metrics`).
"""

from __future__ import annotations

from collections.abc import Sequence

from parley.clock import Clock
from parley.config import Settings
from parley.events import EventRecord
from parley.store import Keys, Redis
from parley.v1 import common_pb2, conversations_pb2

from .lifecycle import LifecycleEvents
from .metrics import MetricsReader
from .outcomes import Outcomes
from .profiles import Customers, Tiers
from .reads import Reader
from .retention import IndexPruner
from .scripts import Scripts
from .store import ConversationKeys
from .threader import Threader


class Conversations:
    def __init__(self, settings: Settings, redis: Redis, keys: Keys, clock: Clock) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = ConversationKeys(keys)
        self.clock = clock
        self.tiers = Tiers.from_settings(settings)
        scripts = Scripts.register(redis)
        self.threader = Threader(settings, redis, self.keys, clock, scripts, self.tiers)
        self.outcomes = Outcomes(settings, redis, self.keys, clock, scripts)
        self.lifecycle = LifecycleEvents(settings, redis, self.keys, scripts)
        self.customers = Customers(redis, self.keys, self.tiers)
        self.reader = Reader(redis, self.keys, clock, self.customers)
        self.metrics_reader = MetricsReader(redis, self.keys, clock, scripts)
        self.index_pruner = IndexPruner(redis, self.keys, settings)

    async def thread(
        self, messages: Sequence[common_pb2.InboundMessage]
    ) -> list[conversations_pb2.ThreadResult]:
        return await self.threader.thread(messages)

    async def sweep_held(self) -> int:
        """Open the held conversations whose parent did not arrive in time; returns how many."""
        return await self.threader.merges.sweep_held()

    async def prune_indexes(self) -> int:
        """Take expired conversations out of the listing indexes (one bounded pass); returns the entries."""
        return await self.index_pruner.prune(self.clock.now())

    async def record_outcomes(self, outcomes: Sequence[conversations_pb2.Outcome]) -> int:
        return await self.outcomes.record(outcomes)

    async def apply_events(self, entries: Sequence[tuple[str, EventRecord]]) -> int:
        return await self.lifecycle.apply_events(entries)

    async def link_identities(self, identity: str, other: str) -> str:
        return await self.customers.link_identities(identity, other)

    async def profile(
        self, identity: str = "", person: str = "", limit: int = 50
    ) -> conversations_pb2.CustomerProfile:
        return await self.customers.profile(identity, person, limit)

    async def conversation_of(self, message_id: str) -> str:
        return await self.reader.conversation_of(message_id)

    async def get(self, conversation_id: str) -> conversations_pb2.Conversation:
        return await self.reader.get(conversation_id)

    async def get_many(
        self, conversation_ids: Sequence[str]
    ) -> tuple[list[conversations_pb2.Conversation], list[str]]:
        return await self.reader.get_many(conversation_ids)

    async def metrics(
        self, start: float, end: float | None, group_by: str = ""
    ) -> list[conversations_pb2.MetricsGroup]:
        return await self.metrics_reader.metrics(start, end, group_by)

    async def list(
        self,
        state: int = 0,
        channel: int = 0,
        page_size: int = 50,
        page_token: str = "",
        owner_handle: str = "",
        team: str = "",
    ) -> tuple[list[conversations_pb2.ConversationSummary], str]:
        return await self.reader.list(state, channel, page_size, page_token, owner_handle, team)
