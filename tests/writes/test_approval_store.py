"""The approval store and the plan binding, without MCP: short single-use handles bound to owner, tool,
every byte of the plan and the ETag; kept across processes (restart, two processes racing), keys
rotated, files private."""

from __future__ import annotations

import copy
import multiprocessing
import stat
from pathlib import Path
from typing import Any

import pytest

from pcref_mcp.errors import ConfigError, ConfirmationError, StaleConfirmation
from pcref_mcp.referrals.models import PatchOperation
from pcref_mcp.server.confirmation import plan_fingerprint
from pcref_mcp.writes.approvals import TOKEN_MAX_LENGTH, ApprovalStore, Claims
from pcref_mcp.writes.preview import WritePlan

CLAIMS = Claims(owner="local", tool="update_field", plan="p" * 64, etag='W/"1"')


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(new_store: Any, clock: Clock) -> Any:
    """Over SQLite and over PostgreSQL: the same contract."""
    s = ApprovalStore(new_store(), clock=clock)
    yield s
    await s.aclose()


pytestmark = pytest.mark.anyio


async def test_a_handle_is_short_and_writes_once(store: ApprovalStore) -> None:
    handles = {await store.issue(CLAIMS, ttl=300) for _ in range(50)}
    assert len(handles) == 50
    assert all(len(h) <= TOKEN_MAX_LENGTH and h.isascii() and " " not in h for h in handles)
    handle = handles.pop()
    assert (await store.redeem(handle, CLAIMS)).spent is not None
    with pytest.raises(ConfirmationError, match="already used"):
        await store.redeem(handle, CLAIMS)


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (Claims("local@http:s2", CLAIMS.tool, CLAIMS.plan, CLAIMS.etag), "another session"),
        (Claims(CLAIMS.owner, "create_referral", CLAIMS.plan, CLAIMS.etag), "issued for update_field"),
        (Claims(CLAIMS.owner, CLAIMS.tool, "q" * 64, CLAIMS.etag), "arguments differ"),
    ],
)
async def test_a_handle_is_bound_to_owner_tool_and_plan(
    store: ApprovalStore, other: Claims, message: str
) -> None:
    handle = await store.issue(CLAIMS, ttl=300)
    with pytest.raises(ConfirmationError, match=message):
        await store.redeem(handle, other)
    assert await store.redeem(handle, CLAIMS)  # the refusal did not spend it


async def test_a_changed_etag_is_stale_and_keeps_the_snapshot(store: ApprovalStore) -> None:
    handle = await store.issue(CLAIMS, ttl=300, snapshot={"/details/notes": "old"})
    with pytest.raises(StaleConfirmation):
        await store.redeem(handle, Claims(CLAIMS.owner, CLAIMS.tool, CLAIMS.plan, 'W/"2"'))
    pending = await store.peek(handle)
    assert pending is not None and pending.snapshot == {"/details/notes": "old"} and pending.spent is None


async def test_forged_mistyped_and_expired_handles(store: ApprovalStore, clock: Clock) -> None:
    handle = await store.issue(CLAIMS, ttl=300)
    nonce, _, mac = handle.partition(".")
    for bad in (
        f"{nonce}.{mac[:-1]}A" if not mac.endswith("A") else f"{nonce}.{mac[:-1]}B",
        "x.y",
        "",
        "." * 70,
    ):
        with pytest.raises(ConfirmationError, match="not valid here"):
            await store.redeem(bad, CLAIMS)
    clock.now += 301
    with pytest.raises(ConfirmationError, match="expired"):
        await store.redeem(handle, CLAIMS)


