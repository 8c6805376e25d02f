"""The layer between the MCP tools and Partner Center (live or sandbox): HTTP client, sign-in,
error mapping, rate limiting and OData query building.

Importing this package imports nothing heavy: its names load on first use (httpx with the client,
msal only when sign-in is used).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from pcref_mcp.config import Settings
    from pcref_mcp.partner_center.auth import (
        MsalAppProvider,
        MsalDelegatedProvider,
        StaticTokenProvider,
        TokenProvider,
        browser_available,
        ensure_configured,
        login_device_code,
        login_interactive,
        logout,
        provider_for,
        whoami,
    )
    from pcref_mcp.partner_center.client import (
        ListResult,
        PartnerCenterClient,
        current_correlation_id,
        new_correlation_id,
    )
    from pcref_mcp.partner_center.errors import error_from_response, parse_error_body, parse_retry_after
    from pcref_mcp.partner_center.odata import Expr, OrderBy, Query
    from pcref_mcp.partner_center.ratelimit import RateLimiter

# Names are loaded on first use (PEP 562), so importing a light submodule such as ``odata`` from the
# MCP server at start-up does not pull in httpx; see docs/benchmarks.md (cold start).
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        (
            "MsalAppProvider",
            "MsalDelegatedProvider",
            "StaticTokenProvider",
            "TokenProvider",
            "browser_available",
            "ensure_configured",
            "login_device_code",
            "login_interactive",
            "logout",
            "provider_for",
            "whoami",
        ),
        "auth",
    ),
    **dict.fromkeys(
        ("ListResult", "PartnerCenterClient", "current_correlation_id", "new_correlation_id"), "client"
    ),
    **dict.fromkeys(("error_from_response", "parse_error_body", "parse_retry_after"), "errors"),
    **dict.fromkeys(("Expr", "OrderBy", "Query"), "odata"),
    "RateLimiter": "ratelimit",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Expr",
    "ListResult",
    "MsalAppProvider",
    "MsalDelegatedProvider",
    "OrderBy",
    "PartnerCenterClient",
    "Query",
    "RateLimiter",
    "StaticTokenProvider",
    "TokenProvider",
    "browser_available",
    "client_for",
    "current_correlation_id",
    "ensure_configured",
    "error_from_response",
    "login_device_code",
    "login_interactive",
    "logout",
    "new_correlation_id",
    "parse_error_body",
    "parse_retry_after",
    "provider_for",
    "whoami",
]


def client_for(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    tokens: TokenProvider | None = None,
) -> PartnerCenterClient:
    """A client configured from settings (base URL, token provider, rate limit, timeout).

    For the embedded sandbox pass its ASGI app as ``transport=httpx.ASGITransport(app)``.
    """
    from pcref_mcp.partner_center.auth import provider_for
    from pcref_mcp.partner_center.client import PartnerCenterClient
    from pcref_mcp.partner_center.ratelimit import RateLimiter

    return PartnerCenterClient(
        settings.base_url,
        tokens if tokens is not None else provider_for(settings),
        transport=transport,
        limiter=RateLimiter(settings.rate_limit_calls, settings.rate_limit_window),
        timeout=settings.timeout,
    )
