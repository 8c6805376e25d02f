"""Which OData query features a Partner Center service answers, learnt once per service and cached.

The public documents show only ``eq`` filters joined by ``and`` on a few fields (engagementId, status,
substatus, qualification, type, direction, ``customerProfile/address/country``, ``team/any(…)``),
``$orderby`` on createdDateTime/updatedDateTime, ``$top`` and ``@odata.nextLink`` paging. Everything
else search would like to use is *probed* with a few small GETs (``$top`` of at most 10), where a
400 (or 501) answer means "not supported" and any other failure aborts the probe (nothing is learnt
from a 401, a 5xx or a dropped connection). An answer of 200 is not support: a feature counts only
when its effect is seen. A filter must exclude rows it must exclude (one that can match nothing
returns nothing) and keep a row it must keep (one built from a sampled referral returns it, and
every row returned matches); an order must be an order (rows monotonic, ascending and descending
different). Even the documented ``$orderby`` is checked (``order_honoured``); the change feed reads
everything when it is seen ignored. Search uses what works and filters/sorts the rest on the client
(see ``pcref_mcp.server.search``).

Public API (stable; ``pcref-mcp doctor`` builds on it)::

    FEATURES                       name -> Feature(name, label, documented source or None)
    Capabilities                   what one service supports; .supports(name), .to_json()/from_json()
    Capabilities.documented(url)   the assumption before any probe: only what the documents show
    async probe(client, features=None) -> Capabilities   (a few GETs per feature asked; never writes)
    cache_path(directory=None)     -> Path           (data dir / "capabilities.json")
    load(base_url, path=None)      -> Capabilities | None   (None: not cached, unreadable, or too old)
    save(capabilities, path=None)  -> Path           (one file, keyed by base URL; other services kept)
    async ensure(client, features=None, path=None, refresh=False, known=None) -> Capabilities
                                   (what is known or cached, else probe only the features asked, and save)

Probing is lazy: a caller asks only for the features it is about to rely on (search: those its filters
and sort need; the change feed: order, ``$skip`` and ``@odata.count``; doctor: all), so a task that
needs none of them (paging through everything with the documented ``$top`` and next links) sends no
probe at all. ``Capabilities.learnt`` is the set of features actually probed (or assumed by a caller
that says so); a feature not in it reads as unsupported, never as "probably works".

Each probe result carries a one-line ``details[name]`` saying what was observed ("ok: …",
"HTTP 400 invalidRequest: …", "accepted but ignored: …", "@odata.count counts the page, not the
matches") that a person can send to support; ``probed_at`` says when.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pcref_mcp.errors import ServiceError
from pcref_mcp.partner_center import odata
from pcref_mcp.referrals.patch_paths import pointer_get

if TYPE_CHECKING:
    from pcref_mcp.partner_center.client import PartnerCenterClient

__all__ = [
    "CACHE_FILE",
    "FEATURES",
    "MAX_AGE",
    "Capabilities",
    "Feature",
    "cache_path",
    "ensure",
    "load",
    "probe",
    "save",
]

log = logging.getLogger("pcref_mcp.partner_center")

CACHE_FILE = "capabilities.json"
CACHE_VERSION = 2  # 2: a feature is supported only where its effect was seen (1 trusted any 200)
MAX_AGE = timedelta(days=30)  # services change; re-learn now and then (doctor refreshes at once)

# Answers that mean "this query feature is not supported" rather than "something went wrong".
_REFUSED = (400, 501)


@dataclass(frozen=True)
class Feature:
    """One query feature: its name, what it means for a person, and where it is documented (if it is)."""

    name: str
    label: str
    documented: str | None = None


# Documented features are listed for the report but never probed: the client relies on them.
DOCUMENTED: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature(
            "filter_documented",
            "eq/and filters on engagementId, status, substatus, qualification, type, direction, "
            "customerProfile/address/country, team/any(t:t/email eq …)",
            "Get a list of referrals (learn.microsoft.com)",
        ),
        Feature(
            "orderby_documented",
            "$orderby createdDateTime / updatedDateTime",
            "Get a list of referrals (learn.microsoft.com)",
        ),
        Feature("top", "$top", "connector OpenAPI (GetAllReferrals)"),
        Feature("next_link", "@odata.nextLink paging", "Get a list of referrals (partner-rest, 2019)"),
    )
}

# Probed features, in the order they are tried.
FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature("or", "'or' between conditions"),
        Feature("contains", "contains(name, …)"),
        Feature("tolower", "tolower(…) for case-insensitive text"),
        Feature("date_range", "ge/lt comparisons on dates"),
        Feature("other_fields", "filters on fields beyond the documented ones (e.g. details/currency)"),
        Feature("orderby_other", "$orderby on fields beyond the documented ones (e.g. details/dealValue)"),
        Feature(
            "order_honoured",
            "$orderby createdDateTime / updatedDateTime giving that order",
            "Get a list of referrals (learn.microsoft.com)",
        ),
        Feature("skip", "$skip", "connector OpenAPI (parameter only)"),
        Feature(
            "count", "$count=true giving the number of all matches", "connector OpenAPI (parameter only)"
        ),
    )
}


@dataclass(frozen=True)
class Capabilities:
    """What one service (by base URL) answers. Unknown feature names read as unsupported."""

    base_url: str
    supported: Mapping[str, bool] = field(default_factory=dict)
    details: Mapping[str, str] = field(default_factory=dict)
    probed_at: datetime | None = None  # None: assumed from the documents, never probed

    @classmethod
    def documented(cls, base_url: str) -> Capabilities:
        """Only what the public documents show: every probed feature off."""
        return cls(_key(base_url), {name: False for name in FEATURES}, {})

    @classmethod
    def everything(cls, base_url: str) -> Capabilities:
        """Every feature on (tests, and a service known to speak full OData)."""
        return cls(_key(base_url), {name: True for name in FEATURES}, {})

    @property
    def learnt(self) -> frozenset[str]:
        """The features whose answer is known (probed, or set by the documents/everything helpers)."""
        return frozenset(self.supported)

    def merged(self, newer: Capabilities) -> Capabilities:
        """These answers with ``newer``'s on top; ``probed_at`` is the older of the two, so the age of
        a record is the age of its oldest answer (and MAX_AGE re-learns it all)."""
        stamps = [t for t in (self.probed_at, newer.probed_at) if t is not None]
        return Capabilities(
            self.base_url,
            {**self.supported, **newer.supported},
            {**self.details, **newer.details},
            min(stamps) if stamps else None,
        )

    def supports(self, name: str) -> bool:
        if name in DOCUMENTED:
            return True
        return bool(self.supported.get(name, False))

    def seen_ignored(self, name: str) -> bool:
        """A probe saw this feature fail (not merely assumed absent from the documents)."""
        return self.probed_at is not None and self.supported.get(name) is False

    @property
    def missing(self) -> list[str]:
        """Probed features this service does not support, in probe order."""
        return [name for name in FEATURES if not self.supports(name)]

    def to_json(self) -> dict[str, Any]:
        return {
            "supported": dict(self.supported),
            "details": dict(self.details),
            "probedAt": self.probed_at.isoformat() if self.probed_at else None,
        }

    @classmethod
    def from_json(cls, base_url: str, data: Mapping[str, Any]) -> Capabilities:
        supported = data.get("supported")
        details = data.get("details") or {}
        probed = data.get("probedAt")
        if not isinstance(supported, dict) or not isinstance(details, dict):
            raise ValueError("not a capabilities record")
        return cls(
            _key(base_url),
            {str(k): bool(v) for k, v in supported.items() if isinstance(v, bool)},
            {str(k): str(v) for k, v in details.items()},
            datetime.fromisoformat(probed) if isinstance(probed, str) else None,
        )


async def probe(
    client: PartnerCenterClient,
    *,
    features: Iterable[str] | None = None,
    now: Callable[[], datetime] | None = None,
) -> Capabilities:
    """Ask the service about ``features`` (all when None), in probe order: read-only GETs, at most
    four per feature, and one sample of referrals shared by the filter probes of this run.

    Raises the client's error (ServiceError, NetworkError …) when a probe fails for a reason other
    than "not supported", so a sign-in or network problem is never cached as a missing feature.
    """
    wanted = set(FEATURES if features is None else features)
    unknown = wanted - set(FEATURES)
    if unknown:
        raise ValueError(f"not a probed query feature: {sorted(unknown)}")
    supported: dict[str, bool] = {}
    details: dict[str, str] = {}
    run = _Run(client)
    for name, check in _PROBES.items():
        if name not in wanted:
            continue
        ok, detail = await check(run)
        supported[name], details[name] = ok, detail
        log.debug("query feature %s: %s (%s)", name, "yes" if ok else "no", detail)
    stamp = (now or _utcnow)()
    return Capabilities(_key(client.base_url), supported, details, stamp)


def cache_path(directory: Path | None = None) -> Path:
    """The cache file: ``capabilities.json`` in the data directory (or ``directory``)."""
    if directory is None:
        from pcref_mcp.config import data_dir

        directory = data_dir()
    return Path(directory) / CACHE_FILE


def load(
    base_url: str,
    path: Path | None = None,
    *,
    max_age: timedelta | None = MAX_AGE,
    now: Callable[[], datetime] | None = None,
) -> Capabilities | None:
    """The cached capabilities of ``base_url``; None when absent, unreadable or older than ``max_age``."""
    record = _read(path or cache_path()).get(_key(base_url))
    if not isinstance(record, dict):
        return None
    try:
        found = Capabilities.from_json(base_url, record)
    except (ValueError, TypeError):
        return None
    if max_age is not None and (found.probed_at is None or (now or _utcnow)() - found.probed_at > max_age):
        return None
    return found


def save(capabilities: Capabilities, path: Path | None = None) -> Path:
    """Write (atomically) ``capabilities`` under its base URL, keeping other services' entries."""
    target = path or cache_path()
    services = _read(target)
    services[_key(capabilities.base_url)] = capabilities.to_json()
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"version": CACHE_VERSION, "services": services}, indent=1, sort_keys=True)
    fd, tmp = tempfile.mkstemp(prefix=".capabilities-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


async def ensure(
    client: PartnerCenterClient,
    *,
    features: Iterable[str] | None = None,
    path: Path | None = None,
    refresh: bool = False,
    persist: bool = True,
    known: Capabilities | None = None,
) -> Capabilities:
    """What is known of the client's service (``known``, then the cache when ``persist``), with the
    ``features`` asked for (all when None) that are not known yet probed and added (and saved when
    ``persist``). ``refresh`` probes the features asked for again, whatever is known."""
    wanted = list(FEATURES if features is None else features)
    have = known if known is not None else Capabilities(_key(client.base_url))
    if persist and not refresh:
        cached = load(client.base_url, path)
        if cached is not None:
            have = cached.merged(have)
    missing = wanted if refresh else [n for n in wanted if n not in have.learnt]
    if not missing:
        return have
    found = have.merged(await probe(client, features=missing))
    if persist:
        try:
            save(found, path)
        except OSError as exc:  # a read-only home must not break search
            log.warning("could not save query capabilities: %s", exc)
    return found


# --- the probes -----------------------------------------------------------------------------------


class _Run:
    """One probe run: the client, and the sample of referrals its filter probes share (read once)."""

    def __init__(self, client: PartnerCenterClient) -> None:
        self.client = client
        self._sample: list[dict[str, Any]] | None = None

    async def sample(self) -> list[dict[str, Any]]:
        if self._sample is None:
            page = await self.client.list_page(odata.Query(top=SAMPLE))
            self._sample = [r.to_wire() for r in page.value]
        return self._sample


Probe = Callable[[_Run], Awaitable[tuple[bool, str]]]


async def _accepted(client: PartnerCenterClient, query: odata.Query) -> tuple[bool, str, Any]:
    """(True, "ok", page) when the service answers 2xx; (False, why, None) on 400/501."""
    try:
        page = await client.list_page(query)
    except ServiceError as exc:
        if exc.status in _REFUSED:
            code = f" {exc.code}" if exc.code else ""
            return False, f"HTTP {exc.status}{code}: {exc.message}"[:300], None
        raise
    return True, "ok", page


SAMPLE = 10  # rows read to check an effect


Check = Callable[[dict[str, Any]], bool]


def _filter_probe(
    nothing: Callable[[], odata.Expr],
    keeping: Callable[[dict[str, Any]], tuple[odata.Expr, Check] | None],
) -> Probe:
    """Accepted, excludes what it must (``nothing()`` matches no referral) and keeps what it must
    (``keeping(sample)``: a filter the sampled referral matches, and the test each row must pass)."""

    async def check(run: _Run) -> tuple[bool, str]:
        client = run.client
        ok, detail, page = await _accepted(client, odata.Query(filter=nothing(), top=SAMPLE))
        if not ok:
            return ok, detail
        if page.value:
            return False, (
                f"accepted but ignored: a filter no referral can match returned {len(page.value)} row(s)"
            )
        sample = await run.sample()
        built = keeping(sample[0]) if sample else None
        if built is None:
            return False, "accepted, but no referral to see it keep a match (probe again when there are some)"
        expr, test = built
        ok, detail, page = await _accepted(client, odata.Query(filter=expr, top=SAMPLE))
        if not ok:
            return ok, detail
        rows = [r.to_wire() for r in page.value]
        if not any(row.get("id") == sample[0].get("id") for row in rows) and len(rows) < SAMPLE:
            return False, "accepted but wrong: a filter the sampled referral matches did not return it"
        wrong = sum(not test(row) for row in rows)
        if wrong:
            return False, f"accepted but not applied as asked: {wrong} of {len(rows)} row(s) do not match"
        return True, f"ok: excluded every row for a value no referral has, kept {len(rows)} matching row(s)"

    return check


def _token() -> str:
    return f"pcrefprobe{uuid.uuid4().hex[:12]}"


def _text(row: dict[str, Any], pointer: str) -> str:
    value = pointer_get(row, pointer)
    return value if isinstance(value, str) else ""


def _name_fragment(row: dict[str, Any]) -> str | None:
    name = _text(row, "/name").strip()
    if len(name) < 2 or "'" in name:
        return None
    return name[: min(len(name), 6)]


def _keep_or(row: dict[str, Any]) -> tuple[odata.Expr, Check] | None:
    status = _text(row, "/status")
    if not status:
        return None
    expr = odata.or_(odata.eq("status", status), odata.eq("engagementId", str(uuid.uuid4())))
    return expr, lambda r: r.get("status") == status


def _keep_contains(row: dict[str, Any]) -> tuple[odata.Expr, Check] | None:
    part = _name_fragment(row)
    if part is None:
        return None
    return odata.contains("name", part), lambda r: part in _text(r, "/name")


def _keep_tolower(row: dict[str, Any]) -> tuple[odata.Expr, Check] | None:
    part = _name_fragment(row)
    if part is None:
        return None
    # asked in another case than written: only a service that folds case returns the sample
    asked = part.upper() if part != part.upper() else part.lower()
    return odata.contains(
        "name", asked, ignore_case=True
    ), lambda r: part.lower() in _text(r, "/name").lower()


def _keep_dates(row: dict[str, Any]) -> tuple[odata.Expr, Check] | None:
    created = _moment(pointer_get(row, "/createdDateTime"))
    if created is None:
        return None
    low, high = created - timedelta(seconds=1), created + timedelta(seconds=1)
    expr = odata.and_(odata.ge("createdDateTime", low), odata.lt("createdDateTime", high))

    def inside(r: dict[str, Any]) -> bool:
        at = _moment(pointer_get(r, "/createdDateTime"))
        return at is not None and low <= at < high

    return expr, inside


def _keep_currency(row: dict[str, Any]) -> tuple[odata.Expr, Check] | None:
    currency = _text(row, "/details/currency")
    if not currency or "'" in currency:
        return None
    return odata.eq("details/currency", currency), lambda r: _text(r, "/details/currency") == currency


def _moment(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _order_probe(fields: list[tuple[str, str]]) -> Probe:
    """Each ``(orderby path, JSON pointer)``: descending rows never rise, ascending never fall, and
    (with two different values among them) the two orders start differently."""

    async def check(run: _Run) -> tuple[bool, str]:
        client = run.client
        seen = 0
        for path, pointer in fields:
            values: dict[str, list[Any]] = {}
            for direction in ("desc", "asc"):
                ok, detail, page = await _accepted(
                    client, odata.Query(orderby=[f"{path} {direction}"], top=SAMPLE)
                )
                if not ok:
                    return ok, detail
                found = [_sortable(pointer_get(r.to_wire(), pointer)) for r in page.value]
                values[direction] = [v for v in found if v is not None]
            desc, asc = values["desc"], values["asc"]
            if any(b > a for a, b in itertools.pairwise(desc)) or any(
                b < a for a, b in itertools.pairwise(asc)
            ):
                return False, f"accepted but ignored: $orderby={path} returned rows out of that order"
            if len(set(desc) | set(asc)) >= 2 and desc and asc and desc[0] <= asc[0]:
                return False, f"accepted but ignored: $orderby={path} desc and asc gave the same order"
            seen += len(set(desc) | set(asc))
        if seen < 2:
            return False, "accepted, but too few different values to see an order (probe again later)"
        return True, "ok: rows came in the order asked, both directions"

    return check


def _sortable(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    moment = _moment(value)
    return moment if moment is not None else None


async def _skip(run: _Run) -> tuple[bool, str]:
    """Accepted and honoured: item 2 of an ordered listing is item 1 after ``$skip=1``."""
    client = run.client
    order = ["createdDateTime desc"]
    ok, detail, first_two = await _accepted(client, odata.Query(orderby=order, top=2))
    if not ok:
        return ok, detail
    ok, detail, skipped = await _accepted(client, odata.Query(orderby=order, top=1, skip=1))
    if not ok:
        return ok, detail
    if len(first_two.value) < 2:
        return True, "accepted (too few referrals to check that it is honoured)"
    if not skipped.value or skipped.value[0].id != first_two.value[1].id:
        return False, "accepted but ignored ($skip=1 did not start at the second item)"
    return True, "ok: $skip=1 started at the second item"


async def _count(run: _Run) -> tuple[bool, str]:
    """A total of all matches, not of the page: the same number for ``$top=1`` and ``$top=2``."""
    client = run.client
    ok, detail, one = await _accepted(client, odata.Query(top=1, count=True))
    if not ok:
        return ok, detail
    if one.odata_count is None:
        return False, "accepted but no @odata.count in the answer"
    ok, detail, two = await _accepted(client, odata.Query(top=2, count=True))
    if not ok:
        return ok, detail
    if two.odata_count != one.odata_count:
        return False, "@odata.count counts the page, not the matches"
    if len(two.value) == 2 and (two.odata_count or 0) < 2:
        return False, "@odata.count is smaller than the rows of one page"
    return True, f"ok: the same count ({one.odata_count}) for pages of 1 and 2"


_PROBES: dict[str, Probe] = {
    "or": _filter_probe(
        lambda: odata.or_(
            odata.eq("engagementId", str(uuid.uuid4())), odata.eq("engagementId", str(uuid.uuid4()))
        ),
        _keep_or,
    ),
    "contains": _filter_probe(lambda: odata.contains("name", _token()), _keep_contains),
    "tolower": _filter_probe(lambda: odata.contains("name", _token(), ignore_case=True), _keep_tolower),
    "date_range": _filter_probe(
        lambda: odata.and_(
            odata.ge("createdDateTime", datetime(2000, 1, 1, tzinfo=UTC)),
            odata.lt("createdDateTime", datetime(2000, 1, 1, 0, 0, 1, tzinfo=UTC)),
        ),
        _keep_dates,
    ),
    "other_fields": _filter_probe(lambda: odata.eq("details/currency", "XXX"), _keep_currency),
    "orderby_other": _order_probe([("details/dealValue", "/details/dealValue")]),
    "order_honoured": _order_probe(
        [("updatedDateTime", "/updatedDateTime"), ("createdDateTime", "/createdDateTime")]
    ),
    "skip": _skip,
    "count": _count,
}
assert list(_PROBES) == list(FEATURES)


# --- private helpers ------------------------------------------------------------------------------


def _key(base_url: str) -> str:
    return base_url if base_url.endswith("/") else base_url + "/"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    services = data.get("services")
    return dict(services) if isinstance(services, dict) else {}
