"""Operating the team deployment (issue 23), through nginx and three `pcref-mcp team` replicas over
PostgreSQL, as `deploy/` starts it:

- readiness: every replica's ``/readyz`` (and nginx's) goes unready while PostgreSQL is down and
  ready again after, while ``/healthz`` stays alive;
- metrics: the replicas' ``/metrics`` (their own token; summed over the replicas) count a scripted
  workload exactly: writes by outcome, approvals by path and decision, tool calls by outcome; no
  person, referral id or token is a label; nginx's request id reaches the replica and comes back;
- admin revoke: a signed-in person is refused on every replica within seconds, everyone else served;
  so is a signed-in OAuth client (proxy mode: it signed in through nginx, the replicas being the
  authorization server), while the same person's other client is served and the revoked client's
  refresh handle is refused;
- graceful stop and key rotation: two rolling restarts (SIGTERM, drain, start, ready, next) of all
  three replicas under a 20-person workload, rotating the store key: each exits cleanly, nothing
  acknowledged is lost, nothing is written twice, nothing is left pending or in doubt, the service
  took exactly the journal's writes, and nobody was signed out.

Run by `make e2e` (PCREF_E2E_REQUIRED=1: a missing nginx or PostgreSQL fails).
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import httpx
import pytest

from deploy.stack import Stack
from deploy.workload import Outcome, Workload
from tests.e2e.servers import need_stack_tools
from tests.serving import INITIALIZE, MCP_HEADERS

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

PEOPLE = 20  # the workload's people; one more, never in it, is revoked
SLOW_PARTNER_CENTER_MS = 1000  # the sandbox's latency while the replicas are restarted under load
AFTER = 4 * PEOPLE  # the workload's calls after the rotation: a search, a get and an update each
OBO_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    need_stack_tools()
    root = Path(tempfile.mkdtemp(prefix="pcref-e2e-ops-"))
    with Stack(
        root,
        replicas=3,
        sandbox_size=300,
        rate_limit_calls=1_000_000,
        team=True,
        proxy=True,  # the replicas are the authorization server too: OAuth clients sign in through nginx
        people=PEOPLE + 2,  # one more revoked as a person, one whose client is revoked
        # the workload confirms with tokens (it has no person to open a page)
        extra_env={"PCREF_APPROVAL_POLICY": "token", "PCREF_DRAIN_SECONDS": "30"},
    ) as running:
        yield running


# one client for the module's many probes (each httpx.get builds one and its TLS context: ~30 ms of
# CPU); no connection kept alive, so each probe is a fresh connection, as a load balancer's is
_HTTP = httpx.Client(timeout=10, trust_env=False, limits=httpx.Limits(max_keepalive_connections=0))


def _get(url: str, **headers: str) -> httpx.Response:
    return _HTTP.get(url, headers=headers)


def _readiness(stack: Stack) -> list[httpx.Response]:
    """Every replica's /readyz, asked at once: with the store down each answer takes the store
    probe's bound (2 s), which asked one after another would take three times over."""
    with ThreadPoolExecutor(stack.replicas) as pool:
        return list(pool.map(lambda i: _get(stack.replica_url(i, "/readyz")), range(stack.replicas)))


def _statuses(responses: list[httpx.Response]) -> list[int]:
    return [r.status_code for r in responses]


def _wait_for(predicate: object, what: str, timeout: float = 60.0) -> None:
    """Until ``predicate()`` holds (a bound so a broken stack fails, not a timing assertion)."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.2)


def _scrape(stack: Stack) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of every replica's /metrics, summed over the replicas."""
    total: Counter[tuple[str, frozenset[tuple[str, str]]]] = Counter()
    for i in range(stack.replicas):
        got = _get(stack.replica_url(i, "/metrics"), Authorization=f"Bearer {stack.metrics_token}")
        assert got.status_code == 200, got.text
        for line in got.text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            head, _, value = line.rpartition(" ")
            name = head.split("{")[0]
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', head))
            total[(name, labels)] += float(value)
    return dict(total)


