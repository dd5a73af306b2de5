"""The one way Parley runs Lua: redis-py `Script` objects whose source is a `.lua` file beside its owner.

A script is read once from its package (`lua.load("parley.router", "route")`) and registered on a client. A
call goes through a `lua.Pipeline` (plain Redis or Redis Cluster alike), which sends EVALSHA and deals with
NOSCRIPT in this one place: a server that lost its scripts (a restart, a failover onto a replica, a cluster
node that never saw them) answers NOSCRIPT, and that reply means the call did nothing, so exactly those calls
are loaded and sent again. Other commands of the pipeline are never repeated.

Shared Lua goes in a file of its own and is pulled in with a line `--#include name.lua`; values from Python
(an enum's numbers) are written `${NAME}` and filled in by `load`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.crc import key_slot
from redis.exceptions import NoScriptError

from parley.store import Redis

_INCLUDE = re.compile(r"^--#include (\S+\.lua)$", re.MULTILINE)


@cache
def _read(package: str, filename: str) -> str:
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    return _INCLUDE.sub(lambda match: _read(package, match.group(1)), text)


def load(package: str, name: str, **constants: object) -> str:
    """The source of `name`.lua in `package`, its includes expanded and its `${NAME}` constants filled in."""
    source = _read(package, f"{name}.lua")
    return Template(source).substitute(constants) if constants else source


class Script(AsyncScript):
    """A redis-py Script whose calls all go through a `Pipeline` (a plain call is a pipeline of one)."""

    # Narrower than AsyncScript.__call__: `client` may also be a Pipeline, and the result is what it returns.
    async def __call__(  # type: ignore[override]
        self,
        keys: Sequence[Any] | None = None,
        args: Sequence[Any] | None = None,
        client: Pipeline | Redis | None = None,
    ) -> Any:
        """Queue the call on `client` when it is a `Pipeline`; else run it now on `client` (or the client the
        script was registered on)."""
        if isinstance(client, Pipeline):
            client.script(self, keys or (), args or ())
            return client
        async with Pipeline(client or self.registered_client) as pipe:
            pipe.script(self, keys or (), args or ())
            return (await pipe.execute())[0]


def register(redis: Redis, package: str, name: str, **constants: object) -> Script:
    return Script(redis, load(package, name, **constants))


class Pipeline:
    """A non-transactional redis-py pipeline (plain or cluster) that can also queue script calls.

    Commands other than `script` pass through to the redis-py pipeline unchanged.
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._cluster = isinstance(redis, RedisCluster)
        self._pipe: Any = redis.pipeline(transaction=False)
        self._scripts: dict[int, tuple[Script, Sequence[Any], Sequence[Any]]] = {}
        # hash slot (0 on one server) -> its writes
        self._writes: dict[int, SlotWrites] = {}

    async def __aenter__(self) -> Pipeline:
        await self._pipe.__aenter__()  # a cluster pipeline learns the slot map here
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._pipe.__aexit__(*exc)

    def __len__(self) -> int:
        return len(self._pipe)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)

    def script(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> None:
        self._scripts[len(self._pipe)] = (script, keys, args)
        self._pipe.evalsha(script.sha, len(keys), *keys, *args)

    def write(self, name: str, key: str, *args: Any) -> None:
        """Queue a plain write whose reply nobody reads (a listing entry, a profile field). The writes of a
        slot go in one `writes.lua` call at `execute` (every write at once on a single server), after the
        pipeline's other commands and in the order written: the client builds and parses one command per
        slot instead of one per write, which is most of what a write costs it. Writes to one key's members
        may be folded into one command (`SlotWrites`)."""
        self._slot_writes(key).add((name, key, *args))

    def write_together(self, commands: Sequence[Sequence[Any]]) -> None:
        """Queue plain writes (as `write`; every key in one slot) that run in one call, never split between
        two: nothing runs between them."""
        group = [tuple(command) for command in commands]
        if group:
            self._slot_writes(group[0][1]).add_group(group)

    def once(self, mark: str, commands: Sequence[Sequence[Any]]) -> None:
        """Queue `commands` (each a command name, the key it writes, its other arguments; every key in the
        slot of `mark`) to run the first time `mark` is seen and never again: for an effect outside a record's
        slot, which a version check on the record cannot fence. They go with the plain writes (`write`), in
        their order among them; the mark is kept `ONCE_KEPT_SECONDS`."""
        group = [("ONCE", mark, ONCE_KEPT_SECONDS, len(commands)), *(tuple(command) for command in commands)]
        self._slot_writes(mark).add_group(group)

    def _slot_writes(self, key: str) -> SlotWrites:
        slot = self._slot(key)
        writes = self._writes.get(slot)
        if writes is None:
            writes = self._writes[slot] = SlotWrites()
        return writes

    def _slot(self, key: str) -> int:
        return key_slot(key.encode()) if self._cluster else 0

    def _send_writes(self) -> None:
        writes, self._writes = self._writes, {}
        for slot_writes in writes.values():
            call: list[Sequence[Any]] = []
            in_call = 0  # writes in `call`, each one folded into another counted
            for group, count in slot_writes.groups:
                if call and in_call + count > WRITES_PER_CALL:
                    self._send_write_call(call)
                    call, in_call = [], 0
                call += group
                in_call += count
            self._send_write_call(call)

    def _send_write_call(self, commands: list[Sequence[Any]]) -> None:
        keys, args = _commands_args(commands)
        self.script(Script(self.redis, _WRITES), keys, args)

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Run everything queued in one round trip; script calls answered NOSCRIPT are loaded and re-sent."""
        self._send_writes()
        calls, self._scripts = self._scripts, {}
        results: list[Any] = await self._pipe.execute(raise_on_error=False)
        lost = [i for i in calls if isinstance(results[i], NoScriptError)]
        if lost:
            # SCRIPT LOAD goes to every primary of a cluster, so a promoted replica learns it too.
            for script in {calls[i][0] for i in lost}:
                script.sha = await self.redis.script_load(script.script)
            async with Pipeline(self.redis) as again:
                for i in lost:
                    again.script(*calls[i])
                for i, result in zip(lost, await again.execute(raise_on_error=False), strict=True):
                    results[i] = result
        if raise_on_error:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return results


def pipeline(redis: Redis) -> Pipeline:
    return Pipeline(redis)


# How long an effect stays marked as made (`Pipeline.once`): far longer than a call, its retries or a stall
# could repeat it, short enough that the marks of a busy day (a few per desk action or assignment) do not pile
# up.
ONCE_KEPT_SECONDS = 86_400
_WRITES = load("parley", "writes")
# Writes per writes.lua call, a `once` group never split: a call blocks the server while it runs (1,000 small
# writes take about a millisecond).
WRITES_PER_CALL = 1000


# Commands whose words after the key (and a ZADD's flags) are members or pairs, so that two of them on one key
# are one command with the words of both (`SlotWrites`).
_LISTS = frozenset({"ZADD", "ZREM", "HSET", "HDEL", "SADD"})
_PAIRS = frozenset({"ZADD", "HSET"})
_ZADD_FLAGS = frozenset({"NX", "XX", "GT", "LT", "CH"})
# The most words one folded command takes: Lua's `unpack` in commands.lua puts them all on its stack.
FOLDED_WORDS = 1000


class SlotWrites:
    """The plain writes of one hash slot, in groups never split between two calls (a `once` and its commands,
    `write_together`), each with the number of writes it makes.

    A write that adds to or removes from a key's members (ZADD with the same flags, ZREM, HSET, HDEL, SADD)
    joins the write of the same kind before it on that key when only plain writes to other keys came in
    between: a batch's listing entries are one ZADD per index partition rather than one per conversation, and
    each costs Redis a Lua call less. Each key still sees its commands in the order written. A write moves
    ahead only of plain writes to other keys, never ahead of a group, whose order with the writes around it
    is kept (a decision stops being pending after its effects)."""

    def __init__(self) -> None:
        self.groups: list[list[Any]] = []  # [commands, writes]
        # key -> the write on it that may take more, its head, its group
        self._open: dict[Any, tuple[list[Any], tuple[Any, ...], list[Any]]] = {}

    def add(self, command: tuple[Any, ...]) -> None:
        head_length = _fold_head(command)
        if not head_length:
            self._open.pop(command[1], None)
            self.groups.append([[command], 1])
            return
        head = command[:head_length]
        joined = self._open.get(command[1])
        if joined is not None:
            folded, joined_head, group = joined
            if joined_head == head and len(folded) + len(command) - head_length <= FOLDED_WORDS:
                folded.extend(command[head_length:])
                group[1] += 1
                return
        folded = list(command)
        group = [[folded], 1]
        self.groups.append(group)
        self._open[command[1]] = (folded, head, group)

    def add_group(self, commands: list[tuple[Any, ...]]) -> None:
        self._open.clear()
        self.groups.append([commands, len(commands)])


def _fold_head(command: tuple[Any, ...]) -> int:
    """How many words of a write name it, its key and its flags when the words after them are members or
    pairs that another write of the same head may take (`SlotWrites`); 0 for a write never folded."""
    name = command[0]
    if name not in _LISTS:
        return 0
    length = 2
    if name == "ZADD":
        while length < len(command) and command[length] in _ZADD_FLAGS:
            length += 1
    members = len(command) - length
    if not members or (members % 2 and name in _PAIRS):
        return 0  # nothing to add, or not plain pairs (ZADD ... INCR)
    return length


def _commands_args(commands: Sequence[Sequence[Any]]) -> tuple[list[Any], list[Any]]:
    """KEYS and ARGV of commands.lua for `commands` (each a name, the key it writes, its other words)."""
    named: dict[Any, int] = {}
    args: list[Any] = []
    for name, key, *rest in commands:
        index = named.setdefault(key, len(named) + 1)
        args += [len(rest) + 2, name, index, *rest]
    return list(named), args
