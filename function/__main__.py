"""`python -m function`: the canary from a terminal or a runbook (function/cli.py)."""

from __future__ import annotations

import os
import sys

from .cli import EXIT_INTERRUPTED, main

if __name__ == "__main__":
    code = main()
    if code == EXIT_INTERRUPTED:
        # A probe still waiting on Google holds worker threads the interpreter would join on the way out.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
