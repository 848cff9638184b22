"""The Cloud Logging query language (the ``filter`` of ``entries.list``), parsed once, evaluated in memory.

Entries are LogEntry objects in proto3 JSON form (camelCase dicts). Semantics follow Google's page
"Logging query language" (https://cloud.google.com/logging/docs/view/logging-query-language,
revision "last updated 2024-05-15"):

- NOT (or ``-``) binds tightest, then OR, then AND: ``"a" OR NOT "b" AND NOT "c" OR "d"`` means
  ``("a" OR (NOT "b")) AND ((NOT "c") OR "d")``. Adjacent terms are joined by AND. Only upper-case
  AND/OR/NOT are operators; lower-case ``and`` is a search term.
- A field missing from the entry fails every comparison, ``!=`` included, so ``NOT f=x`` is true
  and ``f!=x`` is false. Fields of the LogEntry type itself are "defaulted" instead: they compare as
  if present with their default value (``severity`` is DEFAULT). ``f:*`` tests explicit presence.
- An unknown first path segment (not a LogEntry field) is an error; a repeated field matches if any
  element matches; ``field OP (v1 OR v2)`` applies the field and operator to each value.
- String comparisons ignore letter case (NFKC case-folding), ``:`` is a case-insensitive
  substring test, ``=~``/``!~`` are case-sensitive unanchored regular expressions.
- A value that cannot be converted to the field's type makes the comparison fail.

Assumption: only the "syntax error" message is verified against real output; it is written as
``Unparseable filter: syntax error at line L, column C, token 'T'`` as quoted from gcloud output in
public repositories (e.g. ``INVALID_ARGUMENT: Unparseable filter: syntax error at line 1, column <n>,
token ':'`` for an unquoted timestamp, "verified with Google Cloud SDK 580.0.0"). The other messages
(undefined field, invalid timestamp/severity/regex, unknown function, nesting, length) keep that
shape but their wording is unverified. Columns are 1-based; the end of input is shown as ``<EOF>``.
Assumption (unverified): an unconvertible timestamp or severity value is rejected when the filter is
compiled (the doc would let the comparison fail silently).
Assumption (unverified): Python ``re`` stands in for RE2; unknown backslash escapes inside quoted strings
are kept verbatim (so ``"\\d"`` and ``"\\."`` reach a regex unchanged); SEARCH splits text on every
non-alphanumeric character; LOG_ID compares the URL-decoded log id exactly.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, assert_never
from urllib.parse import unquote

MAX_FILTER_LENGTH: Final = 20_000
_MAX_DEPTH: Final = 100


class FilterError(ValueError):
    """A malformed filter.

    str(err) is the full INVALID_ARGUMENT message the emulator returns to the client.
    """


# ----------------------------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class Compare:
    path: tuple[str, ...]
    op: str
    value: str
    null: bool = False  # the unquoted keyword NULL_VALUE
    instant: tuple[int, int] | None = None  # the value as (seconds, nanos), for timestamp fields
    level: int | None = None  # the value as a LogSeverity number, for severity
    regex: re.Pattern[str] | None = None  # for =~ and !~


@dataclass(frozen=True)
class Exists:
    path: tuple[str, ...]


@dataclass(frozen=True)
class Global:
    value: str


@dataclass(frozen=True)
class LogId:
    log_id: str


@dataclass(frozen=True)
class Search:
    path: tuple[str, ...] | None
    words: tuple[str, ...]
    phrases: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class MatchAll:
    pass


Node = And | Or | Not | Compare | Exists | Global | LogId | Search | MatchAll

_LOG_ENTRY_FIELDS: Final = (
    "logName", "resource", "protoPayload", "textPayload", "jsonPayload", "timestamp", "receiveTimestamp",
    "severity", "insertId", "httpRequest", "labels", "metadata", "operation", "trace", "spanId",
    "traceSampled", "sourceLocation", "split", "errorGroups", "apphub", "apphubDestination", "apphubSource",
)  # fmt: skip
_FIELD_BY_FOLDED_NAME: Final = {name.replace("_", "").lower(): name for name in _LOG_ENTRY_FIELDS}
_TIMESTAMP_FIELDS: Final = {("timestamp",), ("receiveTimestamp",)}
_MAP_FIELDS: Final = {("jsonPayload",), ("labels",), ("resource", "labels")}  # keys below: exact only
_DEFAULTS: Final[dict[tuple[str, ...], Any]] = {
    ("severity",): "DEFAULT", ("logName",): "", ("insertId",): "", ("trace",): "", ("spanId",): "",
    ("traceSampled",): False, ("resource", "type"): "", ("operation", "id"): "",
    ("operation", "producer"): "", ("httpRequest", "status"): 0,
}  # fmt: skip
_SEVERITIES: Final = {
    "DEFAULT": 0, "DEBUG": 100, "INFO": 200, "NOTICE": 300, "WARNING": 400,
    "ERROR": 500, "CRITICAL": 600, "ALERT": 700, "EMERGENCY": 800,
}  # fmt: skip
_KEYWORDS: Final = {"AND", "OR", "NOT"}
_OPERATORS: Final = ("!=", ">=", "<=", "=~", "!~", "=", "<", ">", ":")
_WORD_END: Final = set('()",.*=!<>:~')
_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_ESCAPES_SAME: Final = set("\"\\'`")
_NUMERIC_ESCAPE: Final = re.compile(r"x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[0-7]{1,3}")
_INTEGER: Final = re.compile(r"[+-]?\d+")
_DECIMAL: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:nan|infinity|inf)", re.I)
_TIMESTAMP: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------------------------- lexer


@dataclass(frozen=True)
class _Token:
    kind: str  # text | string | op | ( | ) | , | . | * | - | eof
    text: str  # as written in the filter
    value: str  # strings unescaped
    start: int
    end: int


def _error(what: str, source: str, pos: int, token: str) -> FilterError:
    line = source.count("\n", 0, pos) + 1
    column = pos - (source.rfind("\n", 0, pos) + 1) + 1
    # Real phrasing, as quoted from gcloud: "Unparseable filter: syntax error at line 1, column 25, token ':'"
    return FilterError(f"Unparseable filter: {what} at line {line}, column {column}, token '{token or '<EOF>'}'")


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(source):
        ch = source[i]
        if ch.isspace():
            i += 1
        elif source.startswith("--", i):  # comment to end of line
            newline = source.find("\n", i)
            i = len(source) if newline < 0 else newline
        elif ch == '"':
            end, value = _scan_string(source, i)
            tokens.append(_Token("string", source[i:end], value, i, end))
            i = end
        elif op := next((o for o in _OPERATORS if source.startswith(o, i)), None):
            tokens.append(_Token("op", op, op, i, i + len(op)))
            i += len(op)
        elif ch in "(),.*-":
            tokens.append(_Token(ch, ch, ch, i, i + 1))
            i += 1
        elif ch in _WORD_END:  # a lone ! or ~
            raise _error("syntax error", source, i, ch)
        else:
            end = i
            while end < len(source) and not source[end].isspace() and source[end] not in _WORD_END:
                end += 1
            tokens.append(_Token("text", source[i:end], source[i:end], i, end))
            i = end
    tokens.append(_Token("eof", "", "", len(source), len(source)))
    return tokens


def _scan_string(source: str, start: int) -> tuple[int, str]:
    out: list[str] = []
    i = start + 1
    while i < len(source):
        ch = source[i]
        if ch == '"':
            return i + 1, "".join(out)
        if ch == "\\" and i + 1 < len(source):
            i, decoded = _unescape(source, i + 1)
            out.append(decoded)
        else:
            out.append(ch)
            i += 1
    raise _error("syntax error", source, start, source[start:])


def _unescape(source: str, i: int) -> tuple[int, str]:
    """Decode the escape whose first character (after the backslash) is at ``i``."""
    ch = source[i]
    if ch in _ESCAPES:
        return i + 1, _ESCAPES[ch]
    if ch in _ESCAPES_SAME:
        return i + 1, ch
    match = _NUMERIC_ESCAPE.match(source, i)
    if match:
        digits = match.group()
        code = int(digits, 8) if digits[0].isdigit() else int(digits[1:], 16)
        if code <= 0x10FFFF:
            return match.end(), chr(code)
    return i + 1, "\\" + ch


# -------------------------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.pos = 0
        self.depth = 0
        self.deferred: FilterError | None = None

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def fail(self, what: str = "syntax error", token: _Token | None = None) -> FilterError:
        token = token or self.peek()
        return _error(what, self.source, token.start, token.text)

    def expect(self, kind: str) -> None:
        if self.peek().kind != kind:
            raise self.fail()
        self.take()

    def parse(self) -> Node:
        if self.peek().kind == "eof":
            return MatchAll()
        node = self.expression(self.restriction, in_value=False)
        if self.peek().kind != "eof":
            raise self.fail()
        if self.deferred is not None:
            raise self.deferred
        return node

    # expression := sequence {AND sequence}; sequence := factor {factor}; factor := term {OR term}
    def expression(self, leaf: Callable[[], Node], in_value: bool) -> Node:
        parts = [self.sequence(leaf, in_value)]
        while _is_word(self.peek(), "AND"):
            self.take()
            parts.append(self.sequence(leaf, in_value))
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def sequence(self, leaf: Callable[[], Node], in_value: bool) -> Node:
        parts = [self.factor(leaf, in_value)]
        while _starts_term(self.peek()):
            parts.append(self.factor(leaf, in_value))
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def factor(self, leaf: Callable[[], Node], in_value: bool) -> Node:
        parts = [self.term(leaf, in_value)]
        while _is_word(self.peek(), "OR"):
            self.take()
            parts.append(self.term(leaf, in_value))
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def term(self, leaf: Callable[[], Node], in_value: bool) -> Node:
        token = self.peek()
        negative_number = in_value and token.kind == "-" and _adjacent_number(token, self.peek(1))
        if _is_word(token, "NOT") or (token.kind == "-" and not negative_number):
            self.take()
            return Not(self.nested(token, lambda: self.term(leaf, in_value)))
        if token.kind == "(":
            self.take()
            node = self.nested(token, lambda: self.expression(leaf, in_value))
            self.expect(")")
            return node
        return leaf()

    def nested(self, token: _Token, parse: Callable[[], Node]) -> Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.fail("expression nested too deeply", token)
        try:
            return parse()
        finally:
            self.depth -= 1

    def restriction(self) -> Node:
        first = self.peek()
        if first.kind not in ("text", "string") or _is_keyword(first):
            raise self.fail()
        if first.kind == "text" and self.peek(1).kind == "(" and self.peek(1).start == first.end:
            return self.function()
        parts = self.member()
        operator = self.peek()
        if operator.kind != "op":
            return Global(".".join(part.value for part in parts))
        self.take()
        path = self.field_path(parts)
        if operator.text == ":" and self.peek().kind == "*":
            self.take()
            return Exists(path)
        if self.peek().kind == "(":
            opening = self.take()

            def values() -> Node:
                return self.expression(lambda: self.comparison(path, operator.text), in_value=True)

            node = self.nested(opening, values)
            self.expect(")")
            return node
        return self.comparison(path, operator.text)

    def member(self) -> list[_Token]:
        parts = [self.take()]
        while self.peek().kind == ".":
            self.take()
            if self.peek().kind not in ("text", "string"):
                raise self.fail()
            parts.append(self.take())
        return parts

    def field_path(self, parts: list[_Token]) -> tuple[str, ...]:
        top = _FIELD_BY_FOLDED_NAME.get(_fold_name(parts[0].value))
        if top is None:
            self.invalid("undefined field", parts[0].start, parts[0].text)
        return (top or parts[0].value, *(part.value for part in parts[1:]))

    def invalid(self, what: str, pos: int, shown: str) -> None:
        """Note a semantic error; syntax errors found later in the filter take precedence."""
        self.deferred = self.deferred or _error(what, self.source, pos, shown)

    def value(self) -> tuple[str, bool, _Token]:
        first = self.peek()
        sign = ""
        if first.kind == "-" and self.peek(1).kind == "text" and self.peek(1).start == first.end:
            self.take()
            sign = "-"
        if self.peek().kind not in ("text", "string") or _is_keyword(self.peek()):
            raise self.fail()
        parts = self.member()
        null = not sign and len(parts) == 1 and parts[0].kind == "text" and parts[0].text == "NULL_VALUE"
        return sign + ".".join(part.value for part in parts), null, first

    def comparison(self, path: tuple[str, ...], op: str) -> Node:
        text, null, token = self.value()
        shown = self.source[token.start : self.tokens[self.pos - 1].end]
        if op in ("=~", "!~"):
            try:
                return Compare(path, op, text, regex=re.compile(text))
            except re.error:
                self.invalid("invalid regular expression", token.start, shown)
        elif null or op == ":":
            return Compare(path, op, text, null=null)
        elif path in _TIMESTAMP_FIELDS:
            if (instant := _parse_instant(text)) is not None:
                return Compare(path, op, text, instant=instant)
            self.invalid("invalid timestamp", token.start, shown)
        elif path == ("severity",):
            if (level := _severity_level(text)) is not None:
                return Compare(path, op, text, level=level)
            self.invalid("invalid severity", token.start, shown)
        return Compare(path, op, text)

    def function(self) -> Node:
        name = self.take()
        self.take()  # the "(" right after the name
        args: list[list[_Token]] = []
        while self.peek().kind != ")":
            if args:
                self.expect(",")
            if self.peek().kind not in ("text", "string"):
                raise self.fail()
            args.append(self.member())
        self.take()
        function = name.text.lower()
        if function == "log_id" and len(args) == 1:
            return LogId(unquote(".".join(part.value for part in args[0])))
        if function == "search" and len(args) in (1, 2):
            query = args[-1]
            if len(query) != 1 or query[0].kind != "string":
                self.invalid("SEARCH query must be a quoted string", query[0].start, query[0].text)
            path = self.field_path(args[0]) if len(args) == 2 else None
            phrases = tuple(tuple(_words(phrase)) for phrase in re.findall(r"`([^`]*)`", query[-1].value))
            words = tuple(_words(re.sub(r"`[^`]*`", " ", query[-1].value)))
            return Search(path, words, phrases)
        known = function in ("log_id", "search")
        self.invalid("wrong number of arguments" if known else "unknown function", name.start, name.text)
        return MatchAll()


def _is_word(token: _Token, word: str) -> bool:
    return token.kind == "text" and token.text == word


def _is_keyword(token: _Token) -> bool:
    return token.kind == "text" and token.text in _KEYWORDS


def _starts_term(token: _Token) -> bool:
    return token.kind in ("string", "(", "-") or (token.kind == "text" and token.text not in ("AND", "OR"))


def _adjacent_number(minus: _Token, following: _Token) -> bool:
    return following.kind == "text" and following.start == minus.end and following.text[:1].isdigit()


# ------------------------------------------------------------------------------------------- values


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _fold_name(name: str) -> str:
    return name.replace("_", "").lower()


def _words(text: str) -> list[str]:
    return [word for word in re.split(r"[\W_]+", _fold(text)) if word]


def _number(text: str) -> int | float | None:
    if _INTEGER.fullmatch(text):
        return int(text)
    return float(text) if _DECIMAL.fullmatch(text) else None


def _severity_level(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return None
    return int(value) if _INTEGER.fullmatch(value) else _SEVERITIES.get(value.upper())


def _parse_instant(text: str) -> tuple[int, int] | None:
    """RFC 3339 / ISO 8601 (offset with or without colon, any fraction length) as (epoch seconds, nanos)."""
    match = _TIMESTAMP.fullmatch(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=UTC
        )
    except ValueError:
        return None
    offset = 0
    if sign:
        if int(off_h) > 23 or int(off_m) > 59:
            return None
        offset = (int(off_h) * 3600 + int(off_m) * 60) * (1 if sign == "+" else -1)
    seconds = (moment - _EPOCH) // timedelta(seconds=1) - offset
    return seconds, int((fraction or "").ljust(9, "0")[:9])


def _scalar_texts(value: Any) -> Iterator[str]:
    """The textual form of every scalar inside ``value`` (recursively)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool):
        yield "true" if value else "false"
    elif isinstance(value, int | float):
        yield str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _scalar_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalar_texts(item)


