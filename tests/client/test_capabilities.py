"""Query-feature discovery: probe each feature once, cache per base URL, never cache a failure."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pcref_mcp.errors import AuthenticationRequired, ServiceUnavailable
from pcref_mcp.partner_center import PartnerCenterClient, RateLimiter, StaticTokenProvider
from pcref_mcp.partner_center import capabilities as caps
from pcref_mcp.sandbox import SandboxConfig, create_app

pytestmark = pytest.mark.anyio

BASE = "https://sandbox.test/v1.0/engagements/"


def _client(transport: httpx.AsyncBaseTransport, base: str = BASE) -> PartnerCenterClient:
    async def no_sleep(_: float) -> None:
        return None

    return PartnerCenterClient(
        base,
        StaticTokenProvider("t"),
        transport=transport,
        limiter=RateLimiter(10_000, 60.0),
        max_retries=0,
        sleep=no_sleep,
    )


def _sandbox(profile: str) -> Any:
    return create_app(SandboxConfig(seed_size=12, rate_limit=0, profile=profile))  # type: ignore[arg-type]


@pytest.fixture
async def lenient() -> AsyncIterator[PartnerCenterClient]:
    async with _client(httpx.ASGITransport(app=_sandbox("lenient"))) as c:
        yield c


@pytest.fixture
async def strict() -> AsyncIterator[PartnerCenterClient]:
    async with _client(httpx.ASGITransport(app=_sandbox("strict"))) as c:
        yield c


class Recorder(httpx.AsyncBaseTransport):
    """Passes requests on to ``inner`` (or answers them with ``answer``) and keeps every URL."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        answer: Callable[[httpx.Request], httpx.Response] | None = None,
    ) -> None:
        self.inner, self.answer = inner, answer
        self.urls: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        if self.answer is not None:
            return self.answer(request)
        assert self.inner is not None
        return await self.inner.handle_async_request(request)


async def test_lenient_sandbox_supports_every_probed_feature(lenient: PartnerCenterClient) -> None:
    found = await caps.probe(lenient)
    assert found.supported == {name: True for name in caps.FEATURES}, found.details
    assert found.base_url == BASE
    assert found.probed_at is not None
    assert found.missing == []


async def test_strict_sandbox_supports_only_what_the_documents_show(strict: PartnerCenterClient) -> None:
    found = await caps.probe(strict)
    assert found.supported == {
        "or": False,
        "contains": False,
        "tolower": False,
        "date_range": False,
        "other_fields": False,
        "orderby_other": False,
        "order_honoured": True,  # the documented order, seen to be one
        "skip": True,  # a documented parameter of the connector
        "count": False,  # @odata.count is there, but it counts the page
    }, found.details
    assert "HTTP 400" in found.details["or"]
    assert found.details["count"] == "@odata.count counts the page, not the matches"
    # documented features are relied on, never probed
    assert found.supports("filter_documented") and found.supports("orderby_documented")


async def test_probes_only_read_and_use_percent_20_for_spaces() -> None:
    recorder = Recorder(httpx.ASGITransport(app=_sandbox("lenient")))
    async with _client(recorder) as client:
        await caps.probe(client)
    assert recorder.urls, "nothing was probed"
    assert all("+" not in url for url in recorder.urls)
    assert any("%20eq%20" in url for url in recorder.urls)
    assert all("$top=" in url for url in recorder.urls)  # small pages only


def _faulty(**faults: Any) -> Any:
    app = _sandbox("lenient")
    app.state.sandbox.faults.update(**faults)
    return app


async def test_a_service_that_ignores_filter_supports_no_filter_feature() -> None:
    """Every filter answered 200 and ignored: none of them counts as supported."""
    async with _client(httpx.ASGITransport(app=_faulty(ignore_filter=True))) as client:
        found = await caps.probe(client)
    for name in ("or", "contains", "tolower", "date_range", "other_fields"):
        assert found.supported[name] is False, name
        assert "ignored" in found.details[name], found.details[name]
    assert found.supported["orderby_other"] is True and found.supported["skip"] is True


