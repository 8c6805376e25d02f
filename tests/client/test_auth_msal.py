"""msal's real code paths against a local identity endpoint (TLS on 127.0.0.1): device code, the
0600 cache, silent acquisition, refresh with rotation after expiry, logout, whoami, app-only."""

from __future__ import annotations

import io
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fake_entra import TENANT, USERNAME, FakeEntra
from pydantic import SecretStr

from pcref_mcp.config import Settings, load_settings
from pcref_mcp.errors import SignInError
from pcref_mcp.partner_center import auth
from pcref_mcp.partner_center.auth import MsalAppProvider, MsalDelegatedProvider, provider_for
from pcref_mcp.partner_center.signin import cmd_login, cmd_logout, cmd_whoami
from pcref_mcp.team.standin_idp import make_tls_cert, serve_in_thread

pytestmark = pytest.mark.anyio
CLIENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


@pytest.fixture(scope="module")
def entra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeEntra, str, Path]]:
    cert, key = make_tls_cert(tmp_path_factory.mktemp("tls"))
    fake = FakeEntra()
    with serve_in_thread(fake.app, certfile=cert, keyfile=key) as base:
        fake.base = base
        yield fake, base, cert


@pytest.fixture
def fake(entra: tuple[FakeEntra, str, Path]) -> FakeEntra:
    f = entra[0]
    f.expires_in = 3600
    f.grants.clear()
    return f


@pytest.fixture
def http(entra: tuple[FakeEntra, str, Path]) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides `verify`
    session.verify = str(entra[2])
    return session


