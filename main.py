"""The deployed entry point is function/main.py (GOOGLE_FUNCTION_SOURCE=function/main.py, set by the deploy tool).

This file exists because `gcloud functions deploy` refuses a Python source directory without a main.py at its root,
before it reads any build variable. Should a build ignore GOOGLE_FUNCTION_SOURCE, it still serves the same targets.
"""

from function.main import canary, canary_pubsub

__all__ = ["canary", "canary_pubsub"]
