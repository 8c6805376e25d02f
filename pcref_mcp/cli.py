"""`pcref-mcp`: serve over stdio (what desktop clients spawn) or HTTP, run the sandbox, sign in,
inspect the journal. Heavy modules are imported by the command that needs them, so spawning the
server stays fast. Only this module writes to stdout, and never while serving stdio.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from pcref_mcp import __version__

if TYPE_CHECKING:  # the parser is built only for a command line with arguments (_arguments)
    import argparse


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    from pcref_mcp.config import load_settings
    from pcref_mcp.errors import PcrefError

    try:
        overrides: dict[str, Any] = {}
        if getattr(args, "live", False):
            overrides["backend"] = "live"
        if getattr(args, "read_only", False):
            overrides["read_only"] = True
        settings = load_settings(overrides=overrides)
        _configure_logging(settings.log_level, settings.log_format)
        return int(args.run(args, settings) or 0)
    except PcrefError as exc:
        print(f"pcref-mcp: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


# --- commands ---------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, settings: Any) -> int:
    from pcref_mcp.server.app import build_server

    if settings.backend == "live":
        from pcref_mcp.partner_center.auth import ensure_configured

        ensure_configured(settings)
    server = build_server(settings)
    mode = "read-only" if settings.read_only else "read-write (confirmed writes)"
    backend = "Partner Center (live)" if settings.backend == "live" else "embedded sandbox"
    if not args.http:
        logging.getLogger("pcref_mcp").info(
            "pcref-mcp %s on stdio; backend: %s; %s", __version__, backend, mode
        )
        server.run()
        return 0
    from pcref_mcp.server.http import http_app

    host = args.host or settings.http_host
    port = args.port if args.port is not None else settings.http_port
    from pcref_mcp.ops import operate
    from pcref_mcp.ops.drain import serve

    # validate before printing anything; then the operator's routes in front (pcref_mcp.ops)
    app = operate(settings, server, http_app(settings, server, host=host, port=port))
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/mcp"
    print(_connect_help(url, backend, mode), file=sys.stderr, flush=True)
    return serve(app, settings, host=host, port=port)  # SIGTERM drains: 0 when cleanly (pcref_mcp.ops.drain)


def cmd_team(args: argparse.Namespace, settings: Any) -> int:
    from pcref_mcp.team.serve import cmd_team as team

    return team(args, settings)


def cmd_sandbox(args: argparse.Namespace, settings: Any) -> int:
    from pcref_mcp.sandbox import serve
    from pcref_mcp.sandbox.config import default_db_path

    db = args.db or settings.sandbox_db or default_db_path()
    print(
        f"Partner Center Referrals sandbox on http://{args.host}:{args.port}/v1.0/engagements/referrals "
        f"(database {db}; any bearer token is accepted)",
        file=sys.stderr,
        flush=True,
    )
    serve(
        host=args.host,
        port=args.port,
        db_path=db,
        reset=args.reset,
        size=args.size,
        profile=args.profile or settings.sandbox_profile,
        rate_limit=args.rate_limit,
    )
    return 0


def cmd_login(args: argparse.Namespace, settings: Any) -> int:
    from pcref_mcp.partner_center.signin import cmd_login as login

    return login(settings, device_code=not args.browser, err=sys.stderr)


def cmd_logout(args: argparse.Namespace, settings: Any) -> int:
    from pcref_mcp.partner_center.signin import cmd_logout as logout

    return logout(settings, sys.stderr)


def cmd_whoami(args: argparse.Namespace, settings: Any) -> int:
    from pcref_mcp.partner_center.signin import cmd_whoami as whoami

    return whoami(settings, sys.stdout)


async def _settle(settings: Any, journal: Any) -> None:
    """``journal --settle``: decide everyone's in-doubt updates from the service (reads only)."""
    from pcref_mcp.server.runtime import Runtime
    from pcref_mcp.writes.settle import settle_in_doubt

    runtime = Runtime(settings)
    try:
        settled = await settle_in_doubt(journal, runtime.client)
    finally:
        await runtime.aclose()
    for item in settled:
        print(f"#{item.entry_id}  {item.status.replace('_', ' ')}: {item.how}", file=sys.stderr)
    if not settled:
        print("Nothing is in doubt.", file=sys.stderr)


def cmd_config(args: argparse.Namespace, settings: Any) -> int:
    from pcref_mcp.config import cmd_config as show

    return show(settings, sys.stdout)


