"""The Gemini access canary: the deployed function (GOOGLE_FUNCTION_SOURCE=function/main.py).

main (entry points) → trigger (the request) → run (the harness: deadline, budget) → probe → causes (the closed
vocabulary) → evidence (gathering within the budget; `filters` builds its Logging queries, `audit_entries` reads
the entries) → remedies (a table by cause) → report and metrics (what goes out). Imports only the standard library
and the Google client libraries: never emulator/, deploy/, devkit/ or tests.

Modules import each other relatively, so the package works both when functions-framework loads main.py by path
(as the package `main`, with this directory as its search path) and when tests import it as `function`.
"""
