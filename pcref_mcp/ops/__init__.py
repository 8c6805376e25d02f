"""Running the server for a team: health and readiness, metrics, request ids and logs, graceful stop,
the audit export and the admin commands (README, "Operations").

The top layer: it sits on ``server/`` and ``team/`` and nothing imports it but the places that build
an HTTP app (``server.http``, ``team.app``) and the CLI. What every layer needs to report into it
lives at the bottom (:mod:`pcref_mcp.metrics`, :mod:`pcref_mcp.calls`), so the writes and Partner
Center layers count without knowing this package exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pcref_mcp.config import Settings

__all__ = ["operate"]


def operate(settings: Settings, server: Any, app: Any) -> Any:
    """``app`` with the operator's routes and per-request bookkeeping in front (:class:`OpsGate`), and
    ``server``'s calls counted and tagged with their request id (:class:`CallObserver`)."""
    from pcref_mcp import metrics
    from pcref_mcp.ops.calls import CallObserver
    from pcref_mcp.ops.gate import OpsGate
    from pcref_mcp.ops.health import Readiness

    if settings.metrics_token is not None:
        from pcref_mcp.server.tools import TOOLS

        metrics.enable(tools=[spec.name for spec in TOOLS])
    if not any(isinstance(m, CallObserver) for m in server.middleware):
        server.middleware.insert(0, CallObserver())
    return OpsGate(app, settings, Readiness(server))
