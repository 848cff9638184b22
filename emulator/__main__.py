"""`python -m emulator --scenario healthy`: serve a local Google Cloud until stopped.

Prints one JSON line with the endpoints, then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from emulator.core.scenario import ScenarioError, shipped_names
from emulator.server import Emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario",
        default="healthy",
        help=f"a shipped scenario ({', '.join(shipped_names())}) or a YAML file",
    )
    parser.add_argument("--grpc-port", type=int, default=0, help="gRPC port (default: picked by the OS)")
    parser.add_argument("--http-port", type=int, default=0, help="REST and admin port (default: picked by the OS)")
    parser.add_argument("--metadata-port", type=int, default=0, help="metadata server port (default: picked by the OS)")
    parser.add_argument(
        "--serve-functions",
        action="store_true",
        help="run deployed functions (each in a process of its own) and wait for them in deploys",
    )
    parser.add_argument("--outbox", type=Path, help="a folder for e-mail notifications (default: none, not delivered)")
    args = parser.parse_args(argv)
    if args.outbox is not None and not args.outbox.is_dir():
        parser.error(f"--outbox {args.outbox}: not a folder")
    try:
        emulator = Emulator(
            args.scenario,
            grpc_port=args.grpc_port,
            http_port=args.http_port,
            metadata_port=args.metadata_port,
            serve_functions=args.serve_functions,
            outbox=args.outbox,
        )
    except (ScenarioError, OSError) as err:
        print(f"emulator: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with emulator:
        print(json.dumps(emulator.info()), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
