"""``pcref-mcp admin``: revoking a person or a client (what the proxy held dropped, their token
cache forgotten, every replica refusing tokens issued before), the people seen, and store-key
rotation (both keys open during the grace period; re-sealed, the old key alone opens nothing)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from mcp.server.auth.provider import AccessToken

from pcref_mcp.errors import ConfigError
from pcref_mcp.store import open_store
from pcref_mcp.team.revocation import Revocations

pytestmark = pytest.mark.anyio

OLD, NEW, OTHER = b"o" * 40, b"n" * 40, b"x" * 40


def _token(oid: str, iat: float, raw: str = "tok") -> AccessToken:
    return AccessToken(
        token=raw, client_id="api", scopes=[], subject=oid, claims={"oid": oid, "iat": int(iat)}
    )


async def _seed(store: Any, now: float) -> None:
    for person, client in (("ada", "c-1"), ("ada", "c-2"), ("bob", "c-1")):
        await store.broker_put(
            "refresh", f"h-{person}-{client}", b"{}", expires=now + 600, client_id=client, subject=person
        )
    await store.broker_put("client", "c-1", b"{}", expires=None, client_id="c-1")
    await store.broker_put("issued-to", "tok-bob-c1", b"c-1", expires=now + 600, client_id="c-1")
    await store.token_put("ada", b"ada's msal cache")
    await store.token_put("bob", b"bob's msal cache")


async def test_revoking_a_person_drops_what_is_held_and_refuses_only_their_older_tokens(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.sqlite3'}", secret=NEW)
    now = time.time()
    await _seed(store, now)
    replica_a, replica_b = Revocations(store), Revocations(store)
    before = _token("ada", now - 60)
    assert not await replica_b.refuses(before)  # replica b looked before the revoke (and cached it)
    dropped = await replica_a.revoke_person("ada")
    assert dropped["refresh"] == 2 and await store.token_get("ada") is None
    assert await store.token_get("bob") == b"bob's msal cache"  # nobody else's
    assert await store.broker_count("refresh", now) == 1
    assert await replica_a.refuses(before)
    assert not await replica_a.refuses(_token("bob", now - 60))
    assert not await replica_a.refuses(_token("ada", time.time() + 5))  # signed in again afterwards
    replica_b._cache.clear()  # its cache ran out (CACHE_SECONDS): it asks the store again
    assert await replica_b.refuses(before)
    await store.close()


async def test_revoking_a_client_cuts_its_registration_handles_and_tokens_for_everyone(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.sqlite3'}", secret=NEW)
    now = time.time()
    await _seed(store, now)
    revocations = Revocations(store)
    bobs = _token("bob", now - 60, raw="tok-bob-c1")
    assert not await revocations.refuses(bobs)
    dropped = await revocations.revoke_client("c-1")
    assert dropped["refresh"] == 2 and dropped["client"] == 1 and "issued-to" not in dropped
    revocations._cache.clear()  # (the replica's cache ran out)
    assert await revocations.refuses(bobs)  # bob was not revoked; the client he signed in with was
    assert not await revocations.refuses(_token("ada", now - 60, raw="tok-ada-c2"))  # another client
    assert await store.broker_count("refresh", now) == 1  # ada's handle for c-2 stays
    await store.close()


async def test_a_revoked_token_gets_a_401_the_client_acts_on_and_the_rest_are_served(tmp_path: Path) -> None:
    """The authentication gate asks the revocations: a revoked person's token is answered 401
    invalid_token from the headers (so the client signs them in again); others reach the app."""
    from pcref_mcp.team.authn import AuthenticateFirst

    store = open_store(f"sqlite:///{tmp_path / 's.sqlite3'}", secret=NEW)
    revocations = Revocations(store)
    tokens = {
        "ada": _token("ada", time.time() - 60, raw="ada"),
        "bob": _token("bob", time.time() - 60, raw="bob"),
    }
    reached: list[str] = []

    class Verifier:
        async def verify_token(self, token: str) -> AccessToken | None:
            return tokens.get(token)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["pcref_mcp.access_token"].subject)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    gate = AuthenticateFirst(
        app, verifier=Verifier(), resource_metadata_url="https://x/m", revocations=revocations
    )  # type: ignore[arg-type]

    async def call(who: str) -> tuple[int, dict[bytes, bytes]]:
        sent: list[Any] = []

        async def send(message: Any) -> None:
            sent.append(message)

        async def receive() -> Any:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/mcp",
            "headers": [(b"authorization", f"Bearer {who}".encode())],
        }
        await gate(scope, receive, send)
        return int(sent[0]["status"]), dict(sent[0]["headers"])

    assert (await call("ada"))[0] == 200
    await revocations.revoke_person("ada")
    status, headers = await call("ada")
    assert status == 401 and b'error="invalid_token"' in headers[b"www-authenticate"]
    assert b"revoked by its administrator" in headers[b"www-authenticate"]
    assert (await call("bob"))[0] == 200
    assert reached == ["ada", "bob"]
    await store.close()


async def test_a_key_rotation_opens_both_keys_in_its_grace_period_then_reseals_under_the_new(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite3'}"
    before = open_store(url, secret=OLD)
    await before.token_put("ada", b"ada's cache")
    await before.broker_put("refresh", "handle-1", b"held", expires=None, subject="ada")
    await before.close()
    stranger = open_store(url, secret=OTHER)  # a row sealed under a key nobody configures
    await stranger.token_put("eve", b"eve's cache")
    await stranger.close()

    grace = open_store(url, secret=NEW, previous=OLD)
    assert await grace.token_get("ada") == b"ada's cache"  # nobody signed out during the rollout
    assert await grace.broker_get("refresh", "handle-1", time.time()) == b"held"
    assert await grace.reseal() == (2, 1)  # eve's opens under neither: left, she signs in again
    await grace.close()

    after = open_store(url, secret=NEW)
    assert await after.token_get("ada") == b"ada's cache"
    assert await after.broker_get("refresh", "handle-1", time.time()) == b"held"
    await after.close()
    old_only = open_store(url, secret=OLD)
    with pytest.raises(ConfigError):
        await old_only.token_get("ada")
    await old_only.close()


def test_the_admin_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    import anyio

    from pcref_mcp.cli import main
    from pcref_mcp.identity import Principal, acting_as
    from pcref_mcp.writes.journal import Journal

    path = tmp_path / "journal.sqlite3"

    async def seed() -> None:
        store = open_store(f"sqlite:///{path}", secret=OLD)
        with acting_as(Principal(id="oid-ada", name="ada@contoso.example", tenant="t")):
            change = await Journal(store).record_intent(
                tool="update_field",
                kind="update",
                referral_id="r",
                correlation_id="c",
                operations=[],
                before_image={},
                etag_before=None,
            )
        await Journal(store).record_outcome(change, "applied")
        await store.token_put("oid-ada", b"cache")
        consent = b'{"client_id": "c-42", "client_name": "VS Code", "hosts": [], "approved_at": 1.0}'
        await store.broker_put(
            "consent", "oid-ada c-42", consent, expires=None, client_id="c-42", subject="oid-ada"
        )
        # bob never wrote: seen (a call, with his client) all the same
        await store.seen_touch("oid-bob", "", name="bob@contoso.example", client_name=None, now=1.8e9)
        await store.seen_touch("oid-bob", "c-7", name=None, client_name="Claude", now=1.8e9)
        await store.close()

    anyio.run(seed)
    monkeypatch.setenv("PCREF_JOURNAL_PATH", str(path))
    monkeypatch.setenv("PCREF_STORE_KEY", OLD.decode())
    assert main(["admin", "people"]) == 0
    listed = capsys.readouterr().out
    assert "oid-ada" in listed and "ada@contoso.example" in listed and "VS Code (c-42)" in listed
    bob = next(line for line in listed.splitlines() if line.startswith("oid-bob"))
    assert "bob@contoso.example" in bob and "2027-01-15 08:00 UTC" in bob and "Claude (c-7)" in bob
    assert listed.splitlines()[1].startswith("oid-bob")  # the latest seen first
    assert main(["admin", "rotate-key"]) == 2  # no previous key: says what to set
    assert "PCREF_STORE_KEY_PREVIOUS" in capsys.readouterr().err
    monkeypatch.setenv("PCREF_STORE_KEY", NEW.decode())
    monkeypatch.setenv("PCREF_STORE_KEY_PREVIOUS", OLD.decode())
    assert main(["admin", "rotate-key"]) == 0
    assert "Re-sealed 2 stored secret" in capsys.readouterr().err  # the token cache and the consent
    assert main(["admin", "revoke", "--person", "oid-ada"]) == 0
    assert "Revoked person oid-ada: dropped 1 consent" in capsys.readouterr().err
    assert main(["admin", "people"]) == 0
    assert "VS Code" not in capsys.readouterr().out  # the consent went with the revoke
