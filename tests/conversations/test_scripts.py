"""The conversations scripts take the numbers of states, roles, directions and visibilities from the protos'
enums (filled in by parley.conversations.scripts): none is a literal in the Lua that could drift from them."""

from __future__ import annotations

import re
from pathlib import Path

from parley import lua
from parley.conversations import scripts
from parley.conversations.scripts import LUA_CONSTANTS, SCRIPT_NAMES
from parley.v1 import common_pb2, conversations_pb2

SOURCES = sorted(Path(scripts.__file__).parent.glob("*.lua"))
# Lua names that hold a state, role, direction or visibility in these scripts.
ENUM_HOLDERS = re.compile(r"\b(state|old|new|to|new_state|role|dir|visibility)\b")
QUOTED_NUMBER = re.compile(r"'\d+'")


def test_the_constants_are_the_enums_numbers() -> None:
    for name, number in conversations_pb2.ConversationState.items():
        assert LUA_CONSTANTS["STATE_" + name.removeprefix("CONVERSATION_STATE_")] == number
    for enum in (conversations_pb2.ParticipantRole, common_pb2.Direction, common_pb2.Visibility):
        for name, number in enum.items():
            assert LUA_CONSTANTS[name] == number


def test_every_placeholder_names_a_constant_and_every_script_loads_filled_in() -> None:
    assert {path.stem for path in SOURCES} >= set(SCRIPT_NAMES)
    used = set()
    for path in SOURCES:
        used |= set(re.findall(r"\$\{(\w+)\}", path.read_text(encoding="utf-8")))
        filled = lua.load("parley.conversations", path.stem, **LUA_CONSTANTS)
        assert "$" not in filled, path.name
    assert used <= set(LUA_CONSTANTS)
    assert {"STATE_ASSIGNED", "STATE_RESOLVED", "STATE_CLOSED_NO_ACTION", "STATE_WAITING_ON_CUSTOMER"} <= used


def test_no_state_role_direction_or_visibility_is_written_as_a_number() -> None:
    offenders = []
    for path in SOURCES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("--", 1)[0]
            if ENUM_HOLDERS.search(code) and QUOTED_NUMBER.search(code):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []
