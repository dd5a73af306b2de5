"""Enum values a sender may not invent: proto3 keeps an unknown number (say 99) as it is, so every request
is walked for enum fields holding a number the contract does not define."""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message


def unknown_enum_values(message: Message, path: str = "") -> list[tuple[str, str]]:
    """(field path, description) for every enum field, at any depth, whose value is not defined."""
    found: list[tuple[str, str]] = []
    for field, value in message.ListFields():
        at = f"{path}.{field.name}" if path else field.name
        repeated = field.is_repeated
        if field.type == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
            defined = field.enum_type.values_by_number
            for i, number in enumerate(value if repeated else [value]):
                if number not in defined:
                    where = f"{at}[{i}]" if repeated else at
                    found.append((where, f"{number} is not a defined {field.enum_type.name} value"))
        elif (
            field.type == FieldDescriptor.TYPE_MESSAGE
            and field.message_type is not None
            and not field.message_type.GetOptions().map_entry
        ):
            for i, child in enumerate(value if repeated else [value]):
                found.extend(unknown_enum_values(child, f"{at}[{i}]" if repeated else at))
    return found
