"""Command-line tools some tests run verbatim: present, or the test skips — never under CI=true, where it fails."""

from __future__ import annotations

import os
import shutil

import pytest


def need(*tools: str) -> str:
    """The path of the first tool; every tool must be installed (see the README's prerequisites)."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        what = " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} not installed, and CI=true requires every test to run")
        pytest.skip(f"{what} not installed")
    return shutil.which(tools[0]) or tools[0]
