"""Settings: defaults, file, environment, CLI overrides, masking, clear errors."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from pcref_mcp.config import LIVE_BASE_URL, cmd_config, config_dir, data_dir, load_settings
from pcref_mcp.errors import ConfigError


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    return {
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }


def test_defaults_are_sandbox(home: dict[str, str]) -> None:
    s = load_settings(home)
    assert s.backend == "sandbox" and not s.is_live
    assert s.rate_limit_calls == 100 and s.rate_limit_window == 60.0
    assert s.scopes == ("https://api.partner.microsoft.com/.default",)
    assert s.token_cache_path == Path(home["XDG_CONFIG_HOME"]) / "pcref-mcp" / "token_cache.json"
    assert s.journal_path == Path(home["XDG_DATA_HOME"]) / "pcref-mcp" / "journal.sqlite3"
    assert s.http_host == "127.0.0.1" and s.http_port == 8765
    assert all(
        src == "default" for _, _, src in s.describe() if _ not in ("token_cache_path", "journal_path")
    )


def test_env_and_file_precedence(home: dict[str, str], tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'tenant_id = "file-tenant"\nclient_id = "file-client"\nrate_limit_calls = 7\nscopes = ["a", "b"]\n'
    )
    env = {
        **home,
        "PCREF_CONFIG": str(cfg),
        "PCREF_TENANT_ID": "env-tenant",
        "PCREF_BACKEND": "live",
        "PCREF_READ_ONLY": "true",
        "PCREF_RATE_LIMIT_WINDOW": "30.5",
    }
    s = load_settings(env)
    assert s.tenant_id == "env-tenant" and s.source_of("tenant_id") == "env"
    assert s.client_id == "file-client" and s.source_of("client_id") == "file"
    assert s.rate_limit_calls == 7 and s.scopes == ("a", "b")
    assert s.backend == "live" and s.base_url == LIVE_BASE_URL
    assert s.read_only is True and s.rate_limit_window == 30.5
    assert s.authority == "https://login.microsoftonline.com/env-tenant"


def test_default_config_file_in_config_dir(home: dict[str, str]) -> None:
    path = config_dir(home) / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('[pcref-mcp]\nlog_level = "debug"\n')
    s = load_settings(home)
    assert s.log_level == "DEBUG" and s.source_of("log_level") == "file"


def test_cli_live_flag(home: dict[str, str]) -> None:
    s = load_settings(home, overrides={"backend": "live"})
    assert s.is_live and s.source_of("backend") == "cli"


def test_scopes_from_env(home: dict[str, str]) -> None:
    s = load_settings({**home, "PCREF_SCOPES": "x/.default, y/user_impersonation"})
    assert s.scopes == ("x/.default", "y/user_impersonation")


@pytest.mark.parametrize(
    ("var", "value", "words"),
    [
        ("PCREF_BACKEND", "prod", ["PCREF_BACKEND", "sandbox", "live"]),
        ("PCREF_AUTH_MODE", "robot", ["PCREF_AUTH_MODE", "delegated", "app"]),
        ("PCREF_RATE_LIMIT_CALLS", "lots", ["PCREF_RATE_LIMIT_CALLS", "whole number"]),
        ("PCREF_READ_ONLY", "maybe", ["PCREF_READ_ONLY", "true or false"]),
        ("PCREF_LOG_LEVEL", "loud", ["PCREF_LOG_LEVEL", "DEBUG"]),
        ("PCREF_HTTP_PORT", "70000", ["PCREF_HTTP_PORT"]),
    ],
)
def test_bad_values_name_the_variable(home: dict[str, str], var: str, value: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({**home, var: value})
    for word in words:
        assert word in str(info.value)


def test_bad_file(home: dict[str, str], tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("nope = 1\n")
    with pytest.raises(ConfigError, match="Unknown setting 'nope'"):
        load_settings(home, cfg)
    cfg.write_text("this is not toml")
    with pytest.raises(ConfigError, match="Cannot read"):
        load_settings(home, cfg)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({**home, "PCREF_CONFIG": str(tmp_path / "missing.toml")})
    cfg.write_text('rate_limit_calls = "many"\n')
    with pytest.raises(ConfigError, match="'rate_limit_calls' in"):
        load_settings(home, cfg)


def test_secrets_masked(home: dict[str, str]) -> None:
    env = {**home, "PCREF_CLIENT_SECRET": "sup3r-s3cret-value", "PCREF_HTTP_BEARER_TOKEN": "bearer-abcdef"}
    s = load_settings(env)
    assert isinstance(s.client_secret, SecretStr)
    rows = dict((n, (v, src)) for n, v, src in s.describe())
    assert rows["client_secret"] == ("****", "env") and rows["http_bearer_token"] == ("****", "env")
    out = io.StringIO()
    assert cmd_config(s, out) == 0
    text = out.getvalue() + repr(s) + str(s)
    assert "s3cret" not in text and "abcdef" not in text and "cdef" not in text
    assert "client_secret" in out.getvalue() and "[env]" in out.getvalue()


def test_settings_are_frozen(home: dict[str, str]) -> None:
    s = load_settings(home)
    with pytest.raises(ValidationError):
        s.backend = "live"  # type: ignore[misc]


def test_user_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    import pcref_mcp.config as config

    monkeypatch.setattr(config.sys, "platform", "linux")
    assert config_dir({"HOME": "/h"}) == Path("/h/.config/pcref-mcp")
    assert data_dir({"HOME": "/h"}) == Path("/h/.local/share/pcref-mcp")
    monkeypatch.setattr(config.sys, "platform", "darwin")
    assert config_dir({"HOME": "/h"}) == Path("/h/Library/Application Support/pcref-mcp")
    monkeypatch.setattr(config.sys, "platform", "win32")
    assert config_dir({"APPDATA": "C:/R", "HOME": "/h"}) == Path("C:/R/pcref-mcp")
    assert data_dir({"LOCALAPPDATA": "C:/L", "HOME": "/h"}) == Path("C:/L/pcref-mcp")


@pytest.mark.parametrize("profile", ["strict", "lenient"])
def test_sandbox_profile_is_a_setting_of_the_file_the_environment_and_the_listing(
    home: dict[str, str], tmp_path: Path, profile: str
) -> None:
    """PCREF_SANDBOX_PROFILE is a setting like the others: the config file sets it, the environment
    overrides it, `pcref-mcp config` lists it, and the embedded sandbox is built with it."""
    from pcref_mcp.server.runtime import Runtime

    other = "lenient" if profile == "strict" else "strict"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'sandbox_profile = "{profile.upper()}"\nsandbox_db = ":memory:"\n')
    s = load_settings({**home, "PCREF_CONFIG": str(cfg)})
    assert s.sandbox_profile == profile and s.source_of("sandbox_profile") == "file"
    out = io.StringIO()
    cmd_config(s, out)
    assert re.search(rf"^sandbox_profile +{profile}  \[file\]$", out.getvalue(), re.M)
    runtime = Runtime(s)
    runtime._sandbox_transport()
    assert runtime.sandbox_app.state.sandbox.config.profile == profile

    over = load_settings({**home, "PCREF_CONFIG": str(cfg), "PCREF_SANDBOX_PROFILE": other})
    assert over.sandbox_profile == other and over.source_of("sandbox_profile") == "env"
    assert load_settings(home).sandbox_profile == "lenient"  # nothing set: the default


def test_a_bad_sandbox_profile_names_the_setting_and_the_choices(home: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"PCREF_SANDBOX_PROFILE.*'lenient' or 'strict'"):
        load_settings({**home, "PCREF_SANDBOX_PROFILE": "paranoid"})


def test_the_time_zone_is_checked_at_start_and_sets_the_servers_today(tmp_path: Path) -> None:
    """PCREF_TIME_ZONE is the "today" dates are read against: an unknown name is refused where it
    was set (never read silently as UTC); a known one moves today across midnight."""
    from datetime import UTC, datetime
    from unittest import mock

    from pcref_mcp.referrals import when
    from pcref_mcp.server.runtime import Runtime

    empty = tmp_path / "config.toml"
    empty.write_text("")
    with pytest.raises(ConfigError, match=r"PCREF_TIME_ZONE.*Mars/Olympus.*IANA"):
        load_settings({"PCREF_TIME_ZONE": "Mars/Olympus"}, config_file=empty)
    late_evening_in_seattle = datetime(2026, 12, 11, 6, 30, tzinfo=UTC)  # Thu 22:30 in Seattle
    try:
        with mock.patch.object(when, "now", return_value=late_evening_in_seattle):
            Runtime(load_settings({"PCREF_TIME_ZONE": "America/Los_Angeles"}, config_file=empty))
            assert (when.today().isoformat(), when.ZONE_NAME) == ("2026-12-10", "America/Los_Angeles")
            Runtime(load_settings({}, config_file=empty))
            assert (when.today().isoformat(), when.ZONE_NAME) == ("2026-12-11", "UTC")
    finally:
        when.configure("UTC")
