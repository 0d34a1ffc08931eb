"""``--json`` output: one JSON document per command, in the proto3 JSON mapping (camelCase names, enum
names, RFC 3339 times) with two changes for scripts: every field is present (zeros, empty strings and
lists too; an unset time is null) and 64-bit integers and durations are numbers (durations in seconds)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

INT64 = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}
DURATION = "google.protobuf.Duration"


def _seconds(value: str) -> float:
    return float(value.removesuffix("s"))


def _numbers(descriptor: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Turn the mapping's int64 strings and duration strings into numbers, recursively."""
    for field in descriptor.fields:
        if field.json_name not in data:  # only message fields with presence are left out: say null
            data[field.json_name] = None
            continue
        value = data[field.json_name]
        many = field.is_repeated
        if field.type in INT64:
            data[field.json_name] = [int(v) for v in value] if many else int(value)
        elif field.message_type is not None and field.message_type.full_name == DURATION:
            data[field.json_name] = [_seconds(v) for v in value] if many else _seconds(value)
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            if many:
                data[field.json_name] = [_numbers(field.message_type, v) for v in value]
            elif isinstance(value, dict):
                data[field.json_name] = _numbers(field.message_type, value)
    return data


def to_data(message: Message) -> dict[str, Any]:
    """The message as plain data: every field present, numbers as numbers."""
    data = MessageToDict(message, always_print_fields_with_no_presence=True)
    return _numbers(message.DESCRIPTOR, data)


def document(**parts: Message | Sequence[Message]) -> str:
    """One JSON document: ``document(job=job, stories=[...])`` is ``{"job": {...}, "stories": [...]}``."""
    data = {
        key: to_data(value) if isinstance(value, Message) else [to_data(m) for m in value]
        for key, value in parts.items()
    }
    return json.dumps(data, indent=2)