def cmd_journal(args: argparse.Namespace, settings: Any) -> int:
    import anyio

    from pcref_mcp.store import open_store
    from pcref_mcp.writes.journal import Journal

    async def read() -> list[Any]:
        store = open_store(settings.store_location, secret=settings.store_secret)
        lease = settings.journal_lease_seconds
        try:
            if args.settle:
                await _settle(settings, Journal(store, lease_seconds=lease))
            journal = Journal(store, lease_seconds=lease)
            return await journal.recent(args.limit, referral_id=args.referral, any_actor=args.all)
        finally:
            await store.close()

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as thread:  # its own event loop, also when called from async code
        entries = thread.submit(anyio.run, read).result()
    if args.json:
        print(json.dumps([e.shown() for e in entries], indent=2, default=str))
        return 0
    if not entries:
        print(f"The journal is empty ({settings.store_shown}).")
        return 0
    for e in entries:
        shown = e.shown()
        target = e.referral_id or shown["external_ref"] or "-"
        by = f"  by {e.actor_name or e.actor_id}" if args.all else ""
        print(
            f"#{e.id}  {e.started_at}  {e.status:<9} {e.tool:<16} {target}  correlation {e.correlation_id}{by}"
        )
        if e.summary:
            print(f"      {e.summary}")
        for op in shown["operations"]:
            print(f"      {json.dumps(op, default=str, ensure_ascii=False)[:200]}")
        if e.error:
            print(f"      error: {e.error}")
        if e.undone_by:
            print(f"      undone by #{e.undone_by}")
        hint = e.how_to_check()
        if hint:
            print(f"      in doubt — how to check: {hint}")
    return 0


def cmd_doctor(args: argparse.Namespace, settings: Any) -> int:
    """Read-only check of Partner Center (or, with --sandbox, of an in-memory sandbox)."""
    import anyio
    import httpx

    from pcref_mcp.config import SANDBOX_BASE_URL
    from pcref_mcp.doctor import dumps, run_checks
    from pcref_mcp.partner_center.client import PartnerCenterClient
    from pcref_mcp.partner_center.recording import Recorder

    transport: httpx.AsyncBaseTransport
    sign_in = None
    if args.sandbox:
        from pcref_mcp.partner_center.auth import StaticTokenProvider
        from pcref_mcp.sandbox import SandboxConfig, create_app

        config = SandboxConfig(
            db_path=None,
            rate_limit=0,
            **({"profile": profile} if (profile := args.profile or settings.sandbox_profile) else {}),
        )
        transport = httpx.ASGITransport(app=create_app(config))
        tokens: Any = StaticTokenProvider("doctor-sandbox-token")
        base_url, backend = SANDBOX_BASE_URL, f"embedded sandbox, {config.profile} profile"
    else:
        from pcref_mcp.config import load_settings
        from pcref_mcp.errors import SignInError
        from pcref_mcp.partner_center.auth import ensure_configured, provider_for

        serving_sandbox = settings.backend != "live"
        if serving_sandbox:  # doctor checks Partner Center itself, whatever serve uses
            settings = load_settings(overrides={"backend": "live"})
        try:
            ensure_configured(settings)
        except SignInError as exc:
            if not serving_sandbox:
                raise
            # The person serves the embedded sandbox: say how to check that one instead.
            raise SignInError(
                exc.message,
                hint=f"{exc.hint or ''} To check the embedded sandbox instead: pcref-mcp doctor --sandbox.".strip(),
            ) from None
        tokens = provider_for(settings)
        sign_in = tokens.get_token
        transport = httpx.AsyncHTTPTransport(retries=0)
        base_url = settings.base_url
        backend = "Partner Center, live"
    recorder = Recorder(transport, args.record) if args.record else None

    async def run() -> Any:
        async with PartnerCenterClient(base_url, tokens, transport=recorder or transport) as client:
            return await run_checks(
                client, backend=backend, sign_in=sign_in, save_capabilities=not args.sandbox
            )

    report = anyio.run(run)
    if recorder is not None:
        report.notes.append(
            f"Recorded {len(recorder.saved)} responses in {recorder.directory} (contact details scrubbed)."
        )
    print(dumps(report) if args.json else report.text())
    return 0 if report.ok else 1


def cmd_tools(args: argparse.Namespace, settings: Any) -> int:
    import anyio

    from pcref_mcp.server.app import build_server

    server = build_server(settings)
    tools = anyio.run(server.list_tools)
    rows = []
    for tool in tools:
        wire = tool.model_dump(mode="json", by_alias=True, exclude_none=True)
        rows.append(
            (
                tool.name,
                len(json.dumps(wire, separators=(",", ":"))),
                len(json.dumps(wire.get("inputSchema", {}), separators=(",", ":"))),
                len(json.dumps(wire.get("outputSchema", {}), separators=(",", ":"))),
            )
        )
    if args.json:
        print(
            json.dumps(
                [{"name": n, "bytes": b, "input_schema": i, "output_schema": o} for n, b, i, o in rows]
            )
        )
        return 0
    if args.markdown:
        from pcref_mcp.server.reference import tool_reference

        print(tool_reference(tools))
        return 0
    print(f"{'tool':<18}{'bytes':>7}{'input':>8}{'output':>8}")
    for name, total, inp, out in rows:
        print(f"{name:<18}{total:>7}{inp:>8}{out:>8}")
    total = sum(r[1] for r in rows)
    print(f"{'total':<18}{total:>7}   (~{total // 4} tokens)")
    return 0


# --- private ----------------------------------------------------------------------------------------


