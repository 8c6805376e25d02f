"""The operator's commands: ``pcref-mcp audit`` (the journal as JSON lines) and ``pcref-mcp admin``.

Registered by :func:`add_commands` so ``pcref_mcp.cli`` stays the one entry point and imports
nothing of this package until one of these commands runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_commands", "cmd_admin", "cmd_audit"]


def add_commands(sub: Any) -> None:
    audit = sub.add_parser(
        "audit", help="export the journal as JSON lines, oldest first (for an auditor or a SIEM)"
    )
    audit.add_argument("--since", help="from this time: ISO 8601 (2026-12-01, …T09:00Z) or 30m/24h/7d ago")
    audit.add_argument("--until", help="before this time (same forms)")
    audit.add_argument("--person", help="only this person: principal id or sign-in name")
    audit.add_argument("--output", "-o", help="write to this file (created 0600) instead of stdout")
    audit.set_defaults(run=cmd_audit)
    add_admin(sub)


def cmd_audit(args: argparse.Namespace, settings: Any) -> int:
    import anyio

    from pcref_mcp.ops.audit import parse_moment, write_audit
    from pcref_mcp.store import open_store

    since, until = parse_moment(args.since), parse_moment(args.until)

    async def export(out: Any) -> int:
        store = open_store(
            settings.store_location, secret=settings.store_secret, previous=settings.store_previous_secret
        )
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


def add_admin(sub: Any) -> None:
    admin = sub.add_parser("admin", help="a team server's people, revocation and store-key rotation")
    what = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    what.add_parser(
        "people",
        help="everyone seen (last call, to the minute) or who wrote, with their clients, latest first",
    )
    revoke = what.add_parser(
        "revoke", help="cut a person or a client off on every replica (grants, refresh handles, tokens)"
    )
    who = revoke.add_mutually_exclusive_group(required=True)
    who.add_argument("--person", help="the person's principal id (Entra object id, as `admin people` lists)")
    who.add_argument("--client", help="an OAuth client id registered with the server's proxy")
    what.add_parser(
        "rotate-key",
        help="re-seal every stored secret under PCREF_STORE_KEY (PCREF_STORE_KEY_PREVIOUS still opens them)",
    )
    admin.set_defaults(run=cmd_admin)


def cmd_admin(args: argparse.Namespace, settings: Any) -> int:
    import anyio

    from pcref_mcp.store import open_store

    async def run() -> int:
        store = open_store(
            settings.store_location, secret=settings.store_secret, previous=settings.store_previous_secret
        )
        try:
            await store.start()
            if args.admin_command == "people":
                return await _people(store)
            if args.admin_command == "revoke":
                return await _revoke(store, person=args.person, client=args.client)
            return await _rotate(store, settings)
        finally:
            await store.close()

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as thread:
        return int(thread.submit(anyio.run, run).result())


async def _people(store: Any) -> int:
    """Everyone seen (any request or sign-in: team.seen, to the minute) or who wrote, the latest seen
    first: their last call, last write, writes, and the clients they came with or approved."""
    people: dict[str, dict[str, Any]] = {}

    def person(pid: str) -> dict[str, Any]:
        return people.setdefault(
            pid, {"name": None, "seen": None, "last_write": None, "writes": 0, "clients": set()}
        )

    for row in await store.seen_list():  # latest first
        held = person(str(row["person"]))
        held["name"] = held["name"] or row["name"]
        held["seen"] = max(held["seen"] or 0.0, float(row["last_seen"]))
        if row["client_id"]:
            held["clients"].add(f"{row['client_name'] or '?'} ({row['client_id']})")
    for row in await store.journal_people():
        held = person(str(row["actor_id"]))
        held["name"] = held["name"] or row["actor_name"]
        held["last_write"], held["writes"] = row["last_write"], int(row["writes"])
    if not people:
        print("Nobody has used this server yet.", file=sys.stderr)
        return 0
    print(
        f"{'person id':<38} {'signed in as':<36} {'last call':<20} {'last write':<25} {'writes':>6}  clients"
    )
    for pid in sorted(
        people, key=lambda p: (people[p]["seen"] or 0.0, people[p]["last_write"] or ""), reverse=True
    ):
        held = people[pid]
        clients = ", ".join(sorted(held["clients"] | set(await _clients_of(store, pid)))) or "-"
        print(
            f"{pid:<38} {held['name'] or '-':<36} {_moment(held['seen']):<20} "
            f"{held['last_write'] or '-':<25} {held['writes']:>6}  {clients}"
        )
    return 0


def _moment(at: float | None) -> str:
    """An epoch time as the operator reads it (UTC, to the minute: last seen is kept to the minute)."""
    if at is None:
        return "-"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


async def _clients_of(store: Any, person: str) -> list[str]:
    """The clients ``person`` approved on the consent page (proxy mode), as "name (client id)" (an
    approval may predate the record of who was seen)."""
    import json
    import time

    from pcref_mcp.team.proxy import CONSENT

    try:
        held = await store.broker_list(CONSENT, time.time(), subject=person)
    except Exception:  # a store without the proxy's state (single-user): no clients to name
        return []
    shown = []
    for value in held:
        consent = json.loads(value)
        shown.append(f"{consent.get('client_name') or '?'} ({consent.get('client_id')})")
    return sorted(shown)


async def _revoke(store: Any, *, person: str | None, client: str | None) -> int:
    from pcref_mcp.team.revocation import CACHE_SECONDS, Revocations

    revocations = Revocations(store)
    if person:
        dropped = await revocations.revoke_person(person)
        whom = f"person {person}"
    else:
        assert client is not None
        dropped = await revocations.revoke_client(client)
        whom = f"client {client}"
    held = ", ".join(f"{n} {kind}" for kind, n in dropped.items() if n) or "nothing held"
    print(
        f"Revoked {whom}: dropped {held}; every replica refuses their current sign-in within "
        f"{CACHE_SECONDS:g} s. Signing in again works unless they are also removed in Entra.",
        file=sys.stderr,
    )
    return 0


async def _rotate(store: Any, settings: Any) -> int:
    if settings.store_previous_secret is None:
        print(
            "pcref-mcp: set PCREF_STORE_KEY to the new key and PCREF_STORE_KEY_PREVIOUS to the old one "
            "(on every replica too), then run this again.",
            file=sys.stderr,
        )
        return 2
    resealed, unreadable = await store.reseal()
    print(
        f"Re-sealed {resealed} stored secret(s) under the new key"
        + (
            f"; {unreadable} opened under neither key and were left (those people sign in again)"
            if unreadable
            else ""
        )
        + ". Once every replica runs with the new key, PCREF_STORE_KEY_PREVIOUS can be removed.",
        file=sys.stderr,
    )
    return 0
