"""The sandbox over a real socket (uvicorn on a free 127.0.0.1 port), as `pcref-mcp sandbox` runs it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from pcref_mcp.sandbox import create_app, serve
from pcref_mcp.sandbox.server import is_loopback
from tests.profiles import CREATED
from tests.sandbox.conftest import TOKEN, make_config
from tests.sandbox.helpers import new_referral
from tests.serving import serve_in_thread


@pytest.fixture
def live_server() -> Iterator[tuple[str, Any]]:
    app = create_app(make_config())
    with serve_in_thread(app, log_level="critical", name="sandbox") as url:
        yield f"{url}/v1.0/engagements/", app


def test_over_a_socket(live_server: tuple[str, Any]) -> None:
    base, app = live_server
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        page = client.get("referrals", params={"$top": "2"})
        assert page.status_code == 200
        next_link = client.get("referrals").json().get("@odata.nextLink")
        assert next_link is None or next_link.startswith(
            f"{base.split('/v1.0')[0]}/v1.0/engagements/referrals?$skiptoken="
        )
        created = client.post("referrals", json=new_referral())
        assert created.status_code == CREATED
        assert created.json()["links"]["self"]["uri"].startswith("http://127.0.0.1:")
        assert client.get("referrals").status_code == 200
        assert httpx.get(base + "referrals").status_code == 401

        app.state.sandbox.faults.update(drop_rate=1.0)
        with pytest.raises(httpx.TransportError):
            client.get("referrals")
        app.state.sandbox.faults.clear()
        assert client.get("referrals", params={"$top": "1"}).status_code == 200


def test_serve_refuses_non_loopback_hosts() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")
    with pytest.raises(ValueError):
        serve(host="0.0.0.0", port=1)


@pytest.mark.parametrize("profile", ["strict", "lenient"])
def test_serve_takes_the_profile(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, profile: str) -> None:
    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(app))
    serve(port=1, db_path=tmp_path / "s.db", size=80, profile=profile)  # type: ignore[arg-type]
    state = served[0].state.sandbox
    assert state.config.profile == profile
    odd = [
        d for d in state.store.iter_docs() if isinstance(d.get("mpnId"), int) or d.get("salesStage") == "100"
    ]
    assert bool(odd) is (profile == "strict")  # the real-world seed comes with the strict profile
