"""The Cloud Monitoring filter language, as ListTimeSeries and alert-policy conditions use it.

Written from Google's "Monitoring filters" guide (cloud.google.com/monitoring/api/v3/filters), the
API reference, and errors Google returned to real users (sources cited where each text is built).

Supported:
  * selectors `metric.type`, `resource.type`, `project`, `metric.label.KEY` / `metric.labels.KEY`,
    `resource.label.KEY` / `resource.labels.KEY`, a quoted key (`resource.label."zone"`), and the bare
    label maps with `:` (`resource.label:zone` = "has a label zone", the form Google's
    monitoredResourceDescriptors.list reference shows);
  * operators `=`, `!=`, `:` (has substring), `>`, `<`, `>=`, `<=`;
  * functions `starts_with`, `ends_with`, `has_substring`, `one_of`, `monitoring.regex.full_match`,
    after `=` (match) or `!=` (no match);
  * `AND`, `OR`, `NOT`, parentheses, and AND by juxtaposition (`metric.type="a" resource.type="b"`,
    the form dashboards and alert policies exported from the console use);
  * double-quoted strings with backslash escapes; bare words (`500`, `gce_instance`) as literals.

Rejected (INVALID_ARGUMENT): `metadata.system_labels.*`, `metadata.user_labels.*` and `group.id`,
because a SeriesView carries no metadata or groups; `=~` / `!~` (Google rejects them too, see below).

Assumption: precedence follows AIP-160 (google.aip.dev/160), the shared Google filter grammar:
  NOT binds tightest, then OR, then AND (explicit or by juxtaposition) - so `a OR b c` is `(a OR b) AND c`.
Assumption: keywords are upper-case only; single quotes are not string delimiters.
Assumption: an absent label reads as the empty string (`metric.label.x != "a"` matches a series
  without x); `>`/`<`/`>=`/`<=` compare as numbers when both sides parse as numbers, else as strings.
Assumption: `monitoring.regex.full_match` uses Python's `re` (RE2 syntax is mostly a subset of it).
Assumption: an empty string as a function argument is a syntax error - which is what Google's answer
  to `starts_with(""x"")` (below) implies.

Error texts whose wording is this emulator's own are marked where they are raised.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Syntax errors, verbatim shape from Google:
#   Field filter had an invalid value of "metric.type = starts_with(""serviceruntime.googleapis.com"")":
#   Could not parse filter "metric.type = starts_with(\"\"serviceruntime.googleapis.com\"\")";
#   syntax error at line 1, column 26, token '""'
#   (github.com/prometheus-community/stackdriver_exporter/issues/52), and
#   ...: Could not parse filter "...\n        metadata.system_labels.\"name\"=~\".*-dlq-.*\"\n...";
#   syntax error at line 3, column 38, token '=~'
#   (github.com/chainguard-dev/terraform-infra-common/pull/463).
# Alert policies name the field alert_policy.conditions[0].condition_threshold.filter instead of filter.
# Assumption (unverified): syntax-error columns count from 1 at the token's first character, as the second
# sample shows; the first reads one less, and the two cannot both be 1-based token starts.

# Verbatim from github.com/prometheus-community/stackdriver_exporter/issues/28 (a metric type that names
# nothing).
# Assumption (unverified): "The provided filter doesn't refer to any known metric." also answers a ListTimeSeries
# filter that names no metric type at all.
NO_KNOWN_METRIC = "The provided filter doesn't refer to any known metric."

# Verbatim (after the field prefix) from github.com/googleapis/nodejs-monitoring/pull/46.
NO_RESOURCE_TYPE = (
    'must specify a restriction on "resource.type" in the filter; see '
    '"https://cloud.google.com/monitoring/api/resources" for a list of available resource types.'
)


class MonFilterError(ValueError):
    """A filter the API refuses; str(err) is the INVALID_ARGUMENT message."""

    def __init__(self, text: str, reason: str, field: str | None = "filter") -> None:
        self.text = text
        self.reason = reason
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        if self.field is None:
            return self.reason
        return f'Field {self.field} had an invalid value of "{self.text}": {self.reason}'

    def for_field(self, field: str) -> MonFilterError:
        """The same error as reported against another field, e.g. an alert condition's filter."""
        return MonFilterError(self.text, self.reason, field if self.field is not None else None)


@dataclass(frozen=True)
class SeriesView:
    metric_type: str
    metric_labels: Mapping[str, str]
    resource_type: str
    resource_labels: Mapping[str, str]
    project: str = ""


