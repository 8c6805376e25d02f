"""The operator's commands: ``pcref-mcp audit`` (the journal as JSON lines) and ``pcref-mcp admin``.

Registered by :func:`add_commands` so ``pcref_mcp.cli`` stays the one entry point and imports
nothing of this package until one of these commands runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_commands", "cmd_audit"]


def add_commands(sub: Any) -> None:
    audit = sub.add_parser(
        "audit", help="export the journal as JSON lines, oldest first (for an auditor or a SIEM)"
    )
    audit.add_argument("--since", help="from this time: ISO 8601 (2026-12-01, …T09:00Z) or 30m/24h/7d ago")
    audit.add_argument("--until", help="before this time (same forms)")
    audit.add_argument("--person", help="only this person: principal id or sign-in name")
    audit.add_argument("--output", "-o", help="write to this file (created 0600) instead of stdout")
    audit.set_defaults(run=cmd_audit)


def cmd_audit(args: argparse.Namespace, settings: Any) -> int:
    import anyio

    from pcref_mcp.ops.audit import parse_moment, write_audit
    from pcref_mcp.store import open_store

    since, until = parse_moment(args.since), parse_moment(args.until)

    async def export(out: Any) -> int:
        store = open_store(settings.store_location, secret=settings.store_secret)
        try:
            await store.start()
            return await write_audit(store, out, since=since, until=until, person=args.person)
        finally:
            await store.close()

    def run(out: Any) -> int:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as thread:  # its own event loop, also when called from async code
            return thread.submit(anyio.run, export, out).result()

    if args.output:
        import os

        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            count = run(out)
        print(f"{count} record(s) written to {args.output}", file=sys.stderr)
        return 0
    run(sys.stdout)
    return 0
