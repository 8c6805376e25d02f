"""The team deployment end to end, as `deploy/` starts it in team mode: PostgreSQL, one shared
sandbox, one stand-in identity provider, three stateless `pcref-mcp team` replicas and nginx on
loopback (issue 14). Every simulated person signs in as themselves: 50 people are 50 principals.

- any replica serves any request: a 2025-era SDK client through the proxy; a token previewed on one
  replica is redeemed on another, once; every replica checks each person's token itself;
- faults: a 500-call mixed workload from 50 people with one replica killed (SIGKILL) mid run and
  PostgreSQL restarted once; nothing acknowledged is lost, nothing is written twice, every in-doubt
  write is settled through the journal, the journal matches the service, each write is journaled
  as the person who made it, each person's `recent_changes` lists exactly their own, and each
  person's on-behalf-of token was obtained once and then served to every replica by the store;
- per person across replicas: an approval previewed by one person cannot be redeemed by another on
  another replica; one person's rate window is counted across the replicas and holds them back on
  all of them, while another person is served.

Run by `make e2e` (PCREF_E2E_REQUIRED=1: a missing nginx or PostgreSQL fails; the project's set-up
installs them as root). Bounded: a few hundred calls, about two minutes on two cores.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from deploy.stack import Stack
from deploy.workload import Unanswered, Workload
from pcref_mcp.writes.journal import _state
from tests.e2e.servers import need_stack_tools

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

PEOPLE = 50  # the fault run's people; the identity provider knows a few more, never called before it
OBO_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    need_stack_tools()
    root = Path(tempfile.mkdtemp(prefix="pcref-e2e-stack-"))
    with Stack(
        root, replicas=3, sandbox_size=300, rate_limit_calls=1_000_000, team=True, people=PEOPLE + 4
    ) as running:
        yield running


def _replicas(stack: Stack) -> list[Workload]:
    """A client for each replica, straight (not through nginx): person ``n`` sends their own token."""
    return [Workload(f"http://127.0.0.1:{p}/mcp", stack.token) for p in stack.replica_ports]


async def test_every_replica_checks_each_persons_own_token(stack: Stack) -> None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    from pcref_mcp.team.standin_idp import OTHER_TENANT, StandInUser

    assert stack.identity is not None
    person = stack.identity.people[0]
    outsider = StandInUser("eve", "eve@fabrikam.example", "Eve", person.oid, OTHER_TENANT)
    claims = jwt.decode(stack.token(0), options={"verify_signature": False})
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = {
        "none": None,
        "forged": stack.identity.idp.sign(claims, key=other_key),  # the published kid, another key
        "other tenant": stack.identity.idp.access_token(outsider),
        "expired": stack.identity.idp.access_token(person, lifetime=-120),
        "other audience": stack.identity.idp.access_token(person, audience="api://someone-else"),
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient(timeout=30) as http:
        for url in [stack.url] + [f"http://127.0.0.1:{p}/mcp" for p in stack.replica_ports]:
            for why, token in bad.items():
                headers = {
                    "Accept": "application/json, text/event-stream",
                    "MCP-Protocol-Version": "2025-06-18",
                }
                if token:
                    headers["Authorization"] = f"Bearer {token}"
                refused = await http.post(url, json=body, headers=headers)
                assert refused.status_code == 401, (url, why, refused.status_code)
                # the metadata is named at the address people use (nginx's), whichever replica answers
                public = stack.url.removesuffix("/mcp")
                metadata = f'resource_metadata="{public}/.well-known/oauth-protected-resource/mcp"'
                assert metadata in refused.headers.get("www-authenticate", ""), (url, why, refused.headers)
            headers["Authorization"] = f"Bearer {stack.token(0)}"
            listed = await http.post(url, json=body, headers=headers)
            assert listed.status_code == 200 and "search_referrals" in listed.text, (url, listed.text[:200])


async def test_a_2025_client_works_through_the_proxy_and_any_replica_redeems_a_token(stack: Stack) -> None:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {stack.token(0)}"}, timeout=60) as http_client,
        Client(streamable_http_client(stack.url, http_client=http_client), read_timeout_seconds=60) as client,
    ):
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"search_referrals", "update_field", "recent_changes"} <= tools
        found = await client.call_tool("search_referrals", {"filters": {"status": ["Active"]}, "limit": 3})
        assert not found.is_error and found.structured_content
        referral = found.structured_content["rows"][0]["id"]

    # preview on replica 0, confirm on replica 2, replay on replica 1: one write
    direct = _replicas(stack)
    args = {"referral_id": referral, "changes": [{"field": "deal value", "value": 424242}]}
    patches_before = _service_patches(stack.root / "sandbox.db").get(referral, 0)
    async with httpx.AsyncClient(timeout=60) as http:
        preview = await direct[0].call(http, "update_field", args)
        assert preview["status"] == "confirmation_required", preview
        confirmed = {**args, "confirm_token": preview["confirm_token"]}
        done = await direct[2].call(http, "update_field", confirmed)
        assert done["status"] == "applied", done
        again = await direct[1].call(http, "update_field", confirmed)
        assert "already used" in again.get("error", "") or "nothing to change" in again.get("error", ""), (
            again
        )
        assert _service_patches(stack.root / "sandbox.db").get(referral, 0) == patches_before + 1
        # the journal is one: replica 1 lists the change replica 2 made
        recent = await direct[1].call(http, "recent_changes", {})
        assert any(line.startswith(f"change_id {done['change_id']} ") for line in recent["changes"]), recent
        # a search cursor signed by one replica pages on another (keys from PCREF_STORE_KEY)
        page = await direct[0].call(http, "search_referrals", {"filters": {"status": ["Active"]}, "limit": 2})
        assert page.get("next_cursor"), page
        more = await direct[1].call(
            http,
            "search_referrals",
            {"filters": {"status": ["Active"]}, "limit": 2, "cursor": page["next_cursor"]},
        )
        assert (
            "error" not in more
            and more["rows"]
            and more["rows"][0]["id"] not in {r["id"] for r in page["rows"]}
        )


async def test_a_killed_replica_and_a_database_restart_lose_and_duplicate_nothing(stack: Stack) -> None:
    from pcref_mcp.partner_center.auth import StaticTokenProvider
    from pcref_mcp.partner_center.client import PartnerCenterClient
    from pcref_mcp.store.postgres import PostgresStore
    from pcref_mcp.writes.journal import Journal
    from pcref_mcp.writes.settle import settle_in_doubt

    assert stack.database_url is not None
    store = PostgresStore(stack.database_url, secret=stack.key.encode())
    journal = Journal(store)
    before = {e.id for e in await journal.recent(1000, any_actor=True)}
    baseline = _service_patches(stack.root / "sandbox.db")
    assert stack.identity is not None
    grants_before = stack.identity.idp.grants.get(OBO_GRANT, 0)
    faults: list[str] = []
    victim_pid: list[str] = []

    async def chaos(done: int) -> None:
        if (
            done >= 120 and "slow" not in faults
        ):  # writes linger at the service: the kill catches some mid-send. 1.5 s, not less: on a
            # loaded machine the kill can land a few hundred ms after a write is seen pending, and a
            # shorter stay let that write finish first (a CI run caught no write in flight at 400 ms)
            faults.append("slow")
            await anyio.to_thread.run_sync(lambda: stack.sandbox_faults(latency_ms=1500))
        elif done >= 160 and "kill" not in faults:
            faults.append("kill")
            victim = str(stack.replica_pids()[1])
            victim_pid.append(victim)
            with anyio.move_on_after(10):  # kill it while it has a write in flight (journaled, unanswered)
                while not [r for r in await store.journal_pending() if r["owner"].split("|")[1] == victim]:
                    await anyio.sleep(0.02)
            # killed and left unreaped (a zombie, as under a parent that never waits): the journal's
            # liveness check must see it gone all the same, and its writes in flight in doubt
            await anyio.to_thread.run_sync(lambda: stack.kill_replica(1, reap=False))
            with anyio.fail_after(30):
                while _state(int(victim)) != "Z":
                    await anyio.sleep(0.05)
            await anyio.to_thread.run_sync(lambda: stack.sandbox_faults(clear=True))
        elif done >= 300 and "restart" not in faults:
            faults.append("restart")
            await anyio.to_thread.run_sync(stack.restart_postgres)

    outcome = await Workload(stack.url, stack.token, people=PEOPLE, calls=500, on_progress=chaos).run()
    assert faults == ["slow", "kill", "restart"]
    assert outcome.calls == 500
    assert not [r for r in outcome.refused if "confirm" in r and "already used" not in r], outcome.refused[:5]

    # the journal settles what the killed replica left in doubt (a fresh look: its process, still a
    # zombie, is gone)
    assert _state(int(victim_pid[0])) == "Z"
    journal = Journal(store)
    pending = [e for e in await journal.recent(1000, any_actor=True) if e.id not in before]
    assert [e for e in pending if e.status == "in_doubt"], "the kill caught no write in flight"
    client = PartnerCenterClient(f"{stack.sandbox_url}/v1.0/engagements/", StaticTokenProvider("settle"))
    try:
        settled = await settle_in_doubt(journal, client)
    finally:
        await client.aclose()
    entries = [e for e in await journal.recent(1000, any_actor=True) if e.id not in before]
    assert not [e for e in entries if e.status in ("pending", "in_doubt")], [
        (s.entry_id, s.how) for s in settled
    ]

    # nothing lost: every acknowledged write is applied in the journal, with its value
    by_id = {e.id: e for e in entries}
    for change_id, (referral, value) in outcome.acknowledged.items():
        entry = by_id[change_id]
        assert entry.status == "applied" and entry.referral_id == referral
        assert entry.operations[0]["value"] == value
    # nothing duplicated: each value written once, and the service took exactly the journal's writes
    applied = sorted((e for e in entries if e.status == "applied" and e.kind == "update"), key=lambda e: e.id)
    values = Counter(e.operations[0]["value"] for e in applied)
    assert values and max(values.values()) == 1
    patches = _service_patches(stack.root / "sandbox.db")
    per_referral = Counter(e.referral_id for e in applied)
    touched = {e.referral_id for e in entries}
    for referral in touched:
        assert patches.get(referral, 0) - baseline.get(referral, 0) == per_referral.get(referral, 0), referral
    # the journal matches the service: each referral holds its last applied journal value
    current = _service_values(stack.root / "sandbox.db")
    for referral in touched:
        mine = [e for e in applied if e.referral_id == referral]
        if mine:
            assert current[referral] == mine[-1].operations[0]["value"], referral
    stack.reap_left()
    stack.start_replica(1)  # back to three for what follows

    # 50 people are 50 principals: every write is journaled as the person who made it
    principals = {stack.principal(p) for p in range(PEOPLE)}
    assert {e.actor_id for e in entries} == principals
    for change_id, person in outcome.writers.items():
        assert by_id[change_id].actor_id == stack.principal(person)
        assert by_id[change_id].actor_name == stack.identity.people[person].upn
    # ... and each person's recent_changes, from any replica, lists exactly their own
    everyone = await Journal(store).recent(1000, any_actor=True)
    asking = Workload(stack.url, stack.token)
    async with httpx.AsyncClient(timeout=60) as http:
        for person in range(PEOPLE):
            listed = await asking.call(http, "recent_changes", {}, person=person)
            shown = re.findall(r"^change_id (\d+) ", "\n".join(listed.get("changes", [])), re.M)
            theirs = [e.id for e in everyone if e.actor_id == stack.principal(person)][:20]
            assert theirs and sorted(map(int, shown)) == sorted(theirs), (person, listed)
    await store.close()
    # each person's on-behalf-of token: obtained from the identity provider once, on whichever
    # replica served them first, then taken from the shared store by every replica
    obo = stack.identity.idp.grants.get(OBO_GRANT, 0) - grants_before
    cached = await _fetch(stack, "SELECT person, sealed FROM token_caches")
    assert {r["person"] for r in cached} == principals
    for row in cached:  # sealed: no token, no name readable at rest
        assert not [
            m for m in (b"AccessToken", b"RefreshToken", b"contoso.example") if m in bytes(row["sealed"])
        ]
    # (person 0 had theirs from the tests before; one more is allowed: the killed replica may have
    # died between obtaining a person's token and storing it. Unshared, it would be one a replica.)
    assert PEOPLE - 1 <= obo <= PEOPLE, obo
    print(
        f"\nFAULT RUN calls={outcome.calls} acknowledged={len(outcome.acknowledged)} unknown={len(outcome.unknown)}"
        f" retries={outcome.retries} people={len({e.actor_id for e in entries})} obo={obo}"
        f" settled={[(s.status, s.how) for s in settled]}"
    )


async def test_an_approval_previewed_by_one_person_cannot_be_redeemed_by_another(stack: Stack) -> None:
    ada, bob = PEOPLE, PEOPLE + 1  # two people of the team
    direct = _replicas(stack)
    referral = _an_active_referral(stack.root / "sandbox.db")
    args = {"referral_id": referral, "changes": [{"field": "deal value", "value": 737373}]}
    patches = _service_patches(stack.root / "sandbox.db").get(referral, 0)
    async with httpx.AsyncClient(timeout=60) as http:
        preview = await direct[0].call(http, "update_field", args, person=ada)
        assert preview["status"] == "confirmation_required", preview
        confirmed = {**args, "confirm_token": preview["confirm_token"]}
        # bob holds ada's token and the same arguments, on another replica: refused, nothing written
        for replica in (direct[2], direct[1]):
            refused = await replica.call(http, "update_field", confirmed, person=bob)
            assert "issued to another session" in refused.get("error", ""), refused
        assert _service_patches(stack.root / "sandbox.db").get(referral, 0) == patches
        # bob's attempts did not spend it: ada redeems it on a third replica
        done = await direct[1].call(http, "update_field", confirmed, person=ada)
        assert done["status"] == "applied", done
        assert _service_patches(stack.root / "sandbox.db").get(referral, 0) == patches + 1
        # the write is ada's: bob's recent changes do not show it, ada's do
        bobs = await direct[2].call(http, "recent_changes", {}, person=bob)
        adas = await direct[0].call(http, "recent_changes", {}, person=ada)
        mark = f"change_id {done['change_id']} "
        assert not any(line.startswith(mark) for line in bobs["changes"]), bobs
        assert any(line.startswith(mark) for line in adas["changes"]), adas


async def test_a_persons_rate_window_is_shared_by_the_replicas_and_spares_everyone_else(stack: Stack) -> None:
    """Runs last on the stack: it restarts the replicas with a window of 3 calls an hour per person,
    and kills them when done."""
    busy, other = PEOPLE + 2, PEOPLE + 3  # neither called before: their windows are empty
    referral = _an_active_referral(stack.root / "sandbox.db")
    get = {"referral_id": referral}
    await anyio.to_thread.run_sync(lambda: stack.restart_replicas(rate_limit_calls=3, rate_limit_window=3600))
    try:
        assert await _window(stack, busy) == await _window(stack, other) == 0
        direct = _replicas(stack)
        async with httpx.AsyncClient(timeout=60) as http:
            # one call on each replica: each is counted in the one window the replicas share
            for n, replica in enumerate(direct, 1):
                got = await replica.call(http, "get_referral", get, person=busy)
                assert got.get("id") == referral, got
                assert await _window(stack, busy) == n
            # the window is full: the next call, through nginx to whichever replica, waits for it
            # (an hour) and sends nothing, while another person is served meanwhile
            through = Workload(stack.url, stack.token)
            answers: dict[str, Any] = {}

            async def held_back() -> None:
                async with httpx.AsyncClient(timeout=10) as impatient:
                    try:
                        answers["busy"] = await through.call(impatient, "get_referral", get, person=busy)
                    except Unanswered as exc:
                        answers["busy"] = exc

            async with anyio.create_task_group() as tg:
                tg.start_soon(held_back)
                await anyio.sleep(1)
                answers["other"] = await through.call(http, "get_referral", get, person=other)
                answers["again"] = await direct[2].call(http, "get_referral", get, person=other)
            assert isinstance(answers["busy"], Unanswered), answers["busy"]
            assert answers["other"].get("id") == referral and answers["again"].get("id") == referral, answers
            assert await _window(stack, busy) == 3
            assert await _window(stack, other) == 2
    finally:  # the held-back call sleeps in a replica for an hour: nothing follows on this stack (the
        # benchmark's test starts its own), so its replicas are killed, not started again to drain it
        for index in range(stack.replicas):
            if stack.replica_running(index):
                stack.kill_replica(index)


async def _fetch(stack: Stack, query: str, *args: Any) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(stack.database_url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def _window(stack: Stack, person: int) -> int:
    """How many Partner Center calls the shared store counts in ``person``'s current window."""
    rows = await _fetch(
        stack,
        "SELECT COUNT(*) AS n FROM rate_events WHERE bucket=$1",
        f"partner-center:{stack.principal(person)}",
    )
    return int(rows[0]["n"])