def _delta(before: dict, after: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_readyz_goes_unready_while_postgresql_is_down_and_ready_after(stack: Stack) -> None:
    assert stack.postgres is not None
    assert _statuses(_readiness(stack)) == [200, 200, 200]
    through = _get(stack.url.removesuffix("/mcp") + "/readyz")
    assert through.status_code == 200 and through.json()["status"] == "ready"
    stack.postgres.stop()
    try:
        answers: list[httpx.Response] = []

        def unready() -> bool:
            answers[:] = _readiness(stack)
            return _statuses(answers) == [503, 503, 503]

        _wait_for(unready, "every replica unready")
        down = answers[0].json()  # the answer that said so
        assert down["store"] == "unreachable" and down["status"] == "unready", down
        assert _get(stack.url.removesuffix("/mcp") + "/readyz").status_code == 503  # none is ready
        assert [_get(stack.replica_url(i, "/healthz")).status_code for i in range(3)] == [200, 200, 200]
    finally:
        stack.postgres.start()
    _wait_for(lambda: _statuses(_readiness(stack)) == [200, 200, 200], "every replica ready again")


async def test_metrics_count_a_scripted_workload_exactly(stack: Stack) -> None:
    # metrics are not served through nginx, nor without their token
    assert _get(stack.url.removesuffix("/mcp") + "/metrics").status_code == 404
    assert _get(stack.replica_url(0, "/metrics")).status_code == 401
    assert _get(stack.replica_url(0, "/metrics"), Authorization=f"Bearer {stack.token(0)}").status_code == 401
    before = _scrape(stack)
    people, client = 6, Workload(stack.url, stack.token)
    found: list[str] = []
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
        page = await client.call(http, "search_referrals", {"filters": {"status": ["Active"]}, "limit": 50})
        found = [row["id"] for row in page["rows"]][: people * 2]
        tokens = []
        for person in range(people):
            args = {
                "referral_id": found[person],
                "changes": [{"field": "deal value", "value": 880000 + person}],
            }
            preview = await client.call(http, "update_field", args, person=person)
            assert preview["status"] == "confirmation_required", preview
            tokens.append((args, preview["confirm_token"]))
        for person, (args, token) in enumerate(tokens[:4]):  # four confirmed, two left unconfirmed
            done = await client.call(http, "update_field", {**args, "confirm_token": token}, person=person)
            assert done["status"] == "applied", done
        other = {"referral_id": found[0], "changes": [{"field": "deal value", "value": 889999}]}
        spent = await client.call(http, "update_field", {**other, "confirm_token": tokens[0][1]})
        assert "already used" in spent.get("error", ""), spent
        # nginx's request id is the replica's: on the response and in the error text a person reads
        body = {
            "jsonrpc": "2.0",
            "id": 9,
            "method": "tools/call",
            "params": {"name": "get_referral", "arguments": {"referral_id": "no-such-referral"}},
        }
        answer = await http.post(stack.url, json=body, headers=client._headers_of(0))
        request_id = answer.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id  # nginx's $request_id
        assert f"(request id {request_id})" in answer.text
    after = _scrape(stack)
    assert _delta(before, after, "pcref_approvals_total", path="token", decision="asked") == people
    assert _delta(before, after, "pcref_approvals_total", path="token", decision="approved") == 4
    assert _delta(before, after, "pcref_approvals_total", path="token", decision="refused") == 1
    assert _delta(before, after, "pcref_writes_started_total", kind="update") == 4
    assert _delta(before, after, "pcref_writes_total", outcome="applied") == 4
    for outcome in ("failed", "in_doubt", "partial"):
        assert _delta(before, after, "pcref_writes_total", outcome=outcome) == 0
    assert _delta(before, after, "pcref_tool_calls_total", tool="update_field", outcome="ok") == people + 4
    assert _delta(before, after, "pcref_tool_calls_total", tool="update_field", outcome="error") == 1
    assert _delta(before, after, "pcref_tool_calls_total", tool="get_referral", outcome="error") == 1
    assert _delta(before, after, "pcref_partner_center_requests_total", method="PATCH", status="2xx") == 4
    assert _delta(before, after, "pcref_tool_call_seconds_count", tool="update_field") == people + 5
    # bounded labels: no person, referral id or token anywhere in any replica's figures
    text = "\n".join(
        _get(stack.replica_url(i, "/metrics"), Authorization=f"Bearer {stack.metrics_token}").text
        for i in range(3)
    )
    assert stack.identity is not None
    for secret in [*found, *(t for _, t in tokens), stack.token(0)]:
        assert secret not in text
    for person in stack.identity.people[:people]:
        assert person.oid not in text and person.upn not in text


async def test_an_admin_revoke_cuts_a_signed_in_person_off_on_every_replica_within_seconds(
    stack: Stack,
) -> None:
    import time

    from pcref_mcp.store.postgres import PostgresStore
    from pcref_mcp.team.revocation import Revocations

    assert stack.database_url is not None and stack.identity is not None
    revoked, other = PEOPLE, 0
    direct = [Workload(stack.replica_url(i), stack.token) for i in range(3)]
    ask = {"filters": {"status": ["Active"]}, "limit": 1}
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
        for replica in direct:  # signed in and served everywhere (each replica caches "not revoked")
            assert "rows" in await replica.call(http, "search_referrals", ask, person=revoked)
        store = PostgresStore(stack.database_url, secret=stack.key.encode())
        started = time.monotonic()
        await Revocations(store).revoke_person(stack.principal(revoked))
        await store.close()
        refused: dict[int, float] = {}
        with anyio.fail_after(30):  # a bound, so a broken revoke fails; the figure is printed
            while len(refused) < 3:
                for i, replica in enumerate(direct):
                    if i not in refused:
                        got = await replica.call(http, "search_referrals", ask, person=revoked)
                        if "revoked by its administrator" in got.get("error", ""):
                            # a 401: the client signs the person in again (not a JSON-RPC error)
                            assert got["error"].startswith("HTTP 401"), got
                            refused[i] = time.monotonic() - started
                await anyio.sleep(0.1)
        for replica in direct:  # everyone else is served on every replica
            assert "rows" in await replica.call(http, "search_referrals", ask, person=other)
    print(f"\nREVOKE refused on replicas after {sorted(round(t, 2) for t in refused.values())} s")


class _Public:
    """nginx's address, as the proxy-mode client sees the authorization server (tests.team's Dance)."""

    def __init__(self, stack: Stack) -> None:
        self.url, self.mcp = stack.url.removesuffix("/mcp"), stack.url


async def test_an_admin_revoke_cuts_a_signed_in_client_off_on_every_replica_within_seconds(
    stack: Stack,
) -> None:
    """Two OAuth clients of one person sign in through nginx (register, authorize, consent, the
    identity provider, the callback, the code: whichever replica nginx picks for each step) and are
    served on every replica; the operator revokes one client (``pcref-mcp admin revoke --client``, as
    its Revocations call); every replica refuses that client's token within seconds (401
    invalid_token: it signs in again), its refresh handle is refused, and the other client is served."""
    import time

    from pcref_mcp.store.postgres import PostgresStore
    from pcref_mcp.team.revocation import Revocations
    from tests.team.test_team_proxy import Dance, pkce

    assert stack.database_url is not None and stack.identity is not None
    login = stack.identity.people[PEOPLE + 1].login  # never in the workload, nor revoked as a person
    dance = Dance(_Public(stack), stack.identity)  # type: ignore[arg-type]
    signed: dict[str, tuple[str, dict[str, str]]] = {}
    before = _scrape(stack)
    with dance.http:
        for name in ("Revoked client", "Other client"):
            client_id = dance.register(client_name=name).json()["client_id"]
            verifier, challenge = pkce()
            back = dance.sign_in(dance.authorize(client_id, challenge).headers["location"], login)
            tokens = dance.redeem(client_id, back["code"], verifier)
            assert tokens.status_code == 200, tokens.text
            signed[name] = (client_id, tokens.json())
        (revoked_id, revoked), (_, other) = signed["Revoked client"], signed["Other client"]
        bearer = {n: {"Authorization": f"Bearer {t['access_token']}"} for n, (_, t) in signed.items()}

        def status(replica: int, name: str) -> int:
            headers = {**MCP_HEADERS, **bearer[name]}
            return dance.http.post(stack.replica_url(replica), json=INITIALIZE, headers=headers).status_code

        # two sign-ins through the proxy, whichever replica served their callback; calls are none
        signs = _delta(before, _scrape(stack), "pcref_sign_ins_total", via="proxy", outcome="completed")
        assert signs == 2
        # served everywhere (each replica caches "not revoked" and the token's client)
        assert [status(i, n) for i in range(3) for n in signed] == [200] * 6
        store = PostgresStore(stack.database_url, secret=stack.key.encode())
        started = time.monotonic()
        dropped = await Revocations(store).revoke_client(revoked_id)
        await store.close()
        assert dropped["refresh"] == 1 and dropped["client"] == 1 and dropped["consent"] == 1, dropped
        refused: dict[int, float] = {}
        with anyio.fail_after(30):  # a bound, so a broken revoke fails; the figure is printed
            while len(refused) < 3:
                for i in range(3):
                    if i not in refused and status(i, "Revoked client") == 401:
                        refused[i] = time.monotonic() - started
                await anyio.sleep(0.1)
        assert [status(i, "Other client") for i in range(3)] == [200] * 3  # the person's other client
        again = dance.token(
            grant_type="refresh_token", refresh_token=revoked["refresh_token"], client_id=revoked_id
        )
        assert again.status_code in (400, 401) and again.json()["error"] in (
            "invalid_grant",
            "invalid_client",
        )
        kept = dance.token(
            grant_type="refresh_token",
            refresh_token=other["refresh_token"],
            client_id=signed["Other client"][0],
        )
        assert kept.status_code == 200, kept.text
    print(f"\nCLIENT REVOKE refused on replicas after {sorted(round(t, 2) for t in refused.values())} s")


async def test_a_key_rotation_by_rolling_restarts_under_load_loses_duplicates_pends_and_signs_out_nothing(
    stack: Stack,
) -> None:
    """The 20-person workload runs while every replica is restarted twice, one at a time (SIGTERM,
    drain, start, ready): first so that the new store key opens everywhere (still sealing with the
    old), then sealing with the new (the old still opens); then the stored secrets are re-sealed.
    Partner Center is slow meanwhile, so each replica stops with calls in flight."""
    import secrets

    from pcref_mcp.store.postgres import PostgresStore
    from pcref_mcp.writes.journal import Journal

    assert stack.database_url is not None
    store = PostgresStore(stack.database_url, secret=stack.key.encode())
    journal = Journal(store)
    before = {e.id for e in await journal.recent(5000, any_actor=True)}
    baseline = _service_patches(stack.root / "sandbox.db")
    pids_before = stack.replica_pids()
    outcomes: list[Outcome] = []
    codes: list[int] = []
    signed_in = anyio.Event()
    taken = [0]  # calls the workload has started so far
    assert stack.identity is not None
    old, new = stack.key, secrets.token_urlsafe(32)
    grants: list[int] = []

    async def count(done: int) -> None:
        taken[0] = done

    # one workload, on through both restarts without a pause, then AFTER calls more: its budget is
    # set once the restarts are over
    load = Workload(stack.url, stack.token, people=PEOPLE, calls=1_000_000, on_progress=count)

    async def work() -> None:
        # everyone signs in first (a search each: their token caches stored), then the workload runs
        outcomes.append(await Workload(stack.url, stack.token, people=PEOPLE, calls=PEOPLE).run())
        signed_in.set()
        outcomes.append(await load.run())

    async def roll() -> None:
        await signed_in.wait()
        assert stack.identity is not None
        grants.append(stack.identity.idp.grants.get(OBO_GRANT, 0))
        # Partner Center answers in a second meanwhile: the people nearly always have a call in
        # flight, so each SIGTERM finds some (writes among them) for the draining replica to see
        # through; and the people, waiting on it, load the machine no more than the restarts need
        await anyio.to_thread.run_sync(lambda: stack.sandbox_faults(latency_ms=SLOW_PARTNER_CENTER_MS))
        stack.extra_env["PCREF_STORE_KEY_PREVIOUS"] = new  # 1: the new key opens everywhere
        codes.extend(await anyio.to_thread.run_sync(stack.rolling_restart))
        stack.key, stack.extra_env["PCREF_STORE_KEY_PREVIOUS"] = new, old  # 2: it seals; the old opens
        codes.extend(await anyio.to_thread.run_sync(stack.rolling_restart))
        await anyio.to_thread.run_sync(lambda: stack.sandbox_faults(clear=True))
        load.budget = taken[0] + AFTER  # everyone works on a while with the rotated key, then stops

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(work)
        tasks.start_soon(roll)
    # each replica stopped itself after draining cleanly (exit status 0): none had to be killed
    # (-9), none died of the signal (143 / -15), and none gave up on a call in flight (1)
    assert codes == [0] * 6, codes
    for index in range(3):
        log = (stack.root / f"replica-{index}.log").read_text(errors="replace")
        assert "stopping: draining" in log and "graceful shutdown exceeded" not in log
    assert all(stack.replica_pids()[i] != pids_before[i] for i in range(3))

    entries = [e for e in await journal.recent(5000, any_actor=True) if e.id not in before]
    await store.close()
    # nobody was signed out: no replica had to ask the identity provider for anyone's token again
    assert stack.identity.idp.grants.get(OBO_GRANT, 0) == grants[0]
    rotated = PostgresStore(stack.database_url, secret=new.encode(), previous=old.encode())
    resealed, unreadable = await rotated.reseal()
    await rotated.close()
    assert resealed >= PEOPLE and unreadable == 0
    acknowledged = {k: v for o in outcomes for k, v in o.acknowledged.items()}
    unknown = [u for o in outcomes for u in o.unknown]
    calls = sum(o.calls for o in outcomes)
    # nothing pending, nothing in doubt: every write a stopping replica had was finished
    assert not [e for e in entries if e.status in ("pending", "in_doubt")], [
        (e.id, e.status, e.error) for e in entries if e.status in ("pending", "in_doubt")
    ]
    # nothing lost: every acknowledged write is applied in the journal, with its value
    by_id = {e.id: e for e in entries}
    for change_id, (referral, value) in acknowledged.items():
        entry = by_id[change_id]
        assert entry.status == "applied" and entry.referral_id == referral
        assert entry.operations[0]["value"] == value
    # nothing duplicated: each value written once, and the service took exactly the journal's writes
    applied = [e for e in entries if e.status == "applied" and e.kind == "update"]
    values = Counter(e.operations[0]["value"] for e in applied)
    assert values and max(values.values()) == 1
    patches = _service_patches(stack.root / "sandbox.db")
    per_referral = Counter(e.referral_id for e in applied)
    for referral in {e.referral_id for e in entries}:
        assert patches.get(referral, 0) - baseline.get(referral, 0) == per_referral.get(referral, 0), referral
    refused = [r for o in outcomes for r in o.refused]
    print(
        f"\nROLLING RESTART calls={calls} acknowledged={len(acknowledged)} "
        f"applied={len(applied)} unknown={len(unknown)} refused={len(refused)} "
        f"retries={sum(o.retries for o in outcomes)} pending=0 in_doubt=0 exit_codes={codes} "
        f"resealed={resealed} obo_grants_during=0"
    )


def _service_patches(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT referral_id, COUNT(*) FROM writes WHERE kind='patch' GROUP BY referral_id"
        )
        return {r[0]: int(r[1]) for r in rows}
