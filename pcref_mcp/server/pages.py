"""The web pages people use (approval, consent): one layout, one escaping rule, one set of headers.

Pages are small, self-contained HTML: no script, no external asset, one inline style sheet allowed
by a per-response nonce in a strict Content-Security-Policy, readable on a phone (fluid layout,
viewport meta), usable with the keyboard (real buttons in a real form, visible focus). Text that
others wrote (a client's self-chosen name, a referral's notes) only ever reaches a page through
:func:`text`, which escapes it.
"""

from __future__ import annotations

import hashlib
import html
import secrets
from typing import Any

__all__ = ["csrf_token", "page", "text"]

_STYLE = """
:root { color-scheme: light dark; --accent: #0f6cbd; }
* { box-sizing: border-box; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       padding: 1rem; max-width: 46rem; margin-inline: auto; }
h1 { font-size: 1.35rem; margin: .5rem 0 1rem; }
.who { color: GrayText; font-size: .9rem; }
.box { border: 1px solid GrayText; border-radius: .5rem; padding: .75rem 1rem; margin: 1rem 0; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; font: .85rem/1.45 ui-monospace, Menlo, Consolas,
      monospace; margin: 0; }
.host { font-size: 1.2rem; font-weight: 700; overflow-wrap: anywhere; }
.untrusted { font-style: italic; overflow-wrap: anywhere; }
.actions { display: flex; gap: .75rem; flex-wrap: wrap; margin-top: 1.25rem; }
button { font: inherit; padding: .7rem 1.4rem; border-radius: .4rem; border: 2px solid var(--accent);
         cursor: pointer; min-width: 8rem; }
button.primary { background: var(--accent); color: #fff; }
button.secondary { background: transparent; color: inherit; }
button:focus-visible { outline: 3px solid orange; outline-offset: 2px; }
.note { font-size: .9rem; }
"""


def text(value: Any) -> str:
    """Any value as HTML text: escaped, quotes included."""
    return html.escape(str(value), quote=True)


def csrf_token(*parts: str) -> str:
    """A CSRF token bound to ``parts`` (the page and a browser's own secret cookie): the same on
    every load of the page in that browser, unknowable to another site."""
    return hashlib.sha256("\x1f".join(("pcref-csrf", *parts)).encode()).hexdigest()


def page(title: str, body: str, *, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    """The response for one page. ``body`` is HTML built with :func:`text` for every value."""
    from starlette.responses import HTMLResponse

    nonce = secrets.token_urlsafe(16)
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="referrer" content="same-origin"><title>{text(title)}</title>'
        f'<style nonce="{nonce}">{_STYLE}</style></head><body><main>{body}</main></body></html>'
    )
    policy = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return HTMLResponse(
        document,
        status,
        headers={
            "Content-Security-Policy": policy,
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",  # a form post keeps its Origin (checked)
            "Cache-Control": "no-store",
            **(headers or {}),
        },
    )
