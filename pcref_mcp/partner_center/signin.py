"""``pcref-mcp login | logout | whoami`` as plain functions the CLI wires up.

Everything goes to the given text streams (stderr for prompts and messages: stdout may be the MCP
wire). Return values are process exit codes: 0 done, 1 failed, 2 not set up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TextIO

from pcref_mcp.errors import PcrefError, SignInError
from pcref_mcp.partner_center import auth

if TYPE_CHECKING:
    from pcref_mcp.config import Settings

__all__ = ["cmd_login", "cmd_logout", "cmd_whoami"]


def cmd_login(settings: Settings, *, device_code: bool, err: TextIO, http_client: Any = None) -> int:
    """Sign in (device code, or the browser when one exists and ``device_code`` is False)."""
    if not settings.tenant_id or not settings.client_id:
        err.write(f"Sign-in is not set up. {auth.SETUP_STEPS}\n")
        return 2
    if settings.auth_mode == "app":
        err.write("PCREF_AUTH_MODE=app uses client credentials; there is nothing to sign in.\n")
        return 0

    def prompt(text: str) -> None:
        err.write(text.rstrip() + "\n")
        err.flush()

    try:
        if device_code or not auth.browser_available():
            info = auth.login_device_code(settings, on_prompt=prompt, http_client=http_client)
        else:
            info = auth.login_interactive(settings, http_client=http_client)
    except PcrefError as exc:
        err.write(f"Sign-in failed: {exc}\n")
        return 1
    err.write(f"Signed in as {info.get('username') or 'unknown user'} (tenant {info.get('tenant_id')}).\n")
    return 0


def cmd_logout(settings: Settings, err: TextIO) -> int:
    """Forget the cached account and tokens."""
    try:
        removed = auth.logout(settings)
    except OSError as exc:
        err.write(f"Could not remove the token cache: {exc.strerror}\n")
        return 1
    err.write(
        "Signed out; the token cache was removed.\n" if removed else "Not signed in; nothing to remove.\n"
    )
    return 0


def cmd_whoami(settings: Settings, out: TextIO) -> int:
    """Who is signed in, with the token expiry; never a token."""
    try:
        info = auth.whoami(settings)
    except SignInError as exc:
        out.write(f"{exc}\n")
        return 1
    out.write(f"backend: {settings.backend}\n")
    if not info.get("signed_in"):
        out.write(f"not signed in (token cache: {info['token_cache']}); run `pcref-mcp login`\n")
        return 1
    for key in (
        "username",
        "tenant_id",
        "authority_host",
        "access_token_expires",
        "client_id",
        "token_cache",
    ):
        if info.get(key) is not None:
            out.write(f"{key}: {info[key]}\n")
    return 0
