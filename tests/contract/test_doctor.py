"""`pcref-mcp doctor`: a read-only check whose report can go to support as is, and whose recordings
the contract tests replay."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from pcref_mcp.cli import main
from pcref_mcp.doctor import run_checks
from pcref_mcp.errors import SignInError
from pcref_mcp.partner_center import PartnerCenterClient, StaticTokenProvider
from pcref_mcp.partner_center import capabilities as caps
from pcref_mcp.partner_center.recording import Exchange, Recorder, Replay, load_exchanges, scrub
from pcref_mcp.sandbox import create_app
from tests.contract.replay import FIXTURES, client_for, replay
from tests.sandbox.conftest import SANDBOX_BASE, make_config

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _emails(text: str) -> set[str]:
    return {e for e in EMAIL.findall(text) if not e.endswith("example.invalid")}


@pytest.mark.parametrize("profile", ["lenient", "strict"])
def test_doctor_on_the_sandbox_reports_records_and_leaks_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, profile: str
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    record = tmp_path / "rec"
    code = main(["doctor", "--sandbox", "--profile", profile, "--record", str(record)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "Result: the first real call should work." in out
    assert "doctor-sandbox-token" not in out + err  # the token never shows
    assert not _emails(out)  # nor contact details
    for line in ("read the first page", "read one referral", "query: contains", "write look-up"):
        assert line in out
    contains = next(line for line in out.splitlines() if "query: contains" in line)
    assert contains.split()[0] == ("no" if profile == "strict" else "ok")
    # the recordings: every response, scrubbed, and none carries a token
    files = sorted(record.glob("*.json"))
    assert len(files) >= 10 and f"Recorded {len(files)} responses" in out
    recorded = "\n".join(f.read_text() for f in files)
    assert not _emails(recorded) and "Bearer" not in recorded and "doctor-sandbox-token" not in recorded
    assert "scrubbed@example.invalid" in recorded  # contact details were there, and were replaced
    assert not (tmp_path / "data" / "pcref-mcp" / caps.CACHE_FILE).exists()  # a sandbox run stores nothing


def test_doctor_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--sandbox", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["correlationId"]
    assert {c["status"] for c in report["checks"]} <= {"ok", "warn", "no", "skip"}


def test_doctor_live_without_configuration_says_what_to_set(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("PCREF_TENANT_ID", "PCREF_CLIENT_ID", "PCREF_BACKEND", "PCREF_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert main(["doctor"]) == 2
    err = capsys.readouterr().err
    assert "PCREF_TENANT_ID" in err
    # serving the default backend (the embedded sandbox): it also says how to check that one
    assert "pcref-mcp doctor --sandbox" in err

    monkeypatch.setenv("PCREF_BACKEND", "live")  # chose the live service: no word of the sandbox
    assert main(["doctor"]) == 2
    err = capsys.readouterr().err
    assert "PCREF_TENANT_ID" in err and "--sandbox" not in err


@pytest.mark.anyio
async def test_recordings_replay_through_the_client(tmp_path: Path) -> None:
    app = create_app(make_config(profile="strict", seed_size=30))
    recorder = Recorder(httpx.ASGITransport(app=app), tmp_path)
    async with PartnerCenterClient(SANDBOX_BASE, StaticTokenProvider("t"), transport=recorder) as live:
        report = await run_checks(live, backend="sandbox", save_capabilities=False)
        first = await live.list_page()
    assert report.ok
    exchanges = load_exchanges(tmp_path)
    assert exchanges[0].method == "GET" and exchanges[0].status == 200
    async with PartnerCenterClient(
        SANDBOX_BASE, StaticTokenProvider("t"), transport=Replay(exchanges)
    ) as again:
        replayed = await again.list_page()
        probed = await caps.probe(again)
    assert [r.id for r in replayed.value] == [r.id for r in first.value]
    assert not probed.supports("contains")  # the strict service's 400, replayed


@pytest.mark.anyio
async def test_doctor_stores_the_query_features_it_found(tmp_path: Path) -> None:
    path = tmp_path / caps.CACHE_FILE
    app = create_app(make_config(profile="strict", seed_size=5))
    async with PartnerCenterClient(
        SANDBOX_BASE, StaticTokenProvider("t"), transport=httpx.ASGITransport(app=app)
    ) as client:
        report = await run_checks(client, backend="sandbox", capabilities_path=path)
    stored = caps.load(SANDBOX_BASE, path)
    assert stored is not None and stored.supports("skip") and not stored.supports("or")
    assert any(str(path) in note for note in report.notes)


@pytest.mark.anyio
async def test_doctor_flags_a_service_without_etags_and_odd_values() -> None:
    page = replay("odd-page")
    async with client_for(page) as client:
        report = await run_checks(client, backend="replay", save_capabilities=False)
    lines = {c.name: c for c in report.checks}
    assert (
        lines["page items readable"].status == "warn" and "2 item(s)" in lines["page items readable"].detail
    )
    values = lines["values as documented"]
    assert values.status == "warn" and "mpnId (normalised)" in values.detail
    assert "6193175" not in values.detail  # paths, never values

    listing = Exchange("GET", "/v1.0/engagements/referrals", "", 200, {}, {"value": [{"id": "R-NOETAG"}]})
    transport = Replay([listing, *load_exchanges(FIXTURES / "no-etag")])
    async with client_for(transport) as client:
        report = await run_checks(client, backend="replay", save_capabilities=False)
    one = next(c for c in report.checks if c.name == "read one referral")
    assert one.status == "fail" and "no write without If-Match" in one.detail
    assert not report.ok and "something failed" in report.text()


@pytest.mark.anyio
async def test_a_failed_sign_in_is_reported_and_ends_the_run() -> None:
    async def refuse() -> str:
        raise SignInError("The cached account has expired; run `pcref-mcp login`.")

    transport = replay("odd-page")
    async with client_for(transport) as client:
        report = await run_checks(client, backend="replay", sign_in=refuse, save_capabilities=False)
    assert [(c.name, c.status) for c in report.checks] == [("sign in", "fail")]
    assert "pcref-mcp login" in report.text() and transport.requests == []


def test_scrub_replaces_contact_details_in_any_case_and_inside_text() -> None:
    doc = {
        "team": [{"FirstName": "Ana", "email": "ana@contoso.com", "phoneNumber": "+1 555 0100"}],
        "details": {"notes": "Call Ana at +44 20 7946 0958 or ana@contoso.com", "dealValue": 5000},
        "customerProfile": {"name": "Contoso", "address": {"addressLine1": "1 Main St", "country": "US"}},
        "id": "302d9c01-7bd6-4a99-b38d-bad528144545",
        "createdDateTime": "2022-02-25T13:49:42.887627Z",
    }
    clean = scrub(doc)
    text = json.dumps(clean)
    assert clean["team"][0]["FirstName"] == "Scrubbed"  # by key, whatever its letter case
    assert "contoso.com" not in text and "555" not in text and "7946" not in text
    # names inside free text are not recognisable as such and stay (the report says: e-mails, phones)
    assert clean["details"]["notes"].startswith("Call Ana at +00 000")
    assert "1 Main St" not in text
    assert clean["customerProfile"]["name"] == "Contoso" and clean["details"]["dealValue"] == 5000
    assert clean["id"] == doc["id"] and clean["createdDateTime"] == doc["createdDateTime"]


def test_doctor_live_path_signs_in_and_checks_partner_center(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The live branch end to end, with sign-in and the network replaced: settings are forced to
    live (whatever serve uses), the token is fetched first and never shown, the base URL is the live one."""
    from pcref_mcp.partner_center import auth

    transport = replay("odd-page")
    asked: list[str] = []

    class Tokens:
        app_only = False

        async def get_token(self) -> str:
            asked.append("token")
            return "live-secret-token-123"

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("PCREF_TENANT_ID", "00000000-0000-0000-0000-000000000001")
    monkeypatch.setenv("PCREF_CLIENT_ID", "00000000-0000-0000-0000-000000000002")
    monkeypatch.setattr(auth, "ensure_configured", lambda settings: None)
    monkeypatch.setattr(auth, "provider_for", lambda settings: Tokens())
    monkeypatch.setattr(httpx, "AsyncHTTPTransport", lambda **kw: transport)
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert "https://api.partner.microsoft.com/v1.0/engagements/ (Partner Center, live)" in out
    assert "sign in" in out and "live-secret-token-123" not in out and asked
    assert all(r.headers["Authorization"] == "Bearer live-secret-token-123" for r in transport.requests)
    assert all(r.url.host == "api.partner.microsoft.com" for r in transport.requests)
    assert code == 0, out
    assert (tmp_path / "pcref-mcp" / caps.CACHE_FILE).exists()  # live answers are stored for search
