"""A pytest plugin for the mutation run only (`make mutation`, loaded with `-p tools.mutmut_plugin`).

mutmut 3 runs pytest several times in one process (collection, stats, the clean run, then a forked worker per
mutant), and two things this suite assumes of a process break when pytest runs in it more than once:

- pytest caches the ids it generated for a `parametrize` mark on the mark itself and escapes them again in the next
  session, so an id with a backslash (`CANARY_JOB='job\\nx'`) grows one and the node id mutmut recorded is not found.
  Forgetting the cached ids before each parametrization makes every session see the ids the first one saw.
- tests/conftest.py is executed again by each session and reserves a new metadata port, while google.auth keeps the
  GCE_METADATA_HOST it read when the first session imported it. The first session's port (still reserved: its
  socket lives in emulator.frontends.httpserver) is put back, in the environment and in the conftest, so the
  emulators a later session starts serve the metadata server where google.auth looks.
- a test module imported by an earlier session is not imported again, so objects it builds at import and a test
  changes (a parametrized stream already read) carry over. Each later session forgets the test modules, so pytest
  imports them afresh, as a single run would; the code under test stays imported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_METADATA_ENV = ("GCE_METADATA_HOST", "GCE_METADATA_IP")
_first: dict[str, str] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for mark in metafunc.definition.iter_markers(name="parametrize"):
        source = getattr(mark, "_param_ids_from", None)
        if source is not None and getattr(source, "_param_ids_generated", None) is not None:
            object.__setattr__(source, "_param_ids_generated", None)


def pytest_configure(config: pytest.Config) -> None:
    if not _first:
        _first.update({k: os.environ[k] for k in _METADATA_ENV if k in os.environ})
        return
    os.environ.update(_first)
    tests = Path(str(config.rootpath), "tests")
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and name != "conftest" and Path(file).is_relative_to(tests):
            del sys.modules[name]
    conftest = sys.modules.get("conftest")
    if conftest is not None and hasattr(conftest, "METADATA_PORT") and "GCE_METADATA_HOST" in _first:
        vars(conftest)["METADATA_PORT"] = int(_first["GCE_METADATA_HOST"].rsplit(":", 1)[1])
