"""What the tools share for the life of a server: settings, the backend client, journal, engine.

Everything heavy (httpx, msal, SQLite, the embedded sandbox) is built on first use, not at
start-up, so a desktop client that spawns the server gets its tool list at once.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pcref_mcp.config import SANDBOX_BASE_URL, Settings, data_dir
from pcref_mcp.referrals import when

if TYPE_CHECKING:
    import httpx

    from pcref_mcp.partner_center.capabilities import Capabilities
    from pcref_mcp.partner_center.client import PartnerCenterClient
    from pcref_mcp.store import Store
    from pcref_mcp.writes.approvals import ApprovalStore
    from pcref_mcp.writes.engine import WriteEngine
    from pcref_mcp.writes.journal import Journal
    from pcref_mcp.writes.pipeline_store import PipelineStore

log = logging.getLogger("pcref_mcp.server")

SANDBOX_TOKEN = "sandbox-local-token"


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sandbox_app: Any = None,
    ) -> None:
        self.settings = settings
        when.configure(settings.time_zone)  # "today" for every date a person says
        self.cursor_key = shared_key(settings, "cursor") or secrets.token_bytes(32)
        self._store: Store | None = None
        self._transport = transport
        self.sandbox_app = sandbox_app
        self._client: PartnerCenterClient | None = None
        self._journal: Journal | None = None
        self._engine: WriteEngine | None = None
        self._approvals: ApprovalStore | None = None
        self._pipeline: PipelineStore | None = None
        self._capabilities: Capabilities | None = None

    @property
    def backend_label(self) -> str:
        if self.settings.backend == "live":
            return f"Partner Center (live) at {self.base_url}"
        if self.settings.base_url != SANDBOX_BASE_URL:
            return f"standalone sandbox at {self.base_url}"
        return f"embedded sandbox ({self.sandbox_db_path or 'in memory'})"

    @property
    def sandbox_db_path(self) -> Path | None:
        """The embedded sandbox's database: persistent by default, so a person's sandbox work (and the
        journal that points at it) survives the next session a desktop client spawns."""
        configured = self.settings.sandbox_db
        if configured is not None and str(configured) == ":memory:":
            return None
        return configured or data_dir() / "sandbox.db"

    @property
    def base_url(self) -> str:
        return self.settings.base_url  # settings fill it from the backend

    @property
    def client(self) -> PartnerCenterClient:
        if self._client is None:
            self._client = self._build_client()
        return self._client

    @property
    def store(self) -> Store:
        """Shared state (``PCREF_STORE_URL``): the SQLite journal file by default, PostgreSQL for a
        team server's replicas. Connected on first use; :meth:`start` connects it up front."""
        if self._store is None:
            from pcref_mcp.store import open_store

            self._store = open_store(
                self.settings.store_location,
                secret=self.settings.store_secret,
                previous=self.settings.store_previous_secret,  # a key rotation's grace period
            )
        return self._store

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            from pcref_mcp.writes.journal import Journal

            self._journal = Journal(self.store, lease_seconds=self.settings.journal_lease_seconds)
        return self._journal

    @property
    def pipeline(self) -> PipelineStore:
        """Batches and the change feed's snapshots, in the store with the journal (so any replica
        undoes a batch another applied); an old ``pipeline.sqlite3`` beside the journal file is
        imported on first use."""
        if self._pipeline is None:
            from pcref_mcp.writes.pipeline_store import LEGACY_FILE, PipelineStore

            self._pipeline = PipelineStore(self.store, legacy=self.settings.journal_file.parent / LEGACY_FILE)
        return self._pipeline

    @property
    def approvals(self) -> ApprovalStore:
        """Pending approvals and confirm tokens, in the store with the journal, so a token issued by
        one stdio process is redeemed by the next (clients that spawn a server per call) and a token
        one replica issued is redeemed by any other."""
        if self._approvals is None:
            from pcref_mcp.writes.approvals import ApprovalStore

            self._approvals = ApprovalStore(self.store)
        return self._approvals

    async def start(self) -> None:
        """Connect the store (migrating it) and forget long-expired approvals: a server that cannot
        reach its store says so at start, not on the first write."""
        await self.store.start()
        await self.approvals.purge()

    @asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        """The work a long-running server does while idle: its journal lease renewed and the pending
        writes of processes that died (on any host) turned in doubt (:meth:`Journal.keep_lease`);
        on leaving, its own pending writes marked in doubt (:meth:`Journal.release`)."""
        import anyio

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self.journal.keep_lease)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
        # a clean stop (SIGTERM drained): what this process still has pending is in doubt now
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            try:
                await self.journal.release()
            except Exception as exc:  # the store is gone too: the lease runs out instead
                log.warning("could not mark pending writes in doubt on stop (%s)", type(exc).__name__)

    @property
    def engine(self) -> WriteEngine:
        if self._engine is None:
            from pcref_mcp.writes.engine import WriteEngine

            self._engine = WriteEngine(self.client, self.journal)
        return self._engine

    async def query_capabilities(
        self, features: Iterable[str] | None = None, *, refresh: bool = False
    ) -> Capabilities:
        """What the service answers of the query ``features`` a caller is about to rely on (all when
        None), learnt on first use and only those: cached on disk (by base URL) for the live service;
        the embedded sandbox is probed once per process, as its profile may change between runs.
        ``refresh`` probes them again (search does when a learnt feature is refused)."""
        from pcref_mcp.partner_center import capabilities

        wanted = list(capabilities.FEATURES if features is None else features)
        known = self._capabilities
        if known is None or refresh or not known.learnt.issuperset(wanted):
            live = self.settings.backend == "live"
            known = await capabilities.ensure(
                self.client, features=wanted, persist=live, refresh=refresh, known=known
            )
            self._capabilities = known
        return known

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._journal = None
        self._engine = None
        self._approvals = None
        self._pipeline = None
        if self._store is not None:
            await self._store.close()
            self._store = None

    def _build_client(self) -> PartnerCenterClient:
        from pcref_mcp.partner_center.client import PartnerCenterClient
        from pcref_mcp.partner_center.ratelimit import PersonalRateLimiter

        # each person's own window; kept in a shared store, every replica counts the same calls
        limiter = PersonalRateLimiter(
            self.settings.rate_limit_calls,
            self.settings.rate_limit_window,
            buckets=self.store if self.store.shared else None,
        )
        if self.settings.backend == "live":
            from pcref_mcp.partner_center.auth import provider_for

            tokens = provider_for(self.settings)
            transport = self._transport
        else:
            from pcref_mcp.partner_center.auth import StaticTokenProvider

            tokens = StaticTokenProvider(SANDBOX_TOKEN)
            transport = self.backend_transport()
        log.info("backend: %s", self.backend_label)
        from pcref_mcp.partner_center.measured import measured

        return PartnerCenterClient(
            self.base_url,
            tokens,
            transport=measured(transport),
            limiter=limiter,
            timeout=self.settings.timeout,
        )

    def backend_transport(self) -> httpx.AsyncBaseTransport | None:
        """How the sandbox backend is reached: the embedded one in this process, or (None: over HTTP)
        a standalone sandbox (`pcref-mcp sandbox`) named by PCREF_BASE_URL, the one backend that the
        replicas of a team deployment share."""
        standalone = self.settings.base_url != SANDBOX_BASE_URL and self.sandbox_app is None
        return self._transport or (None if standalone else self._sandbox_transport())

    def _sandbox_transport(self) -> httpx.AsyncBaseTransport:
        import httpx

        if self.sandbox_app is None:
            from pcref_mcp.sandbox import SandboxConfig, create_app

            config = SandboxConfig(db_path=self.sandbox_db_path, seed_size=self.settings.sandbox_size)
            if self.settings.sandbox_profile:  # None: the sandbox's default (PCREF_SANDBOX_PROFILE)
                config.profile = self.settings.sandbox_profile
            self.sandbox_app = create_app(config)
        return httpx.ASGITransport(app=self.sandbox_app)


def shared_key(settings: Settings, purpose: str) -> bytes | None:
    """A key every replica derives alike from ``PCREF_STORE_KEY`` (None when none is configured:
    then each process makes its own, as a single server may)."""
    secret = settings.store_secret
    if secret is None:
        return None
    from pcref_mcp.store.sealing import derive

    return derive(secret, purpose)
