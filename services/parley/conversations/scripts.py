"""The conversations service's Lua scripts (the `.lua` files beside this module) and their arguments.

The scripts compare states, roles, visibilities and directions by number; they write them as `${NAME}` and the
numbers are filled in here from the protobuf enums (`LUA_CONSTANTS`), so they live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from parley import lua
from parley.store import Redis
from parley.v1 import common_pb2, conversations_pb2

from .threading import Placement, is_outbound, parent_of, sent_at


def _lua_constants() -> dict[str, int]:
    states = conversations_pb2.ConversationState
    out = {f"STATE_{name.removeprefix('CONVERSATION_STATE_')}": number for name, number in states.items()}
    out |= dict(conversations_pb2.ParticipantRole.items())  # PARTICIPANT_ROLE_OWNER, ...
    out |= dict(common_pb2.Visibility.items())  # VISIBILITY_PUBLIC, VISIBILITY_PRIVATE
    out |= dict(common_pb2.Direction.items())  # DIRECTION_INBOUND, DIRECTION_OUTBOUND
    return out


# `${STATE_ASSIGNED}` in a script is CONVERSATION_STATE_ASSIGNED's number, and so on.
LUA_CONSTANTS: dict[str, int] = _lua_constants()
SCRIPT_NAMES = ("thread", "outcome", "context", "event", "claim", "await", "retire", "metrics")


@dataclass(frozen=True)
class Scripts:
    thread: lua.Script  # adds messages to a conversation, moves its state on a customer's turn
    outcome: lua.Script  # stores triage and routing, moves the state
    context: lua.Script  # a conversation's customer turns before a time
    event: lua.Script  # applies a lifecycle event of the router or dispatch
    claim: lua.Script  # claims a new message's index
    wait: lua.Script  # await.lua: a reply waits for its unknown parent
    retire: lua.Script  # the last step of a merge
    metrics: lua.Script  # a conversation's figures for GetMetrics

    @classmethod
    def register(cls, redis: Redis) -> Scripts:
        def load(name: str) -> lua.Script:
            return lua.register(redis, "parley.conversations", name, **LUA_CONSTANTS)

        return cls(
            thread=load("thread"),
            outcome=load("outcome"),
            context=load("context"),
            event=load("event"),
            claim=load("claim"),
            wait=load("await"),
            retire=load("retire"),
            metrics=load("metrics"),
        )


Args = list[str | bytes | float]


def thread_args(
    now: float,
    opener: Placement,
    count: int,
    held: bool,
    owner_person: str,
    thread_key: str,
) -> Args:
    """thread.lua's leading arguments: the conversation as `opener` would open it (it may exist already)."""
    m = opener.message
    return [
        repr(now),
        m.channel,
        m.brand_account_id,
        repr(sent_at(m, now)),
        conversations_pb2.CONVERSATION_STATE_NEW,
        count,
        parent_of(m) if held else "",
        opener.previous,
        owner_person,
        thread_key,
    ]


def merge_args(now: float, count: int) -> Args:
    """thread.lua's leading arguments when a merge copies `count` messages into an existing conversation."""
    return [repr(now), 0, "", repr(now), conversations_pb2.CONVERSATION_STATE_NEW, count, "", "", "", ""]


def message_args(p: Placement, now: float) -> Args:
    """thread.lua's arguments for one message."""
    m = p.message
    return [
        m.message_id,
        repr(sent_at(m, now)),
        common_pb2.DIRECTION_OUTBOUND if is_outbound(m) else common_pb2.DIRECTION_INBOUND,
        p.role,
        m.SerializeToString(),
        m.author.id,
        m.author.SerializeToString(),
        1 if p.claimed else 0,
        m.visibility,
    ]
