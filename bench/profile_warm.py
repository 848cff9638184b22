"""`python -m bench.profile_warm SOURCE RUNS`: where a warm run's time goes, by cProfile.

Loads SOURCE as functions-framework does, makes one run to build the clients, then profiles RUNS runs through the
test client (no gunicorn, no HTTP socket) against the emulator the environment names. Prints the mean run time,
unprofiled and profiled, and the top functions by cumulative and by own time. Time spent waiting on the emulator
shows up as gRPC's blocking waits.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
import sys
import time

from functions_framework import create_app


def main() -> None:
    source, runs = sys.argv[1], int(sys.argv[2])
    client = create_app(target="canary", source=source).test_client()
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):  # the canary's log lines
        client.get("/")
        started = time.perf_counter()
        for _ in range(runs):
            client.get("/")
        plain_ms = (time.perf_counter() - started) / runs * 1000
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for _ in range(runs):
            client.get("/")
        profiler.disable()
        profiled_ms = (time.perf_counter() - started) / runs * 1000
    print(f"{runs} warm runs through the test client: {plain_ms:.2f} ms/run, {profiled_ms:.2f} ms/run under cProfile")
    for key in ("cumulative", "tottime"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(key).print_stats(22)
        body = text.getvalue()
        print(f"\n--- top by {key} ---\n" + body[body.find("   ncalls") :].rstrip())


if __name__ == "__main__":
    main()