def _arguments(argv: Sequence[str]) -> Any:
    """The command line read. Without arguments, what a desktop client spawns (serve over stdio), it
    is the parser's defaults, without building the parser: argparse and the twenty commands' parsers
    cost about 10 ms of every cold start (issue 24). tests/test_cli_arguments.py checks that these
    are exactly what the parser gives."""
    if not argv:
        return SimpleNamespace(run=cmd_serve, http=False, host=None, port=None, live=False, read_only=False)
    return _parser().parse_args(argv)


def _parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="pcref-mcp",
        description="MCP server for Microsoft Partner Center Referrals. With no command: serve over stdio.",
    )
    parser.add_argument("--version", action="version", version=f"pcref-mcp {__version__}")
    parser.add_argument("--live", action="store_true", help="use Partner Center instead of the sandbox")
    parser.add_argument("--read-only", action="store_true", help="offer read tools only")
    parser.set_defaults(run=cmd_serve, http=False, host=None, port=None)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve MCP (stdio by default)")
    serve.add_argument("--http", action="store_true", help="serve Streamable HTTP instead of stdio")
    serve.add_argument("--host", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default 8765)")
    serve.add_argument("--live", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--read-only", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(run=cmd_serve)

    team = sub.add_parser("team", help="serve a team over HTTP: each person signs in (Entra ID)")
    team.add_argument("--host", help="HTTP bind address (default 127.0.0.1)")
    team.add_argument("--port", type=int, help="HTTP port (default 8765)")
    team.add_argument("--stand-in", action="store_true", help="with a local stand-in identity provider")
    team.add_argument("--stand-in-port", type=int, default=8790, help="its port (default 8790)")
    team.add_argument("--read-only", action="store_true", help=argparse.SUPPRESS)
    team.set_defaults(run=cmd_team)

    sandbox = sub.add_parser("sandbox", help="run the local Partner Center Referrals service")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8780)
    sandbox.add_argument("--db", help="database file (default: in the user data dir)")
    sandbox.add_argument("--reset", action="store_true", help="drop and reseed the database")
    sandbox.add_argument("--size", type=int, default=60, help="referrals to seed (default 60)")
    sandbox.add_argument(
        "--profile",
        choices=("lenient", "strict"),
        help="strict: as documented (default: the sandbox_profile setting, else lenient)",
    )
    sandbox.add_argument(
        "--rate-limit", type=int, default=100, help="requests per 60 s per token, as the service (0: off)"
    )
    sandbox.set_defaults(run=cmd_sandbox)

    login = sub.add_parser("login", help="sign in to Partner Center (device code by default)")
    login.add_argument("--browser", action="store_true", help="interactive browser sign-in")
    login.set_defaults(run=cmd_login)
    sub.add_parser("logout", help="forget the cached sign-in").set_defaults(run=cmd_logout)
    sub.add_parser("whoami", help="show the signed-in account").set_defaults(run=cmd_whoami)
    sub.add_parser("config", help="show the effective settings (secrets masked)").set_defaults(run=cmd_config)

    journal = sub.add_parser("journal", help="list journaled writes, newest first")
    journal.add_argument("--limit", type=int, default=20)
    journal.add_argument("--referral", help="only this referral id")
    journal.add_argument("--json", action="store_true")
    journal.add_argument(
        "--all", action="store_true", help="every person's writes (team mode), not only yours"
    )
    journal.add_argument(
        "--settle", action="store_true", help="first decide in-doubt updates from the service (reads only)"
    )
    journal.set_defaults(run=cmd_journal)

    from pcref_mcp.ops.cli import add_commands  # audit, admin: light until one of them runs

    add_commands(sub)

    doctor = sub.add_parser("doctor", help="check Partner Center read-only; print a report for support")
    doctor.add_argument("--sandbox", action="store_true", help="check an in-memory embedded sandbox instead")
    doctor.add_argument(
        "--profile", choices=("lenient", "strict"), help="the sandbox's profile (with --sandbox)"
    )
    doctor.add_argument("--record", metavar="DIR", help="save every response, contact details scrubbed")
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(run=cmd_doctor)

    tools = sub.add_parser("tools", help="list the tools with the size of each schema")
    tools.add_argument("--json", action="store_true")
    tools.add_argument("--markdown", action="store_true", help="the README's tool reference table")
    tools.set_defaults(run=cmd_tools)
    return parser


def _configure_logging(level: str, form: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if form == "json":  # PCREF_LOG_FORMAT=json: one JSON object a line (pcref_mcp.ops.logs)
        from pcref_mcp.ops.logs import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("pcref_mcp")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _connect_help(url: str, backend: str, mode: str) -> str:
    return (
        f"pcref-mcp {__version__}: Streamable HTTP at {url} — backend: {backend}; {mode}\n"
        f"  MCP Inspector:  npx @modelcontextprotocol/inspector --cli {url} --transport http --method tools/list\n"
        f'  VS Code (.vscode/mcp.json): {{"servers": {{"pcref": {{"type": "http", "url": "{url}"}}}}}}\n'
        '  Claude Desktop / Cursor spawn stdio instead: {"command": "pcref-mcp"}\n'
        "  Stop with Ctrl+C."
    )
