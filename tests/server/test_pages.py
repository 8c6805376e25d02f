"""``server.pages``: one layout, one escaping helper, the security headers on every page."""

from __future__ import annotations

import re

from pcref_mcp.server.pages import esc, new_nonce, notice, origin_of, page_response, render_page


def test_others_text_is_escaped_and_the_stylesheet_carries_the_nonce() -> None:
    nonce = new_nonce()
    assert nonce != new_nonce()
    others = 'a <b> & "q"'
    document = render_page('<script>"x"</script>', "<p>" + esc(others) + "</p>", nonce=nonce)
    assert "<script>" not in document and "&lt;script&gt;&quot;x&quot;&lt;/script&gt;" in document
    assert "a &lt;b&gt; &amp; &quot;q&quot;" in document
    assert f'<style nonce="{nonce}">' in document and "<link" not in document and "src=" not in document
    assert 'name="viewport"' in document


def test_the_response_forbids_framing_caching_referrers_and_foreign_forms() -> None:
    nonce = new_nonce()
    response = page_response(
        render_page("t", "", nonce=nonce),
        nonce,
        form_action=["https://login.example", "https://a.example; script-src *", "javascript:alert(1)", ""],
    )
    headers = response.headers
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer" and headers["x-content-type-options"] == "nosniff"
    policy = headers["content-security-policy"]
    assert f"style-src 'nonce-{nonce}'" in policy and "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy and "base-uri 'none'" in policy
    form_action = re.search(r"form-action ([^;]*)", policy)
    assert form_action and form_action.group(1) == "'self' https://login.example"  # the odd ones dropped
    assert "script-src" not in policy and "unsafe" not in policy


def test_origins_and_notices() -> None:
    assert origin_of("https://user:pw@Host.example:8443/cb?x=1") == "https://Host.example:8443"
    assert origin_of("not a url") == ""
    page = notice("Expired <x>", "Start again & retry.", status=400)
    assert (
        page.status_code == 400
        and b"Expired &lt;x&gt;" in page.body
        and b"Start again &amp; retry." in page.body
    )
    assert page.headers["x-frame-options"] == "DENY"
