"""Erasure of a customer: everything the conversations service holds about them, and (through dispatch's own
API, since dispatch writes its outbox) the replies sent to them.

What goes: the identity links of every identity of the customer, their profile, the conversations they
opened (whole, with the brand's replies in them), and their messages in conversations others opened (found by
reading every stored conversation once: erasure is rare and messages are not indexed by author). The order
makes a failed call safe to repeat: everything is read first, dispatch redacts second, the keys go last.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from parley import lua
from parley.messages import CHANNELS_BY_NAME
from parley.router.keys import RouterKeys
from parley.store import Redis, stored_turns, unpack_turn
from parley.v1 import common_pb2, conversations_pb2, dispatch_pb2

from .store import ConversationKeys, identities_in

SCAN_BATCH = 200
# Parts of a conversation keyed by message id (hashes), and the sorted sets of message ids; the legacy parts
# (`bodies`, `roles`, `texts`, `inbound`) are no longer written but may hold messages of conversations
# stored before.
_PER_MESSAGE_HASHES = ("turns", "bodies", "roles", "texts", "triage", "routing", "applied")
_PER_MESSAGE_ZSETS = ("messages", "inbound")

EraseReplies = Callable[[dispatch_pb2.EraseRepliesRequest], Awaitable[dispatch_pb2.EraseRepliesResponse]]


@dataclass
class Erased:
    person_id: str
    identities: int = 0
    conversations: int = 0
    messages: int = 0
    deliveries: int = 0
    outbox_lines: int = 0
    # Their messages in conversations others opened: conversation id -> message ids.
    elsewhere: dict[str, list[str]] = field(default_factory=dict)

    def response(self) -> conversations_pb2.EraseCustomerResponse:
        counts = {name: value for name, value in vars(self).items() if name != "elsewhere"}
        return conversations_pb2.EraseCustomerResponse(**counts)


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""


class Eraser:
    def __init__(self, redis: Redis, keys: ConversationKeys, erase_replies: EraseReplies) -> None:
        self.redis, self.keys, self.erase_replies = redis, keys, erase_replies

    async def erase(self, identity: str) -> Erased:
        k = self.keys
        person = _text(await self.redis.get(k.customers.identity(identity))) or identity
        async with lua.pipeline(self.redis) as pipe:
            pipe.hkeys(k.customers.profile(person))
            pipe.smembers(k.customers.legacy_identities(person))
            pipe.zrange(k.customers.profile_conversations(person), 0, -1)
            fields, legacy, owned = await pipe.execute()
        identities = {identity, *identities_in(map(_text, fields)), *map(_text, legacy)}
        owned = [_text(c) for c in owned]
        result = Erased(person, identities=len(identities), conversations=len(owned))
        owned_records = await self._read(owned)
        authored = {_author(channel, author) for channel, author in map(_split, identities)}
        result.messages = sum(
            1
            for _, bodies in owned_records.values()
            for body in bodies.values()
            if _author_of(body) in authored
        )
        result.elsewhere = await self._find_elsewhere(set(owned), authored)
        result.messages += sum(map(len, result.elsewhere.values()))

        # A known channel's number (0 for an unknown name); protoc's stubs accept only the enum's values.
        recipients = [
            dispatch_pb2.ErasedRecipient(channel=CHANNELS_BY_NAME.get(channel, 0), id=author)  # type: ignore[arg-type]
            for channel, author in map(_split, identities)
        ]
        replies = await self.erase_replies(
            dispatch_pb2.EraseRepliesRequest(conversation_ids=owned, recipients=recipients)
        )
        result.deliveries, result.outbox_lines = replies.deliveries, replies.outbox_lines
        await self._delete(person, identities, owned_records, result.elsewhere)
        return result

    async def _read(self, cids: list[str]) -> dict[str, tuple[dict[str, str], dict[str, bytes]]]:
        """Each conversation's record and message bodies (by message id)."""
        if not cids:
            return {}
        async with lua.pipeline(self.redis) as pipe:
            for cid in cids:
                pipe.hgetall(self.keys.meta(cid))
                pipe.hgetall(self.keys.turns(cid))
                pipe.hgetall(self.keys.legacy_bodies(cid))
            rows = await pipe.execute()
        return {
            cid: (
                {_text(a): _text(b) for a, b in meta.items() if _text(a) != "owner_author"},
                {_text(mid): body for mid, (_, body) in stored_turns(turns, legacy, {}).items()},
            )
            for cid, meta, turns, legacy in zip(cids, rows[::3], rows[1::3], rows[2::3], strict=True)
        }

    async def _find_elsewhere(self, owned: set[str], authored: set[tuple[int, str]]) -> dict[str, list[str]]:
        """The customer's messages in conversations they do not own (a reply in another customer's thread),
        by a scan of every conversation's stored messages, and of those earlier versions stored."""
        found: dict[str, set[str]] = {}
        for pattern, packed in ((self.keys.turns("*"), True), (self.keys.legacy_bodies("*"), False)):
            batch: list[str] = []
            async for key in self.redis.scan_iter(match=pattern, count=SCAN_BATCH):
                batch.append(_text(key))
                if len(batch) >= SCAN_BATCH:
                    await self._scan(batch, packed, owned, authored, found)
                    batch = []
            if batch:
                await self._scan(batch, packed, owned, authored, found)
        return {cid: sorted(mids) for cid, mids in found.items()}

    async def _scan(
        self,
        batch: list[str],
        packed: bool,
        owned: set[str],
        authored: set[tuple[int, str]],
        found: dict[str, set[str]],
    ) -> None:
        async with lua.pipeline(self.redis) as pipe:
            for key in batch:
                pipe.hgetall(key)
            rows = await pipe.execute()
        for key, stored in zip(batch, rows, strict=True):
            cid = key.split("{", 1)[1].rsplit("}", 1)[0]
            if cid in owned:
                continue
            for mid, value in stored.items():
                if _author_of(unpack_turn(value)[1] if packed else value) in authored:
                    found.setdefault(cid, set()).add(_text(mid))

    async def _delete(
        self,
        person: str,
        identities: set[str],
        owned: dict[str, tuple[dict[str, str], dict[str, bytes]]],
        elsewhere: dict[str, list[str]],
    ) -> None:
        k = self.keys
        async with lua.pipeline(self.redis) as pipe:
            for cid, (meta, bodies) in owned.items():
                doomed = [k.meta(cid), *k.parts(cid), *map(k.message_index, bodies)]
                doomed += RouterKeys(k.keys).conversation_keys(cid, bodies)  # its routing state and decisions
                if meta.get("thread_key"):
                    doomed.append(meta["thread_key"])
                pipe.delete(*doomed)
                for index in (k.index_all(cid), k.index_opened(cid), k.held(cid)):
                    pipe.zrem(index, cid)
                pipe.zrem(k.index_channel(int(meta.get("channel") or 0), cid), cid)
                pipe.zrem(k.index_state(int(meta.get("state") or 0), cid), cid)
            for cid, mids in elsewhere.items():
                for part in _PER_MESSAGE_HASHES:
                    pipe.hdel(k.keys.conversation_part(cid, part), *mids)
                for part in _PER_MESSAGE_ZSETS:
                    pipe.zrem(k.keys.conversation_part(cid, part), *mids)
                pipe.delete(*map(k.message_index, mids))
            pipe.delete(
                k.customers.profile(person),
                k.customers.profile_conversations(person),
                k.customers.legacy_identities(person),
                k.customers.legacy_last_public(person),
            )
            pipe.delete(*map(k.customers.identity, identities))
            await pipe.execute()


def _split(identity: str) -> tuple[str, str]:
    channel, _, author = identity.partition(":")
    return channel, author


def _author(channel_name: str, author_id: str) -> tuple[int, str]:
    return CHANNELS_BY_NAME.get(channel_name, 0), author_id


def _author_of(body: bytes) -> tuple[int, str]:
    message = common_pb2.InboundMessage.FromString(body)
    return message.channel, message.author.id
