"""The HTTP surface: Partner Center Referrals v1.0 over the sandbox store, plus test controls.

``create_app`` returns a Starlette app that works both behind uvicorn and in-process through
``httpx.ASGITransport`` (which runs no lifespan, so everything is opened here, up front). Requests to
``/v1.0/`` pass a gate that does what the real front door does before any handler runs: request ids,
injected faults, bearer-token check, per-token throttling. ``/_sandbox/`` is for tests only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import ipaddress
import json
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pcref_mcp.errors import (
    InvalidInput,
    LifecycleViolation,
    NotEligible,
    NotFound,
    PreconditionFailed,
    ServiceError,
)
from pcref_mcp.sandbox.clock import format_wire
from pcref_mcp.sandbox.config import SandboxConfig
from pcref_mcp.sandbox.faults import ConnectionDropped
from pcref_mcp.sandbox.odata import ODataError, compile_filter, compile_orderby, parse_select
from pcref_mcp.sandbox.rules import LINK_ORIGIN, apply_patch, build_referral, new_etag, replace_referral
from pcref_mcp.sandbox.state import SandboxState
from pcref_mcp.sandbox.store import Store

__all__ = ["API_PREFIX", "CONTROL_HEADER", "create_app", "error_body"]

log = logging.getLogger("pcref_mcp.sandbox")

API_PREFIX = "/v1.0/engagements"
DEFAULT_ORDER = "created_date_time DESC, id DESC"
MAX_BODY_BYTES = 1_000_000
_QUERY_OPTIONS = ("$filter", "$orderby", "$top", "$skip", "$count", "$select")
_JSON = "application/json; charset=utf-8"
CONTROL_HEADER = "X-Sandbox-Control"


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """A ready sandbox (database opened and seeded as configured); its state is ``app.state.sandbox``."""
    config = config or SandboxConfig()
    state = SandboxState(config)
    api = _Api(state)
    routes = [
        Route(f"{API_PREFIX}/referrals", api.list_referrals, methods=["GET"]),
        Route(f"{API_PREFIX}/referrals", api.create_referral, methods=["POST"]),
        Route(f"{API_PREFIX}/referrals", api.not_allowed, methods=["PUT", "PATCH", "DELETE"]),
        Route(f"{API_PREFIX}/referrals/{{referral_id}}", api.get_referral, methods=["GET"]),
        Route(f"{API_PREFIX}/referrals/{{referral_id}}", api.patch_referral, methods=["PATCH"]),
        Route(f"{API_PREFIX}/referrals/{{referral_id}}", api.put_referral, methods=["PUT"]),
        Route(f"{API_PREFIX}/referrals/{{referral_id}}", api.not_allowed, methods=["POST", "DELETE"]),
        Route("/_sandbox/clock", api.control_clock, methods=["GET", "POST"]),
        Route("/_sandbox/faults", api.control_faults, methods=["GET", "POST"]),
        Route("/_sandbox/reset", api.control_reset, methods=["POST"]),
        Route("/_sandbox/sweep", api.control_sweep, methods=["POST"]),
        Route("/_sandbox/stats", api.control_stats, methods=["GET"]),
    ]
    control_token = config.control_token or secrets.token_urlsafe(24)
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_ControlGate, token=control_token), Middleware(_Gate, state=state)],
        exception_handlers={HTTPException: _http_exception},
    )
    app.state.sandbox = state
    app.state.control_token = control_token
    return app


def error_body(code: str, message: str, *, inner_code: str | None = None) -> dict[str, Any]:
    """The Partner API error shape (research notes §5)."""
    return {
        "error": {
            "code": code,
            "message": message[:1024],
            "target": "referral",
            "innerError": {"code": inner_code or code, "message": message},
        }
    }


# --- the front door -------------------------------------------------------------------------------


class _PrefixGate:
    """ASGI middleware that stands in front of the HTTP requests under ``prefix`` only (:meth:`guard`);
    everything else passes straight through to ``app``."""

    prefix: str

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        await self.guard(scope, receive, send)

    async def guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class _ControlGate(_PrefixGate):
    """``/_sandbox/`` (reset, faults, clock) only for the test that owns this sandbox.

    A web page can make a browser send a "simple" cross-site POST (``text/plain``) to a loopback
    port; without this gate one wiped the sandbox. The request must name a local host (loopback, or
    a special-use name: ``localhost``, ``*.test``, ``*.invalid``, ``*.local``), carry no Origin other
    than such a host, and carry the control token in ``X-Sandbox-Control`` (a custom header, which a
    cross-site page cannot send without a preflight the sandbox never grants).
    """

    prefix = "/_sandbox"

    def __init__(self, app: ASGIApp, token: str) -> None:
        super().__init__(app)
        self.token = token

    async def guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        problem = None
        origin = headers.get("origin")
        if not _local_host(headers.get("host", "")):
            problem = (421, "The sandbox's control routes answer only to a local Host.")
        elif origin is not None and not _local_origin(origin):
            problem = (403, "The sandbox's control routes refuse cross-site requests.")
        elif not hmac.compare_digest(headers.get(CONTROL_HEADER.lower(), "").encode(), self.token.encode()):
            problem = (403, f"The sandbox's control routes need the control token in {CONTROL_HEADER}.")
        if problem is not None:
            await _error(problem[0], "accessDenied", problem[1])(scope, receive, send)
            return
        await self.app(scope, receive, send)


_LOCAL_SUFFIXES = (".localhost", ".test", ".invalid", ".local")


def _local_host(host: str) -> bool:
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    if name == "localhost" or name.endswith(_LOCAL_SUFFIXES):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _local_origin(origin: str) -> bool:
    scheme, sep, rest = origin.partition("://")
    return bool(sep) and scheme in ("http", "https") and _local_host(rest.split("/", 1)[0])


class _Gate(_PrefixGate):
    """Ids, faults, auth and throttling for ``/v1.0/`` (pure ASGI so it can also drop connections)."""

    prefix = "/v1.0/"

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        super().__init__(app)
        self.state = state

    async def guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        headers = Headers(scope=scope)
        method = scope["method"]
        extra = [(b"request-id", str(uuid.uuid4()).encode())]
        for name in ("client-request-id", "ms-correlationid"):
            value = headers.get(name)
            if value:
                extra.append(
                    (b"MS-CorrelationId" if name == "ms-correlationid" else name.encode(), value.encode())
                )

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
                state.count_request(method, message["status"])
            await send(message)

        decision = state.faults.decide(is_write=method in ("POST", "PATCH", "PUT"))
        if decision.latency_ms:
            await asyncio.sleep(decision.latency_ms / 1000)
        if decision.drop == "before":
            state.count_injected("drop")
            await _drop(send, applied=False)
        if decision.status == 429:
            state.count_injected("burst_429")
            state.count_throttled()
            await _throttled(5)(scope, receive, send_with_ids)
            return
        if decision.status is not None:
            state.count_injected(str(decision.status))
            code = "serviceNotAvailable" if decision.status == 503 else "generalException"
            message = (
                "The service is temporarily unavailable."
                if decision.status == 503
                else "An internal error occurred."
            )
            response = _error(
                decision.status,
                code,
                message,
                headers={"Retry-After": "1"} if decision.status == 503 else None,
            )
            await response(scope, receive, send_with_ids)
            return

        token = _bearer(headers.get("authorization"))
        tokens = state.config.tokens
        if token is None or (tokens is not None and token not in tokens):
            why = "is missing" if token is None else "is not valid for this service"
            response = _error(
                401,
                "unauthenticated",
                f"The bearer token {why}. Send 'Authorization: Bearer <token>'.",
                headers={"WWW-Authenticate": 'Bearer realm="sandbox"'},
            )
            await response(scope, receive, send_with_ids)
            return
        wait = state.limiter.check(token)
        if wait is not None:
            state.count_throttled()
            await _throttled(wait)(scope, receive, send_with_ids)
            return

        if decision.fail_after_write:
            state.count_injected("503_after_write")

            async def swallow_answer(message: Message) -> None:
                if message["type"] == "http.response.start":
                    state.count_request(method, message["status"])

            await self.app(scope, receive, swallow_answer)
            page = Response(
                b"<html><head><title>503 Service Unavailable</title></head>"
                b"<body><h1>Service Unavailable</h1><p>The gateway timed out.</p></body></html>",
                status_code=503,
                media_type="text/html",
            )
            await page(scope, receive, send_with_ids)
            return
        if decision.drop == "after_write":
            state.count_injected("drop_after_write")

            async def swallow(message: Message) -> None:
                if message["type"] == "http.response.start":
                    state.count_request(method, message["status"])

            await self.app(scope, receive, swallow)
            await _drop(send, applied=True)
        await self.app(scope, receive, send_with_ids)


async def _drop(send: Send, *, applied: bool) -> None:
    """Start a response and abort it: over a socket the client sees the connection close mid-answer."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4096")]})
    raise ConnectionDropped(applied)


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _throttled(seconds: int) -> Response:
    body = {"statusCode": 429, "message": f"Rate limit is exceeded. Try again in {seconds} seconds."}
    return JSONResponse(body, status_code=429, headers={"Retry-After": str(seconds)})


