"""What the tests need to talk to a server on a real 127.0.0.1 socket, in one place.

``serve_in_thread`` (the same runner the stand-in identity provider uses) serves an ASGI app with
uvicorn in a daemon thread; ``free_port`` picks a port first for apps that must know theirs before
they are built; ``initialize`` and ``MCP_HEADERS`` are the raw Streamable HTTP request a client opens
with, for tests that speak HTTP without an MCP client; ``tls`` is the certificate check the tests'
HTTP clients share.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

from deploy.postgres import free_port  # below the ephemeral range: no outgoing connection takes it
from pcref_mcp.team.standin_idp import serve_in_thread

__all__ = ["INITIALIZE", "MCP_HEADERS", "free_port", "initialize", "serve_in_thread", "tls"]

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@functools.cache
def tls() -> ssl.SSLContext:
    """httpx's default certificate check (certifi's store, as ``verify=True`` builds it), built once
    per process: give it as ``verify=`` to a test's httpx client or transport. httpx otherwise loads
    the store again for every client it makes, about 25 ms of CPU each, though these clients speak
    plain HTTP to 127.0.0.1 and never use it."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def initialize(protocol_version: str = "2025-11-25", client: str = "t") -> dict[str, Any]:
    """The JSON-RPC ``initialize`` request a client opens a session with."""
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": protocol_version,
            "capabilities": {},
            "clientInfo": {"name": client, "version": "1"},
        },
    }


INITIALIZE = initialize()
