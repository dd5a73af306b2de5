"""Key names of the conversations service, and the small read helpers its modules share (its Lua scripts
are the `.lua` files beside this module, registered by `scripts`).

Every key of one conversation carries the hash tag `{conversation_id}` (via `parley.store.Keys`), so each
script touches one hash slot. The listing indexes (partitioned by conversation id) and thread keys are
written beside the scripts, never inside one (listing entries as `lua.Pipeline.write`s, one call per slot).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from parley import lua
from parley.corrections import corrections_key
from parley.events import partition_of
from parley.store import Keys, Redis, escape_key_part

# Parts no longer written (a message's role and body are stored together in `turns`): still named so that
# reads, erasure, retention and merges reach conversations stored before.
LEGACY_PARTS = ("inbound", "texts", "bodies", "roles")


def as_text(value: object) -> str:
    """A Redis reply as text ('' for none)."""
    if isinstance(value, bytes):
        return value.decode()
    return "" if value is None else str(value)


async def read_many(redis: Redis, cluster: bool, keys: Sequence[str]) -> list[bytes | str | None]:
    """GET of keys in many slots: one MGET on a single Redis, pipelined GETs on a cluster (where the client
    splits them by node)."""
    if not keys:
        return []
    if not cluster:
        return list(await redis.mget(list(keys)))
    async with lua.pipeline(redis) as pipe:
        for key in keys:
            pipe.get(key)
        return list(await pipe.execute())


def conversation_id_for(opening_message_id: str) -> str:
    """The id of the conversation a message opens: derived from it, so two callers agree without a lock."""
    return "cv-" + hashlib.blake2b(opening_message_id.encode(), digest_size=10).hexdigest()


@dataclass(frozen=True)
class ConversationKeys:
    keys: Keys

    # Per conversation (one slot).
    def meta(self, cid: str) -> str:
        return self.keys.conversation(cid)

    def messages(self, cid: str) -> str:
        """Sorted set: message id by sent time."""
        return self.keys.conversation_messages(cid)

    def turns(self, cid: str) -> str:
        """Hash: message id -> its role and body (`parley.store.unpack_turn`)."""
        return self.keys.conversation_turns(cid)

    def legacy_bodies(self, cid: str) -> str:
        """Hash: message id -> body, as earlier versions stored messages (`parley.store.stored_turns`)."""
        return self.keys.conversation_part(cid, "bodies")

    def legacy_roles(self, cid: str) -> str:
        return self.keys.conversation_part(cid, "roles")

    def triage(self, cid: str) -> str:
        return self.keys.conversation_part(cid, "triage")

    def routing(self, cid: str) -> str:
        return self.keys.conversation_part(cid, "routing")

    def applied(self, cid: str) -> str:
        """Message ids whose outcome already moved the conversation (replays change nothing)."""
        return self.keys.conversation_part(cid, "applied")

    def transitions(self, cid: str) -> str:
        return self.keys.conversation_part(cid, "transitions")

    def agents(self, cid: str) -> str:
        """Sorted set: agent id by when it first touched the conversation."""
        return self.keys.conversation_part(cid, "agents")

    def corrections(self, cid: str) -> str:
        """List: corrections of its messages' triage (written by the router's desk API)."""
        return corrections_key(self.keys, cid)

    def events_applied(self, cid: str) -> str:
        """Ids of the lifecycle events already applied (the follower is at-least-once)."""
        return self.keys.conversation_part(cid, "events")

    def parts(self, cid: str) -> list[str]:
        """Every key of a conversation but its record."""
        names = (
            "turns",
            *LEGACY_PARTS,
            "triage",
            "routing",
            "applied",
            "transitions",
            "corrections",
        )
        return [self.messages(cid), *(self.keys.conversation_part(cid, n) for n in names)] + [
            self.agents(cid),
            self.events_applied(cid),
        ]

    def thread_script_keys(self, cid: str) -> list[str]:
        return [
            self.meta(cid),
            self.messages(cid),
            self.turns(cid),
            self.transitions(cid),
        ]

    def outcome_script_keys(self, cid: str) -> list[str]:
        return [
            self.meta(cid),
            self.triage(cid),
            self.routing(cid),
            self.applied(cid),
            self.transitions(cid),
            self.agents(cid),
        ]

    def event_script_keys(self, cid: str) -> list[str]:
        return [self.meta(cid), self.transitions(cid), self.events_applied(cid), self.agents(cid)]

    # Lookups by something other than the conversation (their own slots).
    def message_index(self, message_id: str) -> str:
        return self.keys.message_index(message_id)

    def thread(self, channel: int, brand_account_id: str, platform_thread_id: str) -> str:
        """The conversation of a platform thread (X dm_conversation_id, a Messenger thread).

        The ids are escaped: joined raw, ("a:b", "c") and ("a", "b:c") would share a conversation."""
        ids = (escape_key_part(brand_account_id), escape_key_part(platform_thread_id))
        return self.keys.namespaced("thread", str(channel), *ids)

    def awaiting(self, parent_message_id: str) -> str:
        """The conversation a reply opened while its parent was unknown: the parent joins it on arrival."""
        # The parent's hash tag: registering a wait and claiming the parent are atomic with each other.
        return self.keys.namespaced("awaiting", f"{{{parent_message_id}}}")

    @property
    def customers(self) -> CustomerKeys:
        return CustomerKeys(self.keys)

    # Listing indexes: conversation id scored by updated time, and by opened time for metrics. Each is split
    # into `index_partitions` sorted sets by conversation id, so none grows with all the conversations kept
    # on one node; a conversation's entries all live in its partition (one slot). Writers name the
    # conversation; readers read every partition (`*_partitions`).
    def index_partition(self, cid: str) -> int:
        return partition_of(cid, self.keys.index_partitions)

    @functools.cache  # noqa: B019 - a few keys per partition, for the life of the keys object
    def _index(self, partition: int, *name: str) -> str:
        return self.keys.namespaced("convidx", f"{{{self.keys.index_tag(partition)}}}", *name)

    def index_all(self, cid: str) -> str:
        return self._index(self.index_partition(cid), "all")

    def index_state(self, state: int, cid: str) -> str:
        return self._index(self.index_partition(cid), "state", str(state))

    def index_channel(self, channel: int, cid: str) -> str:
        return self._index(self.index_partition(cid), "channel", str(channel))

    def index_opened(self, cid: str) -> str:
        return self._index(self.index_partition(cid), "opened")

    def held(self, cid: str) -> str:
        """Sorted set: held conversation id by when it was held (the sweep opens the overdue ones); in the
        conversation's index partition, so replies to parents never received spread over the nodes."""
        return self._index(self.index_partition(cid), "held")

    def held_partitions(self) -> list[str]:
        return [self._index(p, "held") for p in range(self.keys.index_partitions)]

    def listing_partitions(self, state: int = 0, channel: int = 0) -> list[str]:
        """The partitions of the listing index by updated time: of a state, else of a channel, else all."""
        name = ("state", str(state)) if state else ("channel", str(channel)) if channel else ("all",)
        return [self._index(p, *name) for p in range(self.keys.index_partitions)]

    def opened_partitions(self) -> list[str]:
        return [self._index(p, "opened") for p in range(self.keys.index_partitions)]


