"""Enum values a sender may not invent: proto3 keeps an unknown number (say 99) as it is, so every request
is walked for enum fields holding a number the contract does not define."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message


@dataclass(frozen=True)
class _Check:
    """One field of a message type the walk visits: an enum (with its defined numbers) or a message that
    can hold one."""

    name: str
    repeated: bool
    defined: frozenset[int] | None  # an enum's numbers; None for a message field
    enum_name: str = ""
    singular_message: bool = False  # visited only when set (HasField)
    message_type: Descriptor | None = None  # a message field's type


def unknown_enum_values(message: Message, path: str = "") -> list[tuple[str, str]]:
    """(field path, description) for every enum field, at any depth, whose value is not defined."""
    found = _unknown(message)
    return [(f"{path}.{at}" if path else at, problem) for at, problem in found]


def _unknown(message: Message) -> list[tuple[str, str]]:
    """`unknown_enum_values` with paths relative to `message`. Paths are built only on the way back from
    a value found, so a valid request (nearly every one) costs no string work."""
    found: list[tuple[str, str]] = []
    for check in _checks(message.DESCRIPTOR):
        if check.singular_message and not message.HasField(check.name):
            continue
        value = getattr(message, check.name)
        if check.defined is not None:
            # One set operation in C for the valid case; the walk that names the culprits only when it fails.
            values = value if check.repeated else (value,)
            if check.defined.issuperset(values):
                continue
            for i, number in enumerate(values):
                if number not in check.defined:
                    where = f"{check.name}[{i}]" if check.repeated else check.name
                    found.append((where, f"{number} is not a defined {check.enum_name} value"))
        elif not check.repeated:
            for rest, problem in _unknown(value):
                found.append((f"{check.name}.{rest}", problem))
        else:
            # A list of small messages holding only plain enums (a triage's intent scores): each enum field
            # checked over the whole list at once, walked message by message only when one fails.
            flat = _flat_enums(check.message_type) if check.message_type is not None else None
            if flat is not None and all(
                defined.issuperset([getattr(child, name) for child in value]) for name, defined in flat
            ):
                continue
            for i, child in enumerate(value):
                below = _unknown(child)
                if below:
                    found.extend((f"{check.name}[{i}].{rest}", problem) for rest, problem in below)
    return found


@functools.cache
def _checks(descriptor: Descriptor) -> tuple[_Check, ...]:
    """What the walk visits in a message type, worked out once per type: its enum fields and the message
    fields (not maps) that can hold an enum at some depth. A Timestamp or a string is never looked at."""
    out = []
    for f in descriptor.fields:
        repeated = f.is_repeated
        if f.type == FieldDescriptor.TYPE_ENUM and f.enum_type is not None:
            numbers = frozenset(f.enum_type.values_by_number)
            out.append(_Check(f.name, repeated, numbers, f.enum_type.name))
        elif _can_hold_enum(f, frozenset({descriptor})):
            out.append(
                _Check(f.name, repeated, None, singular_message=not repeated, message_type=f.message_type)
            )
    return tuple(out)


@functools.cache
def _flat_enums(descriptor: Descriptor) -> tuple[tuple[str, frozenset[int]], ...] | None:
    """The (name, defined numbers) of a message type whose every check is a singular enum field; None for a
    type with a list or a message to visit."""
    checks = _checks(descriptor)
    if any(c.repeated or c.defined is None for c in checks):
        return None
    return tuple((c.name, c.defined) for c in checks if c.defined is not None)


def _can_hold_enum(field: FieldDescriptor, seen: frozenset[Descriptor]) -> bool:
    if field.type == FieldDescriptor.TYPE_ENUM:
        return field.enum_type is not None
    child = field.message_type
    if field.type != FieldDescriptor.TYPE_MESSAGE or child is None or child.GetOptions().map_entry:
        return False
    if child in seen:  # a recursive type: visited, and its own fields say what holds an enum
        return True
    return any(_can_hold_enum(f, seen | {child}) for f in child.fields)
