"""``pcref-mcp team``: serve team mode; with ``--stand-in``, also the local identity provider.

``--stand-in`` is the one command that lets anyone try team mode on a fresh machine: it starts the
stand-in identity provider over TLS (a fresh self-signed certificate), points every Entra setting at
it, uses the sandbox as the backend and prints how to connect and who can sign in.

The certificate's private key lives in a temporary directory that must not outlive the process, however
it is stopped: Ctrl+C (SIGINT), ``kill`` (SIGTERM, what service managers and ``docker stop`` send) or a
normal exit. uvicorn handles both signals by shutting down and then raising the signal again with the
previous handler in place; Python's default SIGTERM handler would end the process right there, past
every ``with`` block, so :func:`_signals_unwind` turns SIGTERM into an ordinary exit that runs them.
"""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from pcref_mcp.errors import ConfigError

if TYPE_CHECKING:
    from pcref_mcp.config import Settings

__all__ = ["cmd_team", "stand_in_settings"]

log = logging.getLogger("pcref_mcp.team")


def stand_in_settings(settings: Settings, idp_url: str, cert: Path) -> Settings:
    """The settings that point team mode at a running stand-in (the same keys Entra needs)."""
    from pcref_mcp.team import standin_idp

    if settings.is_live:
        raise ConfigError("--stand-in uses the sandbox; it cannot be combined with the live backend.")
    return settings.model_copy(
        update={
            "tenant_id": standin_idp.TENANT,
            "client_id": standin_idp.API_CLIENT_ID,
            "client_secret": SecretStr(standin_idp.API_CLIENT_SECRET),
            "authority_host": idp_url,
            "team_issuer": None,
            "team_audiences": (),
            "team_allowed_tenants": (),
            "team_ca_bundle": cert,
        }
    )


def cmd_team(args: Any, settings: Settings) -> int:
    from pcref_mcp.ops import operate
    from pcref_mcp.ops.drain import serve
    from pcref_mcp.team.app import plan_for, team_app, team_server

    host = args.host or settings.http_host
    port = args.port if args.port is not None else settings.http_port
    with _signals_unwind(), ExitStack() as stack:
        if args.stand_in:
            from pcref_mcp.team.standin_idp import USERS, RunningIdp, StandInIdp

            cert_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pcref-standin-")))
            idp = stack.enter_context(RunningIdp(StandInIdp(), cert_dir, port=args.stand_in_port))
            settings = stand_in_settings(settings, idp.url, idp.cert)
            people = ", ".join(
                f"{u.login} ({u.upn}{', needs MFA' if u.mfa_required else ''})" for u in USERS.values()
            )
            print(
                f"Stand-in identity provider at {idp.url} (certificate {idp.cert}); "
                f"test users: {people}. eve is in another tenant and is refused.",
                file=sys.stderr,
                flush=True,
            )
        plan = plan_for(settings, host=host, port=port)
        server = team_server(settings, plan)
        app = team_app(settings, host=host, port=port, server=server)
        print(
            f"pcref-mcp team server at {plan.resource} — scope {plan.scope}; "
            f"authorization server: {'this server (proxy to Entra)' if plan.proxy else plan.entra_issuer}\n"
            f'  VS Code (.vscode/mcp.json): {{"servers": {{"pcref": {{"type": "http", "url": "{plan.resource}"}}}}}}\n'
            "  Claude.ai / ChatGPT: add a custom connector with this URL (needs a public https URL).\n"
            "  Stop with Ctrl+C.",
            file=sys.stderr,
            flush=True,
        )
        # SIGTERM drains; 0 when it drained cleanly (pcref_mcp.ops.drain)
        return serve(operate(settings, server, app), settings, host=host, port=port)


@contextmanager
def _signals_unwind() -> Iterator[None]:
    """While the block runs, SIGTERM raises ``SystemExit(143)`` (SIGINT already raises
    KeyboardInterrupt), so clean-up in ``with`` blocks and ``finally`` runs on either signal."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return

    def unwind(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
