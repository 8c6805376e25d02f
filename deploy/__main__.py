"""``python -m deploy up [--replicas 3] [--port 8800] [--dir DIR]``: the team stack on loopback."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path

from deploy.stack import BEARER, Stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start PostgreSQL, the sandbox, N replicas and nginx; Ctrl-C stops")
    up.add_argument("--replicas", type=int, default=3)
    up.add_argument("--port", type=int, default=8800, help="nginx listens on 127.0.0.1:PORT")
    up.add_argument("--dir", type=Path, help="where logs and data go (default: a new temp dir)")
    args = parser.parse_args(argv)

    root = args.dir or Path(tempfile.mkdtemp(prefix="pcref-stack-"))
    stack = Stack(root, replicas=args.replicas, port=args.port)
    stack.start()
    print(
        f"pcref-mcp team stack: {stack.url} (Authorization: Bearer {BEARER})\n"
        f"  {args.replicas} replicas on ports {', '.join(map(str, stack.replica_ports))}, "
        f"PostgreSQL on {stack.postgres.port if stack.postgres else '-'}, sandbox on {stack.sandbox_port}\n"
        f"  logs in {root}; Ctrl-C stops everything",
        file=sys.stderr,
        flush=True,
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    try:
        done.wait()
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
