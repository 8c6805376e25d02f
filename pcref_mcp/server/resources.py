"""Read-only context for the model: catalogs, the lifecycle table, schemas, one referral.

Resources cost nothing until read, so reference data lives here instead of in tool descriptions; what
reading them needs (the lifecycle and PATCH tables, the views, the CSV export) is imported when one is
read, not when they are registered at start.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.resources import FunctionResource

from pcref_mcp.errors import NotFound, PcrefError
from pcref_mcp.referrals import catalog, schemas

JSON = "application/json"
CSV_MIME = "text/csv"
EXPORT_URI = "pcref://export/referrals.csv"  # the CSV export (server.exchange) as a resource


def reference_documents() -> dict[str, tuple[str, Callable[[], Any]]]:
    """Every static resource by URI: (description, builder). Served as resources, and by the ``fetch``
    tool too, since several chat clients never let the model read resources."""
    docs: dict[str, tuple[str, Callable[[], Any]]] = {
        f"catalog://{name}": (entry.description, entry.to_json) for name, entry in catalog.CATALOGS.items()
    }
    docs["pcref://lifecycle"] = (
        "Allowed status/substatus moves and deal-registration rules",
        _lifecycle_table,
    )
    docs["pcref://fields"] = ("Fields update_field can change: names, pointers, value schemas", _fields_table)
    docs["pcref://schema/referral"] = (
        "JSON schema of a referral (wire format)",
        schemas.referral_json_schema,
    )
    return docs


_NAMES = {
    "pcref://lifecycle": "lifecycle",
    "pcref://fields": "fields",
    "pcref://schema/referral": "referral-schema",
}


def reference_document(uri: str) -> tuple[str, str] | None:
    """(description, JSON text) of the static resource at ``uri``; None when ``uri`` is none of them."""
    wanted = uri.strip().lower().rstrip("/")
    docs = reference_documents()
    if wanted in ("catalog:", "pcref:"):  # the index: what can be fetched
        return "Catalogs and tables (fetch each by its uri)", _dump({u: d for u, (d, _) in docs.items()})
    found = docs.get(wanted) or docs.get(uri.strip().lower())
    return None if found is None else (found[0], _dump(found[1]()))


def register_resources(server: MCPServer[Any]) -> None:
    for resource in _static_resources():
        server.add_resource(resource)

    @server.resource(
        "referral://{referral_id}",
        name="referral",
        mime_type=JSON,
        description="One referral (wire JSON, others' text quoted «…»)",
    )
    async def referral_resource(referral_id: str, ctx: Context) -> str:
        from pcref_mcp.server.confirmation import runtime_of
        from pcref_mcp.server.views import detail

        try:
            referral = await runtime_of(ctx).client.get(referral_id)
        except NotFound as exc:  # -32602 with data.uri, as for an unknown catalog
            raise ResourceNotFoundError(f"No referral {referral_id!r} was found.") from exc
        except PcrefError as exc:  # say what went wrong (not found, service down), as the tools do
            raise ResourceError(str(exc)) from exc
        return _dump(detail(referral))

    _register_export(server)


def _register_export(server: MCPServer[Any]) -> None:
    """The CSV export as a resource template; reading it loads server.exchange (not registering it)."""
    from mcp.types import Annotations

    @server.resource(
        EXPORT_URI + "{?status,direction,country,text,updated_from}",
        name="referrals-export",
        mime_type=CSV_MIME,
        description="Referrals as CSV for a CRM import (all pages; filters optional)",
        annotations=Annotations(audience=["user"]),
    )
    async def export_resource(
        ctx: Context,
        status: str = "",
        direction: str = "",
        country: str = "",
        text: str = "",
        updated_from: str = "",
    ) -> str:
        from pcref_mcp.server import exchange

        return await exchange.export_resource_text(ctx, status, direction, country, text, updated_from)


@functools.cache
def _static_resources() -> tuple[FunctionResource, ...]:
    """Built once per process, as the tools are (``server.app._tools``): a static resource is its
    builder and nothing else, so every server of a process can share it. Built as
    ``@server.resource`` would build it, without its argument validation (``validate_call``), which a
    function of no arguments does not need."""
    return tuple(
        _static(uri, _NAMES.get(uri) or uri.removeprefix("catalog://"), description, build)
        for uri, (description, build) in reference_documents().items()
    )


def _static(uri: str, name: str, description: str, build: Any) -> FunctionResource:
    def read() -> str:
        return _dump(build())

    read.__name__ = f"read_{name.replace('-', '_')}"
    return FunctionResource(uri=uri, name=name, description=description, mime_type=JSON, fn=read)


def _lifecycle_table() -> dict[str, Any]:
    from pcref_mcp.referrals import lifecycle

    return {
        "transitions": {str(s): [str(t) for t in to] for s, to in lifecycle.TRANSITIONS.items()},
        "substatuses": {str(s): [str(v) for v in subs] for s, subs in lifecycle.SUBSTATUSES.items()},
        "set_by_service_only": sorted(str(s) for s in lifecycle.SERVICE_ONLY_SUBSTATUSES),
        "intents": {k: f"{s}/{sub}" for k, (s, sub) in lifecycle.INTENTS.items()},
        "expiry_days_for_unanswered_incoming": lifecycle.EXPIRY_DAYS,
        "registration_terminal": sorted(str(s) for s in lifecycle.REGISTRATION_TERMINAL),
        "registration_editable_only_when": "ActionRequired",
    }


def _fields_table() -> list[dict[str, Any]]:
    from pcref_mcp.referrals import patch_paths

    return [
        {
            "name": p.name,
            "pointer": p.pointer,
            "aliases": list(p.aliases),
            "ops": sorted(p.ops),
            "value_schema": schemas.value_schema(p),
        }
        for p in (*patch_paths.PATCH_PATHS, *patch_paths.REGISTRATION_PATCH_PATHS)
    ]


def _dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