@dataclass(frozen=True)
class _Token:
    kind: str  # STRING WORD OP LPAREN RPAREN COMMA BAD EOF
    text: str  # as written, for error messages
    value: str  # a STRING's unescaped contents, else the text
    offset: int


@dataclass(frozen=True)
class _Selector:
    kind: str  # metric.type resource.type project metric.label resource.label metric.labelmap ...
    key: str = ""


@dataclass(frozen=True)
class _Value:
    function: str  # "" for a literal
    args: tuple[str, ...]


@dataclass(frozen=True)
class _Cmp:
    selector: _Selector
    op: str
    value: _Value
    pattern: re.Pattern[str] | None = None


@dataclass(frozen=True)
class _Bool:
    op: str  # AND OR NOT
    parts: tuple[_Node, ...]


_Node = _Cmp | _Bool

_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/*+@$%")
_OPERATORS = ("!=", ">=", "<=", "=~", "!~", "=", ">", "<", ":")  # longest first; =~ and !~ only to refuse
_VALID_OPS = frozenset({"=", "!=", ">", "<", ">=", "<=", ":"})
_KEYWORDS = frozenset({"AND", "OR", "NOT"})
_ONE_ARG = ("starts_with", "ends_with", "has_substring", "monitoring.regex.full_match")
_ORDER = {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
_LABEL_PREFIXES = {
    "metric.label.": "metric.label",
    "metric.labels.": "metric.label",
    "resource.label.": "resource.label",
    "resource.labels.": "resource.label",
}
_LABEL_MAPS = {
    "metric.label": "metric.labelmap",
    "metric.labels": "metric.labelmap",
    "resource.label": "resource.labelmap",
    "resource.labels": "resource.labelmap",
}


def compile_monitoring_filter(text: str, field: str = "filter") -> Callable[[SeriesView], bool]:
    node = _parse(text, field)
    return lambda view: _evaluate(node, view)


def metric_types_named(text: str) -> set[str]:
    """Every metric type named by `metric.type = "..."` (or inside `metric.type = one_of(...)`)."""
    named: set[str] = set()
    for cmp in _comparisons(_parse(text)):
        if cmp.selector.kind == "metric.type" and cmp.op == "=" and cmp.value.function in ("", "one_of"):
            named.update(cmp.value.args)
    return named


def resource_types_named(text: str) -> set[str]:
    named: set[str] = set()
    for cmp in _comparisons(_parse(text)):
        if cmp.selector.kind == "resource.type" and cmp.op == "=" and cmp.value.function in ("", "one_of"):
            named.update(cmp.value.args)
    return named


def labels_named(text: str) -> set[str]:
    """Every label a comparison reads, as "metric.label.KEY" or "resource.label.KEY"."""
    return {
        f"{cmp.selector.kind}.{cmp.selector.key}"
        for cmp in _comparisons(_parse(text))
        if cmp.selector.kind in ("metric.label", "resource.label")
    }


def require_single_metric_type(text: str) -> str:
    """The one metric type a ListTimeSeries filter must pin with a top-level `metric.type = "..."`."""
    node = _parse(text)
    pinned = sorted(
        {
            part.value.args[0]
            for part in _conjuncts(node)
            if isinstance(part, _Cmp)
            and part.selector.kind == "metric.type"
            and part.op == "="
            and not part.value.function
        }
    )
    if not pinned:
        raise MonFilterError(text, NO_KNOWN_METRIC, field=None)
    if len(pinned) > 1:  # Assumption (unverified): the wording for a filter naming two metric types.
        names = ", ".join(f'"{name}"' for name in pinned)
        raise MonFilterError(text, f"The filter must name exactly one metric type; it names {names}.")
    return pinned[0]


def require_resource_type_restriction(text: str, field: str = "filter") -> None:
    """Alert-policy conditions must restrict resource.type somewhere in the filter."""
    if not any(cmp.selector.kind == "resource.type" for cmp in _comparisons(_parse(text, field))):
        raise MonFilterError(text, NO_RESOURCE_TYPE, field)


# --- lexing -------------------------------------------------------------------------------------


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == '"':
            token = _string_token(text, i)
            tokens.append(token)
            i += len(token.text)
        elif ch in "(),":
            tokens.append(_Token({"(": "LPAREN", ")": "RPAREN", ",": "COMMA"}[ch], ch, ch, i))
            i += 1
        elif op := next((op for op in _OPERATORS if text.startswith(op, i)), ""):
            tokens.append(_Token("OP", op, op, i))
            i += len(op)
        elif ch in _WORD_CHARS:
            end = i
            while end < len(text) and text[end] in _WORD_CHARS:
                end += 1
            tokens.append(_Token("WORD", text[i:end], text[i:end], i))
            i = end
        else:
            tokens.append(_Token("BAD", ch, ch, i))
            i += 1
    tokens.append(_Token("EOF", "", "", len(text)))
    return tokens


def _string_token(text: str, start: int) -> _Token:
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            chars.append(_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
        elif ch == '"':
            return _Token("STRING", text[start : i + 1], "".join(chars), start)
        else:
            chars.append(ch)
            i += 1
    return _Token("BAD", text[start:], text[start:], start)  # unterminated


# --- parsing ------------------------------------------------------------------------------------


def _parse(text: str, field: str = "filter") -> _Node:
    parser = _Parser(text, field)
    node = parser.expression()
    parser.expect("EOF")
    return node


class _Parser:
    def __init__(self, text: str, field: str) -> None:
        self.text = text
        self.field = field
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def at_keyword(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "WORD" and token.text == word

    def expect(self, kind: str) -> _Token:
        if self.peek().kind != kind:
            raise self.syntax_error(self.peek())
        return self.take()

    def syntax_error(self, token: _Token) -> MonFilterError:
        line, column = _position(self.text, token.offset)
        quoted = self.text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        where = f"syntax error at line {line}, column {column}, token '{token.text}'"
        reason = f'Could not parse filter "{quoted}"; {where}'
        return MonFilterError(self.text, reason, self.field)

    def semantic_error(self, token: _Token, problem: str) -> MonFilterError:
        line, column = _position(self.text, token.offset)
        return MonFilterError(self.text, f"{problem} (line {line}, column {column})", self.field)

    def expression(self) -> _Node:
        parts = [self.sequence()]
        while self.at_keyword("AND"):
            self.take()
            parts.append(self.sequence())
        return _joined("AND", parts)

    def sequence(self) -> _Node:
        parts = [self.factor()]
        while self.starts_term():
            parts.append(self.factor())
        return _joined("AND", parts)

    def starts_term(self) -> bool:
        token = self.peek()
        return token.kind == "LPAREN" or (token.kind == "WORD" and token.text not in ("AND", "OR"))

    def factor(self) -> _Node:
        parts = [self.term()]
        while self.at_keyword("OR"):
            self.take()
            parts.append(self.term())
        return _joined("OR", parts)

    def term(self) -> _Node:
        if self.at_keyword("NOT"):
            self.take()
            return _Bool("NOT", (self.term(),))
        if self.peek().kind == "LPAREN":
            self.take()
            node = self.expression()
            self.expect("RPAREN")
            return node
        return self.comparison()

    def comparison(self) -> _Cmp:
        """Syntax first (selector, operator, value), then meaning: `=~` is a syntax error wherever it is."""
        name_token, name = self.selector_name()
        op_token = self.peek()
        if op_token.kind != "OP" or op_token.text not in _VALID_OPS:
            raise self.syntax_error(op_token)
        self.take()
        value_token = self.peek()
        value = self.value()
        selector = self.selector(name_token, name)
        if selector.kind.endswith("labelmap") and (op_token.text != ":" or value.function):
            raise self.semantic_error(name_token, f"'{name}' needs a label key, as in {name}.KEY = \"value\"")
        # Assumption (unverified): the wording for a function after an operator other than = or !=.
        if value.function and op_token.text not in ("=", "!="):
            raise self.semantic_error(value_token, f"The function {value.function} can only follow = or !=")
        pattern = None
        if value.function == "monitoring.regex.full_match":
            try:
                pattern = re.compile(value.args[0])
            except re.error as exc:  # Assumption (unverified): the wording for an invalid regular expression.
                raise self.semantic_error(value_token, f"Invalid regular expression {value.args[0]!r}: {exc}") from exc
        return _Cmp(selector, op_token.text, value, pattern)

    def selector_name(self) -> tuple[_Token, str]:
        token = self.peek()
        if token.kind != "WORD" or token.text in _KEYWORDS:
            raise self.syntax_error(token)
        self.take()
        nxt = self.peek()
        if token.text.endswith(".") and nxt.kind == "STRING" and nxt.offset == token.offset + len(token.text):
            self.take()  # a quoted key: resource.label."zone"
            return token, token.text + nxt.value
        return token, token.text

    def selector(self, token: _Token, name: str) -> _Selector:
        for prefix, kind in _LABEL_PREFIXES.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                return _Selector(kind, name[len(prefix) :])
        if name in _LABEL_MAPS:
            return _Selector(_LABEL_MAPS[name])
        if name in ("metric.type", "resource.type", "project"):
            return _Selector(name)
        # Assumption (unverified): the wording for metadata.* and group.id selectors.
        if name.startswith("metadata.") or name == "group.id":
            raise self.semantic_error(
                token, f"The emulator cannot evaluate '{name}': series carry no metadata or groups"
            )
        operand = name.split(".", 1)[1] if name.startswith(("metric.", "resource.")) else name
        # Prefix verbatim from github.com/grafana/grafana/issues/26232 (metric.state).
        # Assumption (unverified): the rest of "The comparison operand: '...' cannot be used in this filter".
        raise self.semantic_error(token, f"The comparison operand: '{operand}' cannot be used in this filter")

    def value(self) -> _Value:
        token = self.take()
        if token.kind == "STRING":
            return _Value("", (token.value,))
        if token.kind != "WORD" or token.text in _KEYWORDS:
            raise self.syntax_error(token)
        if self.peek().kind != "LPAREN":
            return _Value("", (token.text,))
        self.take()
        args = [self.argument()]
        while self.peek().kind == "COMMA":
            self.take()
            args.append(self.argument())
        self.expect("RPAREN")
        # Assumption (unverified): the wording for unknown functions and wrong argument counts.
        if token.text not in (*_ONE_ARG, "one_of"):
            raise self.semantic_error(token, f"Unknown function '{token.text}'")
        if token.text in _ONE_ARG and len(args) != 1:
            raise self.semantic_error(token, f"The function {token.text} takes exactly one string")
        return _Value(token.text, tuple(args))

    def argument(self) -> str:
        token = self.peek()
        if token.kind != "STRING" or not token.value:
            raise self.syntax_error(token)
        return self.take().value


def _joined(op: str, parts: list[_Node]) -> _Node:
    return parts[0] if len(parts) == 1 else _Bool(op, tuple(parts))


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _comparisons(node: _Node) -> list[_Cmp]:
    if isinstance(node, _Cmp):
        return [node]
    return [cmp for part in node.parts for cmp in _comparisons(part)]


def _conjuncts(node: _Node) -> list[_Node]:
    if isinstance(node, _Bool) and node.op == "AND":
        return [leaf for part in node.parts for leaf in _conjuncts(part)]
    return [node]


# --- evaluation ---------------------------------------------------------------------------------


def _evaluate(node: _Node, view: SeriesView) -> bool:
    if isinstance(node, _Cmp):
        return _matches(node, view)
    if node.op == "NOT":
        return not _evaluate(node.parts[0], view)
    results = (_evaluate(part, view) for part in node.parts)
    return all(results) if node.op == "AND" else any(results)


def _matches(cmp: _Cmp, view: SeriesView) -> bool:
    kind, key = cmp.selector.kind, cmp.selector.key
    if kind.endswith("labelmap"):
        labels = view.metric_labels if kind.startswith("metric") else view.resource_labels
        return cmp.value.args[0] in labels
    actual = _field(view, kind, key)
    if cmp.value.function:
        hit = _function_matches(cmp, actual)
        return hit if cmp.op == "=" else not hit
    wanted = cmp.value.args[0]
    if cmp.op == "=":
        return actual == wanted
    if cmp.op == "!=":
        return actual != wanted
    if cmp.op == ":":
        return wanted in actual
    return _ordered(actual, cmp.op, wanted)


def _field(view: SeriesView, kind: str, key: str) -> str:
    if kind == "metric.type":
        return view.metric_type
    if kind == "resource.type":
        return view.resource_type
    if kind == "project":
        return view.project
    labels = view.metric_labels if kind == "metric.label" else view.resource_labels
    return labels.get(key, "")


def _function_matches(cmp: _Cmp, actual: str) -> bool:
    function, args = cmp.value.function, cmp.value.args
    if function == "starts_with":
        return actual.startswith(args[0])
    if function == "ends_with":
        return actual.endswith(args[0])
    if function == "has_substring":
        return args[0] in actual
    if function == "one_of":
        return actual in args
    assert cmp.pattern is not None
    return cmp.pattern.fullmatch(actual) is not None


def _ordered(actual: str, op: str, wanted: str) -> bool:
    compare = _ORDER[op]
    a, b = _number(actual), _number(wanted)
    if a is not None and b is not None:
        return bool(compare(a, b))
    return bool(compare(actual, wanted))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
