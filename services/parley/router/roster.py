"""A team's agents as the floor sees them, from every agent's profile and load."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TeamStaff:
    """A team's agents right now: online with free capacity, away, and how full the online ones are."""

    available: int
    away: int
    occupancy: float


def roster_of_team(roster: list[tuple[dict[str, str], int]], team: str) -> TeamStaff:
    available = away = held = capacity = 0
    for profile, load in roster:
        if team not in profile.get("teams", "").split(","):
            continue
        presence = profile.get("presence", "offline")
        if presence == "away":
            away += 1
        elif presence == "online":
            room = int(profile.get("capacity", "1"))
            capacity += room
            held += min(load, room)
            available += load < room
    return TeamStaff(available, away, held / capacity if capacity else 0.0)
