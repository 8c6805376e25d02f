"""Every Partner Center request timed and counted (:mod:`pcref_mcp.metrics`), below the client.

A transport wrapper rather than code in the client: it sees each attempt as sent (retries and 429s
included, which is what an operator wants to see of throttling), and it never touches a header or
body, so nothing of a request (its token, a person's data) can reach a metric or a log.
"""

from __future__ import annotations

import time

import httpx

from pcref_mcp import metrics

__all__ = ["MeasuredTransport", "measured"]


class MeasuredTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException:
            metrics.partner_center_answered(request.method, None, time.perf_counter() - started)
            raise
        metrics.partner_center_answered(request.method, response.status_code, time.perf_counter() - started)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def measured(transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncBaseTransport:
    """``transport`` (None: httpx's default, as the client would have made it), measured."""
    if isinstance(transport, MeasuredTransport):
        return transport
    return MeasuredTransport(transport if transport is not None else httpx.AsyncHTTPTransport())
