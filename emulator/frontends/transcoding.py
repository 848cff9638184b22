"""Transcoding helpers of the REST front end: the request message's field shapes and Google's texts for JSON that
does not fit them (unknown fields, query parameters that bind to nothing)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from google.protobuf.descriptor import Descriptor
from google.rpc import code_pb2, error_details_pb2

from emulator.core.handlers import Fields, camel, snake
from emulator.core.status import RpcError


class Shape(Protocol):
    def field(self, key: str) -> tuple[str, Shape | None] | None:
        """(the field's proto name, the shape of its message or None for a leaf), or None if there is none."""


class DictShape:
    def __init__(self, fields: Fields) -> None:
        self.fields = fields

    def field(self, key: str) -> tuple[str, Shape | None] | None:
        name = key if key in self.fields else camel(key)
        if name not in self.fields:
            return None
        child = self.fields[name]
        return snake(name), DictShape(child) if isinstance(child, Mapping) else None


class ProtoShape:
    """A protobuf message's fields; maps and google.protobuf types (Struct, Any, Timestamp…) are leaves."""

    def __init__(self, descriptor: Descriptor) -> None:
        self.descriptor = descriptor

    def field(self, key: str) -> tuple[str, Shape | None] | None:
        found = self.descriptor.fields_by_name.get(key) or next(
            (f for f in self.descriptor.fields if f.json_name == key), None
        )
        if found is None:
            return None
        message = found.message_type
        if message is None or message.GetOptions().map_entry or message.full_name.startswith("google.protobuf."):
            return found.name, None
        return found.name, ProtoShape(message)


def unknown_fields(doc: Any, shape: Shape, path: str = "") -> list[tuple[str, str]]:
    """(where, name) of every field the message does not have, where as Google writes it: `contents[0].parts[0]`."""
    found: list[tuple[str, str]] = []
    if not isinstance(doc, dict):
        return found
    for key, value in doc.items():
        hit = shape.field(key)
        if hit is None:
            found.append((path, key))
            continue
        name, child = hit
        if child is None:
            continue
        here = f"{path}.{name}" if path else name
        if isinstance(value, list):
            for i, item in enumerate(value):
                found += unknown_fields(item, child, f"{here}[{i}]")
        else:
            found += unknown_fields(value, child, here)
    return found


def unknown_field_error(found: Sequence[tuple[str, str]]) -> RpcError:
    """Google's ESF answer to unknown JSON fields: one line each, and a BadRequest field violation each."""
    lines, violations = [], []
    for where, name in found:
        at = f" at '{where}'" if where else ""
        text = f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
        lines.append(text)
        violations.append(error_details_pb2.BadRequest.FieldViolation(field=where, description=text))
    return RpcError(
        code_pb2.INVALID_ARGUMENT, "\n".join(lines), [error_details_pb2.BadRequest(field_violations=violations)]
    )


def unbound_query_error(name: str, segment: str) -> RpcError:
    text = (
        f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
        f"Field '{segment}' could not be found in request message."
    )
    return RpcError(
        code_pb2.INVALID_ARGUMENT,
        text,
        [
            error_details_pb2.BadRequest(
                field_violations=[error_details_pb2.BadRequest.FieldViolation(description=text)]
            )
        ],
    )
