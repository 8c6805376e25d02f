"""``pcref-mcp doctor``: does the first real call work? A read-only check of one service.

It signs in, reads a page and one referral, looks at what came back against the documents (values
the tolerant reader had to normalise, ETags, page size, next links), probes each query feature the
client may use (and stores them: the cache search reads), and prints a report a person can send to
support: statuses, correlation and request ids, feature answers. Never a token, never a contact
detail, never a value someone typed. With ``--record DIR`` every response is saved, contact details
scrubbed, as fixtures the contract tests replay (:mod:`pcref_mcp.partner_center.recording`).

Nothing here writes to the service: every request is a GET.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pcref_mcp import __version__
from pcref_mcp.errors import PcrefError, ServiceError

if TYPE_CHECKING:
    from pcref_mcp.partner_center.client import PartnerCenterClient
    from pcref_mcp.referrals.models import ReferralPage

__all__ = ["WRITE_LOOKUPS", "Check", "Report", "run_checks"]

Status = Literal["ok", "warn", "fail", "no", "skip"]

# Queries the write path sends besides search's (issue 12, point 2). Not documented: doctor asks
# whether this service answers them, so the report says what a create will fall back to.
WRITE_LOOKUPS: dict[str, tuple[str, str]] = {
    "filter_external_reference_id": (
        "externalReferenceId eq '…' (finding a create after a timeout; duplicate check)",
        "externalReferenceId eq 'pcref-doctor-probe'",
    ),
    "filter_customer_and_name": (
        "customerProfile/name eq '…' and name eq '…' (duplicate warning before a create)",
        "customerProfile/name eq 'pcref doctor probe' and name eq 'pcref doctor probe'",
    ),
}


@dataclass
class Check:
    """One line of the report."""

    name: str
    status: Status
    detail: str

    def line(self) -> str:
        return f"  {self.status:<5} {self.name:<44} {self.detail}"


@dataclass
class Report:
    """What doctor found; ``text()`` is what a person sends to support."""

    service: str
    backend: str
    started: datetime
    correlation_id: str
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    def add(self, name: str, status: Status, detail: str) -> Check:
        check = Check(name, status, detail)
        self.checks.append(check)
        return check

    def text(self) -> str:
        head = [
            f"pcref-mcp doctor {__version__} — {self.started.strftime('%Y-%m-%d %H:%M UTC')}",
            f"service: {self.service} ({self.backend})",
            f"correlation id of every request: {self.correlation_id}",
            "",
        ]
        verdict = (
            "Result: the first real call should work."
            if self.ok
            else "Result: something failed (see 'fail' above)."
        )
        tail = ["", verdict, *self.notes, "This report holds no token and no contact details; send it as is."]
        return "\n".join(head + [c.line() for c in self.checks] + tail)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "service": self.service,
            "backend": self.backend,
            "started": self.started.isoformat(),
            "correlationId": self.correlation_id,
            "ok": self.ok,
            "checks": [{"name": c.name, "status": c.status, "detail": c.detail} for c in self.checks],
            "notes": self.notes,
        }


async def run_checks(
    client: PartnerCenterClient,
    *,
    backend: str,
    sign_in: Callable[[], Any] | None = None,
    capabilities_path: Path | None = None,
    save_capabilities: bool = True,
) -> Report:
    """Run every check against ``client``'s service (GETs only) and return the report.

    ``sign_in`` is awaited first when given (a token provider's ``get_token``): its failure is
    reported and ends the run, since nothing else can work without it.
    """
    with client.correlation() as cid:
        report = Report(_service_label(client.base_url), backend, datetime.now(UTC), cid)
        if sign_in is not None:
            try:
                await sign_in()
            except PcrefError as exc:
                report.add("sign in", "fail", _clip(str(exc)))
                return report
            report.add("sign in", "ok", "a token was issued (not shown)")
        page = await _read_page(client, report)
        if page is None:
            return report
        await _read_one(client, report, page)
        await _follow_next(client, report, page)
        await _probe_queries(client, report, capabilities_path, save_capabilities)
        await _probe_write_lookups(client, report)
    return report


# --- the checks -----------------------------------------------------------------------------------


async def _read_page(client: PartnerCenterClient, report: Report) -> ReferralPage | None:
    """The first page as the documents ask for it (no options), then whether ``$top`` is honoured."""
    from pcref_mcp.partner_center.odata import Query

    try:
        page = await client.list_page()
    except PcrefError as exc:
        report.add("read the first page", "fail", _clip(str(exc)))
        return None
    count = "absent" if page.odata_count is None else str(page.odata_count)
    report.add(
        "read the first page",
        "ok",
        f"{len(page.value) + len(page.skipped)} item(s); @odata.count {count}; "
        f"next link {'yes' if page.odata_next_link else 'no'}",
    )
    if page.skipped:
        report.add(
            "page items readable",
            "warn",
            f"{len(page.skipped)} item(s) could not be read (named by id in search notes): "
            + "; ".join(str(s) for s in page.skipped[:3]),
        )
    problems = Counter(_kind(p.path, p.left_out) for r in page.value for p in r.read_problems)
    if problems:
        listed = "; ".join(f"{k} ×{n}" for k, n in sorted(problems.items()))
        report.add("values as documented", "warn", f"read anyway, noted per referral: {listed}")
    elif page.value:
        report.add("values as documented", "ok", f"all {len(page.value)} referrals as the documents describe")
    try:
        small = await client.list_page(Query(top=2))
    except PcrefError as exc:
        report.add("$top=2 honoured", "fail", _clip(str(exc)))
        return page
    items = len(small.value) + len(small.skipped)
    if items > 2:
        report.add("$top=2 honoured", "warn", f"ignored ({items} items came back); search's cursor copes")
    else:
        more = "a next link" if small.odata_next_link else "no next link (read as a total)"
        report.add("$top=2 honoured", "ok", f"{items} item(s), {more}")
    return page


async def _read_one(client: PartnerCenterClient, report: Report, page: ReferralPage) -> None:
    first = next((r for r in page.value if r.id), None)
    if first is None or first.id is None:
        report.add("read one referral", "skip", "the page held no referral to read")
        return
    try:
        referral = await client.get(first.id)
    except PcrefError as exc:
        report.add("read one referral", "fail", _clip(str(exc)))
        return
    if referral.e_tag:
        report.add("read one referral", "ok", "ETag present: changes will carry If-Match")
    else:
        report.add(
            "read one referral",
            "fail",
            "no ETag in the body or the ETag header: every change will be refused (no write without If-Match)",
        )


async def _follow_next(client: PartnerCenterClient, report: Report, page: ReferralPage) -> None:
    link = page.odata_next_link
    if not link:
        report.add("next page link", "skip", "no next link on the first page (every referral fits on it)")
        return
    try:
        await client.list_page(next_link=link)
    except ServiceError as exc:
        report.add("next page link", "fail", _clip(str(exc)))
        return
    report.add("next page link", "ok", "followed (same scheme and host as the service)")


async def _probe_queries(
    client: PartnerCenterClient, report: Report, path: Path | None, save_capabilities: bool
) -> None:
    from pcref_mcp.partner_center import capabilities as caps

    for feature in caps.DOCUMENTED.values():
        report.add(f"query: {feature.name}", "ok", f"documented ({feature.documented}); not probed")
    try:
        found = await caps.probe(client)
    except PcrefError as exc:
        report.add("query features", "fail", f"probing stopped: {_clip(str(exc))}")
        return
    for name, feature in caps.FEATURES.items():
        supported = found.supports(name)
        detail = found.details.get(name, "")
        source = f" [documented: {feature.documented}]" if feature.documented else ""
        report.add(
            f"query: {name}", "ok" if supported else "no", f"{feature.label}: {_clip(detail, 140)}{source}"
        )
    if save_capabilities:
        try:
            saved = caps.save(found, path)
        except OSError as exc:
            report.notes.append(f"Could not store the query features ({exc}); search will probe again.")
        else:
            report.notes.append(f"Query features stored in {saved}; search uses them from now on.")
    missing = found.missing
    if missing:
        report.notes.append(
            "Search does on the client (over bounded pages, and says so in its note) what the service "
            f"lacks: {', '.join(missing)}."
        )


async def _probe_write_lookups(client: PartnerCenterClient, report: Report) -> None:
    from pcref_mcp.partner_center.odata import Expr, Query

    for name, (label, expr) in WRITE_LOOKUPS.items():
        try:
            page = await client.list_page(Query(filter=Expr(expr), top=1))
        except ServiceError as exc:
            if exc.status in (400, 501):
                fallback = (
                    "the client reads the newest referrals instead"
                    if name == "filter_external_reference_id"
                    else "the duplicate warning is skipped, with a note in the preview"
                )
                report.add(f"write look-up: {name}", "no", f"{label}: HTTP {exc.status}; {fallback}")
                continue
            report.add(f"write look-up: {name}", "fail", _clip(str(exc)))
            return
        if page.value:  # a 200 is not support: this filter matches no referral, yet rows came back
            report.add(
                f"write look-up: {name}",
                "no",
                f"{label}: accepted but ignored (a filter no referral matches returned rows); the client "
                "checks every match itself",
            )
            continue
        report.add(f"write look-up: {name}", "ok", f"{label}: excluded every row for a value no referral has")


# --- private helpers ------------------------------------------------------------------------------


def _service_label(base_url: str) -> str:
    """Scheme, host and path only (a base URL never carries secrets, but a query string might)."""
    import httpx

    url = httpx.URL(base_url)
    return f"{url.scheme}://{url.host}{f':{url.port}' if url.port else ''}{url.path}"


def _kind(path: str, left_out: bool) -> str:
    """``/value/3/details/dealValue`` → ``details/dealValue (left out)``: paths only, never values."""
    parts = [p for p in path.strip("/").split("/") if not p.isdigit()]
    return "/".join(parts) + (" (left out)" if left_out else " (normalised)")


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dumps(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False)
