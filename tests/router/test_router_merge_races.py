"""A merge racing a Route of one of its two conversations, on real Redis: every interleaving of the two at the
granularity of their round trips (one side starts k event-loop turns after the other, both ways round) must
end with the surviving conversation in exactly one place and nothing left of the merged one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from router_testkit import make_item

from parley.router.core import Router
from parley.router.merges import MergeDeferred, Merges
from parley.rpc import Aborted

TEAM = "first_line"
OFFSETS = range(0, 40)


async def after_turns(turns: int, step: Callable[[], Awaitable[Any]]) -> Any:
    for _ in range(turns):
        await asyncio.sleep(0)
    return await step()


async def until_done(step: Callable[[], Awaitable[Any]]) -> Any:
    """A step the pipeline would retry: a deferred merge or an aborted Route goes again."""
    for _ in range(50):
        try:
            return await step()
        except (MergeDeferred, Aborted):
            await asyncio.sleep(0.005)
    raise AssertionError("never settled")


def text(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {a.decode(): b.decode() for a, b in raw.items()}


async def where_is(router: Router, redis, cid: str, agents: list[str]) -> tuple[list[str], list[str], dict]:
    """The agents holding `cid`, the queues it waits in, and its router state."""
    holders = [a for a in agents if await redis.sismember(router.k.active(a), cid)]
    teams = [t.name for t in router.policy.teams]
    queues = [t for t in teams if await redis.zscore(router.k.queue(t), cid) is not None]
    return holders, queues, text(await redis.hgetall(router.k.state(cid)))


async def assert_one_place(router: Router, redis, merged: str, into: str, agents: list[str]) -> None:
    holders, queues, state = await where_is(router, redis, merged, agents)
    assert (holders, queues) == ([], []), f"{merged} merged away yet held by {holders}, queued in {queues}"
    assert state.get("merged_into") == into
    holders, queues, state = await where_is(router, redis, into, agents)
    if state.get("state") == "assigned":
        assert (holders, queues) == ([state["agent"]], []), f"{into} assigned to {state['agent']}: {holders}"
    else:
        assert holders == [], f"{into} is {state.get('state')} yet held by {holders}"
        assert len(queues) <= 1
        assert (state.get("state") == "queued") == bool(queues)
    for agent in agents:  # capacity counts only conversations the agent really has
        for member in await redis.smembers(router.k.active(agent)):
            held = text(await redis.hgetall(router.k.state(member.decode())))
            assert (held.get("state"), held.get("agent")) == ("assigned", agent), (agent, member, held)


async def trial(router: Router, redis, clock, n: int, turns: int, merge_first: bool, case: str) -> None:
    merged, into = f"m{n}", f"i{n}"
    merges = Merges(router)
    if case == "route_merged_while_survivor_assigned":
        await router.set_presence("bob", "online", [TEAM], capacity=1000)
        assert (await router.route([make_item(into, f"x:{into}", "praise")]))[0].agent_id == "bob"
        await router.set_presence("bob", "away", [TEAM])
        await router.set_presence("ann", "online", [TEAM], capacity=1000)
        routed = merged
    elif case == "route_survivor_while_merged_assigned":
        await router.set_presence("ann", "online", [TEAM], capacity=1000)
        assert (await router.route([make_item(merged, f"x:{merged}", "praise")]))[0].agent_id == "ann"
        await router.set_presence("bob", "online", [TEAM], capacity=1000)
        routed = into
    elif case == "route_unrouted_survivor_while_merged_waits":
        # The merged conversation waits in first_line; the surviving one is routed for the first time, to
        # another team, while the merge moves the waiting entry onto it.
        await router.route([make_item(merged, f"x:{merged}", "praise")])
        routed = into
    else:  # both waiting: nobody online
        await router.route([make_item(into, f"x:{into}", "praise")])
        routed = merged
    late = make_item(routed, f"x:{routed}:late", "complaint", topic="orders_delivery")

    def route() -> Awaitable[Any]:
        return until_done(lambda: router.route([late]))

    def merge() -> Awaitable[Any]:
        return until_done(lambda: merges.apply(merged, into))

    first, second = (merge, route) if merge_first else (route, merge)
    await asyncio.gather(after_turns(0, first), after_turns(turns, second))
    await until_done(lambda: merges.apply(merged, into))  # a redelivered event changes nothing
    for agent in ("ann", "bob"):
        await router.set_presence(agent, "away", [TEAM])
    clock.advance(router.settings.claim_idle_ms / 1000)
    await router.tick()  # whatever a dead claimer left is settled
    await assert_one_place(router, redis, merged, into, ["ann", "bob"])


@pytest.mark.parametrize("merge_first", [False, True], ids=["route-first", "merge-first"])
@pytest.mark.parametrize(
    "case",
    [
        "route_merged_while_survivor_assigned",
        "route_survivor_while_merged_assigned",
        "both_waiting",
        "route_unrouted_survivor_while_merged_waits",
    ],
)
async def test_a_merge_and_a_route_in_flight_leave_one_place(router: Router, redis, clock, case, merge_first):
    for turns in OFFSETS:
        await trial(router, redis, clock, turns, turns, merge_first, case)
