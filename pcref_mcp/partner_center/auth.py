"""Sign-in: where the bearer token for each request comes from.

Partner Center Referrals accepts only *delegated* (app + user) tokens for a user with the Referrals
Admin or Referrals User role, so the normal path is :class:`MsalDelegatedProvider`: the person signs in
once (``pcref-mcp login``, device code or browser), msal keeps the account in a token cache file
(mode 0600), and every request asks msal for a token silently. msal refreshes an expiring token with
the refresh token and the service rotates that refresh token, so the cache is written back every
time msal changes it; otherwise the next start would hold a spent refresh token.

:class:`MsalAppProvider` (client credentials) exists for tenants where app-only tokens are accepted;
the Microsoft Partner service principal has no app roles, so expect a 401/403 and the clear message
:func:`~pcref_mcp.partner_center.errors.error_from_response` gives for it.

msal (and requests underneath) is imported only inside the functions that use it: start-up time.
msal is synchronous and may do network I/O, so it runs in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlparse

import anyio

from pcref_mcp.errors import ConfigError, SignInError

if TYPE_CHECKING:
    from pcref_mcp.config import Settings

__all__ = [
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
]

SETUP_STEPS = (
    "To use the live Partner Center: register an app in Microsoft Entra ID (public client, delegated "
    "permission user_impersonation on Microsoft Partner Center, admin consent), set PCREF_TENANT_ID "
    "and PCREF_CLIENT_ID (or tenant_id/client_id in the config file), then run `pcref-mcp login`."
)
NOT_SIGNED_IN = "Not signed in to Partner Center, or the session expired: run `pcref-mcp login`."


@runtime_checkable
class TokenProvider(Protocol):
    """Gives the bearer token for the next request (fetched per request, never stored by callers)."""

    async def get_token(self) -> str: ...

    def account_label(self) -> str | None:
        """Who the calls run as (a user name or app id) for messages; never a secret."""
        ...


class StaticTokenProvider:
    """A fixed token: the sandbox, and tests."""

    app_only = False

    def __init__(self, token: str, *, label: str | None = "sandbox") -> None:
        self._token = token
        self._label = label

    async def get_token(self) -> str:
        return self._token

    def account_label(self) -> str | None:
        return self._label

    def __repr__(self) -> str:
        return f"StaticTokenProvider(label={self._label!r})"


def ensure_configured(settings: Settings) -> None:
    """Fail fast (no network, no msal import) when the live backend cannot sign in as configured."""
    if not settings.is_live:
        return
    _require_app_registration(settings)
    if settings.auth_mode == "app":
        if settings.client_secret is None and settings.client_certificate_path is None:
            raise SignInError(
                "App-only sign-in needs a client secret or a certificate.",
                hint="Set PCREF_CLIENT_SECRET, or PCREF_CLIENT_CERTIFICATE_PATH and "
                "PCREF_CLIENT_CERTIFICATE_THUMBPRINT; or use PCREF_AUTH_MODE=delegated.",
            )
        return
    cache_path = _cache_path(settings)
    if not cache_path.exists():
        raise SignInError(NOT_SIGNED_IN, hint=f"No token cache at {cache_path}.")


def provider_for(settings: Settings, *, http_client: Any = None) -> TokenProvider:
    """The provider the settings call for; fails fast (no network) when live sign-in is not set up."""
    if not settings.is_live:
        return StaticTokenProvider("sandbox-token")
    ensure_configured(settings)
    if settings.auth_mode == "app":
        return MsalAppProvider(settings, http_client=http_client)
    return MsalDelegatedProvider(settings, http_client=http_client)


# --- delegated (app + user) -----------------------------------------------------------------------


class MsalDelegatedProvider:
    """Silent msal acquisition per request from the persistent cache written by ``pcref-mcp login``."""

    app_only = False

    def __init__(self, settings: Settings, *, http_client: Any = None) -> None:
        _require_app_registration(settings)
        self._settings = settings
        self._http_client = http_client
        self._cache = _FileTokenCache(_cache_path(settings))
        self._app: Any = None
        self._label: str | None = None
        self._lock = threading.Lock()  # one msal call at a time: a refresh must not race another

    async def get_token(self) -> str:
        return await anyio.to_thread.run_sync(self._get_token_sync)

    def account_label(self) -> str | None:
        if self._label is None:
            info = whoami(self._settings)
            self._label = info.get("username")
        return self._label

    def _get_token_sync(self) -> str:
        with self._lock:
            if self._app is None:
                self._app = _public_app(self._settings, self._cache.load(), self._http_client)
            app = self._app
            accounts = app.get_accounts()
            if not accounts:
                raise SignInError(NOT_SIGNED_IN)
            try:
                result = app.acquire_token_silent_with_error(list(self._settings.scopes), account=accounts[0])
            except Exception as exc:  # requests/msal failures: keep the message, drop the details
                raise SignInError(
                    f"Could not reach the sign-in service ({type(exc).__name__}).",
                    hint="Check the network; if it persists run `pcref-mcp login`.",
                ) from None
            finally:
                self._cache.save_if_changed()
            if not result or "access_token" not in result:
                code = (result or {}).get("error")
                raise SignInError(NOT_SIGNED_IN + (f" (sign-in service said: {code})" if code else ""))
            self._label = accounts[0].get("username") or self._label
            return str(result["access_token"])


def login_device_code(
    settings: Settings, *, on_prompt: Callable[[str], None], http_client: Any = None
) -> dict[str, Any]:
    """Device-code sign-in: ``on_prompt`` gets the "go to … and enter code …" text (the CLI prints it
    to stderr). Blocks until the person finishes or the code expires. Returns :func:`whoami`."""
    _require_app_registration(settings)
    cache = _FileTokenCache(_cache_path(settings))
    app = _public_app(settings, cache.load(), http_client)
    flow = app.initiate_device_flow(scopes=list(settings.scopes))
    if "user_code" not in flow:
        raise SignInError(f"Could not start device-code sign-in: {_msal_error(flow)}")
    on_prompt(str(flow["message"]))
    result = app.acquire_token_by_device_flow(flow)
    cache.save_if_changed()
    if "access_token" not in result:
        raise SignInError(f"Sign-in did not complete: {_msal_error(result)}")
    return whoami(settings)


def login_interactive(settings: Settings, *, http_client: Any = None) -> dict[str, Any]:
    """Browser sign-in (auth code + PKCE on a localhost redirect), for machines with a browser."""
    _require_app_registration(settings)
    cache = _FileTokenCache(_cache_path(settings))
    app = _public_app(settings, cache.load(), http_client)
    result = app.acquire_token_interactive(list(settings.scopes), prompt="select_account")
    cache.save_if_changed()
    if "access_token" not in result:
        raise SignInError(f"Sign-in did not complete: {_msal_error(result)}")
    return whoami(settings)


def browser_available() -> bool:
    """Whether :func:`login_interactive` can open a browser here."""
    import webbrowser

    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def logout(settings: Settings) -> bool:
    """Forget every account: delete the token cache file. True if there was one."""
    path = _cache_path(settings)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def whoami(settings: Settings) -> dict[str, Any]:
    """Who is signed in, read from the cache without any network call. Never returns a token."""
    path = _cache_path(settings)
    info: dict[str, Any] = {"signed_in": False, "token_cache": str(path), "auth_mode": settings.auth_mode}
    if settings.auth_mode == "app":
        info.update(signed_in=bool(settings.client_id), username=None, client_id=settings.client_id)
        return info
    if not path.exists():
        return info
    import msal

    cache = msal.SerializableTokenCache()
    try:
        cache.deserialize(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {**info, "error": "token cache is unreadable; run `pcref-mcp logout` and `pcref-mcp login`"}
    accounts = cache.find(msal.TokenCache.CredentialType.ACCOUNT)
    if not accounts:
        return info
    account = accounts[0]
    home_id = account.get("home_account_id")
    expiry = [
        int(at["expires_on"])
        for at in cache.find(msal.TokenCache.CredentialType.ACCESS_TOKEN)
        if at.get("home_account_id") == home_id and str(at.get("expires_on", "")).isdigit()
    ]
    info.update(
        signed_in=True,
        username=account.get("username"),
        tenant_id=account.get("realm"),
        authority_host=account.get("environment"),
        access_token_expires=(
            datetime.fromtimestamp(max(expiry), UTC).isoformat().replace("+00:00", "Z") if expiry else None
        ),
        has_refresh_token=bool(
            [
                rt
                for rt in cache.find(msal.TokenCache.CredentialType.REFRESH_TOKEN)
                if rt.get("home_account_id") == home_id
            ]
        ),
    )
    return info


# --- app-only (client credentials) ----------------------------------------------------------------


class MsalAppProvider:
    """Client credentials with a secret or a certificate. See the module docstring for the caveat."""

    app_only = True

    def __init__(self, settings: Settings, *, http_client: Any = None) -> None:
        ensure_configured(settings.model_copy(update={"backend": "live", "auth_mode": "app"}))
        self._settings = settings
        self._http_client = http_client
        self._app: Any = None
        self._lock = threading.Lock()

    async def get_token(self) -> str:
        return await anyio.to_thread.run_sync(self._get_token_sync)

    def account_label(self) -> str | None:
        return f"app {self._settings.client_id}"

    def _get_token_sync(self) -> str:
        with self._lock:
            if self._app is None:
                self._app = _confidential_app(self._settings, self._http_client)
            try:
                # msal keeps the app token in memory and returns it until it is about to expire.
                result = self._app.acquire_token_for_client(scopes=list(self._settings.scopes))
            except Exception as exc:
                raise SignInError(f"Could not reach the sign-in service ({type(exc).__name__}).") from None
        if "access_token" not in result:
            raise SignInError(f"App-only sign-in was refused: {_msal_error(result)}")
        return str(result["access_token"])


# --- private helpers ------------------------------------------------------------------------------


class _FileTokenCache:
    """An msal SerializableTokenCache mirrored to a 0600 file, written whenever msal changed it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cache: Any = None

    def load(self) -> Any:
        import msal

        self.cache = msal.SerializableTokenCache()
        if self.path.exists():
            try:
                self.cache.deserialize(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise SignInError(
                    f"The token cache {self.path} is unreadable.",
                    hint="Run `pcref-mcp logout` and then `pcref-mcp login`.",
                ) from None
        return self.cache

    def save_if_changed(self) -> None:
        if self.cache is None or not self.cache.has_state_changed:
            return
        data = self.cache.serialize()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        # Created 0600 from the first byte (umask can only remove bits), then moved into place.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.chmod(self.path, 0o600)
        self.cache.has_state_changed = False


def _require_app_registration(settings: Settings) -> None:
    missing = [
        var
        for var, value in (("PCREF_TENANT_ID", settings.tenant_id), ("PCREF_CLIENT_ID", settings.client_id))
        if not value
    ]
    if missing:
        raise SignInError(
            f"Partner Center sign-in is not set up: {' and '.join(missing)} missing.", hint=SETUP_STEPS
        )


def _cache_path(settings: Settings) -> Path:
    if settings.token_cache_path is None:
        from pcref_mcp.config import config_dir

        return config_dir() / "token_cache.json"
    return Path(settings.token_cache_path).expanduser()


def _app_kwargs(settings: Settings, http_client: Any) -> dict[str, Any]:
    from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

    kwargs: dict[str, Any] = {"authority": settings.authority}
    if urlparse(settings.authority_host).hostname not in WELL_KNOWN_AUTHORITY_HOSTS:
        # A private or test authority: msal's instance discovery only knows Microsoft's clouds.
        kwargs["instance_discovery"] = False
    if http_client is not None:
        kwargs["http_client"] = http_client
    return kwargs


def _public_app(settings: Settings, cache: Any, http_client: Any) -> Any:
    import msal

    try:
        return msal.PublicClientApplication(
            settings.client_id, token_cache=cache, **_app_kwargs(settings, http_client)
        )
    except ValueError as exc:  # unknown tenant, unreachable authority
        raise SignInError(f"The sign-in authority {settings.authority} is not usable: {exc}") from None
    except Exception as exc:
        raise SignInError(f"Could not reach the sign-in service ({type(exc).__name__}).") from None


def _confidential_app(settings: Settings, http_client: Any) -> Any:
    return confidential_app(settings, client_credential(settings), http_client=http_client)


def client_credential(settings: Settings) -> Any:
    """The app registration's credential for msal: a certificate (key read from its file) or the secret."""
    if settings.client_certificate_path is not None:
        try:
            key = Path(settings.client_certificate_path).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"PCREF_CLIENT_CERTIFICATE_PATH {settings.client_certificate_path} is unreadable: "
                f"{exc.strerror}."
            ) from None
        if not settings.client_certificate_thumbprint:
            raise ConfigError("PCREF_CLIENT_CERTIFICATE_THUMBPRINT is required with a certificate.")
        return {"private_key": key, "thumbprint": settings.client_certificate_thumbprint}
    assert settings.client_secret is not None
    return settings.client_secret.get_secret_value()


def confidential_app(
    settings: Settings,
    credential: Any,
    *,
    http_client: Any = None,
    http_cache: dict[Any, Any] | None = None,
    token_cache: Any = None,
) -> Any:
    """msal's confidential client for the app registration, against the configured authority (the
    app-only sign-in here; team mode's on-behalf-of and OAuth proxy, one per person or per server)."""
    import msal

    try:
        return msal.ConfidentialClientApplication(
            settings.client_id,
            client_credential=credential,
            token_cache=token_cache if token_cache is not None else msal.TokenCache(),
            http_cache=http_cache,
            **_app_kwargs(settings, http_client),
        )
    except ValueError as exc:
        raise SignInError(f"The sign-in authority {settings.authority} is not usable: {exc}") from None
    except Exception as exc:
        raise SignInError(f"Could not reach the sign-in service ({type(exc).__name__}).") from None


def _msal_error(result: dict[str, Any]) -> str:
    """msal's error code and first line of description; the rest is trace ids and timestamps."""
    code = result.get("error") or "unknown_error"
    description = str(result.get("error_description") or "").strip().splitlines()
    return f"{code}: {description[0]}" if description else str(code)