def _error(
    status: int, code: str, message: str, *, inner: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(error_body(code, message, inner_code=inner), status_code=status, headers=headers)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return _error(405, "invalidRequest", f"{request.method} is not supported on {request.url.path}.")
    if exc.status_code == 404:
        return _error(404, "itemNotFound", f"No resource at {request.url.path}.")
    return _error(exc.status_code, "invalidRequest", str(exc.detail))


# --- endpoints ------------------------------------------------------------------------------------

Handler = Callable[["_Api", Request], Awaitable[Response]]


def _mapped(handler: Handler) -> Handler:
    """Turn the sandbox's exceptions into the service's error answers (never a bare 500 for bad input)."""

    async def wrapper(self: _Api, request: Request) -> Response:
        try:
            return await handler(self, request)
        except ODataError as err:
            return _error(400, "invalidRequest", err.message, inner="invalidQueryOption")
        except LifecycleViolation as err:
            return _error(400, "invalidRequest", err.message, inner="invalidStatusTransition")
        except NotEligible as err:
            return _error(400, "invalidRequest", err.message, inner="dealRegistrationNotEligible")
        except InvalidInput as err:
            return _error(400, "invalidRequest", err.message, inner="validationFailed")
        except ServiceError as err:
            return _error(err.status, err.code or "invalidRequest", err.message)
        except ConnectionDropped:
            raise
        except Exception:
            log.exception("sandbox handler failed")
            return _error(500, "generalException", "An internal error occurred in the sandbox.")

    wrapper.__name__ = handler.__name__
    wrapper.__doc__ = handler.__doc__
    return wrapper


class _Api:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    # referrals

    @_mapped
    async def list_referrals(self, request: Request) -> Response:
        state = self.state
        state.sweep()
        params = request.query_params
        skiptoken = params.get("$skiptoken")
        if skiptoken:
            query, position = _decode_skiptoken(skiptoken)
        else:
            unknown = [
                k for k in params if k.startswith("$") and k not in (*_QUERY_OPTIONS, "$expand", "$skiptoken")
            ]
            if unknown:
                raise ODataError(f"Unknown query option {unknown[0]!r}.", option=unknown[0])
            query, position = {k: params[k] for k in _QUERY_OPTIONS if k in params}, 0
        # strict: only what the documents show (eq/and on documented fields, two orderby fields)
        strict = state.config.profile == "strict"
        where, args = (
            compile_filter(query["$filter"], strict=strict) if query.get("$filter") is not None else ("1", [])
        )
        order = compile_orderby(query["$orderby"], strict=strict) if query.get("$orderby") else DEFAULT_ORDER
        top = _whole(query, "$top")
        skip = _whole(query, "$skip") or 0
        faults = state.faults  # service behaviours a real service may show: accepted, then ignored
        if faults.ignore_filter:
            where, args = "1", []
        if faults.ignore_orderby:
            order = DEFAULT_ORDER
        if faults.ignore_skip:
            skip = 0
        select = parse_select(query["$select"]) if query.get("$select") else None
        with_count = _flag(query, "$count")

        cap = state.config.page_cap
        remaining = None if top is None else max(0, top - position)
        limit = cap if remaining is None else min(cap, remaining)
        rows = state.store.query(where, args, order, limit + 1, skip + position) if limit else []
        more = len(rows) > limit and (remaining is None or remaining > limit)
        rows = rows[:limit]
        origin = _origin(request)
        if select is not None:
            rows = [
                json.dumps(_pick(json.loads(r), select), ensure_ascii=False, separators=(",", ":"))
                for r in rows
            ]
        parts = [f'{{"@odata.context":{json.dumps(origin + "/v1.0/$metadata#Referrals")}']
        if strict or faults.page_count:
            # as the documents show it: always present, and the number of items on this page
            parts.append(f'"@odata.count":{len(rows)}')
        elif with_count:
            parts.append(f'"@odata.count":{state.store.count(where, args)}')
        parts.append('"value":[' + ",".join(rows) + "]")
        if more and not faults.no_next_link:
            link = f"{origin}{API_PREFIX}/referrals?$skiptoken={_encode_skiptoken(query, position + limit)}"
            parts.append(f'"@odata.nextLink":{json.dumps(link)}')
        body = ",".join(parts) + "}"
        return Response(body.replace(LINK_ORIGIN, origin).encode(), media_type=_JSON)

    @_mapped
    async def get_referral(self, request: Request) -> Response:
        self.state.sweep()
        referral_id = request.path_params["referral_id"]
        raw = self.state.store.get_raw(referral_id)
        if raw is None:
            raise _not_found(referral_id)
        return self._entity(request, self.state.faults.lagging(referral_id) or raw, 200)

    @_mapped
    async def create_referral(self, request: Request) -> Response:
        state = self.state
        body = await _json_body(request)
        now = state.clock.now()
        doc = build_referral(
            body,
            partner=state.partner,
            now=now,
            engagement_exists=lambda e: state.store.count("engagement_id = ?", (e,)) > 0,
        )
        state.store.insert(doc, at=format_wire(now))
        raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        # The connector's definition documents 200 for a create; the lenient profile answers 201.
        response = self._entity(request, raw, 200 if state.config.profile == "strict" else 201)
        response.headers["Location"] = f"{_origin(request)}{API_PREFIX}/referrals/{doc['id']}"
        return response

    @_mapped
    async def patch_referral(self, request: Request) -> Response:
        state = self.state
        referral_id, operations, current = await self._change_of(request)
        if_match = request.headers.get("if-match")
        if if_match and if_match.strip() != "*" and _etag_value(if_match) != _etag_value(current["eTag"]):
            raise _stale()
        now = state.clock.now()
        before = state.store.get_raw(referral_id)
        updated = apply_patch(current, operations, now=now)
        etag = _store_revision(state.store, current, updated, now)
        if before is not None:
            state.faults.wrote(referral_id, before)
        if "return=representation" in request.headers.get("prefer", "").replace(" ", "").lower():
            return self._entity(request, json.dumps(updated, ensure_ascii=False, separators=(",", ":")), 200)
        return Response(status_code=204, headers={"ETag": etag})

    @_mapped
    async def put_referral(self, request: Request) -> Response:
        """Strict profile: PUT as documented (whole document, If-Match required, 200 + body)."""
        state = self.state
        if state.config.profile == "strict":
            _, body, current = await self._change_of(request)
            if_match = (request.headers.get("if-match") or "").strip()
            if not if_match:
                return _error(
                    400,
                    "invalidRequest",
                    "The If-Match header is required on PUT: send the referral's ETag as read.",
                    inner="ifMatchRequired",
                )
            if if_match != "*" and _etag_value(if_match) != _etag_value(current["eTag"]):
                raise _stale()
            now = state.clock.now()
            updated = replace_referral(current, body, now=now)
            _store_revision(state.store, current, updated, now)
            return self._entity(request, json.dumps(updated, ensure_ascii=False, separators=(",", ":")), 200)
        return _error(
            405,
            "invalidRequest",
            "PUT /referrals/{id} is obsolete and not supported here: send PATCH with a JSON array of "
            "'add'/'replace' operations instead.",
            headers={"Allow": "GET, PATCH"},
        )

    async def _change_of(self, request: Request) -> tuple[str, Any, dict[str, Any]]:
        """What a PATCH or PUT names and sends: the referral id, the JSON body, and the referral as it
        is now (404 when there is none, checked after the body as the service does)."""
        self.state.sweep()
        referral_id = request.path_params["referral_id"]
        body = await _json_body(request)
        current = self.state.store.get(referral_id)
        if current is None:
            raise _not_found(referral_id)
        return referral_id, body, current

    @_mapped
    async def not_allowed(self, request: Request) -> Response:
        allow = "GET, POST" if request.url.path.rstrip("/").endswith("/referrals") else "GET, PATCH"
        return _error(
            405,
            "invalidRequest",
            f"{request.method} is not supported on this resource; use {allow}.",
            headers={"Allow": allow},
        )

    def _entity(self, request: Request, raw: str, status: int) -> Response:
        origin = _origin(request)
        context = json.dumps(origin + "/v1.0/$metadata#Referrals/$entity")
        body = ('{"@odata.context":' + context + "," + raw[1:]).replace(LINK_ORIGIN, origin)
        etag = json.loads(raw).get("eTag") if '"eTag"' in raw else None
        headers = {"ETag": etag} if isinstance(etag, str) else None
        return Response(body.encode(), status_code=status, media_type=_JSON, headers=headers)

    # test controls

    async def control_clock(self, request: Request) -> Response:
        state = self.state
        if request.method == "POST":
            body = await _control_body(request)
            if isinstance(body, Response):
                return body
            seconds = body.get("advance")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                return _control_error('Send {"advance": <seconds>}.')
            try:
                state.advance(float(seconds))
            except ValueError as err:
                return _control_error(str(err))
            expired = state.sweep()
            return JSONResponse({"now": format_wire(state.clock.now()), "expired": expired})
        return JSONResponse({"now": format_wire(state.clock.now())})

    async def control_faults(self, request: Request) -> Response:
        faults = self.state.faults
        if request.method == "POST":
            body = await _control_body(request)
            if isinstance(body, Response):
                return body
            try:
                if body.pop("clear", False):
                    faults.clear()
                faults.update(**body)
            except (TypeError, ValueError) as err:
                return _control_error(str(err))
        return JSONResponse(faults.as_dict())

    async def control_reset(self, request: Request) -> Response:
        body = await _control_body(request, allow_empty=True)
        if isinstance(body, Response):
            return body
        size, seed = body.get("size"), body.get("seed")
        for name, value in (("size", size), ("seed", seed)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                return _control_error(f"{name} must be a whole number >= 0.")
        inserted = self.state.reset(size, seed)
        return JSONResponse({"referrals": inserted})

    async def control_sweep(self, request: Request) -> Response:
        return JSONResponse({"expired": self.state.sweep()})

    async def control_stats(self, request: Request) -> Response:
        return JSONResponse(self.state.stats())


# --- helpers --------------------------------------------------------------------------------------


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidInput(f"The request body is larger than {MAX_BODY_BYTES} bytes.", field="body")
    if not raw.strip():
        raise InvalidInput("The request body is empty; send JSON.", field="body")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as err:
        raise InvalidInput(f"The request body is not valid JSON ({err}).", field="body") from None


async def _control_body(request: Request, *, allow_empty: bool = False) -> dict[str, Any] | Response:
    raw = await request.body()
    if not raw.strip() and allow_empty:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        return _control_error("Send a JSON object.")
    return body if isinstance(body, dict) else _control_error("Send a JSON object.")


def _control_error(message: str) -> Response:
    return _error(400, "invalidRequest", message)


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _not_found(referral_id: str) -> NotFound:
    return NotFound(f"Referral {referral_id!r} was not found.", code="itemNotFound", target="referral")


def _store_revision(store: Store, current: dict[str, Any], updated: dict[str, Any], now: datetime) -> str:
    """Give ``updated`` a fresh ETag and store it only if ``current`` is still the stored revision
    (PATCH and PUT alike: a concurrent write in between answers 412, no lost update)."""
    etag = new_etag(now)
    while etag == current["eTag"]:
        etag = new_etag(now)
    updated["eTag"] = etag
    if not store.replace(updated, expected_etag=current["eTag"], at=format_wire(now)):
        raise _stale()
    return etag


def _stale() -> PreconditionFailed:
    return PreconditionFailed(
        "The referral was modified since you read it: its current ETag no longer matches If-Match. "
        "Read it again and reapply your change.",
        code="preconditionFailed",
        target="referral",
    )


def _etag_value(tag: str) -> str:
    tag = tag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    return tag.strip('"').replace('\\"', "")


def _whole(query: dict[str, str], name: str) -> int | None:
    text = query.get(name)
    if text is None:
        return None
    if not text.strip().isdigit():
        raise ODataError(f"{name} must be a whole number >= 0, not {text!r}.", option=name, token=text)
    return int(text)


def _flag(query: dict[str, str], name: str) -> bool:
    text = query.get(name)
    if text is None:
        return False
    if text.lower() not in ("true", "false"):
        raise ODataError(f"{name} must be true or false, not {text!r}.", option=name, token=text)
    return text.lower() == "true"


def _pick(doc: dict[str, Any], names: list[str]) -> dict[str, Any]:
    return {name: doc.get(name) for name in names}


def _encode_skiptoken(query: dict[str, str], position: int) -> str:
    raw = json.dumps({"q": query, "p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_skiptoken(token: str) -> tuple[dict[str, str], int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        query, position = data["q"], data["p"]
        if not isinstance(query, dict) or not isinstance(position, int) or position < 0:
            raise ValueError
        if any(k not in _QUERY_OPTIONS or not isinstance(v, str) for k, v in query.items()):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ODataError(
            "$skiptoken is not valid; follow @odata.nextLink exactly as returned.",
            option="$skiptoken",
            token=token,
        ) from None
    return query, position
