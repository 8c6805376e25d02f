"""Run the sandbox as a standalone HTTP service on the loopback interface."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pcref_mcp.sandbox.config import SandboxConfig, default_db_path

__all__ = ["is_loopback", "serve"]


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
) -> None:
    """Serve until interrupted. ``db_path`` None uses :func:`default_db_path` (a file, kept between runs).

    Only loopback hosts are accepted unless ``allow_remote`` is true: the sandbox accepts any bearer
    token by default and must not be reachable from other machines by accident.
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
        )
    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level, lifespan="off")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