def _service_patches(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT referral_id, COUNT(*) FROM writes WHERE kind='patch' GROUP BY referral_id"
        )
        return {r[0]: int(r[1]) for r in rows}


def _an_active_referral(db: Path) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return str(
            conn.execute("SELECT id FROM referrals WHERE status='Active' ORDER BY seq LIMIT 1").fetchone()[0]
        )


def _service_values(db: Path) -> dict[str, Any]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {r[0]: r[1] for r in conn.execute("SELECT id, deal_value FROM referrals")}


def test_the_scale_benchmark_runs_and_renders(tmp_path: Path) -> None:
    """bench/scale.py at toy sizes: both deployments measured, every figure present (nothing compared)."""
    need_stack_tools()
    from bench import scale

    # toy sizes, the check too (warm-up as long as the run): 24 calls let each person search, get and
    # update (preview + confirm) once or more; at 12 a loaded machine saw no update answered (fc10)
    results = scale.run(people=4, calls=24, store_ops=5, sandbox_size=60, check_calls=24)
    for label in ("sqlite", "postgres"):
        assert results[label]["throughput"] > 0 and results[label]["latency"]["update"]["n"] > 0
    assert set(results["store"]["postgres"]) == {"journal", "approval", "rate", "read"}
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## 6. Sandbox at scale\n\nkept\n")
    scale.write_section(doc, scale.render(results))
    text = doc.read_text()
    assert "kept" in text and f"## {scale.TITLE}" in text and "throughput (tool calls/s)" in text
    assert "**The model's check** (`bench/pinned.py`)" in text or "**The model's check** was not run" in text
    scale.write_section(doc, ["again"])  # replaced, not appended twice
    assert doc.read_text().count(f"## {scale.TITLE}") == 1 and "again" in doc.read_text()