# ---------------------------------------------------------------------------------------- evaluation


def _flatten(values: list[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from _flatten(value)
        else:
            yield value


def _find_key(obj: Mapping[str, Any], segment: str, exact: bool) -> str | None:
    if segment in obj:
        return segment
    if exact:
        return None
    folded = _fold_name(segment)  # proto field names: snake_case or any letter case
    return next((key for key in obj if _fold_name(key) == folded), None)


def _resolve(entry: Mapping[str, Any], path: tuple[str, ...]) -> list[Any]:
    """Every value at ``path``, stepping through repeated fields; [] when the field is missing."""
    current: list[Any] = [entry]
    for depth, segment in enumerate(path):
        exact = any(path[:k] in _MAP_FIELDS for k in range(1, depth + 1))
        found: list[Any] = []
        for obj in _flatten(current):
            if isinstance(obj, Mapping) and (key := _find_key(obj, segment, exact)) is not None:
                found.append(obj[key])
        current = found
    return list(_flatten(current))


def _sign(left: Any, right: Any) -> int:
    return (left > right) - (left < right)


def _order(node: Compare, leaf: Any) -> int | None:
    """How ``leaf`` compares with the filter's value once converted to the leaf's type, or None."""
    if node.instant is not None:
        instant = _parse_instant(leaf) if isinstance(leaf, str) else None
        return None if instant is None else _sign(instant, node.instant)
    if node.level is not None:
        level = _severity_level(leaf)
        return None if level is None else _sign(level, node.level)
    if isinstance(leaf, bool):
        wanted = node.value.lower()
        return _sign(leaf, wanted == "true") if wanted in ("true", "false") else None
    if isinstance(leaf, int | float):
        number = _number(node.value)
        return None if number is None or math.isnan(number) or math.isnan(leaf) else _sign(leaf, number)
    if isinstance(leaf, str):
        number = _number(node.value) if _INTEGER.fullmatch(leaf) else None  # int64 fields are JSON strings
        if number is not None and not math.isnan(number):
            return _sign(int(leaf), number)
        return _sign(_fold(leaf), _fold(node.value))
    return None


_TESTS: Final[dict[str, Callable[[int], bool]]] = {
    "=": lambda c: c == 0, "!=": lambda c: c != 0, "<": lambda c: c < 0,
    "<=": lambda c: c <= 0, ">": lambda c: c > 0, ">=": lambda c: c >= 0,
}  # fmt: skip


def _compare_leaf(node: Compare, leaf: Any) -> bool:
    if node.regex is not None:
        return isinstance(leaf, str) and (node.regex.search(leaf) is not None) == (node.op == "=~")
    if node.null:
        return node.op in ("=", "!=") and (leaf is None) == (node.op == "=")
    if leaf is None:
        return False
    if node.op == ":":
        needle = _fold(node.value)
        return any(needle in _fold(text) for text in _scalar_texts(leaf))
    order = _order(node, leaf)
    return order is not None and _TESTS[node.op](order)


def _log_id(log_name: Any) -> str | None:
    if not isinstance(log_name, str) or "/logs/" not in log_name:
        return None
    return unquote(log_name.split("/logs/", 1)[1])


def _contains_run(words: list[str], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(tuple(words[i : i + size]) == phrase for i in range(len(words) - size + 1))


def _search(node: Search, entry: Mapping[str, Any]) -> bool:
    scope = _resolve(entry, node.path) if node.path is not None else [entry]
    fields = [_words(text) for value in scope for text in _scalar_texts(value)]
    vocabulary = {word for words in fields for word in words}
    return all(word in vocabulary for word in node.words) and all(
        any(_contains_run(words, phrase) for words in fields) for phrase in node.phrases
    )


def _evaluate(node: Node, entry: Mapping[str, Any]) -> bool:
    match node:
        case And(operands):
            return all(_evaluate(operand, entry) for operand in operands)
        case Or(operands):
            return any(_evaluate(operand, entry) for operand in operands)
        case Not(operand):
            return not _evaluate(operand, entry)
        case Compare():
            leaves = _resolve(entry, node.path)
            if not leaves and node.path in _DEFAULTS:
                leaves = [_DEFAULTS[node.path]]
            return any(_compare_leaf(node, leaf) for leaf in leaves)
        case Exists(path):
            return bool(_resolve(entry, path))
        case Global(value):
            needle = _fold(value)
            return any(needle in _fold(text) for text in _scalar_texts(entry))
        case LogId(log_id):
            return _log_id(entry.get("logName")) == log_id
        case Search():
            return _search(node, entry)
        case MatchAll():
            return True
        case _:
            assert_never(node)


def compile_filter(text: str) -> Callable[[Mapping[str, Any]], bool]:
    """Parse once; the returned predicate is applied to many entries.

    Empty/whitespace filter matches everything. Raises FilterError for a malformed filter.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(
            f"Invalid filter: the filter is {len(text)} characters long; the maximum is {MAX_FILTER_LENGTH}"
        )
    node = _Parser(text).parse()

    def predicate(entry: Mapping[str, Any]) -> bool:
        return _evaluate(node, entry)

    return predicate
