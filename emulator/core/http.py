"""HTTP requests and responses as the front ends and a service's plain-HTTP handler see them, and `parse_json`, the
strict JSON reader both front ends use: UTF-8 only, no `NaN`/`Infinity`, no number a double cannot hold, nesting at
most `MAX_DEPTH` deep, and (unless allowed) no key twice in one object."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 100  # JSON nesting, protobuf's JSON parser's limit: docs/google-behaviour.md, REST request bodies


class JsonError(ValueError):
    """A body `parse_json` refuses. `reason`: utf8, syntax, constant, range, depth or duplicate."""

    def __init__(self, message: str, reason: str, decode_error: json.JSONDecodeError | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.decode_error = decode_error


def _refuse_constant(token: str) -> Any:
    raise JsonError(f"{token} is not a JSON number", "constant")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonError(f"the number {text[:40]} is out of range", "range")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 308:  # beyond any double (and int() refuses more than 4300 digits)
        raise JsonError(f"the number {text[:40]}... is out of range", "range")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise JsonError(f"duplicate key {key!r}", "duplicate")
        doc[key] = value
    return doc


def _too_deep(doc: Any) -> bool:
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                return True
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return False


def parse_json(body: bytes, *, allow_duplicate_keys: bool = False) -> Any:
    """The body as JSON (an empty body is {}); raises JsonError saying what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonError(f"not valid UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start})", "utf8") from None
    if not text.strip():
        return {}
    decoder = json.JSONDecoder(
        parse_constant=_refuse_constant,
        parse_float=_finite_float,
        parse_int=_bounded_int,
        object_pairs_hook=None if allow_duplicate_keys else _unique_keys,
    )
    try:
        doc = decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise JsonError(f"{exc.msg} at line {exc.lineno} column {exc.colno}", "syntax", exc) from None
    except RecursionError:
        doc = None
        deep = True
    else:
        deep = _too_deep(doc)
    if deep:
        raise JsonError(f"nested deeper than {MAX_DEPTH} levels", "depth")
    return doc


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case keys
    body: bytes
    host: str = ""  # lower-case, no port: from an absolute request URI (a proxy request), else the Host header

    def json(self) -> Any:
        """The body as JSON; raises ValueError with a clear message when it isn't (see `parse_json`)."""
        try:
            return parse_json(self.body)
        except JsonError as err:
            raise ValueError(f"the request body is not valid JSON: {err}") from None

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False  # drop the connection without answering (fault injection)

    @classmethod
    def json(cls, doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        merged = {"Content-Type": "application/json; charset=UTF-8", **(headers or {})}
        return cls(status, json.dumps(doc, indent=2).encode() + b"\n", merged)

    @classmethod
    def text(cls, text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        merged = {"Content-Type": "text/plain; charset=UTF-8", **(headers or {})}
        return cls(status, text.encode(), merged)
