"""Team mode's ASGI app: the MCP server behind the SDK's authorization, one person per request.

Built from the SDK's pieces: ``AuthSettings`` (RFC 9728 resource metadata at
``/.well-known/oauth-protected-resource/mcp``, 401 with ``WWW-Authenticate … resource_metadata=…``,
403 naming a missing scope), :class:`~pcref_mcp.team.tokens.EntraTokenVerifier` for the tokens,
:class:`~pcref_mcp.team.principal.PrincipalMiddleware` to run every request as its person,
:class:`~pcref_mcp.team.runtime.TeamRuntime` for per-person Partner Center clients (on-behalf-of),
and in proxy mode :class:`~pcref_mcp.team.proxy.EntraProxy` as the authorization server clients
register with. The same code serves Entra and the stand-in identity provider; only settings differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from pcref_mcp.errors import ConfigError

if TYPE_CHECKING:
    from pcref_mcp.config import Settings
    from pcref_mcp.team.browser import PageSignIn
    from pcref_mcp.team.proxy import EntraProxy
    from pcref_mcp.team.runtime import TeamRuntime
    from pcref_mcp.team.tokens import EntraTokenVerifier

__all__ = ["TeamParts", "TeamPlan", "plan_for", "team_app", "team_server"]


@dataclass(frozen=True)
class TeamPlan:
    """Every URL and name team mode derives from the settings (``pcref-mcp config`` shows the inputs)."""

    base_url: str  # where clients reach this server
    resource: str  # the MCP endpoint = the protected resource
    scope: str  # the full delegated scope clients request, e.g. api://<client id>/access_as_user
    issuer: str  # may contain {tenantid}
    discovery_url: str
    audiences: tuple[str, ...]
    tenants: tuple[str, ...]
    proxy: bool

    @property
    def scope_prefix(self) -> str:
        return self.scope.rpartition("/")[0]

    @property
    def entra_issuer(self) -> str:
        return self.issuer.replace("{tenantid}", self.tenants[0])


@dataclass(frozen=True)
class TeamParts:
    """What :func:`team_server` wired together (kept on the server as ``server.team``)."""

    plan: TeamPlan
    runtime: TeamRuntime
    verifier: EntraTokenVerifier
    proxy: EntraProxy | None
    page_sign_in: PageSignIn  # signs a browser in for our own pages (team.browser), in either mode


def plan_for(settings: Settings, *, host: str, port: int) -> TeamPlan:
    if not settings.tenant_id or not settings.client_id:
        raise ConfigError(
            "Team mode needs the API app registration: set PCREF_TENANT_ID and PCREF_CLIENT_ID "
            "(and PCREF_CLIENT_SECRET). See the README, 'Team server'. To try it without Microsoft: "
            "`pcref-mcp team --stand-in`."
        )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = (settings.team_public_url or f"http://{shown}:{port}").rstrip("/")
    parsed = urlparse(base)
    if parsed.scheme != "https" and parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(
            f"PCREF_TEAM_PUBLIC_URL must be https (got {base}); OAuth clients refuse plain http beyond loopback."
        )
    scope = (
        settings.team_scope
        if "/" in settings.team_scope
        else f"api://{settings.client_id}/{settings.team_scope}"
    )
    issuer = settings.team_issuer or f"{settings.authority_host.rstrip('/')}/{{tenantid}}/v2.0"
    tenants = settings.team_allowed_tenants or (settings.tenant_id,)
    resource = f"{base}/mcp"
    audiences = settings.team_audiences or (settings.client_id, f"api://{settings.client_id}", resource)
    return TeamPlan(
        base_url=base,
        resource=resource,
        scope=scope,
        issuer=issuer,
        discovery_url=issuer.replace("{tenantid}", tenants[0]) + "/.well-known/openid-configuration",
        audiences=tuple(audiences),
        tenants=tuple(tenants),
        proxy=settings.team_proxy,
    )


def verifier_for(settings: Settings, plan: TeamPlan, **keys: Any) -> EntraTokenVerifier:
    from pcref_mcp.team.obo import tls_verify
    from pcref_mcp.team.tokens import EntraTokenVerifier, JwksCache

    return EntraTokenVerifier(
        issuer=plan.issuer,
        audiences=plan.audiences,
        allowed_tenants=plan.tenants,
        resource=plan.resource,
        scope_prefix=plan.scope_prefix,
        keys=JwksCache(plan.discovery_url, verify=tls_verify(settings), **keys),
    )


def team_server(
    settings: Settings,
    plan: TeamPlan,
    *,
    runtime: TeamRuntime | None = None,
    verifier: EntraTokenVerifier | None = None,
) -> Any:
    """The MCP server with the SDK's authorization wired in (and the proxy's callback route)."""
    from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions

    from pcref_mcp.server.app import build_server
    from pcref_mcp.server.approval_page import ApprovalPages
    from pcref_mcp.team.obo import OnBehalfOf
    from pcref_mcp.team.principal import PrincipalMiddleware
    from pcref_mcp.team.runtime import TeamRuntime

    verifier = verifier or verifier_for(settings, plan)
    runtime = runtime or TeamRuntime(settings, OnBehalfOf(settings))
    sdk: dict[str, Any] = {"middleware": [PrincipalMiddleware()]}
    proxy = None
    if plan.proxy:
        from pcref_mcp.team.proxy import SIGN_IN_SCOPES, EntraProxy

        # its state in the runtime's store: every replica sees every sign-in, code and handle
        proxy = EntraProxy(settings, verifier, store=runtime.store, base_url=plan.base_url, scope=plan.scope)
        sdk["auth_server_provider"] = proxy
        sdk["auth"] = AuthSettings(
            issuer_url=plan.base_url,  # type: ignore[arg-type]
            resource_server_url=plan.resource,  # type: ignore[arg-type]
            required_scopes=[plan.scope],
            client_registration_options=ClientRegistrationOptions(
                enabled=True, valid_scopes=[plan.scope, *SIGN_IN_SCOPES], default_scopes=[plan.scope]
            ),
            revocation_options=RevocationOptions(enabled=True),
            validate_token_resource=False,  # the verifier checks the audience itself
        )
    else:
        sdk["token_verifier"] = verifier
        sdk["auth"] = AuthSettings(
            issuer_url=plan.entra_issuer,  # type: ignore[arg-type]
            resource_server_url=plan.resource,  # type: ignore[arg-type]
            required_scopes=[plan.scope],
            validate_token_resource=False,
        )
    # a team's writes are approved by the person (their client's question or our page), never by a
    # token the model sends back, unless the deployment says otherwise (PCREF_APPROVAL_POLICY)
    approvals = ApprovalPages(settings, default_policy="strictest")
    server = build_server(settings, runtime=runtime, pages=approvals, **sdk)
    from pcref_mcp.team.browser import SIGNED_IN_PATH, PageSignIn, page_callback, signed_in_route
    from pcref_mcp.team.signin import CALLBACK_PATH as CALLBACK

    if proxy is not None:
        from pcref_mcp.team.consent import CONNECTED_PATH, CONSENT_PATH, ConsentPages

        pages = proxy.page_sign_in
        consent = ConsentPages(proxy)
        server.custom_route(CALLBACK, methods=["GET", "POST"])(proxy.callback)
        server.custom_route(CONSENT_PATH, methods=["GET", "POST"])(consent.consent)
        server.custom_route(CONNECTED_PATH, methods=["GET", "POST"])(consent.connected)
    else:  # our own pages still sign people in, through the same callback
        from pcref_mcp.team.signin import EntraSignIn

        signin = EntraSignIn(settings, base_url=plan.base_url, scope=plan.scope)
        pages = PageSignIn(signin, verifier, runtime.store)

        async def callback(request: Any) -> Any:
            return await page_callback(pages, request)

        server.custom_route(CALLBACK, methods=["GET", "POST"])(callback)

    async def signed_in(request: Any) -> Any:
        return await signed_in_route(pages, request)

    server.custom_route(SIGNED_IN_PATH, methods=["GET"])(signed_in)
    approvals.mount(server, base_url=plan.base_url, sign_in=pages)  # behind the person's own sign-in
    server.team = TeamParts(plan, runtime, verifier, proxy, pages)  # type: ignore[attr-defined]
    return server


def team_app(settings: Settings, *, host: str, port: int, server: Any = None) -> Any:
    """The ASGI app for ``pcref-mcp team`` (the SDK's streamable HTTP app with authorization)."""
    from mcp.server.transport_security import TransportSecuritySettings

    from pcref_mcp.server.http import is_loopback

    plan = plan_for(settings, host=host, port=port)
    server = server or team_server(settings, plan)
    names = ["127.0.0.1", "localhost", "[::1]"] if is_loopback(host) else [host]
    public = urlparse(plan.base_url)
    hosts = [f"{n}:{port}" for n in names] + names + [public.netloc]
    origins = [f"{s}://{h}" for s in ("http", "https") for h in hosts]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )
    from mcp.server.auth.routes import build_resource_metadata_url

    from pcref_mcp.team.authn import AuthenticateFirst
    from pcref_mcp.team.challenge import ClaimsGate
    from pcref_mcp.team.revocation import Revocations

    parts: TeamParts = server.team
    # replicas behind a proxy: PCREF_HTTP_STATELESS keeps no session in one process
    app = server.streamable_http_app(
        transport_security=security, host=host, stateless_http=settings.http_stateless
    )
    _close_on_shutdown(app, parts)
    if parts.proxy is not None:
        from pcref_mcp.team.limits import bounded_registration
        from pcref_mcp.team.proxy import (
            BrokerUnavailable,
            advertise_metadata_documents,
            broker_unavailable,
            revocation_knows_clients,
        )

        app.add_exception_handler(BrokerUnavailable, broker_unavailable)  # the store is down: 503, not 500
        app = revocation_knows_clients(app)
        app = advertise_metadata_documents(app)
        app = bounded_registration(app)  # size and rate, before the SDK reads a byte
    metadata_url = str(build_resource_metadata_url(plan.resource))  # type: ignore[arg-type]
    gated = ClaimsGate(app, obo=parts.runtime.obo, resource_metadata_url=metadata_url, proxy=parts.proxy)
    # outermost: who is calling is known from the headers before any body is read
    # a revoked person or client is refused on every replica (pcref-mcp admin revoke)
    revocations = Revocations(lambda: parts.runtime.store)
    return AuthenticateFirst(
        gated,
        verifier=parts.verifier,
        resource_metadata_url=metadata_url,
        revocations=revocations,
        seen=seen_recorder(parts),
    )


def seen_recorder(parts: TeamParts) -> Any:
    """Who is seen, when, with which client (team.seen); a resource server counts its sign-ins there."""
    from pcref_mcp.team.seen import SeenRecorder

    proxy = parts.proxy

    async def client_name(client_id: str) -> str | None:
        client = await proxy.get_client(client_id) if proxy is not None else None
        return client.client_name if client is not None else None

    return SeenRecorder(lambda: parts.runtime.store, client_name=client_name, count_sign_ins=proxy is None)


def _close_on_shutdown(app: Any, parts: TeamParts) -> None:
    """Keep the journal's lease while the app runs, and close every person's Partner Center client,
    the journal and the sign-in's connections to the identity provider when it shuts down (the
    runtime is shared, so the server's own lifespan does not own it)."""
    from contextlib import asynccontextmanager, nullcontext

    runtime = parts.runtime
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Any) -> Any:
        async with inner(app_) as state:
            try:
                # a configured store: the journal's lease is kept and dead replicas' writes settled
                async with runtime.background() if runtime.settings.store_url else nullcontext():
                    yield state
            finally:
                await runtime.aclose()
                parts.page_sign_in.signin.close()

    app.router.lifespan_context = lifespan
