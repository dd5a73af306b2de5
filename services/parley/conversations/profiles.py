"""Customers: identities linked into one person, their profile, and the value tier from a configured lookup
(a mapping file, then follower-count thresholds, then the default tier)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from parley import lua
from parley.clock import to_timestamp
from parley.config import Settings
from parley.messages import CHANNELS_BY_NAME, channel_name
from parley.rpc import NotFound
from parley.store import Redis
from parley.v1 import common_pb2, conversations_pb2

from .store import PUBLIC_FIELD, ConversationKeys, as_text, identities_in, identity_field


def identity_of(channel: int, author_id: str) -> str:
    """One account on one channel, e.g. `x:12345`. On X a tweet's author id is also its DMs' sender id."""
    return f"{channel_name(channel, str(channel))}:{author_id}"


def parse_thresholds(text: str) -> list[tuple[int, str]]:
    """'vip:100000,influencer:10000' as (minimum followers, tier), highest first."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        tier, _, minimum = part.rpartition(":")
        if not tier or not minimum.isdigit():
            raise ValueError(f"tier threshold {part!r} is not tier:min_followers")
        out.append((int(minimum), tier))
    return sorted(out, reverse=True)


@dataclass
class Tiers:
    mapping: dict[str, str] = field(default_factory=dict)
    thresholds: list[tuple[int, str]] = field(default_factory=list)
    default: str = "standard"

    @classmethod
    def from_settings(cls, settings: Settings) -> Tiers:
        mapping: dict[str, str] = {}
        path = settings.conversations_tier_file
        if path:
            text = Path(path).read_text(encoding="utf-8")
            loaded = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
            mapping = {str(k): str(v) for k, v in (loaded or {}).items()}
        return cls(
            mapping,
            parse_thresholds(settings.conversations_tier_thresholds),
            settings.conversations_default_tier,
        )

    def _lookup(self, keys: list[str], followers: int) -> str:
        for key in keys:
            if key in self.mapping:
                return self.mapping[key]
        for minimum, tier in self.thresholds:
            if followers >= minimum:
                return tier
        return self.default

    def tier(self, person: str, message: common_pb2.InboundMessage) -> str:
        identity = identity_of(message.channel, message.author.id)
        return self._lookup([person, identity, message.author.id], message.author.follower_count)

    def for_profile(self, profile: conversations_pb2.CustomerProfile) -> str:
        keys = [profile.person_id]
        for i in profile.identities:
            keys += [identity_of(i.channel, i.author_id), i.author_id]
        return self._lookup(keys, profile.follower_count)


class Customers:
    """Identities linked into persons, and the profile of a person."""

    def __init__(self, redis: Redis, keys: ConversationKeys, tiers: Tiers) -> None:
        self.redis = redis
        self.keys = keys
        self.tiers = tiers

    async def person(self, identity: str) -> str:
        return as_text(await self.redis.get(self.keys.customers.identity(identity))) or identity

    async def link_identities(self, identity: str, other: str) -> str:
        """Make `other` (and every identity already linked to it) part of the customer of `identity`."""
        c = self.keys.customers
        person, absorbed = await self.person(identity), await self.person(other)
        if person == absorbed:
            return person
        async with lua.pipeline(self.redis) as pipe:
            for who in (absorbed, person):
                pipe.hgetall(c.profile(who))
                pipe.smembers(c.legacy_identities(who))
                pipe.get(c.legacy_last_public(who))
            pipe.zrange(c.profile_conversations(absorbed), 0, -1, withscores=True)
            *read, convs = await pipe.execute()
        theirs, ours = _profile_fields(*read[:3]), _profile_fields(*read[3:])
        ids = identities_in(theirs) | identities_in(ours) | {identity, other}
        merged = {**theirs, **ours, **{identity_field(i): "1" for i in ids}}
        merged["followers"] = str(max(int(theirs.get("followers") or 0), int(ours.get("followers") or 0)))
        merged["verified"] = str(max(int(theirs.get("verified") or 0), int(ours.get("verified") or 0)))
        exchanges = [f[PUBLIC_FIELD] for f in (theirs, ours) if f.get(PUBLIC_FIELD)]
        if exchanges:
            merged[PUBLIC_FIELD] = max(exchanges, key=_public_at)
        async with lua.pipeline(self.redis) as pipe:
            for i in ids:
                pipe.set(c.identity(i), person)
            pipe.hset(c.profile(person), mapping=merged)
            if convs:
                pipe.zadd(c.profile_conversations(person), dict(convs), nx=True)
            pipe.delete(c.legacy_identities(person), c.legacy_last_public(person))
            pipe.delete(
                c.profile(absorbed),
                c.profile_conversations(absorbed),
                c.legacy_identities(absorbed),
                c.legacy_last_public(absorbed),
            )
            await pipe.execute()
        return person

    async def profile(
        self, identity: str = "", person: str = "", limit: int = 50
    ) -> conversations_pb2.CustomerProfile:
        k = self.keys
        person = person or await self.person(identity)
        async with lua.pipeline(self.redis) as pipe:
            pipe.hgetall(k.customers.profile(person))
            pipe.smembers(k.customers.legacy_identities(person))
            pipe.zrevrange(k.customers.profile_conversations(person), 0, limit - 1, withscores=True)
            raw_fields, legacy_ids, convs = await pipe.execute()
        fields = _profile_fields(raw_fields, legacy_ids, None)
        identities = identities_in(fields)
        if not identities:  # a brand reply may write a public exchange where nothing else is left
            raise NotFound(f"no customer with identity {identity or person}")
        out = conversations_pb2.CustomerProfile(
            person_id=person,
            follower_count=int(fields.get("followers") or 0),
            verified=fields.get("verified") == "1",
        )
        for raw in sorted(identities):
            channel, _, author_id = raw.partition(":")
            out.identities.add(channel=CHANNELS_BY_NAME.get(channel, 0), author_id=author_id)
        out.tier = self.tiers.for_profile(out)
        if convs:
            async with lua.pipeline(self.redis) as pipe:
                for cid, _ in convs:
                    pipe.hmget(k.meta(as_text(cid)), ["channel", "intent", "state", "merged_into"])
                rows = await pipe.execute()
            for (cid, opened), (channel, intent, state, merged) in zip(convs, rows, strict=True):
                if merged or not channel:
                    continue
                out.conversations.add(
                    conversation_id=as_text(cid),
                    channel=int(as_text(channel)),
                    intent=int(as_text(intent) or 0),
                    state=int(as_text(state) or 0),
                    opened_at=to_timestamp(opened),
                )
        return out


def _profile_fields(
    raw: dict[bytes, bytes], legacy_identities: set[bytes], legacy_last_public: bytes | None
) -> dict[str, str]:
    """A profile's fields as text, with what earlier versions kept in keys of their own folded in."""
    fields = {as_text(a): as_text(b) for a, b in raw.items()}
    fields.update({identity_field(as_text(i)): "1" for i in legacy_identities})
    if legacy_last_public and PUBLIC_FIELD not in fields:  # the field is written later than the key
        fields[PUBLIC_FIELD] = as_text(legacy_last_public)
    return fields


def _public_at(value: str) -> float:
    """The time of a last-public value ('conversation_id time')."""
    return float(value.split(" ")[1])