@dataclass(frozen=True)
class CustomerKeys:
    """Customers: an identity ("channel:author_id") points at its person; a person's keys share one slot.

    A person's profile is one hash: their reach, a field per linked identity (`identity_field`), and their
    latest public exchange (`PUBLIC_FIELD`). Earlier versions kept the identities and the exchange in keys of
    their own (`legacy_identities`, `legacy_last_public`): no longer written, still read, and removed when
    the person is linked or erased."""

    keys: Keys

    def identity(self, identity: str) -> str:
        return self.keys.namespaced("ident", identity)

    def profile(self, person: str) -> str:
        return self.keys.namespaced("person", f"{{{person}}}")

    def profile_conversations(self, person: str) -> str:
        """Sorted set: conversation id by opened time."""
        return self.keys.namespaced("person", f"{{{person}}}", "convs")

    def legacy_identities(self, person: str) -> str:
        """Set of the person's identities, as earlier versions stored them."""
        return self.keys.namespaced("person", f"{{{person}}}", "ids")

    def legacy_last_public(self, person: str) -> str:
        """The person's latest public exchange, as earlier versions stored it."""
        return self.keys.namespaced("person", f"{{{person}}}", "public")


# A person's latest public exchange, 'conversation_id time' (a DM may continue it): a field of the profile.
PUBLIC_FIELD = "public"
_IDENTITY_PREFIX = "id:"


def identity_field(identity: str) -> str:
    """The profile field that links an identity to its person."""
    return _IDENTITY_PREFIX + identity


def identities_in(fields: Iterable[str]) -> set[str]:
    """The identities a profile's fields link."""
    return {f[len(_IDENTITY_PREFIX) :] for f in fields if f.startswith(_IDENTITY_PREFIX)}
