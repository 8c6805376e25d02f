"""How a sandbox instance is set up: where its data lives, who may call it, how it misbehaves."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pcref_mcp.sandbox.clock import Clock, SystemClock
from pcref_mcp.sandbox.faults import Faults

__all__ = ["PROFILES", "Profile", "SandboxConfig", "default_db_path", "default_profile"]

Profile = Literal["lenient", "strict"]
PROFILES: tuple[Profile, ...] = ("lenient", "strict")


def default_profile() -> Profile:
    """``PCREF_SANDBOX_PROFILE`` (the test suite runs once per profile), else lenient."""
    value = os.environ.get("PCREF_SANDBOX_PROFILE", "lenient").strip().lower()
    if value not in PROFILES:
        raise ValueError(f"PCREF_SANDBOX_PROFILE {value!r} is not one of: {', '.join(PROFILES)}.")
    return value  # type: ignore[return-value]


@dataclass
class SandboxConfig:
    """Settings for :func:`pcref_mcp.sandbox.create_app`.

    ``db_path`` None keeps the data in memory (one connection guarded by a lock, so threads may share
    it). A file database is seeded when it is new or when ``reset`` is true, and kept otherwise.
    ``tokens`` None accepts any non-empty bearer token; a set accepts only those. ``rate_limit``
    requests per ``rate_window`` seconds per token (0 turns throttling off).

    ``profile`` "lenient" answers whatever the client asks that the sandbox can do; "strict" behaves
    like a conservative real service: only what the public documents show is accepted.
    """

    db_path: Path | None = None
    seed_size: int = 60
    seed: int = 42
    reset: bool = False
    tokens: frozenset[str] | None = None
    rate_limit: int = 100
    rate_window: float = 60.0
    faults: Faults = field(default_factory=Faults)
    clock: Clock = field(default_factory=SystemClock)
    page_cap: int = 100
    partner_org_id: str = "4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
    partner_org_name: str = "Fabrikam Sandbox Partner"
    mpn_id: str = "6193175"
    profile: Profile = field(default_factory=default_profile)
    # The secret the /_sandbox/ control routes require (header X-Sandbox-Control); None: a random one
    # per app, read from app.state.control_token.
    control_token: str | None = None

    def __post_init__(self) -> None:
        if self.db_path is not None:
            self.db_path = Path(self.db_path)
        if self.seed_size < 0:
            raise ValueError("seed_size must be >= 0.")
        if not 1 <= self.page_cap <= 1000:
            raise ValueError("page_cap must be between 1 and 1000.")


def default_db_path(app_name: str = "pcref-mcp") -> Path:
    """The sandbox database in the user's data directory (XDG on Linux, the platform's own elsewhere)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / app_name / "sandbox.db"