async def test_a_service_that_ignores_orderby_is_found_out() -> None:
    async with _client(httpx.ASGITransport(app=_faulty(ignore_orderby=True))) as client:
        found = await caps.probe(client)
    assert found.supported["orderby_other"] is False and found.supported["order_honoured"] is False
    assert (
        "out of that order" in found.details["orderby_other"]
        or "same order" in found.details["orderby_other"]
    )
    assert found.supported["contains"] is True


async def test_a_page_sized_count_is_found_out() -> None:
    async with _client(httpx.ASGITransport(app=_faulty(page_count=True))) as client:
        found = await caps.probe(client)
    assert found.supported["count"] is False
    assert found.details["count"] == "@odata.count counts the page, not the matches"


async def test_a_filter_that_drops_what_it_must_keep_is_not_supported() -> None:
    """contains() answered with nothing at all (an over-eager service): excluding is not enough."""
    inner = httpx.ASGITransport(app=_sandbox("lenient"))

    class EmptyContains(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if "contains" in request.url.params.get("$filter", ""):
                return httpx.Response(200, json={"value": []})
            return await inner.handle_async_request(request)

    async with _client(EmptyContains()) as client:
        found = await caps.probe(client)
    assert found.supported["contains"] is False and "did not return it" in found.details["contains"]


async def test_an_empty_service_learns_no_filter_or_order_from_a_200() -> None:
    app = create_app(SandboxConfig(seed_size=0, rate_limit=0, profile="lenient"))
    async with _client(httpx.ASGITransport(app=app)) as client:
        found = await caps.probe(client)
    for name in (
        "or",
        "contains",
        "tolower",
        "date_range",
        "other_fields",
        "orderby_other",
        "order_honoured",
    ):
        assert found.supported[name] is False, name
    assert "probe again" in found.details["contains"]


async def test_probe_details_say_what_was_observed(lenient: PartnerCenterClient) -> None:
    found = await caps.probe(lenient)
    assert found.details["contains"].startswith("ok: excluded every row")
    assert found.details["order_honoured"].startswith("ok: rows came in the order asked")
    assert found.to_json()["probedAt"]


async def test_a_service_that_ignores_skip_is_found_out() -> None:
    inner = httpx.ASGITransport(app=_sandbox("lenient"))

    class IgnoresSkip(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            url = request.url
            params = [(k, v) for k, v in url.params.multi_items() if k != "$skip"]
            request.url = url.copy_with(params=params)
            return await inner.handle_async_request(request)

    async with _client(IgnoresSkip()) as client:
        found = await caps.probe(client)
    assert found.supported["skip"] is False
    assert "ignored" in found.details["skip"]


@pytest.mark.parametrize(
    ("status", "error"), [(401, AuthenticationRequired), (503, ServiceUnavailable)], ids=["401", "503"]
)
async def test_a_failure_other_than_400_is_raised_never_learnt(
    status: int, error: type[Exception], tmp_path: Path
) -> None:
    body = {"error": {"code": "x", "message": "nope"}}
    recorder = Recorder(answer=lambda _: httpx.Response(status, json=body))
    async with _client(recorder) as client:
        with pytest.raises(error):
            await caps.ensure(client, path=tmp_path / "c.json")
    assert not (tmp_path / "c.json").exists()


async def test_ensure_probes_once_then_reads_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "data" / "capabilities.json"
    recorder = Recorder(httpx.ASGITransport(app=_sandbox("strict")))
    async with _client(recorder) as client:
        first = await caps.ensure(client, path=path)
        probes = len(recorder.urls)
        again = await caps.ensure(client, path=path)
        assert len(recorder.urls) == probes  # no second probe
        assert again.supported == first.supported
        await caps.ensure(client, path=path, refresh=True)
        assert len(recorder.urls) == 2 * probes
    data = json.loads(path.read_text())
    assert list(data["services"]) == [BASE]


async def test_only_the_features_asked_for_are_probed_and_added_to_what_is_known(tmp_path: Path) -> None:
    """Lazy learning: a caller pays only for the features it is about to rely on; asking again for
    a known one sends nothing, and a later feature is added to the record (and the cache)."""
    path = tmp_path / "capabilities.json"
    recorder = Recorder(httpx.ASGITransport(app=_sandbox("lenient")))
    async with _client(recorder) as client:
        assert await caps.ensure(client, features=[], path=path) == caps.Capabilities(BASE)
        assert recorder.urls == [] and not path.exists()
        first = await caps.ensure(client, features=["skip"], path=path)
        assert first.learnt == {"skip"} and first.supports("skip") and not first.supports("count")
        assert len(recorder.urls) == 2 and all("$skip" in u or "$top=2" in u for u in recorder.urls)
        again = await caps.ensure(client, features=["skip"], path=path)
        assert again == first and len(recorder.urls) == 2
        both = await caps.ensure(client, features=["skip", "count"], known=first, path=path)
        assert both.learnt == {"skip", "count"} and both.supports("count")
        assert len(recorder.urls) == 4  # only count's two pages
        assert both.probed_at == first.probed_at  # the age of the oldest answer
    cached = caps.load(BASE, path)
    assert cached is not None and cached.learnt == {"skip", "count"}


async def test_filter_probes_of_one_run_share_one_sample() -> None:
    recorder = Recorder(httpx.ASGITransport(app=_sandbox("lenient")))
    async with _client(recorder) as client:
        found = await caps.probe(client, features=["or", "contains", "date_range"])
    assert found.learnt == {"or", "contains", "date_range"} and found.missing[:1] == ["tolower"]
    plain = [u for u in recorder.urls if u.endswith("referrals?$top=10")]
    assert len(plain) == 1  # the sample
    assert len(recorder.urls) == 1 + 2 * 3  # each: one to exclude, one to keep


async def test_an_unknown_feature_name_is_a_programming_error(lenient: PartnerCenterClient) -> None:
    with pytest.raises(ValueError, match="not a probed query feature"):
        await caps.probe(lenient, features=["skip", "sorting"])


async def test_cache_is_keyed_by_base_url_and_keeps_other_services(tmp_path: Path) -> None:
    path = tmp_path / "capabilities.json"
    now = datetime.now(UTC)
    caps.save(caps.Capabilities("https://a.test/v1.0", {"or": True}, {"or": "ok"}, now), path)
    caps.save(caps.Capabilities("https://b.test/v1.0/", {"or": False}, {}, now), path)
    a = caps.load("https://a.test/v1.0/", path)
    b = caps.load("https://b.test/v1.0", path)
    assert a is not None and a.supports("or") and a.details == {"or": "ok"}
    assert b is not None and not b.supports("or")
    assert caps.load("https://c.test/", path) is None


async def test_old_unreadable_or_foreign_cache_files_read_as_absent(tmp_path: Path) -> None:
    path = tmp_path / "capabilities.json"
    old = datetime.now(UTC) - caps.MAX_AGE - timedelta(days=1)
    caps.save(caps.Capabilities(BASE, {"or": True}, {}, old), path)
    assert caps.load(BASE, path) is None
    assert caps.load(BASE, path, max_age=None) is not None
    path.write_text("{not json")
    assert caps.load(BASE, path) is None
    path.write_text(json.dumps({"version": 99, "services": {BASE: {"supported": {}}}}))
    assert caps.load(BASE, path) is None
    path.write_text(json.dumps({"version": 1, "services": {BASE: {"supported": "yes"}}}))
    assert caps.load(BASE, path) is None
    # a broken file is replaced by the next save, not an error
    caps.save(caps.Capabilities(BASE, {"or": True}, {}, datetime.now(UTC)), path)
    assert caps.load(BASE, path) is not None


async def test_unknown_features_read_as_unsupported_and_documented_as_supported() -> None:
    documented = caps.Capabilities.documented(BASE)
    assert documented.missing == list(caps.FEATURES)
    assert not documented.supports("no-such-feature")
    assert documented.supports("top") and documented.supports("next_link")
    assert caps.Capabilities.everything(BASE).missing == []


async def test_unwritable_cache_does_not_break_ensure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    async with _client(httpx.ASGITransport(app=_sandbox("lenient"))) as client:
        found = await caps.ensure(client, path=blocker / "sub" / "capabilities.json")
    assert found.supports("or")


def test_cache_path_defaults_to_the_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert caps.cache_path() == tmp_path / "pcref-mcp" / caps.CACHE_FILE
    assert caps.cache_path(tmp_path / "x") == tmp_path / "x" / caps.CACHE_FILE
