"""The secrets scan every end-to-end test ends with is not vacuous: it catches each kind of leak."""

from __future__ import annotations

import pytest

from emulator.services.vertex import REPLY
from function.probe import PROMPT
from tests.e2e.conftest import StartCanary, assert_no_secrets


def test_a_clean_run_passes_the_scan(start_canary: StartCanary) -> None:
    canary = start_canary("iam_denied")
    canary.call("GET", "/?debug=true")
    assert canary.emulator.world.tokens  # a real token was issued and used…
    assert_no_secrets(canary.outputs, canary.emulator)  # …and appears nowhere


@pytest.mark.parametrize("leak", ["access-token", "identity-token", "prompt", "answer"])
def test_the_scan_catches_each_leak(start_canary: StartCanary, leak: str) -> None:
    canary = start_canary("healthy")
    canary.call("GET", "/")
    token = next(iter(canary.emulator.world.tokens))
    text = {
        "access-token": f'{{"auth": "{token}"}}',
        "identity-token": "Bearer eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.sig",
        "prompt": f"log: {PROMPT}",
        "answer": f"log: {REPLY}",
    }[leak]
    with pytest.raises(AssertionError):
        assert_no_secrets([text], canary.emulator)
