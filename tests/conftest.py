"""Shared fixtures: anyio on asyncio, and reference documents from ../shared/reference."""

from __future__ import annotations

import gc
import sys

import pytest

# pytest rewrites the asserts of every test module it imports and keeps the result beside the module
# (__pycache__/*-pytest-*.pyc, checked against the source's hash), but writes nothing where bytecode
# writing is off, as on these machines (PYTHONDONTWRITEBYTECODE): then every pytest process parsed,
# rewrote and compiled every test module again, about 3 s of CPU for make unit's runs. Turned on for
# this process only: the two unit runs share what either rewrote first (the files are written
# atomically), and a later run reuses them. Modules of the project imported after this may get their
# bytecode written too, as `make bytecode` writes it; interpreters the tests start keep the setting.
sys.dont_write_bytecode = False

# The cyclic garbage collector with a larger first generation: the suite builds many short-lived
# objects (pydantic models, parsed pages, sandboxes), and at Python's default (700) the collector
# passes cost about a fifth of the CPU of tests/server. Objects are still freed by reference
# counting as before; cycles wait a little longer. The product's own processes are not affected.
gc.set_threshold(50_000, 20, 20)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What is loaded by now (modules, models, the collected tests) lives for the whole run: moved out
    of the collector's sight, so each later pass walks only what the tests make."""
    gc.collect()
    gc.freeze()


# Records which tests read the sandbox profile (make unit's PCREF_PROFILE_SPLIT; nothing otherwise);
# checks each valid JSON schema against its metaschema once per run, not once per client session.
pytest_plugins = ["tests.profile_reads", "tests.schema_checks"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- the store: SQLite, and PostgreSQL in a cluster of the tests' own ------------------------------------


@pytest.fixture(scope="session")
def postgres_cluster():  # type: ignore[no-untyped-def]
    """One PostgreSQL cluster for the session (initdb'd in a temp dir, on loopback), or a skip where
    PostgreSQL is not installed (the project's set-up installs it; CI sets PCREF_POSTGRES_REQUIRED=1
    through `make test`, where a missing PostgreSQL is a failure)."""
    import os

    from deploy.postgres import Postgres, find_binary

    if find_binary("initdb") is None:
        if os.environ.get("PCREF_POSTGRES_REQUIRED") == "1":
            pytest.fail(
                "PostgreSQL is not installed (make test installs it as root: apt-get install postgresql)"
            )
        pytest.skip("PostgreSQL is not installed")
    cluster = Postgres()
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture
def postgres_url(postgres_cluster) -> str:  # type: ignore[no-untyped-def]
    """A fresh, empty database for one test."""
    import secrets

    return str(postgres_cluster.create_database("t_" + secrets.token_hex(6)))


@pytest.fixture(params=["sqlite", "postgresql"])
def new_store(request, tmp_path):  # type: ignore[no-untyped-def]
    """Make stores of one kind over one database (call it twice: two replicas, or a restart)."""
    from pcref_mcp.store.postgres import PostgresStore
    from pcref_mcp.store.sqlite import SqliteStore

    if request.param == "sqlite":
        path = tmp_path / "store" / "store.sqlite3"
        return lambda: SqliteStore(path)
    url = request.getfixturevalue("postgres_url")
    return lambda: PostgresStore(url, secret=b"test-store-key-" + b"x" * 20, retry_seconds=5.0)