async def test_tokens_survive_a_restart_and_files_are_private(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "data" / "approvals.sqlite3"
    first = ApprovalStore(path, clock=clock)
    handle = await first.issue(CLAIMS, ttl=300)
    first.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for sidecar in path.parent.glob("approvals.sqlite3-*"):
        assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600
    assert handle.partition(".")[0] not in path.read_bytes().decode("latin-1")  # only its hash is kept
    second = ApprovalStore(path, clock=clock)
    assert await second.redeem(handle, CLAIMS)
    second.close()
    third = ApprovalStore(path, clock=clock)
    with pytest.raises(ConfirmationError, match="already used"):
        await third.redeem(handle, CLAIMS)
    third.close()


async def test_keys_rotate_and_the_previous_key_is_accepted_for_the_grace_period(
    new_store: Any, clock: Clock
) -> None:
    store = ApprovalStore(new_store(), clock=clock, key_days=1, grace=3600)
    old = await store.issue(CLAIMS, ttl=3 * 86_400)
    clock.now += 86_400 + 1  # the key is a day old: the next handle gets a new key
    new = await store.issue(CLAIMS, ttl=300)
    assert len(await store.store.keys("approval")) == 2
    await store.purge()
    assert await store.peek(old) is not None  # the previous key still verifies within the grace period
    clock.now += 3601
    await store.purge()
    assert len(await store.store.keys("approval")) == 1
    with pytest.raises(ConfirmationError, match="not valid here"):
        await store.redeem(old, CLAIMS)
    clock.now -= 3601
    assert await store.peek(new) is not None
    await store.aclose()


async def test_reuse_returns_the_open_elicitation_reference_until_it_is_spent(store: ApprovalStore) -> None:
    first = await store.issue(CLAIMS, ttl=300, channel="elicitation", reuse=True)
    assert await store.issue(CLAIMS, ttl=300, channel="elicitation", reuse=True) == first
    assert await store.issue(CLAIMS, ttl=300, reuse=True) != first  # tokens are never shared
    await store.redeem(first, CLAIMS)
    assert await store.issue(CLAIMS, ttl=300, channel="elicitation", reuse=True) != first


ROUNDS = 3


def _redeem_in_process(path: str, inbox: Any, starts: list[Any], results: Any) -> None:
    """One racer for every round: open the store, wait for the start, redeem the round's token, close.
    The processes are spawned once and race in every round (spawning is the slow part: a race of
    fresh processes per round cost 12 spawns, these 4)."""
    import faulthandler
    import sys

    import anyio

    faulthandler.dump_traceback_later(60, repeat=True, exit=False, file=sys.stderr)  # a hang says where
    for round_no, start in enumerate(starts):
        handle = inbox.get(timeout=120)
        store = None
        try:
            store = ApprovalStore(Path(path))
            start.wait()
            anyio.run(store.redeem, handle, CLAIMS)
            results.put((round_no, "won"))
        except ConfirmationError as exc:
            results.put((round_no, str(exc)))
        except Exception as exc:  # any other failure is reported, not lost in the child
            results.put((round_no, f"{type(exc).__name__}: {exc}"))
        finally:
            if store is not None:
                store.close()


async def test_two_processes_racing_to_redeem_one_token_exactly_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "approvals.sqlite3"
    ctx = multiprocessing.get_context("spawn")
    starts, results = [ctx.Event() for _ in range(ROUNDS)], ctx.Queue()
    inboxes = [ctx.Queue() for _ in range(4)]
    procs = [
        ctx.Process(target=_redeem_in_process, args=(str(path), inbox, starts, results)) for inbox in inboxes
    ]
    for p in procs:
        p.start()
    try:
        for round_no in range(ROUNDS):
            store = ApprovalStore(path)
            handle = await store.issue(CLAIMS, ttl=300)
            store.close()
            for inbox in inboxes:
                inbox.put(handle)
            starts[round_no].set()
            answers = [results.get(timeout=120) for _ in procs]  # spawning is slow on a loaded machine
            # (a child that died of SIGBUS once looked like a slow one: see tests/store/test_sqlite_locks.py)
            assert {r for r, _ in answers} == {round_no}, answers
            outcomes = [outcome for _, outcome in answers]
            assert outcomes.count("won") == 1, outcomes
            assert all("already used" in o for o in outcomes if o != "won")
    finally:
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0] * len(procs)


