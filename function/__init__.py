"""The Gemini access canary: the deployed function (GOOGLE_FUNCTION_SOURCE=function/main.py).

Modules import each other relatively, so the package works both when functions-framework loads main.py by path
(as the package `main`, with this directory as its search path) and when tests import it as `function`.
"""
