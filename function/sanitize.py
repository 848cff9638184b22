"""Text from outside (error messages, ErrorInfo metadata, Help links, audit-log entries) made safe to show.

Whatever Google, a proxy in between or an audit entry says reaches a terminal (`?format=text`, `jq -r`), a pasted
command, a metric label and the log line's message. So, once, here:

    text(value)   no control character survives: C0 and DEL, C1 (ESC's 8-bit cousins, NEL), the Unicode bidi
                  overrides and isolates, and the line and paragraph separators are written as visible escapes
                  (a newline becomes the two characters \\n), so a field can neither forge a line nor recolour,
                  hide or reorder what follows it. Token-shaped strings are redacted.
    redact(value) access tokens (ya29.…), JWTs (identity tokens), "access_token": "…" and Bearer … replaced.
    link(url)     the URL, only when it is https on one of Google's console or documentation hosts; else None.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# The hosts whose links the canary offers as a fix. Google's console and documentation only, because a link in an
# error body is followed by a person on call: not every *.google.com host (sites., docs., script. and forms. serve
# anyone's content) and not *.googleapis.com (storage.googleapis.com serves anyone's bucket).
GOOGLE_LINK_HOSTS = frozenset(
    {
        "cloud.google.com",
        "console.cloud.google.com",
        "status.cloud.google.com",
        "console.developers.google.com",
        "developers.google.com",
        "support.google.com",
    }
)
GOOGLE_LINK_SUFFIX = ".cloud.google.com"  # e.g. docs.cloud.google.com, console.cloud.google.com

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0, DEL, C1; the bidi embeddings/overrides/isolates and marks; line and paragraph separators; BOM/zero-width no-break
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
_SECRETS = (  # most specific first: "Bearer ya29.…" is one secret, not two
    (re.compile(r"\b(Bearer)\s+[A-Za-z0-9_\-.~+/]+=*", re.IGNORECASE), r"\1 [redacted]"),
    (
        re.compile(r"""(["']?(?:access|id|refresh)_token["']?\s*[:=]\s*)(["']?)[^"'\s,;&}]*\2""", re.IGNORECASE),
        r"\1\2[redacted]\2",
    ),
    (re.compile(r"ya29\.[A-Za-z0-9_\-.~+/]+"), "ya29.[redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]*)?"), "[redacted JWT]"),
)
_HOST = re.compile(r"[a-z0-9.-]+")
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def redact(value: str) -> str:
    for pattern, replacement in _SECRETS:
        value = pattern.sub(replacement, value)
    return value


def text(value: object, limit: int | None = None) -> str:
    """One line, safe for a terminal, a log message and a metric label: controls escaped, tokens redacted."""
    out = _CONTROL.sub(_escape, redact(str(value)))
    if limit is not None and len(out) > limit:
        out = out[: limit - 1] + "…"
    return out


def link(url: object) -> str | None:
    """`url` if it is an https link to Google's console or documentation, else None (never offered as a fix)."""
    if not isinstance(url, str) or len(url) > 2000 or not _URL_CHARS.fullmatch(url):
        return None  # whitespace, controls, backslashes (browsers read "\\" as "/"), quotes, non-ASCII
    parts = urlsplit(url)
    host = parts.netloc.lower()
    if parts.scheme != "https" or not _HOST.fullmatch(host):
        return None  # javascript:, data:, http:, user@host, host:port
    if host in GOOGLE_LINK_HOSTS or host.endswith(GOOGLE_LINK_SUFFIX):
        return url
    return None