async def test_replicas_racing_to_redeem_one_token_exactly_one_wins(new_store: Any) -> None:
    """Four stores over one database (four replicas): every token is spent by exactly one."""
    import anyio

    replicas = [ApprovalStore(new_store()) for _ in range(4)]
    try:
        for _ in range(5):
            handle = await replicas[0].issue(CLAIMS, ttl=300)
            outcomes: list[str] = []

            async def redeem(
                store: ApprovalStore, handle: str = handle, outcomes: list[str] = outcomes
            ) -> None:
                try:
                    await store.redeem(handle, CLAIMS)
                    outcomes.append("won")
                except ConfirmationError as exc:
                    outcomes.append(str(exc))

            async with anyio.create_task_group() as tg:
                for store in replicas:
                    tg.start_soon(redeem, store)
            assert outcomes.count("won") == 1, outcomes
            assert all("already used" in o for o in outcomes if o != "won")
    finally:
        for store in replicas:
            await store.aclose()


# --- the binding: every byte the executor may send ---------------------------------------------------


def _cosell_plan() -> WritePlan:
    partner = {
        "name": "Fabrikam data platform",
        "customerProfile": {"name": "Fabrikam", "address": {"country": "DE", "city": "Berlin"}},
        "details": {"dealValue": 250000, "currency": "EUR", "notes": "Migration"},
        "team": [{"firstName": "Ana", "email": "ana@fabrikam.example"}],
    }
    microsoft = {
        "engagementId": "{engagementId}",
        "inviteContext": {"notes": "Need a PoC sponsor", "assistanceRequestCode": "ProofOfConceptOrDemo"},
        "customerProfile": {"contacts": [{"firstName": "Ana", "phoneNumber": "+49 30 1234"}]},
        "details": {"products": ["Azure"], "dealValue": 250000},
    }
    return WritePlan(
        tool="create_referral",
        kind="create",
        summary="Create a co-sell referral",
        bodies=[partner, microsoft],
        external_ref="pcref-1",
        etag=None,
    )


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path]


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    return f"{value}!" if value else "x"


async def test_any_changed_byte_of_any_body_is_refused(store: ApprovalStore) -> None:
    plan = _cosell_plan()
    claims = Claims("local", plan.tool, plan_fingerprint(plan), "")
    handle = await store.issue(claims, ttl=300)
    checked = 0
    for index, body in enumerate(plan.bodies):
        for path in _leaves(body):
            other = copy.deepcopy(plan)
            target: Any = other.bodies[index]
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = _changed(target[path[-1]])
            other_claims = Claims("local", plan.tool, plan_fingerprint(other), "")
            with pytest.raises(ConfirmationError, match="arguments differ"):
                await store.redeem(handle, other_claims)
            checked += 1
    # a body added, dropped or reordered is another plan too
    for bodies in (plan.bodies[:1], [*plan.bodies, {}], plan.bodies[::-1]):
        other = copy.deepcopy(plan)
        other.bodies = copy.deepcopy(bodies)
        assert plan_fingerprint(other) != claims.plan
    assert checked >= 12
    assert await store.redeem(handle, claims)  # the exact plan still goes through, once


def test_the_binding_covers_operations_kind_referral_undo_and_etag() -> None:
    base = WritePlan(
        tool="update_field",
        kind="update",
        summary="s",
        referral_id="r1",
        etag='W/"1"',
        operations=[PatchOperation(op="replace", path="/details/notes", value="a")],
    )
    digest = plan_fingerprint(base)
    variants = [
        {"operations": [PatchOperation(op="replace", path="/details/notes", value="b")]},
        {"operations": [PatchOperation(op="add", path="/details/notes", value="a")]},
        {"kind": "undo"},
        {"referral_id": "r2"},
        {"undo_of": 3},
        {"etag": 'W/"2"'},
        {"tool": "undo_change"},
    ]
    for change in variants:
        other = copy.deepcopy(base)
        for key, value in change.items():
            setattr(other, key, value)
        assert plan_fingerprint(other) != digest, change
    # what is only shown (summary, warnings) does not change what is sent
    shown = copy.deepcopy(base)
    shown.summary, shown.warnings = "other words", ["a warning"]
    assert plan_fingerprint(shown) == digest


def test_a_planted_link_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("")
    for name in ("approvals.sqlite3", "approvals.sqlite3-wal"):
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        (folder / name).symlink_to(target)
        with pytest.raises(ConfigError, match="symbolic link"):
            ApprovalStore(folder / "approvals.sqlite3")
    assert target.read_text() == ""
