"""Secrets and privacy: a full session with a known bearer token (the sandbox accepts only it) and a
known client secret and HTTP token in the settings. Logs (DEBUG, every logger), stderr/stdout, every
tool answer, error messages, the journal's contents and `pcref-mcp config` never contain them; the
journal (and its WAL files) and the msal token cache file are mode 0600; contact details stay out of
search rows and of the default get_referral / fetch / resource answers."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from pydantic import SecretStr

from pcref_mcp.config import Settings, cmd_config
from pcref_mcp.partner_center.auth import _FileTokenCache
from pcref_mcp.sandbox import SandboxConfig, create_app
from pcref_mcp.sandbox.clock import ManualClock
from pcref_mcp.server.app import build_server
from tests.reliability.helpers import fast_runtime, rows, text_of
from tests.server.conftest import START

pytestmark = pytest.mark.anyio

TOKEN = "tok-" + secrets.token_hex(20)
SECRET = "sec-" + secrets.token_hex(20)
HTTP_TOKEN = "http-" + secrets.token_hex(20)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _contacts(doc: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for person in [*(doc.get("team") or []), *((doc.get("customerProfile") or {}).get("team") or [])]:
        for key in ("email", "phoneNumber"):
            if person.get(key):
                found.add(str(person[key]))
    return found


async def test_full_session_never_shows_token_or_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("pcref_mcp", "httpx", "httpcore", "mcp"):
        caplog.set_level(logging.DEBUG, logger=name)
    app = create_app(
        SandboxConfig(
            db_path=tmp_path / "sandbox.db",
            seed_size=60,
            clock=ManualClock(START),
            rate_limit=0,
            tokens=frozenset({TOKEN}),
        )
    )
    store = app.state.sandbox.store
    settings = Settings(
        journal_path=tmp_path / "journal.sqlite3",
        tenant_id="11111111-2222-3333-4444-555555555555",
        client_id="aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        client_secret=SecretStr(SECRET),
        http_bearer_token=SecretStr(HTTP_TOKEN),
        auth_mode="app",
    )
    backend = fast_runtime(settings, app, token=TOKEN)
    wrong = fast_runtime(
        settings.model_copy(update={"journal_path": tmp_path / "j2.sqlite3"}), app, token="not-" + TOKEN
    )
    server = build_server(settings, runtime=backend.runtime)
    outputs: list[str] = []
    docs = list(store.iter_docs())
    contacts = set().union(*(_contacts(d) for d in docs))
    assert contacts  # the seed has e-mails and phones
    active = next(d for d in docs if d["status"] == "Active" and d["substatus"] == "Accepted")

    async def run(c: Client, name: str, args: dict[str, Any]) -> Any:
        result = await c.call_tool(name, args)
        outputs.append(text_of(result))
        outputs.append(json.dumps(result.structured_content, ensure_ascii=False))
        return result

    try:
        async with Client(server) as c:
            extras = [
                "engagement_id",
                "external_reference_id",
                "notes",
                "status_reason",
                "invited_by",
                "etag",
            ]
            listed = await run(c, "search_referrals", {"limit": 100, "fields": extras})
            default_views = [text_of(listed)]
            for d in docs[:25]:
                default_views.append(text_of(await run(c, "get_referral", {"referral_id": d["id"]})))
                default_views.append(text_of(await run(c, "fetch", {"id": d["id"]})))
                res = await c.read_resource(f"referral://{d['id']}")
                default_views.append(res.contents[0].text)  # type: ignore[union-attr]
            default_views.append(text_of(await run(c, "search", {"query": "Contoso"})))
            with_contacts = await run(
                c, "get_referral", {"referral_id": active["id"], "sections": ["contacts"]}
            )
            # writes: confirmed update, create, stale, undo; errors: bad value, 404, service faults
            args = {"referral_id": active["id"], "changes": [{"field": "deal value", "value": 31337}]}
            token = (await run(c, "update_field", args)).structured_content["confirm_token"]
            done = await run(c, "update_field", {**args, "confirm_token": token})
            assert done.structured_content["status"] == "applied"
            undo = {"change_id": done.structured_content["change_id"]}
            t2 = (await run(c, "undo_change", undo)).structured_content["confirm_token"]
            await run(c, "undo_change", {**undo, "confirm_token": t2})
            new = {
                "referral": {
                    "name": "Secret-free deal",
                    "customer_name": "Fabrikam",
                    "customer_country": "DE",
                    "customer_city": "Berlin",
                    "deal_kind": "private",
                    "customer_consent_to_contact": True,
                    "notes": "Data platform",
                    "customer_contacts": [
                        {"first_name": "Ana", "last_name": "W", "email": "ana@fabrikam.example"}
                    ],
                }
            }
            t3 = (await run(c, "create_referral", new)).structured_content["confirm_token"]
            await run(c, "create_referral", {**new, "confirm_token": t3})
            await run(
                c,
                "update_field",
                {"referral_id": active["id"], "changes": [{"field": "deal value", "value": -1}]},
            )
            await run(c, "get_referral", {"referral_id": "no-such-referral"})
            await run(c, "update_field", {**args, "confirm_token": "forged.token"})
            app.state.sandbox.faults.update(error_rate=1.0)
            await run(c, "get_referral", {"referral_id": active["id"]})
            t4 = await run(
                c,
                "update_field",
                {"referral_id": active["id"], "changes": [{"field": "notes", "value": "n"}]},
            )
            app.state.sandbox.faults.clear()
            assert t4.is_error
        # the service refuses a wrong token: the message says so without echoing any token
        async with Client(build_server(settings, runtime=wrong.runtime)) as c:
            refused = await run(c, "get_referral", {"referral_id": active["id"]})
            assert refused.is_error and "401" in text_of(refused) and "not valid" in text_of(refused)
    finally:
        await backend.runtime.aclose()
        await wrong.runtime.aclose()

    config_out = io.StringIO()
    cmd_config(settings, config_out)
    journal_dump = json.dumps([dict(r) for r in rows(tmp_path / "journal.sqlite3", "SELECT * FROM writes")])
    captured = capfd.readouterr()
    haystacks = {
        "logs": caplog.text,
        "stderr": captured.err,
        "stdout": captured.out,
        "tool outputs": "\n".join(outputs),
        "journal": journal_dump,
        "config": config_out.getvalue(),
        "settings repr": repr(settings) + str(settings),
    }
    for where, text in haystacks.items():
        for secret in (TOKEN, SECRET, HTTP_TOKEN):
            assert secret not in text, f"{secret[:4]}… leaked into {where}"
    # the bearer token really was sent (the spy saw it) — so the absence above means something
    assert any(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in backend.spy.seen)
    assert not re.search(r"Bearer\s+(?!<token>)\S", caplog.text)  # no header value, only the service's advice

    # contact details: never in rows or default views; present only when asked for
    for text in default_views:
        leaked = [c for c in contacts if c in text]
        assert not leaked, leaked[:3]
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", "\n".join(default_views))
    assert _contacts(active) & set(
        re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+|\+?[\d ()-]{7,}", text_of(with_contacts))
    ) or not _contacts(active)
    pcref_logs = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("pcref_mcp"))
    assert not [c for c in contacts | {"ana@fabrikam.example"} if c in pcref_logs]

    # files: the journal and its WAL companions are 0600
    journal = tmp_path / "journal.sqlite3"
    assert _mode(journal) == 0o600
    for suffix in ("-wal", "-shm"):
        side = journal.with_name(journal.name + suffix)
        if side.exists():
            assert _mode(side) == 0o600, (side, oct(_mode(side)))
    print(
        f"\nSECRETS FIGURES tool answers={len(outputs) // 2} log records={len(caplog.records)} "
        f"requests with the token={len(backend.spy.seen)} contact values checked={len(contacts)} "
        f"default views checked={len(default_views)}"
    )


def test_token_cache_file_is_0600_even_with_a_careless_umask(tmp_path: Path) -> None:
    """The msal cache through its real writer (_FileTokenCache.save_if_changed), no network needed.
    tests/client/test_auth_msal.py covers the same file written by a real device-code sign-in."""
    cache = _FileTokenCache(tmp_path / "cfg" / "token_cache.json")
    cache.load()
    cache.cache.has_state_changed = True
    old = os.umask(0)
    try:
        cache.save_if_changed()
    finally:
        os.umask(old)
    assert _mode(tmp_path / "cfg" / "token_cache.json") == 0o600