@pytest.fixture
def settings(entra: tuple[FakeEntra, str, Path], tmp_path: Path) -> Settings:
    return load_settings(
        {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")},
        overrides={
            "backend": "live",
            "tenant_id": TENANT,
            "client_id": CLIENT_ID,
            "authority_host": entra[1],
            "scopes": ("api://pcref-test/.default",),
        },
    )


def cache_file(settings: Settings) -> Path:
    assert settings.token_cache_path is not None
    return settings.token_cache_path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def login(settings: Settings, http: requests.Session) -> tuple[dict[str, Any], list[str]]:
    prompts: list[str] = []
    old = os.umask(0)  # a careless umask must not widen the file's mode
    try:
        info = auth.login_device_code(settings, on_prompt=prompts.append, http_client=http)
    finally:
        os.umask(old)
    return info, prompts


async def test_device_code_login_writes_0600_cache(
    fake: FakeEntra, settings: Settings, http: requests.Session
) -> None:
    info, prompts = login(settings, http)
    assert prompts and "ABCD-EFGH" in prompts[0]
    assert fake.grants["urn:ietf:params:oauth:grant-type:device_code"] == 2  # pending, then granted
    path = cache_file(settings)
    assert path.exists() and mode(path) == 0o600
    assert fake.issued_refresh[-1] in path.read_text()
    assert info["signed_in"] and info["username"] == USERNAME and info["tenant_id"] == TENANT
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


async def test_silent_acquisition_uses_cached_token(
    fake: FakeEntra, settings: Settings, http: requests.Session
) -> None:
    login(settings, http)
    cached_at = fake.issued_access[-1]
    provider = provider_for(settings, http_client=http)
    assert isinstance(provider, MsalDelegatedProvider)
    assert await provider.get_token() == cached_at
    assert await provider.get_token() == cached_at
    assert fake.grants["refresh_token"] == 0
    assert provider.account_label() == USERNAME


async def test_expiry_refreshes_and_saves_rotated_refresh_token(
    fake: FakeEntra, settings: Settings, http: requests.Session
) -> None:
    login(settings, http)
    path = cache_file(settings)
    first_rt = fake.issued_refresh[-1]
    # Expire the cached access token (as time passing would).
    doc = json.loads(path.read_text())
    for entry in doc["AccessToken"].values():
        entry["expires_on"] = str(int(time.time()) - 10)
    path.write_text(json.dumps(doc))

    fake.expires_in = 60  # from now on short-lived: msal treats < 5 min left as expired
    provider = MsalDelegatedProvider(settings, http_client=http)
    token = await provider.get_token()
    assert fake.grants["refresh_token"] == 1
    assert token == fake.issued_access[-1]
    second_rt = fake.issued_refresh[-1]
    assert second_rt != first_rt
    text = path.read_text()
    assert second_rt in text and first_rt not in text
    assert mode(path) == 0o600

    # Short-lived tokens: every request refreshes, and every rotation reaches the file.
    await provider.get_token()
    await provider.get_token()
    assert fake.grants["refresh_token"] == 3
    assert fake.issued_refresh[-1] in path.read_text()

    # A new process starting from the file still works: the saved refresh token is the live one.
    fresh = MsalDelegatedProvider(settings, http_client=http)
    assert await fresh.get_token() == fake.issued_access[-1]


async def test_revoked_refresh_token_says_sign_in_again(
    fake: FakeEntra, settings: Settings, http: requests.Session
) -> None:
    fake.expires_in = 60
    login(settings, http)
    fake.revoke_all()
    provider = MsalDelegatedProvider(settings, http_client=http)
    with pytest.raises(SignInError, match="pcref-mcp login") as info:
        await provider.get_token()
    assert "invalid_grant" in str(info.value)


async def test_logout_and_whoami(fake: FakeEntra, settings: Settings, http: requests.Session) -> None:
    login(settings, http)
    info = auth.whoami(settings)
    text = json.dumps(info)
    assert info["username"] == USERNAME and info["access_token_expires"].endswith("Z")
    for token in fake.issued_access + fake.issued_refresh:
        assert token not in text
    assert auth.logout(settings) is True
    assert not cache_file(settings).exists()
    assert auth.whoami(settings)["signed_in"] is False
    assert auth.logout(settings) is False
    with pytest.raises(SignInError, match="pcref-mcp login"):
        provider_for(settings, http_client=http)


async def test_cli_helpers(fake: FakeEntra, settings: Settings, http: requests.Session) -> None:
    err, out = io.StringIO(), io.StringIO()
    assert cmd_login(settings, device_code=True, err=err, http_client=http) == 0
    assert "ABCD-EFGH" in err.getvalue() and USERNAME in err.getvalue()
    assert cmd_whoami(settings, out) == 0
    assert USERNAME in out.getvalue() and "access_token_expires" in out.getvalue()
    for token in fake.issued_access + fake.issued_refresh:
        assert token not in out.getvalue() + err.getvalue()
    err = io.StringIO()
    assert cmd_logout(settings, err) == 0 and "Signed out" in err.getvalue()
    out = io.StringIO()
    assert cmd_whoami(settings, out) == 1 and "not signed in" in out.getvalue()


async def test_app_only_client_credentials(
    fake: FakeEntra, settings: Settings, http: requests.Session
) -> None:
    app_settings = settings.model_copy(update={"auth_mode": "app", "client_secret": SecretStr("app-secret")})
    provider = provider_for(app_settings, http_client=http)
    assert isinstance(provider, MsalAppProvider) and provider.app_only
    token = await provider.get_token()
    assert token.startswith("app-access-")
    assert await provider.get_token() == token  # msal's in-memory cache
    assert fake.grants["client_credentials"] == 1
    wrong = settings.model_copy(update={"auth_mode": "app", "client_secret": SecretStr("wrong")})
    with pytest.raises(SignInError, match="invalid_client") as info:
        await MsalAppProvider(wrong, http_client=http).get_token()
    assert "wrong" not in str(info.value)


def test_live_without_setup_fails_fast(tmp_path: Path) -> None:
    s = load_settings({"HOME": str(tmp_path), "PCREF_BACKEND": "live"})
    with pytest.raises(SignInError) as info:
        provider_for(s)
    text = str(info.value)
    assert "PCREF_TENANT_ID" in text and "PCREF_CLIENT_ID" in text and "pcref-mcp login" in text
    err = io.StringIO()
    assert cmd_login(s, device_code=True, err=err) == 2 and "PCREF_TENANT_ID" in err.getvalue()
    app = s.model_copy(update={"tenant_id": "t", "client_id": "c", "auth_mode": "app"})
    with pytest.raises(SignInError, match="PCREF_CLIENT_SECRET"):
        provider_for(app)


def test_sandbox_needs_no_sign_in(tmp_path: Path) -> None:
    provider = provider_for(load_settings({"HOME": str(tmp_path)}))
    assert provider.account_label() == "sandbox"


def test_msal_not_imported_by_the_package_or_the_fast_check() -> None:
    import subprocess
    import sys

    code = (
        "import sys, os\n"
        "from pcref_mcp.config import load_settings\n"
        "from pcref_mcp.errors import SignInError\n"
        "from pcref_mcp.partner_center import ensure_configured\n"
        "try:\n"
        "    ensure_configured(load_settings({'HOME': '/nonexistent', 'PCREF_BACKEND': 'live'}))\n"
        "except SignInError:\n"
        "    pass\n"
        "print('msal' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
