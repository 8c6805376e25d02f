"""Shared state behind one interface: the journal and its process leases, approvals and their keys, rate
limits, token caches, batches and the change feed's snapshots.

Two implementations of :class:`~pcref_mcp.store.base.Store`, chosen by one URL:

- ``sqlite:///path`` (the default, in the user's data dir): one person, nothing to install;
- ``postgresql://user@host:port/db``: a team deployment where any replica serves any request.

Migrations run when a store is opened (:mod:`pcref_mcp.store.migrations`). A bottom layer: it
imports only ``pcref_mcp.errors``; the writes layer (journal, approvals) and the Partner Center
client's limiter sit on top of it.
"""

from __future__ import annotations

from pathlib import Path

from pcref_mcp.errors import ConfigError
from pcref_mcp.store.base import Store

__all__ = ["Store", "open_store", "sqlite_url"]


def sqlite_url(path: Path | str) -> str:
    return f"sqlite:///{Path(path)}"


def open_store(
    where: Store | Path | str | None, *, secret: bytes | None = None, previous: bytes | None = None
) -> Store:
    """The store ``where`` names, the one way every part chooses one (not yet connected for
    PostgreSQL: ``await store.start()``).

    ``where`` is a URL (``sqlite:///path``, ``postgresql://…``), a path (a SQLite file of its own),
    ``None`` (SQLite in memory, for tests) or a :class:`Store` already open, returned as it is.
    ``secret`` is the configured store key (``PCREF_STORE_KEY``): refresh tokens at rest are sealed
    under a key derived from it. Without it a SQLite store keeps a random key in its own file.
    ``previous`` (``PCREF_STORE_KEY_PREVIOUS``) still opens what it sealed: a rotation's grace period.
    """
    if where is None or isinstance(where, Path) or (isinstance(where, str) and "://" not in where):
        from pcref_mcp.store.sqlite import SqliteStore

        return SqliteStore(Path(where) if where is not None else None, secret=secret, previous=previous)
    if not isinstance(where, str):
        return where
    url = where
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite":
        from pcref_mcp.store.sqlite import SqliteStore

        # sqlite:///abs/path (and sqlite:////abs/path) name an absolute path; sqlite://rel/path a relative one
        path = "/" + rest.lstrip("/") if rest.startswith("/") else rest
        if path in ("", "/", "/:memory:", ":memory:"):
            return SqliteStore(None, secret=secret, previous=previous)
        return SqliteStore(Path(path), secret=secret, previous=previous)
    if scheme in ("postgresql", "postgres"):
        if secret is None:
            raise ConfigError(
                "A PostgreSQL store needs PCREF_STORE_KEY: refresh tokens are kept there encrypted, and every "
                "replica must seal and open approval state with the same keys.",
                hint="Set PCREF_STORE_KEY to the same long random value (32+ characters) on every replica.",
            )
        from pcref_mcp.store.postgres import PostgresStore

        return PostgresStore(url, secret=secret, previous=previous)
    raise ConfigError(
        f"PCREF_STORE_URL must start with sqlite:/// or postgresql:// (got {scheme or url!r}).",
        hint="sqlite:////home/me/.local/share/pcref-mcp/journal.sqlite3 or postgresql://pcref@127.0.0.1:5432/pcref",
    )
