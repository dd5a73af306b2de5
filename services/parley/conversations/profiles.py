"""Customers: identities, and the value tier from a configured lookup (a mapping file, then follower-count
thresholds, then the default tier)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from parley.config import Settings
from parley.messages import CHANNEL_NAMES
from parley.messages import CHANNELS_BY_NAME as CHANNEL_BY_NAME  # noqa: F401 (for conversations.core)
from parley.v1 import common_pb2, conversations_pb2


def identity_of(channel: int, author_id: str) -> str:
    """One account on one channel, e.g. `x:12345`. On X a tweet's author id is also its DMs' sender id."""
    return f"{CHANNEL_NAMES.get(channel, str(channel))}:{author_id}"


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
