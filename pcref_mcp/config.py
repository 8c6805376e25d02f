"""Settings: environment variables ``PCREF_*`` over an optional TOML file over defaults.

One frozen object built once at start-up and handed down, so no layer reads ``os.environ`` on its
own and ``pcref-mcp config`` can show exactly what is in effect and where each value came from.
With nothing configured the backend is the embedded sandbox; the live service is opt-in.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from pcref_mcp.errors import ConfigError

__all__ = [
    "APP_NAME",
    "ENV_PREFIX",
    "LIVE_BASE_URL",
    "SANDBOX_BASE_URL",
    "Settings",
    "cmd_config",
    "config_dir",
    "data_dir",
    "load_settings",
]

APP_NAME = "pcref-mcp"
ENV_PREFIX = "PCREF_"
LIVE_BASE_URL = "https://api.partner.microsoft.com/v1.0/engagements/"
# The embedded sandbox is reached in-process (ASGI), so its host is never resolved.
SANDBOX_BASE_URL = "http://sandbox.pcref.invalid/v1.0/engagements/"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

Source = Literal["default", "env", "file", "cli"]


class Settings(BaseModel):
    """The effective configuration. Build it with :func:`load_settings`, not by hand."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["sandbox", "live"] = "sandbox"
    base_url: str = ""  # filled from the backend when empty
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    client_certificate_path: Path | None = None
    client_certificate_thumbprint: str | None = None
    authority_host: str = "https://login.microsoftonline.com"
    scopes: tuple[str, ...] = ("https://api.partner.microsoft.com/.default",)
    auth_mode: Literal["delegated", "app"] = "delegated"
    token_cache_path: Path | None = None  # None: <config dir>/token_cache.json
    rate_limit_calls: int = Field(default=100, ge=1)
    rate_limit_window: float = Field(default=60.0, gt=0)
    timeout: float = Field(default=30.0, gt=0)
    sandbox_db: Path | None = None  # None: <data dir>/sandbox.db; ":memory:" keeps it in memory
    sandbox_size: int = Field(default=60, ge=0)
    # lenient: whatever the sandbox can do; strict: only what the public documents show. None: the
    # sandbox's own default, PCREF_SANDBOX_PROFILE else lenient (a Settings made in code, as tests do)
    sandbox_profile: Literal["lenient", "strict"] | None = None
    journal_path: Path | None = None  # None: <data dir>/journal.sqlite3
    store_url: str | None = None  # None: sqlite:///<journal_path>; postgresql://… for a team server
    store_key: SecretStr | None = None  # seals refresh tokens at rest; derives the replicas' shared keys
    # rotation's grace period: the other key, which still opens what it sealed (`pcref-mcp admin rotate-key`)
    store_key_previous: SecretStr | None = None
    # a write still pending when its process's lease (renewed every sixth of this) is older: in doubt
    journal_lease_seconds: float = Field(default=60.0, ge=5)
    read_only: bool = False
    require_elicitation: bool = False
    # how a person approves writes (server.approval_page): token | page | strictest; None: token for
    # one person, strictest for a team server
    approval_policy: Literal["token", "page", "strictest"] | None = None
    approval_page_seconds: int = Field(default=900, ge=60)  # an approval page stays open this long
    confirm_ttl_seconds: int = Field(default=300, ge=1)
    approval_timeout_seconds: int = Field(default=300, ge=1)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8765, ge=0, le=65535)
    http_bearer_token: SecretStr | None = None
    # Host names `serve --http` answers to (each with or without the port); empty: the loopback names,
    # the bind address, this machine's name and addresses. Anything else gets 421 (DNS rebinding).
    http_allowed_hosts: tuple[str, ...] = ()
    http_max_sessions: int = Field(default=200, ge=1)
    http_max_sessions_per_client: int = Field(default=20, ge=1)
    http_session_idle_seconds: int = Field(default=900, ge=1)
    http_stateless: bool = False  # every request stands alone: any replica serves any request
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    time_zone: str = "UTC"  # IANA name: "today" for "next Friday", "last week" (referrals/when.py)
    # Operations (pcref_mcp.ops): stderr lines as text or one JSON object each; /metrics off unless
    # this token is set (its own bearer); SIGTERM drains for at most drain_seconds, after announcing
    # it (unready, closing connections) for drain_announce_seconds: as long as the proxy in front
    # takes to stop sending new calls; 0 where nothing routes to it (a server run by hand or by tests)
    log_format: Literal["text", "json"] = "text"
    metrics_token: SecretStr | None = None
    drain_seconds: float = Field(default=20.0, ge=0, le=600)
    drain_announce_seconds: float = Field(default=1.0, ge=0, le=60)
    # Team mode (`pcref-mcp team`): each request carries the person's own token; see pcref_mcp/team.
    team_public_url: str | None = None  # the server's public base URL; None: http://<host>:<port>
    team_issuer: str | None = None  # None: <authority_host>/<tenant_id>/v2.0
    team_audiences: tuple[str, ...] = ()  # accepted `aud`; empty: client_id, api://client_id, <url>/mcp
    team_allowed_tenants: tuple[str, ...] = ()  # empty: tenant_id only
    team_scope: str = "access_as_user"  # the delegated scope the API app exposes
    team_proxy: bool = True  # serve OAuth metadata + registration and broker to Entra
    team_ca_bundle: Path | None = None  # extra CA for the authorization server (the stand-in's)

    _sources: dict[str, Source] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _defaults_that_depend_on_others(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if not data.get("base_url"):
                data["base_url"] = LIVE_BASE_URL if data.get("backend") == "live" else SANDBOX_BASE_URL
            if isinstance(data.get("log_level"), str):
                data["log_level"] = data["log_level"].upper()
            if isinstance(data.get("sandbox_profile"), str):
                data["sandbox_profile"] = data["sandbox_profile"].lower()
        return data

    @field_validator("http_allowed_hosts")
    @classmethod
    def _host_names_only(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        import re

        for host in hosts:
            if "*" in host:
                raise ValueError(
                    f"{host!r}: wildcards are not accepted (they would switch off the DNS-rebinding check); "
                    "list each host name or address clients use"
                )
            if not re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._:-]+)(:[0-9]{1,5})?", host):
                raise ValueError(
                    f"{host!r} is not a host name or address (e.g. pcref.lan, 192.0.2.7, [fd00::7])"
                )
        return hosts

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        """An unknown name is refused at start, never read silently as UTC (the server's "today")."""
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if zone.upper() != "UTC":
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"{zone!r} is not an IANA time zone name (e.g. Europe/Berlin, America/Los_Angeles, UTC)"
                ) from None
        return zone

    @property
    def is_live(self) -> bool:
        return self.backend == "live"

    @property
    def authority(self) -> str | None:
        """``<authority_host>/<tenant>``, or None when no tenant is configured."""
        if not self.tenant_id:
            return None
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"

    @property
    def journal_file(self) -> Path:
        """The SQLite journal file: ``journal_path``, else ``journal.sqlite3`` in the data dir."""
        return Path(self.journal_path) if self.journal_path else data_dir() / "journal.sqlite3"

    @property
    def store_location(self) -> str:
        """The store's URL: ``store_url``, else the SQLite journal file (journal and approvals share it)."""
        if self.store_url:
            return self.store_url
        return f"sqlite:///{self.journal_file}"

    @property
    def store_shown(self) -> str:
        """The store's URL without a password, for people to read."""
        scheme, sep, rest = self.store_location.partition("://")
        userinfo, at, host = rest.rpartition("@")
        if at and ":" in userinfo:
            rest = f"{userinfo.split(':', 1)[0]}:****@{host}"
        return scheme + sep + rest

    @property
    def store_secret(self) -> bytes | None:
        return self.store_key.get_secret_value().encode() if self.store_key else None

    @property
    def store_previous_secret(self) -> bytes | None:
        return self.store_key_previous.get_secret_value().encode() if self.store_key_previous else None

    def source_of(self, name: str) -> Source:
        return self._sources.get(name, "default")

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, shown value, source) for every setting; secrets are shown only as ``****``."""
        rows: list[tuple[str, str, str]] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown = "****"
            elif name == "store_url" and value:
                shown = self.store_shown
            elif value is None:
                shown = "(not set)"
            elif isinstance(value, tuple):
                shown = " ".join(str(v) for v in value)
            else:
                shown = str(value)
            rows.append((name, shown, self.source_of(name)))
        return rows


# --- loading --------------------------------------------------------------------------------------


def load_settings(
    env: Mapping[str, str] | None = None,
    config_file: Path | str | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults, then the TOML file, then ``PCREF_*`` variables, then ``overrides`` (CLI flags).

    The file is ``config_file`` if given, else ``$PCREF_CONFIG``, else ``<config dir>/config.toml``
    when it exists. Any bad value raises :class:`ConfigError` naming where it came from and what is
    allowed.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    origin: dict[str, str] = {}  # field -> how the person spelled it (for error messages)
    fields = Settings.model_fields

    path, explicit = _config_path(env, config_file)
    if path is not None and (explicit or path.exists()):
        for key, value in _read_toml(path).items():
            if key not in fields:
                raise ConfigError(
                    f"Unknown setting {key!r} in {path}.",
                    hint=f"Allowed settings: {', '.join(fields)}.",
                )
            values[key], sources[key], origin[key] = value, "file", f"{key!r} in {path}"

    for name in fields:
        var = ENV_PREFIX + name.upper()
        if var in env and env[var] != "":
            values[name], sources[name], origin[name] = _from_env(name, env[var]), "env", var

    for name, value in (overrides or {}).items():
        if name not in fields:
            raise ConfigError(f"Unknown setting {name!r}.", hint=f"Allowed settings: {', '.join(fields)}.")
        values[name], sources[name], origin[name] = value, "cli", f"--{name.replace('_', '-')}"

    if values.get("token_cache_path") in (None, ""):
        values["token_cache_path"] = config_dir(env) / "token_cache.json"
    if values.get("sandbox_profile") in (None, ""):
        values["sandbox_profile"] = "lenient"
    if values.get("journal_path") in (None, ""):
        values["journal_path"] = data_dir(env) / "journal.sqlite3"

    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        raise _config_error(exc, origin) from None
    settings._sources.update(sources)
    return settings


def cmd_config(settings: Settings, out: TextIO) -> int:
    """``pcref-mcp config``: print the effective settings (secrets masked) and where each came from."""
    rows = settings.describe()
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        out.write(f"{name.ljust(width)}  {value}  [{source}]\n")
    return 0


# --- user directories (no platformdirs: start-up time and one less dependency) -------------------


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where settings and the token cache live: XDG_CONFIG_HOME, Application Support, %APPDATA%."""
    return _user_dir(env, windows=("APPDATA", "AppData/Roaming"), xdg=("XDG_CONFIG_HOME", ".config"))


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the write journal lives: XDG_DATA_HOME, Application Support, %LOCALAPPDATA%."""
    return _user_dir(env, windows=("LOCALAPPDATA", "AppData/Local"), xdg=("XDG_DATA_HOME", ".local/share"))


def _user_dir(env: Mapping[str, str] | None, *, windows: tuple[str, str], xdg: tuple[str, str]) -> Path:
    """This app's folder of one kind on this platform: the folder a variable names, else its usual
    place under the home folder (each given as ``(variable, under home)``; macOS has no variable and
    keeps both kinds in Application Support)."""
    env = os.environ if env is None else env
    if sys.platform == "win32":
        variable, under_home = windows
    elif sys.platform == "darwin":
        variable, under_home = "", "Library/Application Support"
    else:
        variable, under_home = xdg
    base = (env.get(variable) if variable else None) or str(_home(env) / under_home)
    return Path(base) / APP_NAME


# --- private helpers ------------------------------------------------------------------------------


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME") or env.get("USERPROFILE")
    return Path(home) if home else Path.home()


def _config_path(env: Mapping[str, str], config_file: Path | str | None) -> tuple[Path | None, bool]:
    if config_file is not None:
        return Path(config_file).expanduser(), True
    if env.get("PCREF_CONFIG"):
        return Path(env["PCREF_CONFIG"]).expanduser(), True
    return config_dir(env) / "config.toml", False


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only when there is a file to read: most starts have none

    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"Config file {path} does not exist.", hint="Create it or unset PCREF_CONFIG."
        ) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc}") from None
    # Accept both a flat file and one with a [pcref-mcp] table.
    table = data.get(APP_NAME, data)
    if not isinstance(table, dict):
        raise ConfigError(f"Config file {path}: [{APP_NAME}] must be a table.")
    return table


def _from_env(name: str, raw: str) -> Any:
    """Environment values are strings; lists are comma- or space-separated."""
    if name in ("scopes", "team_audiences", "team_allowed_tenants", "http_allowed_hosts"):
        return tuple(part for part in raw.replace(",", " ").split() if part)
    return raw.strip()


def _config_error(exc: ValidationError, origin: Mapping[str, str]) -> ConfigError:
    problems = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "settings"
        where = origin.get(name, ENV_PREFIX + name.upper())
        allowed = _allowed(name, err)
        text = f"{where}: {err['msg']}"
        if allowed:
            text += f" (allowed: {allowed})"
        problems.append(text)
    return ConfigError("Invalid configuration: " + "; ".join(problems) + ".")


def _allowed(name: str, err: Any) -> str | None:
    if err.get("type") == "literal_error":
        return str(err.get("ctx", {}).get("expected", ""))
    field = Settings.model_fields.get(name)
    if field is None:
        return None
    annotation = str(field.annotation)
    if "bool" in annotation:
        return "true or false"
    if "int" in annotation:
        return "a whole number"
    if "float" in annotation:
        return "a number"
    return None
