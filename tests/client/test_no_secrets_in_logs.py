"""A full session through the logging system at DEBUG: the tokens and the client secret used never
appear in any log record, on stderr/stdout, or in any error message."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import httpx
import pytest
import requests
from fake_entra import TENANT, FakeEntra

from pcref_mcp.config import cmd_config, load_settings
from pcref_mcp.errors import PcrefError
from pcref_mcp.partner_center import PartnerCenterClient, Query, RateLimiter, auth
from pcref_mcp.partner_center.auth import MsalAppProvider, MsalDelegatedProvider
from pcref_mcp.partner_center.odata import eq
from pcref_mcp.partner_center.signin import cmd_login, cmd_whoami
from pcref_mcp.referrals.models import PatchOperation
from pcref_mcp.sandbox import Faults, SandboxConfig, create_app
from pcref_mcp.team.standin_idp import make_tls_cert, serve_in_thread

pytestmark = pytest.mark.anyio

CLIENT_SECRET = "s3cr3t-Cl1ent-Value-9f8e7d"
STATIC_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.static-known-token-value"


async def test_full_session_leaks_no_token_or_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = logging.StreamHandler(sys.stderr)  # the CLI's setup: everything to stderr
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "msal", "urllib3", "pcref_mcp"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    messages: list[str] = []
    try:
        cert, key = make_tls_cert(tmp_path)
        fake = FakeEntra(client_secret=CLIENT_SECRET)
        with serve_in_thread(fake.app, certfile=cert, keyfile=key) as idp:
            fake.base = idp
            http = requests.Session()
            http.trust_env = False
            http.verify = str(cert)
            env = {
                "HOME": str(tmp_path),
                "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
                "PCREF_BACKEND": "live",
                "PCREF_TENANT_ID": TENANT,
                "PCREF_CLIENT_ID": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                "PCREF_CLIENT_SECRET": CLIENT_SECRET,
                "PCREF_AUTHORITY_HOST": idp,
                "PCREF_SCOPES": "api://pcref-test/.default",
                "PCREF_HTTP_BEARER_TOKEN": STATIC_TOKEN,
            }
            settings = load_settings(env)
            out = io.StringIO()
            cmd_config(settings, out)
            messages.append(out.getvalue())
            messages.append(repr(settings))

            # Delegated: device-code login, whoami, then silent tokens with refresh and rotation.
            err = io.StringIO()
            fake.expires_in = 60  # short-lived: every request refreshes (and rotates) the tokens
            assert cmd_login(settings, device_code=True, err=err, http_client=http) == 0
            out = io.StringIO()
            cmd_whoami(settings, out)
            messages += [err.getvalue(), out.getvalue()]
            delegated = MsalDelegatedProvider(settings, http_client=http)
            # App-only with the client secret.
            app_settings = settings.model_copy(update={"auth_mode": "app"})
            app_only = MsalAppProvider(app_settings, http_client=http)

            app = create_app(SandboxConfig(seed_size=10, faults=Faults(seed=3), rate_limit=0))
            for tokens in (delegated, app_only):
                async with PartnerCenterClient(
                    "http://sandbox.test/v1.0/engagements/",
                    tokens,
                    transport=httpx.ASGITransport(app=app),
                    limiter=RateLimiter(1000, 60),
                    backoff_base=0.001,
                    max_retry_after=0.01,
                ) as client:
                    messages.extend(await _session(client, app))
            messages.append(repr(auth.whoami(settings)))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        logging.getLogger("httpx").setLevel(logging.NOTSET)

    captured = capsys.readouterr()
    issued = fake.issued_access + fake.issued_refresh
    assert len(fake.issued_access) >= 3 and fake.grants["refresh_token"] >= 1  # refreshes did happen
    records = "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    assert "GET /v1.0/engagements/referrals" in records  # the client did log its requests
    haystacks = {
        "logs": records,
        "stderr": captured.err,
        "stdout": captured.out,
        "messages": "\n".join(messages),
    }
    for where, text in haystacks.items():
        for secret in [CLIENT_SECRET, STATIC_TOKEN, *issued]:
            assert secret not in text, f"{secret[:6]}… leaked into {where}"
    assert captured.out == ""  # stdout is the MCP wire: nothing may be printed there


async def _session(client: PartnerCenterClient, app: object) -> list[str]:
    """List, get, create, patch, and a tour of the failures; returns every error message."""
    state = app.state.sandbox  # type: ignore[attr-defined]
    messages: list[str] = []
    with client.correlation():
        page = await client.list_page(Query(filter=eq("customerProfile/address/country", "US"), top=3))
        referrals = await client.list_all()
        first = referrals.referrals[0]
        assert first.id
        await client.get(first.id)
        body = {
            "name": "Leak test",
            "type": "Independent",
            "customerProfile": {
                "name": "Contoso",
                "address": {"country": "US"},
                "team": [{"firstName": "Sue", "email": "sue@contoso.example"}],
            },
            "consent": {"consentToContact": True},
            "details": {"dealValue": 1, "currency": "USD"},
        }
        created = await client.create(body)
        assert created.id
        await client.patch(
            created.id, [PatchOperation(op="replace", path="/details/notes", value="x")], etag=created.e_tag
        )
        failures = [
            lambda: client.get("00000000-0000-0000-0000-000000000000"),
            lambda: client.patch(
                created.id or "",
                [PatchOperation(op="replace", path="/details/notes", value="y")],
                etag='"stale"',
            ),
        ]
        for fail in failures:
            try:
                await fail()
            except PcrefError as err:
                messages.append(str(err))
        for knobs in ({"burst_429": 20}, {"error_rate": 1.0}, {"drop_rate": 1.0, "drop_mode": "after_write"}):
            state.faults.update(**knobs)
            for call in (lambda: client.list_page(), lambda: client.create(body)):
                try:
                    await call()
                except PcrefError as err:
                    messages.append(str(err))
            state.faults.clear()
    assert page is not None
    return messages
