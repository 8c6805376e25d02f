"""Run the sandbox as a standalone HTTP service on the loopback interface."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

from pcref_mcp.sandbox.config import Profile, SandboxConfig, default_db_path, default_profile

__all__ = ["control_token_path", "is_loopback", "serve", "write_control_token"]


def serve(
    host: str = "127.0.0.1",
    port: int = 8780,
    db_path: Path | str | None = None,
    reset: bool = False,
    size: int = 60,
    log_level: str = "warning",
    *,
    seed: int = 42,
    allow_remote: bool = False,
    config: SandboxConfig | None = None,
    profile: Profile | None = None,
    rate_limit: int = 100,
) -> None:
    """Serve until interrupted. ``db_path`` None uses :func:`default_db_path` (a file, kept between runs).

    Only loopback hosts are accepted unless ``allow_remote`` is true: the sandbox accepts any bearer
    token by default and must not be reachable from other machines by accident. ``profile`` None
    takes ``PCREF_SANDBOX_PROFILE`` (lenient by default); a database keeps the seed it was made with,
    so pass ``reset`` to get the strict profile's real-world seed into an existing one.
    """
    if not allow_remote and not is_loopback(host):
        raise ValueError(
            f"Refusing to serve the sandbox on {host!r}: use 127.0.0.1 (or pass allow_remote=True)."
        )
    import uvicorn

    from pcref_mcp.sandbox.app import create_app

    if config is None:
        config = SandboxConfig(
            db_path=Path(db_path) if db_path is not None else default_db_path(),
            reset=reset,
            seed_size=size,
            seed=seed,
            profile=profile or default_profile(),
            rate_limit=rate_limit,
        )
    if config.control_token is None:
        config.control_token = os.environ.get("PCREF_SANDBOX_CONTROL_TOKEN") or secrets.token_urlsafe(24)
    if config.db_path is not None:
        write_control_token(config.db_path, config.control_token)
    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level, lifespan="off")


def control_token_path(db_path: Path) -> Path:
    """Where a standalone sandbox keeps the token its /_sandbox/ control routes require (0600)."""
    return Path(db_path).with_name(Path(db_path).name + ".control-token")


def write_control_token(db_path: Path, token: str) -> Path:
    path = control_token_path(db_path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        if hasattr(os, "fchmod"):  # POSIX; Windows has no mode bits to tighten
            os.fchmod(fd, 0o600)
        os.write(fd, token.encode())
    finally:
        os.close(fd)
    return path


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
