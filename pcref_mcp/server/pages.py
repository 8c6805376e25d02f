"""pcref-mcp's own web pages (the approval page; in team mode also consent and connected apps): one
layout, one escaping helper, one set of security headers.

These pages are where a person decides something a client or a model must not decide for them, so
they are built to be hard to misuse: no external assets and no script (nothing to load from elsewhere,
nothing to inject into), the stylesheet inline but allowed only by a per-response nonce in a strict
``Content-Security-Policy``, forms that post only to this server (plus the few origins a decision
redirects to, named by the caller), no framing (clickjacking), no caching (a shared machine's back
button shows nothing), no referrer (a page's URL carries a one-time key). Everything that comes from
someone else (a client's self-chosen name, a redirect URI, a person's display name) goes through
:func:`esc`. Readable on a phone (one column, large buttons) and usable with the keyboard alone
(real buttons in a real form, visible focus).
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Iterable
from typing import Any

__all__ = ["csrf_token", "esc", "new_nonce", "notice", "origin_of", "page", "page_response", "render_page"]

_CSS = """
:root{color-scheme:light dark;--fg:#1b1b1f;--bg:#fff;--muted:#5d5d66;--line:#d0d0d7;--ok:#0b5cad;--no:#8a1c1c}
@media (prefers-color-scheme:dark){:root{--fg:#ececf1;--bg:#17171b;--muted:#a8a8b3;--line:#3a3a44;--ok:#5aa2ff;--no:#ff8a8a}}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:34rem;margin:0 auto;padding:1.25rem}
h1{font-size:1.35rem;line-height:1.3;margin:.5rem 0 1rem}
p,ul{margin:.6rem 0}
.muted{color:var(--muted);font-size:.9rem}
a{color:var(--ok)}
a:focus-visible{outline:3px solid var(--fg);outline-offset:2px}
.host{display:block;font:600 1.3rem/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
 word-break:break-all;padding:.6rem .75rem;border:2px solid var(--fg);border-radius:.4rem;margin:.4rem 0}
.untrusted{font-style:italic;word-break:break-word}
.box{border:1px solid var(--line);border-radius:.5rem;padding:.75rem 1rem;margin:1rem 0}
.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1.25rem}
button{font:inherit;font-weight:600;min-height:3rem;min-width:8rem;flex:1 1 10rem;padding:.6rem 1rem;
 border-radius:.4rem;border:2px solid var(--ok);cursor:pointer}
button.approve{background:var(--ok);color:var(--bg)}
button.deny,button.revoke{background:transparent;color:var(--fg);border-color:var(--no)}
button:focus-visible{outline:3px solid var(--fg);outline-offset:3px}
pre{margin:0;white-space:pre-wrap;overflow-wrap:anywhere;font:.85rem/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
table{border-collapse:collapse;width:100%}
td{padding:.5rem .25rem;border-top:1px solid var(--line);vertical-align:top;word-break:break-word}
"""

_SOURCE = re.compile(r"^[a-z][a-z0-9+.-]*://[A-Za-z0-9.\-\[\]:]+$")


def esc(text: Any) -> str:
    """Escape ``text`` for HTML text and double-quoted attributes (others' text is data, never markup)."""
    return html.escape(str(text), quote=True)


def new_nonce() -> str:
    """A fresh nonce for one response's stylesheet."""
    return secrets.token_urlsafe(18)


def render_page(title: str, body_html: str, *, nonce: str, referrer: str = "no-referrer") -> str:
    """The whole page: ``title`` is escaped here; ``body_html`` is markup the caller built with
    :func:`esc` around every piece of others' text."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="referrer" content="{esc(referrer)}"><title>{esc(title)} · pcref-mcp</title>'
        f'<style nonce="{esc(nonce)}">{_CSS}</style></head>'
        f"<body><main>{body_html}</main></body></html>"
    )


def page_response(
    html_text: str,
    nonce: str,
    *,
    status: int = 200,
    form_action: Iterable[str] = (),
    headers: dict[str, str] | None = None,
    referrer: str = "no-referrer",
) -> Any:
    """An HTML response with the security headers. ``form_action``: origins (``scheme://host[:port]``)
    a form's redirect may go to besides this server (browsers apply ``form-action`` to the redirects
    that follow a submission): the identity provider after Approve, the client after a decision."""
    from starlette.responses import HTMLResponse

    sources = ["'self'", *sorted({s for s in form_action if _SOURCE.match(s)})]
    policy = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; img-src 'none'; form-action {' '.join(sources)}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return HTMLResponse(
        html_text,
        status,
        headers={
            "Content-Security-Policy": policy,
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "Pragma": "no-cache",
            "Referrer-Policy": referrer,
            **(headers or {}),
        },
    )


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (for :func:`page_response`'s ``form_action``)."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc.rpartition('@')[2]}" if parsed.scheme and parsed.netloc else ""


def notice(title: str, message: str, *, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    """A page that only says something (an expired link, an error and what to do about it)."""
    nonce = new_nonce()
    body = f"<h1>{esc(title)}</h1><p>{esc(message)}</p>"
    return page_response(render_page(title, body, nonce=nonce), nonce, status=status, headers=headers)


def page(title: str, body_html: str, *, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    """A page whose form posts back to itself and is checked by its ``Origin``: the same headers, with
    the referrer kept for this server alone (a no-referrer page's own form posts ``Origin: null``)."""
    nonce = new_nonce()
    html_text = render_page(title, body_html, nonce=nonce, referrer="same-origin")
    return page_response(html_text, nonce, status=status, headers=headers, referrer="same-origin")


def csrf_token(*parts: str) -> str:
    """A form token bound to ``parts`` (what the form decides, and the browser's own secret cookie):
    the same on every load of the page in that browser, unknowable to another site."""
    import hashlib

    return hashlib.sha256("\x1f".join(("pcref-csrf", *parts)).encode()).hexdigest()
