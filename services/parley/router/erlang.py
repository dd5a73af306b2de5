"""Erlang C: the agents a queue needs so that a share of contacts waits no longer than a target."""

from __future__ import annotations

import math


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a contact waits, with `agents` servers and `traffic` Erlangs offered."""
    if agents <= traffic:
        return 1.0
    # Erlang B by its stable recursion, then C from B.
    b = 1.0
    for k in range(1, agents + 1):
        b = traffic * b / (k + traffic * b)
    return agents * b / (agents - traffic * (1 - b))


def service_level(
    agents: int, arrivals_per_second: float, handling_seconds: float, target_seconds: float
) -> float:
    """Share of contacts answered within `target_seconds`."""
    traffic = arrivals_per_second * handling_seconds
    if traffic <= 0:
        return 1.0
    if agents <= traffic:
        return 0.0
    wait = erlang_c(agents, traffic)
    return 1.0 - wait * math.exp(-(agents - traffic) * target_seconds / handling_seconds)


def agents_needed(
    arrivals_per_second: float, handling_seconds: float, target_seconds: float, target_level: float
) -> tuple[int, float]:
    """The fewest agents reaching `target_level`, and the service level they give."""
    traffic = arrivals_per_second * handling_seconds
    if traffic <= 0:
        return 0, 1.0
    agents = max(1, math.floor(traffic) + 1)
    while True:
        level = service_level(agents, arrivals_per_second, handling_seconds, target_seconds)
        if level >= target_level:
            return agents, level
        agents += 1
