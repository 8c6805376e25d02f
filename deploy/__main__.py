"""``python -m deploy up [--team [--proxy] [--people 50]] [--replicas 3] [--port 8800] [--port-base N] [--dir DIR]``:
the team stack on loopback."""

from __future__ import annotations

import argparse
import json
import os
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
    up.add_argument(
        "--team",
        action="store_true",
        help="team mode: each person signs in (a stand-in identity provider), Partner Center on their behalf",
    )
    up.add_argument(
        "--proxy",
        action="store_true",
        help="with --team: proxy mode, the replicas are the OAuth authorization server clients sign in with",
    )
    up.add_argument("--people", type=int, default=50, help="the stand-in's people (with --team)")
    up.add_argument(
        "--port-base",
        type=int,
        help="use given ports instead of picked ones: the sandbox on BASE, PostgreSQL on BASE+1, the "
        "replicas from BASE+2 (default: free ports, picked again if taken before they are bound)",
    )
    args = parser.parse_args(argv)
    if args.proxy and not args.team:
        parser.error("--proxy needs --team")

    root = args.dir or Path(tempfile.mkdtemp(prefix="pcref-stack-"))
    stack = Stack(
        root,
        replicas=args.replicas,
        port=args.port,
        team=args.team,
        people=args.people,
        proxy=args.proxy,
        port_base=args.port_base,
    )
    stack.start()
    if stack.identity is not None:
        tokens = root / "tokens.json"
        with os.fdopen(os.open(tokens, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            json.dump({p.upn: stack.token(i) for i, p in enumerate(stack.identity.people)}, out, indent=1)
        who = (
            f"  team mode: identity provider {stack.identity.url} (certificate {stack.identity.cert});\n"
            f"  each person's access token (valid 1 h) in {tokens}: Authorization: Bearer <token>"
        )
    else:
        who = f"  Authorization: Bearer {BEARER} (one token for every caller)"
    print(
        f"pcref-mcp team stack: {stack.url}\n{who}\n"
        f"  {args.replicas} replicas on ports {', '.join(map(str, stack.replica_ports))}, "
        f"PostgreSQL on {stack.postgres.port if stack.postgres else '-'}, sandbox on {stack.sandbox_port}\n"
        f"  health: {stack.url.removesuffix('/mcp')}/readyz; each replica's /metrics with "
        f"Authorization: Bearer {stack.metrics_token}\n"
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
