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

from .store import ConversationKeys, as_text


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
        k = self.keys
        person, absorbed = await self.person(identity), await self.person(other)
        if person == absorbed:
            return person
        async with lua.pipeline(self.redis) as pipe:
            pipe.smembers(k.customers.profile_identities(absorbed))
            pipe.hgetall(k.customers.profile(absorbed))
            pipe.hgetall(k.customers.profile(person))
            pipe.zrange(k.customers.profile_conversations(absorbed), 0, -1, withscores=True)
            pipe.get(k.customers.last_public(absorbed))
            pipe.get(k.customers.last_public(person))
            raw_ids, raw_theirs, raw_ours, convs, their_public, our_public = await pipe.execute()
        ids = {as_text(i) for i in raw_ids} | {other}
        theirs = {as_text(a): as_text(b) for a, b in raw_theirs.items()}
        ours = {as_text(a): as_text(b) for a, b in raw_ours.items()}
        merged = {**theirs, **ours}
        merged["followers"] = str(max(int(theirs.get("followers") or 0), int(ours.get("followers") or 0)))
        merged["verified"] = str(max(int(theirs.get("verified") or 0), int(ours.get("verified") or 0)))
        async with lua.pipeline(self.redis) as pipe:
            pipe.set(k.customers.identity(identity), person)
            for i in ids:
                pipe.set(k.customers.identity(i), person)
            pipe.sadd(k.customers.profile_identities(person), identity, *ids)
            pipe.hset(k.customers.profile(person), mapping=merged)
            if convs:
                pipe.zadd(k.customers.profile_conversations(person), dict(convs), nx=True)
            if their_public and (not our_public or _public_at(their_public) > _public_at(our_public)):
                pipe.set(k.customers.last_public(person), their_public)
            pipe.delete(
                k.customers.profile(absorbed),
                k.customers.profile_identities(absorbed),
                k.customers.profile_conversations(absorbed),
                k.customers.last_public(absorbed),
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
            pipe.smembers(k.customers.profile_identities(person))
            pipe.zrevrange(k.customers.profile_conversations(person), 0, limit - 1, withscores=True)
            raw_fields, ids, convs = await pipe.execute()
        if not raw_fields and not ids:
            raise NotFound(f"no customer with identity {identity or person}")
        fields = {as_text(a): as_text(b) for a, b in raw_fields.items()}
        out = conversations_pb2.CustomerProfile(
            person_id=person,
            follower_count=int(fields.get("followers") or 0),
            verified=fields.get("verified") == "1",
        )
        for raw in sorted(as_text(i) for i in ids):
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


def _public_at(raw: bytes | str) -> float:
    """The time of a last-public value ('conversation_id time')."""
    return float(as_text(raw).split(" ")[1])
