"""The Partner Center Referrals client: one careful engineer at the keyboard, in code.

* Reads (GET) are retried on 5xx and network failures with exponential backoff and jitter.
* Writes (POST, PATCH) are never blindly re-sent. After an ambiguous failure (the request may have
  reached the service: 5xx, timeout, dropped connection) the client *looks*: a create is found by the
  ``externalReferenceId`` it stamped, a patch by reading the referral back. It then reports what
  happened instead of guessing.
* 429 is retried for every method, honouring ``Retry-After`` up to a cap: the service did not
  process the request, so sending it again is safe.
* Every request carries ``MS-CorrelationId`` (one per tool call, see :meth:`correlation`) and every
  error raised names it, so a person can quote it to Microsoft support.
* A client-side :class:`RateLimiter` keeps a normal session under the service's limit.
* Logs name method, path, status, duration and correlation id; never tokens, headers, query values
  or bodies (they hold contact details).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple
from urllib.parse import quote

import anyio
import httpx
from pydantic import BaseModel

from pcref_mcp import __version__
from pcref_mcp.errors import (
    BadRequest,
    InvalidInput,
    NetworkError,
    ServiceError,
    Throttled,
    WriteOutcomeUnknown,
)
from pcref_mcp.partner_center.answers import _parse, _same_etag, _with_etag
from pcref_mcp.partner_center.auth import TokenProvider
from pcref_mcp.partner_center.errors import error_from_response, parse_retry_after
from pcref_mcp.partner_center.odata import Expr, Query, eq
from pcref_mcp.partner_center.ratelimit import RateLimiter
from pcref_mcp.partner_center.recent import RecentScan
from pcref_mcp.partner_center.wire_contract import check_request
from pcref_mcp.partner_center.write_outcome import (
    _Ambiguous,
    _describe,
    _lookup_in_doubt,
    _operations,
    _ops_visible,
    _to_wire,
)
from pcref_mcp.referrals.models import PatchOperation, Referral, ReferralPage

__all__ = ["ListResult", "PartnerCenterClient", "current_correlation_id", "new_correlation_id"]

logger = logging.getLogger("pcref_mcp.partner_center")

USER_AGENT = f"pcref-mcp/{__version__}"
EXTERNAL_ID_PREFIX = "pcref-"
# Pages of the newest referrals read to find one by externalReferenceId where the service refuses
# that (undocumented) filter.
RECENT_SCAN_PAGES = 3
# Reads of a referral after an update whose answer was lost: one read may come from a replica that
# has not seen the write yet, so the outcome is decided from several, spaced by the backoff.
SETTLE_READS = 3

_correlation: ContextVar[str | None] = ContextVar("pcref_correlation_id", default=None)

Sleep = Callable[[float], Awaitable[None]]


class ListResult(NamedTuple):
    """What :meth:`PartnerCenterClient.list_all` gathered.

    ``truncated`` is ``"max_pages"`` or ``"max_items"`` when a cap stopped the listing early (there is
    more to read; ``next_link`` resumes it), else None. ``total`` is ``@odata.count`` if the service
    sent it.
    """

    referrals: list[Referral]
    total: int | None
    truncated: str | None = None
    next_link: str | None = None


class PartnerCenterClient:
    """Async client for ``/referrals`` of Partner Center (or the sandbox, which speaks the same API)."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenProvider,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
        timeout: float = 30.0,
        max_retries: int = 4,
        max_retry_after: float = 60.0,
        sleep: Sleep = anyio.sleep,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._referrals_url = self.base_url + "referrals"
        self._tokens = tokens
        self._limiter = limiter if limiter is not None else RateLimiter()
        self._max_retries = max_retries
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=timeout,
            follow_redirects=False,  # a redirect must never carry our bearer token elsewhere
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )
        self._base = httpx.URL(self.base_url)
        self._refused_filters: set[str] = set()  # filter shapes the service answered 400
        _quiet_httpx_logger()

    async def __aenter__(self) -> PartnerCenterClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter

    # --- correlation ------------------------------------------------------------------------------

    @staticmethod
    @contextlib.contextmanager
    def correlation(correlation_id: str | None = None) -> Iterator[str]:
        """Fix one ``MS-CorrelationId`` for every request in the block (one tool call)."""
        cid = correlation_id or new_correlation_id()
        token = _correlation.set(cid)
        try:
            yield cid
        finally:
            _correlation.reset(token)

    # --- reads ------------------------------------------------------------------------------------

    async def list_page(self, query: Query | None = None, *, next_link: str | None = None) -> ReferralPage:
        """One page. With ``next_link`` the URL is requested exactly as the service returned it."""
        cid = _correlation.get() or new_correlation_id()
        if next_link is not None:
            url, params = self._checked_next_link(next_link, cid), None
        else:
            # encoded here, not by httpx: spaces must travel as %20 (httpx writes "+")
            encoded = query.to_query_string() if query else ""
            url, params = (f"{self._referrals_url}?{encoded}" if encoded else self._referrals_url), None
        response = await self._send("GET", url, cid, params=params)
        return _parse(ReferralPage, response, cid)

    async def iter_referrals(
        self, query: Query | None = None, *, max_pages: int = 50, max_items: int = 5000
    ) -> AsyncIterator[Referral]:
        """Every referral matching ``query``, following ``@odata.nextLink``, up to the caps.

        Stops silently at a cap; use :meth:`list_all` when the caller must be told.
        """
        async for referral, _ in self._walk(query, max_pages=max_pages, max_items=max_items):
            if referral is not None:
                yield referral

    async def list_all(
        self, query: Query | None = None, *, max_pages: int = 50, max_items: int = 5000
    ) -> ListResult:
        """All matching referrals up to the caps; a cap that cut the list short is reported."""
        items: list[Referral] = []
        state = _WalkState()
        async for referral, st in self._walk(query, max_pages=max_pages, max_items=max_items):
            state = st
            if referral is not None:
                items.append(referral)
        return ListResult(items, state.total, state.truncated, state.next_link)

    async def get(self, referral_id: str) -> Referral:
        """One referral; its ETag comes from the body's ``eTag`` or, failing that, the header."""
        cid = _correlation.get() or new_correlation_id()
        response = await self._send("GET", self._referral_url(referral_id), cid)
        return _with_etag(_parse(Referral, response, cid), response)

    # --- writes -----------------------------------------------------------------------------------

    async def create(
        self,
        body: Mapping[str, Any] | BaseModel,
        *,
        existing_ids: Collection[str] | None = None,
        stamp: bool = True,
    ) -> Referral:
        """POST a new referral, never twice.

        An ``externalReferenceId`` is stamped when the caller gave none; after an ambiguous failure it
        is how the client finds out whether the referral landed. ``existing_ids`` are the referrals
        already carrying the caller's id, when the caller has just looked (saves a call); None means
        the client looks itself. ``stamp=False`` sends a body without an id exactly as given (the
        Microsoft side of a co-sell, found through its engagementId instead): an ambiguous failure
        is then ``WriteOutcomeUnknown`` and the caller settles it.
        """
        cid = _correlation.get() or new_correlation_id()
        doc = _to_wire(body)
        if not isinstance(doc, dict):
            raise InvalidInput("A referral must be a JSON object.", field="body")
        external_id = doc.get("externalReferenceId")
        existing: set[str] = set(existing_ids or ())
        if external_id:
            # The caller's own id may already be on older referrals; remember them so a look-up after
            # a failure does not mistake an old referral for the new one.
            if existing_ids is None:
                existing = {r.id for r in await self.find_by_external_id(str(external_id)) if r.id}
        elif not stamp:
            return await self._create_unstamped(doc, cid)
        else:
            external_id = f"{EXTERNAL_ID_PREFIX}{uuid.uuid4()}"
            doc["externalReferenceId"] = external_id

        try:
            response = await self._send("POST", self._referrals_url, cid, json_body=doc, write=True)
        except _Ambiguous as amb:
            return await self._settle_create(str(external_id), existing, amb, cid)
        if response.status_code not in (200, 201) or not response.content:
            # Accepted but no representation: read it back by its external id.
            with _lookup_in_doubt(
                f"Partner Center accepted the create (HTTP {response.status_code}) but reading it back failed",
                f"; look for externalReferenceId {external_id!r} before trying again.",
                cid,
            ):
                found = [r for r in await self.find_by_external_id(str(external_id)) if r.id not in existing]
            if len(found) == 1:
                return found[0]
            raise WriteOutcomeUnknown(
                f"Partner Center answered {response.status_code} to the create without the new referral; "
                f"look for externalReferenceId {external_id!r} before trying again.",
                correlation_id=cid,
            )
        return _with_etag(_parse(Referral, response, cid), response)

    async def _create_unstamped(self, doc: dict[str, Any], cid: str) -> Referral:
        try:
            response = await self._send("POST", self._referrals_url, cid, json_body=doc, write=True)
        except _Ambiguous as amb:
            raise WriteOutcomeUnknown(
                f"The create failed ({amb.what}); whether it landed is not known yet.", correlation_id=cid
            ) from None
        if response.status_code not in (200, 201) or not response.content:
            raise WriteOutcomeUnknown(
                f"Partner Center answered {response.status_code} to the create without the new referral.",
                correlation_id=cid,
            )
        return _with_etag(_parse(Referral, response, cid), response)

    async def patch(
        self, referral_id: str, ops: Sequence[PatchOperation | Mapping[str, Any]], *, etag: str | None
    ) -> Referral:
        """Apply JSON-patch ``ops`` (``add``/``replace``) with ``If-Match: etag``; a stale read fails
        with :class:`PreconditionFailed` (412, or 409 ``resourceModified``). No ETag, no write.

        Never re-sent after an ambiguous failure: the referral is read back and the client reports
        whether the change landed (raising :class:`WriteOutcomeUnknown` when it cannot tell).
        """
        cid = _correlation.get() or new_correlation_id()
        operations = _operations(ops)
        if not operations:
            raise InvalidInput("A patch needs at least one operation.", field="ops")
        if not etag or not etag.strip() or etag.strip() == "*":
            # Without If-Match the service would overwrite whatever changed since the read: a lost update.
            raise InvalidInput(
                f"Referral {referral_id} came without an ETag (neither in its body nor in the ETag header), "
                "so a change could overwrite someone else's; nothing was sent.",
                field="etag",
                hint="Read the referral again with get_referral; if it still has no ETag, report it to support.",
            )
        payload = [op.model_dump(mode="json") for op in operations]
        headers = {"If-Match": etag}
        url = self._referral_url(referral_id)
        try:
            response = await self._send("PATCH", url, cid, json_body=payload, headers=headers, write=True)
        except _Ambiguous as amb:
            return await self._settle_patch(referral_id, operations, etag, amb, cid)
        if response.status_code == 204 or not response.content:
            with _lookup_in_doubt(
                f"Partner Center accepted the update (HTTP {response.status_code}) but reading the "
                "referral back failed",
                "; read it again before changing it.",
                cid,
            ):
                return await self._read_after(referral_id, etag, response)
        return _with_etag(_parse(Referral, response, cid), response)

    async def _read_after(self, referral_id: str, etag: str, response: httpx.Response) -> Referral:
        """The referral after an update the service accepted without a body. A read may come from a
        replica that has not seen the update yet: read again (up to :data:`SETTLE_READS`) until the
        ETag moved (or matches the one the answer gave); one that never moves is returned without an
        ETag, so a stale one is neither recorded nor sent with the next change."""
        new_tag = response.headers.get("etag")
        current = await self.get(referral_id)
        for attempt in range(1, SETTLE_READS):
            if new_tag and _same_etag(current.e_tag, new_tag):
                return current
            if not new_tag and not _same_etag(current.e_tag, etag):
                return current
            await self._sleep(self._backoff(attempt))
            current = await self.get(referral_id)
        if (new_tag and _same_etag(current.e_tag, new_tag)) or (
            not new_tag and not _same_etag(current.e_tag, etag)
        ):
            return current
        logger.info("the update was accepted but every read-back still shows the state before it")
        return current.model_copy(update={"e_tag": None})

    async def create_deal_registration(
        self, referral_id: str, registration: Mapping[str, Any] | BaseModel, *, etag: str | None
    ) -> Referral:
        """Add an Azure IP co-sell deal registration (``add /registrations/-``)."""
        value = _to_wire(registration)
        op = PatchOperation(op="add", path="/registrations/-", value=value)
        return await self.patch(referral_id, [op], etag=etag)

    async def update_deal_registration(
        self, referral_id: str, ops: Sequence[PatchOperation | Mapping[str, Any]], *, etag: str | None
    ) -> Referral:
        """Change the deal registration (``replace /registrations/0/...``)."""
        operations = _operations(ops)
        for op in operations:
            if not op.path.startswith("/registrations/"):
                raise InvalidInput(
                    f"{op.path} is not a deal registration path.",
                    field="path",
                    value=op.path,
                    allowed="paths under /registrations/0/",
                )
        return await self.patch(referral_id, operations, etag=etag)

    # --- settling ambiguous writes ---------------------------------------------------------------

    async def _settle_create(
        self, external_id: str, existing: set[str], amb: _Ambiguous, cid: str
    ) -> Referral:
        with _lookup_in_doubt(
            f"The create failed ({amb.what}) and checking whether it landed failed too",
            f". Look for externalReferenceId {external_id!r} before trying again.",
            cid,
        ):
            found = [r for r in await self.find_by_external_id(external_id) if r.id not in existing]
        if len(found) == 1:
            logger.info("create landed despite %s (correlation id %s)", amb.what, cid)
            return found[0]
        if len(found) > 1:
            raise WriteOutcomeUnknown(
                f"The create failed ({amb.what}) but {len(found)} referrals now carry externalReferenceId "
                f"{external_id!r}; review them before trying again.",
                correlation_id=cid,
            )
        # Nothing carries the id *yet*: the service may still be processing the create (a 504 often
        # means exactly that), so "not created" cannot be known. Say what is known; the caller keeps
        # the write in doubt.
        raise WriteOutcomeUnknown(
            f"The create failed ({amb.what}) and no referral carries externalReferenceId {external_id!r} "
            "yet: not found yet, but it may still appear. Check for that external reference id before "
            "retrying.",
            correlation_id=cid,
        )

    async def _settle_patch(
        self, referral_id: str, ops: list[PatchOperation], etag: str | None, amb: _Ambiguous, cid: str
    ) -> Referral:
        """Decide from evidence whether an update whose answer was lost landed.

        The referral is read up to :data:`SETTLE_READS` times (spaced by the backoff) until a read
        shows the ETag moved: a read may come from a replica that has not seen the write yet, so
        reads showing it unchanged prove nothing. Applied: the ETag moved and every value the update
        sets is in place. Everything else is in doubt (:class:`WriteOutcomeUnknown`): the journal
        keeps it, and settling decides it later from the ETag chain (a later write accepted with the
        same ETag proves this one did not land).
        """
        current: Referral | None = None
        for attempt in range(1, SETTLE_READS + 1):
            if attempt > 1:
                await self._sleep(self._backoff(attempt - 1))
            with _lookup_in_doubt(
                f"The update failed ({amb.what}) and reading the referral back failed",
                "; whether it landed is not known. Read it again before retrying.",
                cid,
            ):
                current = await self.get(referral_id)
            if _same_etag(current.e_tag, etag):
                continue  # unchanged, or a replica behind: read again
            if _ops_visible(current, ops):
                logger.info("patch landed despite %s (correlation id %s)", amb.what, cid)
                return current
            raise WriteOutcomeUnknown(
                f"The update failed ({amb.what}) and the referral has changed since (ETag "
                f"{current.e_tag}), but whether by this update cannot be told. Read it again and "
                "review before retrying.",
                correlation_id=cid,
            )
        raise WriteOutcomeUnknown(
            f"The update failed ({amb.what}). {SETTLE_READS} reads after the failure still show the "
            "referral as it was (the ETag the update was sent with), but a read can come from a copy "
            "that has not seen the write yet, so that does not prove it did not land. Read it again "
            "with get_referral in a minute before trying again.",
            correlation_id=cid,
        )

    async def find_by_external_id(
        self, external_id: str, *, recent: RecentScan | None = None
    ) -> list[Referral]:
        """Referrals carrying ``external_id``, best effort on any service (see :meth:`find`)."""
        return await self.find(
            eq("externalReferenceId", external_id),
            lambda r: r.external_reference_id == external_id,
            recent=recent,
        )

    async def find(
        self, filter_: Expr, matches: Callable[[Referral], bool], *, recent: RecentScan | None = None
    ) -> list[Referral]:
        """Referrals for which ``matches`` holds, asking the service with ``filter_`` where it can.

        For look-ups the public documents do not show (a filter on externalReferenceId, on name and
        customer). Where the service refuses the filter (400, then remembered for this client and
        this filter's fields) the newest referrals are read instead, the documented way
        (``$orderby=createdDateTime desc``, next links, :data:`RECENT_SCAN_PAGES` pages) and matched
        here: a create just sent is among them. Matches are checked here either way, so a service
        that ignores the filter cannot make another referral look like the one asked for. With
        ``recent``, the newest pages are read once for the task and matched again from there.
        """
        shape = _filter_shape(str(filter_))
        if shape not in self._refused_filters:
            try:
                page = await self.list_page(Query(filter=filter_))
            except BadRequest:
                logger.info("the service refuses $filter %s; reading the newest instead", shape)
                self._refused_filters.add(shape)
            else:
                return [r for r in page.value if matches(r)]
        pages = recent.pages if recent is not None else None
        if pages is None:
            pages = await self._newest_pages()
            if recent is not None:
                recent.pages = pages
        return [r for page in pages for r in page.value if matches(r)]

    async def _newest_pages(self) -> list[ReferralPage]:
        """The newest referrals the documented way: :data:`RECENT_SCAN_PAGES` pages at most."""
        page = await self.list_page(Query(orderby=["createdDateTime desc"]))
        pages = [page]
        while page.odata_next_link and len(pages) < RECENT_SCAN_PAGES:
            page = await self.list_page(next_link=page.odata_next_link)
            pages.append(page)
        return pages

    # --- the one place requests are sent ---------------------------------------------------------

    async def _send(
        self,
        method: str,
        url: str,
        cid: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        write: bool = False,
    ) -> httpx.Response:
        """Send with limits and retries; return a 2xx response or raise.

        Writes raise :class:`_Ambiguous` when the request may have been processed.
        """
        path = httpx.URL(url).path
        check_request(method, path, json_body)  # the published contract, before anything leaves
        content = None if json_body is None else json.dumps(json_body, separators=(",", ":")).encode()
        attempt = 0
        while True:
            attempt += 1
            await self._limiter.acquire()
            token = await self._tokens.get_token()
            request_headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "MS-CorrelationId": cid,
                "client-request-id": str(uuid.uuid4()),
            }
            if write:
                request_headers["Prefer"] = "return=representation"
            request_headers.update(headers or {})
            started = time.perf_counter()
            try:
                response = await self._http.request(
                    method, url, params=params, content=content, headers=request_headers
                )
            except (httpx.TransportError, OSError) as exc:
                # OSError: an in-process (ASGI) app that drops the connection raises it directly.
                self._log(method, path, None, started, cid, attempt, type(exc).__name__)
                # Without a connection nothing was sent: safe to try again for any method.
                connected = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if write and connected:
                    raise _Ambiguous(_describe(exc), None) from None
                if attempt <= self._max_retries:
                    await self._sleep(self._backoff(attempt))
                    continue
                if not connected:
                    raise NetworkError(
                        f"Could not connect to Partner Center ({_describe(exc)}).",
                        correlation_id=cid,
                        hint="Check the network and try again.",
                    ) from None
                raise NetworkError(
                    f"Partner Center did not answer ({_describe(exc)}) after {attempt} attempts.",
                    correlation_id=cid,
                ) from None
            self._log(method, path, response.status_code, started, cid, attempt)
            await response.aread()
            status = response.status_code
            if status < 400:
                return response

            error = error_from_response(
                response, cid, app_only=bool(getattr(self._tokens, "app_only", False))
            )
            if status == 429:
                assert isinstance(error, Throttled)
                retry_after = error.retry_after
                if retry_after is not None:
                    self._limiter.pause(min(retry_after, self._max_retry_after))
                if retry_after is not None and retry_after > self._max_retry_after:
                    error.message += f" The service asked to wait {retry_after:.0f} s; try again later."
                    raise error
                if attempt > self._max_retries:
                    raise error
                if retry_after is None:
                    self._limiter.pause(self._backoff(attempt))
                continue  # the limiter holds this and every other caller until the pause is over
            if status >= 500:
                if write:
                    # what the service said travels with the outcome (quoted: others' text)
                    said = error.message.removeprefix("Partner Center answered ").rstrip(".")
                    ids = f"; request id {error.request_id}" if error.request_id else ""
                    raise _Ambiguous(f"HTTP {said}{ids}" if said[:3].isdigit() else f"HTTP {status}", error)
                if attempt <= self._max_retries:
                    hinted = parse_retry_after(response.headers.get("retry-after"))
                    delay = self._backoff(attempt)
                    if hinted is not None:
                        delay = max(delay, min(hinted, self._max_retry_after))
                    await self._sleep(delay)
                    continue
            raise error

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter on the upper half: base·2^(n-1), capped."""
        ceiling = min(self._backoff_max, self._backoff_base * (2 ** (attempt - 1)))
        return ceiling / 2 + random.random() * ceiling / 2

    def _log(
        self,
        method: str,
        path: str,
        status: int | None,
        started: float,
        cid: str,
        attempt: int,
        failure: str | None = None,
    ) -> None:
        ms = (time.perf_counter() - started) * 1000
        logger.debug(
            "%s %s -> %s in %.0f ms (attempt %d, correlation id %s)",
            method,
            path,
            status if status is not None else failure,
            ms,
            attempt,
            cid,
        )

    def _referral_url(self, referral_id: str) -> str:
        if not isinstance(referral_id, str) or not referral_id.strip():
            raise InvalidInput("A referral id is required.", field="referral_id", value=referral_id)
        return f"{self._referrals_url}/{quote(referral_id.strip(), safe='')}"

    def _checked_next_link(self, next_link: str, cid: str) -> str:
        """The service's link, resolved if relative; refused unless it goes where the token may go.

        A relative link resolves against the referrals collection of the configured base URL (the
        request it came from), as RFC 3986 says; an absolute one is requested verbatim. An absolute one
        must have the base URL's scheme, host and port exactly (its path may differ): so the bearer
        token never goes to another host, nor over plain http when the service is https. The local
        sandbox (plain http on loopback) works because its own base URL is http.
        """
        link = next_link.strip()
        try:
            url = httpx.URL(self._referrals_url).join(link)
        except (httpx.InvalidURL, TypeError):
            raise ServiceError(
                "Partner Center returned a next-page link that is not a URL; not followed.",
                correlation_id=cid,
            ) from None
        if url.scheme != self._base.scheme:
            raise ServiceError(
                f"Partner Center returned a next-page link over {url.scheme or 'no scheme'} to {url.host or 'no host'}; "
                f"not followed: the sign-in token is sent only over {self._base.scheme} to {self._base.host}.",
                correlation_id=cid,
            )
        if (url.host, url.port) != (self._base.host, self._base.port):
            where = url.host + (f":{url.port}" if url.port else "") if url.host else "none"
            raise ServiceError(
                f"Partner Center returned a next-page link to another host ({where}); not followed: "
                f"the sign-in token is sent only to {self._base.host}.",
                correlation_id=cid,
            )
        return link if httpx.URL(link).is_absolute_url else str(url)

    async def _walk(
        self, query: Query | None, *, max_pages: int, max_items: int
    ) -> AsyncIterator[tuple[Referral | None, _WalkState]]:
        state = _WalkState()
        page = await self.list_page(query)
        state.pages = 1
        state.total = page.odata_count
        while True:
            for index, referral in enumerate(page.value):
                if state.items >= max_items:
                    more = index < len(page.value) or page.odata_next_link is not None
                    state.truncated = "max_items" if more else None
                    state.next_link = page.odata_next_link
                    yield None, state
                    return
                state.items += 1
                yield referral, state
            if not page.odata_next_link:
                yield None, state
                return
            if state.items >= max_items:
                state.truncated = "max_items"
                state.next_link = page.odata_next_link
                yield None, state
                return
            if state.pages >= max_pages:
                state.truncated = "max_pages"
                state.next_link = page.odata_next_link
                yield None, state
                return
            page = await self.list_page(next_link=page.odata_next_link)
            state.pages += 1


def _quiet_httpx_logger() -> None:
    """httpx logs every full URL at INFO, query string included ($filter values can be e-mail
    addresses). Unless the application chose a level for it, keep it to warnings."""
    httpx_logger = logging.getLogger("httpx")
    if httpx_logger.level == logging.NOTSET:
        httpx_logger.setLevel(logging.WARNING)


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def current_correlation_id() -> str | None:
    """The correlation id of the enclosing :meth:`PartnerCenterClient.correlation` block, if any."""
    return _correlation.get()


# --- private helpers ------------------------------------------------------------------------------


class _WalkState:
    def __init__(self) -> None:
        self.pages = 0
        self.items = 0
        self.total: int | None = None
        self.truncated: str | None = None
        self.next_link: str | None = None


def _filter_shape(text: str) -> str:
    """A filter with its literals blanked: which fields and operators it uses, not which values."""
    return re.sub(r"'(?:[^']|'')*'", "''", text)
