"""What the server counts for its operator, as Prometheus metrics: a bottom layer every layer may call.

Off by default: until :func:`enable` is called (``pcref-mcp team`` / ``serve --http`` with
``PCREF_METRICS_TOKEN`` set) every function here is a no-op and ``prometheus_client`` is never
imported, so the single-user stdio start stays as fast as it was. Enabled, the figures live in a
registry of this process's own (not the library's global one), which ``/metrics`` renders.

Label sets are bounded by construction: every label value is checked against the closed set
declared for it below and anything else is counted as ``other``. So no person, referral id, token
or free text can ever become a label (each one would be a new time series, and a leak).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "LABELS",
    "backend_state",
    "count",
    "enable",
    "enabled",
    "observe",
    "render",
    "timed",
]

# Every metric: (kind, help, label names). Counters are exported with the "_total" suffix.
_METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "pcref_tool_calls": ("counter", "MCP tool calls by tool and outcome (ok, error)", ("tool", "outcome")),
    "pcref_tool_call_seconds": ("histogram", "MCP tool call latency", ("tool",)),
    "pcref_writes_started": ("counter", "Writes journaled before they were sent, by kind", ("kind",)),
    "pcref_writes": ("counter", "Write outcomes recorded in the journal", ("outcome",)),
    "pcref_writes_in_doubt_marked": (
        "counter",
        "Pending writes of a stopped process marked in doubt",
        (),
    ),
    "pcref_approvals": (
        "counter",
        "Approvals by path (elicitation, page, token) and decision",
        ("path", "decision"),
    ),
    "pcref_partner_center_requests": (
        "counter",
        "Requests to Partner Center by method and status class (2xx, 4xx, 429, 5xx, error)",
        ("method", "status"),
    ),
    "pcref_partner_center_seconds": ("histogram", "Partner Center request latency", ("method",)),
    "pcref_store_seconds": ("histogram", "Store operation latency (journal, readiness)", ("op",)),
    "pcref_http_requests": (
        "counter",
        "HTTP requests by route and status class",
        ("route", "status"),
    ),
    "pcref_http_request_seconds": ("histogram", "HTTP request latency by route", ("route",)),
    "pcref_sign_ins": (
        "counter",
        "Sign-ins by way (proxy: an OAuth client's, page: a browser's for our pages, bearer: a resource "
        "server's new access token) and outcome (completed, refused, failed)",
        ("via", "outcome"),
    ),
    "pcref_draining": ("gauge", "1 while this replica drains before it stops", ()),
}

# The closed set of values each label may take (anything else is "other").
LABELS: dict[str, frozenset[str]] = {
    "tool": frozenset(),  # the server's tool names, given to enable() (each tool is named in one place)
    "outcome": frozenset(
        {"ok", "error", "pending", "applied", "failed", "in_doubt", "partial", "completed", "refused"}
    ),
    "kind": frozenset({"update", "create", "register", "update_registration", "undo", "co_sell"}),
    "path": frozenset({"elicitation", "page", "token"}),
    "via": frozenset({"proxy", "page", "bearer"}),
    "decision": frozenset({"asked", "approved", "declined", "cancelled", "expired", "refused"}),
    "method": frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"}),
    "status": frozenset({"2xx", "3xx", "4xx", "429", "5xx", "error"}),
    "op": frozenset({"journal_intent", "journal_outcome", "readiness"}),
    "route": frozenset(
        {
            "/mcp",
            "/healthz",
            "/readyz",
            "/metrics",
            "/approvals",
            "/authorize",
            "/token",
            "/register",
            "/revoke",
            "/oauth/callback",
            "/.well-known",
        }
    ),
}

_registry: Any = None
_instruments: dict[str, Any] = {}
# The last Partner Center answers this process saw: readiness says "degraded" after a failure.
_backend: dict[str, float] = {}


def enable(tools: Iterable[str] = ()) -> None:
    """Start counting (idempotent). Imports ``prometheus_client``, the ``ops`` extra. ``tools``: the
    names the ``tool`` label may take (the server's tool list; this bottom layer cannot read it)."""
    global _registry
    if tools:
        LABELS["tool"] = frozenset(tools)
    if _registry is not None:
        return
    try:
        import prometheus_client as prom
    except ImportError as exc:  # pragma: no cover - depends on the install
        from pcref_mcp.errors import ConfigError

        raise ConfigError(
            "Metrics need the prometheus_client package: pip install 'pcref-mcp[ops]'."
        ) from exc
    registry = prom.CollectorRegistry(auto_describe=True)
    kinds = {"counter": prom.Counter, "histogram": prom.Histogram, "gauge": prom.Gauge}
    for name, (kind, text, labels) in _METRICS.items():
        _instruments[name] = kinds[kind](name, text, labels, registry=registry)
    _registry = registry


def enabled() -> bool:
    return _registry is not None


def count(name: str, amount: float = 1.0, **labels: str) -> None:
    """Add to a counter (or set a gauge, for ``pcref_draining``); nothing while metrics are off."""
    if _registry is None:
        return
    metric = _labelled(name, labels)
    if _METRICS[name][0] == "gauge":
        metric.set(amount)
    else:
        metric.inc(amount)


def observe(name: str, seconds: float, **labels: str) -> None:
    """One latency into a histogram; nothing while metrics are off."""
    if _registry is None:
        return
    _labelled(name, labels).observe(seconds)


@contextmanager
def timed(name: str, **labels: str) -> Iterator[None]:
    """Time the block into histogram ``name`` (also when it raises)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        observe(name, time.perf_counter() - started, **labels)


def partner_center_answered(method: str, status: int | None, seconds: float) -> None:
    """One Partner Center request: counted, timed, and remembered for readiness (None: no answer)."""
    if status is None:
        shown = "error"
    elif status == 429:
        shown = "429"
    else:
        shown = f"{status // 100}xx"
    failed = status is None or status >= 500
    _backend["failed_at" if failed else "ok_at"] = time.monotonic()
    count("pcref_partner_center_requests", method=method, status=shown)
    observe("pcref_partner_center_seconds", seconds, method=method)


def backend_state() -> str:
    """``ok``, ``degraded`` (the last answer was a failure: 5xx or none) or ``unknown`` (no call yet).
    Kept whether or not metrics are on: readiness reports it."""
    failed, ok = _backend.get("failed_at"), _backend.get("ok_at")
    if failed is None and ok is None:
        return "unknown"
    return "degraded" if failed is not None and (ok is None or failed > ok) else "ok"


def render() -> tuple[bytes, str]:
    """The Prometheus text exposition of this process's figures, and its content type."""
    import prometheus_client as prom

    if _registry is None:
        return b"", prom.CONTENT_TYPE_LATEST
    return prom.generate_latest(_registry), prom.CONTENT_TYPE_LATEST


def reset_for_tests() -> None:
    """Forget every figure (tests enable a fresh registry)."""
    global _registry
    _registry = None
    _instruments.clear()
    _backend.clear()


def _labelled(name: str, labels: dict[str, str]) -> Any:
    metric = _instruments[name]
    names = _METRICS[name][2]
    if not names:
        return metric
    return metric.labels(**{n: _bounded(n, labels.get(n, "")) for n in names})


def _bounded(label: str, value: str) -> str:
    return value if value in LABELS[label] else "other"
