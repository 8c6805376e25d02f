"""The layer between the MCP tools and Partner Center (live or sandbox): HTTP client, sign-in,
error mapping, rate limiting and OData query building.

Importing this package imports httpx but not msal (msal loads only when sign-in is used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    import httpx

    from pcref_mcp.config import Settings

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
    return PartnerCenterClient(
        settings.base_url,
        tokens if tokens is not None else provider_for(settings),
        transport=transport,
        limiter=RateLimiter(settings.rate_limit_calls, settings.rate_limit_window),
        timeout=settings.timeout,
    )
