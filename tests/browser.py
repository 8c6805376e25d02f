"""A real headless Chromium for the web pages people use (consent, approval).

The distribution's ``chromium`` package (``make e2e`` installs it as root), driven by playwright over
its protocol; playwright never downloads a browser of its own here. The flags keep Chromium from
reaching out to the network (this machine has none beyond loopback) and from asking for a sandbox
that root cannot have.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.e2e.servers import REQUIRED

__all__ = ["CHROMIUM_ARGS", "chromium_path", "headless_chromium"]

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str:
    """The distribution's Chromium, or a skip (a failure under CI / ``make e2e``)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright  # noqa: F401
    except ImportError:
        found = None
    if not found:
        message = "Chromium (apt-get install chromium) and playwright are needed for the web-page tests"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    return found


@asynccontextmanager
async def headless_chromium(**context: Any) -> AsyncIterator[Any]:
    """A fresh browser context (its own cookies) in a headless Chromium; ``context`` goes to
    ``new_context`` (e.g. ``ignore_https_errors=True`` for the stand-in's self-signed certificate,
    ``viewport`` for a phone)."""
    from playwright.async_api import async_playwright

    executable = chromium_path()
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            yield await browser.new_context(**context)
        finally:
            await browser.close()
