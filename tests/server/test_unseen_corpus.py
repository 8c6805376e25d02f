"""Issue 21's acceptance on a corpus the team had not seen (``unseen_cases.py``), with a repair check.

Every case runs on its own copy of the seeded sandbox, today being Monday 2026-12-07 (UTC). A write's
``confirmation_required`` answer is approved, as the person would (the single-user ``token`` policy:
the same call again with the confirm token); approval is not a refusal. Each case is then judged:

- **done**: the call itself did what the person meant (``Case.meant`` holds; no other referral changed).
- **silent**: it did something else, or only part of it, and no refusal said so: a defect.
- **refused**: the answer was an error. Its suggestion is followed literally:
  - one suggested call (``Corrected call: …``, or the only call offered): followed (and approved).
  - several (the person must choose): the one whose label or arguments hold the person's answer
    (``Case.choose``) is followed. **Asking counts as repaired when following the offered call that
    matches the person's choice does what was meant.**
  - a read-only look-up (``recent_changes {}`` for a change id): repaired when its answer shows what the
    person needs (``Case.choose``).
  A followed call that is refused again is judged the same way (three steps at most). Then:
  **repaired** (what was meant now holds), **broken** (it did something else: the suggestion silently
  changed the meaning; a defect, counted with silent), **unhelpful** (no usable suggestion).
- **refused right** (``Case.refuse``: only a refusal is right): the refusal says what it must, nothing
  changed, and no single call it suggests writes (a choice between readings is asking, and fine).
- **raw**: validation text of the SDK or pydantic reached the model; **crash**: the call raised.

``summary`` prints the table recorded in docs/model-contract.md; the test asserts issue 21's
thresholds: 0 silent, 0 raw, 0 crash, at most 2 % unhelpful, at least 80 % of repairable refusals
repaired. Run: ``.venv/bin/python -m pytest -q tests/server/test_unseen_corpus.py -s`` (both
``PCREF_SANDBOX_PROFILE=strict`` and ``lenient``).
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from pcref_mcp.config import Settings
from pcref_mcp.referrals import when
from pcref_mcp.sandbox import SandboxConfig, create_app
from pcref_mcp.sandbox.app import DEFAULT_ORDER
from pcref_mcp.sandbox.clock import ManualClock
from pcref_mcp.server.app import build_server
from pcref_mcp.server.runtime import Runtime
from pcref_mcp.writes import feed
from tests.server.conftest import START, fill_roles
from tests.server.unseen_cases import CASES, ROLES, Answer, Case, Day, Has, New, Ref

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # Monday
READ_TOOLS = frozenset({"search_referrals", "get_referral", "recent_changes", "search", "fetch"})
RAW = ("validation error", "input should be", "type=", "pydantic", "traceback", "field required")
MAX_STEPS = 3


class _Frozen(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
        return NOW if tz is None else NOW.astimezone(tz)


@pytest.fixture
def frozen_today(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(when, "now", lambda: NOW)
    monkeypatch.setattr(feed, "datetime", _Frozen)


# --- one case's world ------------------------------------------------------------------------------


class World:
    """A copy of the seeded sandbox, a server over it and a client; the person's answers."""

    def __init__(self, template: Path, where: Path) -> None:
        where.mkdir()
        shutil.copy(template, where / "sandbox.db")
        self.app = create_app(
            SandboxConfig(db_path=where / "sandbox.db", seed_size=60, clock=ManualClock(START), rate_limit=0)
        )
        self.settings = Settings(
            journal_path=where / "journal.sqlite3", sandbox_db=where / "sandbox.db", rate_limit_calls=10_000
        )
        self.runtime = Runtime(self.settings, sandbox_app=self.app)
        self.server = build_server(self.settings, runtime=self.runtime)
        self.texts: list[str] = []  # every answer the model read
        self._decoded: dict[str, dict[str, Any]] = {}  # stored text -> its document (see docs)

    def docs(self) -> dict[str, dict[str, Any]]:
        """Every stored referral by id. Read before and after every case, so each stored text is
        decoded once per world: a changed referral is new text, decoded then; the same text gives the
        same document object, which the judging only reads (compares, looks into), never changes."""
        state = self.app.state.sandbox
        state.sweep()
        docs: dict[str, dict[str, Any]] = {}
        for raw in state.store.query("1=1", [], DEFAULT_ORDER, 1000, 0):
            doc = self._decoded.get(raw)
            if doc is None:
                doc = self._decoded[raw] = json.loads(raw)
            docs[doc["id"]] = doc
        return docs

    async def call(self, client: Client, tool: str, args: dict[str, Any]) -> tuple[bool, dict[str, Any], str]:
        """(error?, structured content, everything the model reads), approving a preview as the person."""
        error, data, text = await self._once(client, tool, args)
        if not error and data.get("status") == "confirmation_required" and data.get("confirm_token"):
            error, data, text = await self._once(
                client, tool, {**args, "confirm_token": data["confirm_token"]}
            )
        return error, data, text

    async def _once(
        self, client: Client, tool: str, args: dict[str, Any]
    ) -> tuple[bool, dict[str, Any], str]:
        result = await client.call_tool(tool, args)
        parts = []
        for item in result.content:
            parts.append(
                getattr(item, "text", None) or str(getattr(getattr(item, "resource", None), "text", ""))
            )
        text = "\n".join(parts)
        self.texts.append(text)
        return bool(result.is_error), dict(result.structured_content or {}), text


# --- suggestions -----------------------------------------------------------------------------------


def suggestions(text: str, tools: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every call an answer suggests: (its label, tool, arguments), in order."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    decoder = json.JSONDecoder()
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, tools)) + r") (\{)")
    end = 0
    for m in pattern.finditer(text):
        if m.start() < end:
            continue
        try:
            args, stop = decoder.raw_decode(text, m.start(2))
        except json.JSONDecodeError:
            continue
        before = text[end : m.start()]
        label = re.split(r"(?<=[.;)])\s", before.strip())[-1] if before.strip() else ""
        found.append((label.strip(), m[1], args))
        end = stop
    return found


# --- what was meant --------------------------------------------------------------------------------


def _at(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def _holds(value: Any, want: Any) -> bool:
    if isinstance(want, Day):
        return isinstance(value, str) and value.startswith(want.iso)
    if isinstance(want, Has):
        text = (
            json.dumps(value, ensure_ascii=False).casefold()
            if not isinstance(value, str)
            else value.casefold()
        )
        return all(w.casefold() in text for w in want.words) and not any(w in text for w in want.without)
    if isinstance(want, int | float) and not isinstance(want, bool):
        return isinstance(value, int | float) and abs(value - want) < 1e-6
    return bool(value == want)


def _rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = data.get("rows") or data.get("results") or []
    return [r for r in rows if isinstance(r, dict)]


def meant(
    case: Case,
    roles: dict[str, str],
    before: dict[str, Any],
    after: dict[str, Any],
    data: dict[str, Any],
    text: str,
) -> str | None:
    """None when what the person meant holds; else what does not."""
    changed = {i for i in before if i in after and before[i] != after[i]}
    created = [d for i, d in after.items() if i not in before]
    expected_changed: set[str] = set()
    for check in case.meant:
        if isinstance(check, Ref):
            rid = roles[check.role]
            expected_changed.add(rid)
            for path, want in check.fields.items():
                if not _holds(_at(after[rid], path), want):
                    return f"{check.role} {path} = {_at(after[rid], path)!r}, meant {want!r}"
        elif isinstance(check, New):
            match = [d for d in created if d.get("name") == check.name]
            if not match:
                return f"no referral named {check.name!r} created ({[d.get('name') for d in created]})"
            for path, want in check.fields.items():
                if not _holds(_at(match[0], path), want):
                    return f"new {path} = {_at(match[0], path)!r}, meant {want!r}"
        elif isinstance(check, Answer):
            problem = _answer(check, roles, data, text)
            if problem:
                return problem
    if changed != expected_changed:
        return f"changed {sorted(changed)}, meant {sorted(expected_changed)}"
    if len(created) != sum(c.referrals for c in case.meant if isinstance(c, New)):
        return f"{len(created)} referral(s) created"
    return None


def _answer(check: Answer, roles: dict[str, str], data: dict[str, Any], text: str) -> str | None:
    rows = _rows(data)
    listed = {str(r.get("id")) for r in rows}
    whole = (json.dumps(data, ensure_ascii=False) + "\n" + text).casefold()
    for role in check.ids:
        if roles[role] not in listed:
            return f"{role} not listed"
    for role in check.not_ids:
        if roles[role] in listed:
            return f"{role} listed"
    for key, want in check.every.items():
        if not rows or any(r.get(key) != want for r in rows):
            return f"not every row has {key} {want!r}: {[r.get(key) for r in rows][:5]}"
    if check.count is not None and len(rows) != check.count:
        return f"{len(rows)} rows, meant {check.count}"
    if check.csv_rows is not None:
        lines = [x for x in text.splitlines() if x.strip()]
        header = [i for i, x in enumerate(lines) if x.startswith("id,") or x.startswith("\ufeffid,")]
        if not header or len(lines) - header[0] - 1 != check.csv_rows:
            return f"CSV rows: {len(lines) - header[0] - 1 if header else 'no CSV'}, meant {check.csv_rows}"
    for words in check.says:
        if fill_roles(words, roles).casefold() not in whole:
            return f"answer does not say {words!r}"
    return None


# --- judging ---------------------------------------------------------------------------------------


async def judge(
    case: Case, world: World, client: Client, roles: dict[str, str], tools: list[str]
) -> tuple[str, str]:
    """How the call and, if it was refused, its suggestion ended (module docstring)."""
    setup_ids: list[str] = []
    for tool, args in case.setup:
        error, data, text = await world.call(client, tool, _fill(args, roles))
        assert not error, text
        setup_ids += [f"change_id {data['change_id']}"] if data.get("change_id") is not None else []
        setup_ids += [str(data["batch_id"])] if data.get("batch_id") is not None else []
    world.texts.clear()
    everyone = {**roles, "$setup": setup_ids[0] if setup_ids else "$setup"}
    choose = fill_roles(case.choose or ("$setup" if case.setup else ""), everyone) or None
    before = world.docs()
    args = _fill(case.args, roles)
    try:
        error, data, text = await world.call(client, case.tool, args)
    except Exception as exc:
        return "crash", repr(exc)[:300]
    if not error:
        after = world.docs()
        if case.refuse is not None:
            if before != after or not all(w.casefold() in text.casefold() for w in case.refuse):
                return "silent", f"done where only a refusal is right: {text[:300]}"
            return "refused right", "answered with what it must say"
        problem = meant(case, roles, before, after, data, text)
        return ("silent", problem) if problem else ("done", "")
    if case.refuse is not None:
        return await _refused_right(case, world, client, before, text, tools)
    for step in range(MAX_STEPS):
        offered = suggestions(text, tools)
        if not offered:
            return "unhelpful", f"step {step}: no suggestion: {text[:400]}"
        if len(offered) > 1:
            picked = [
                o
                for o in offered
                if choose and (choose.casefold() in (o[0] + json.dumps(o[2], ensure_ascii=False)).casefold())
            ]
            if len(picked) != 1:
                return (
                    "unhelpful",
                    f"step {step}: {len(offered)} calls, none (or several) for {choose!r}: {text[:400]}",
                )
            offered = picked
        _, tool, args = offered[0]
        try:
            error, data, text = await world.call(client, tool, args)
        except Exception as exc:
            return "crash", f"following {tool}: {exc!r}"[:300]
        if tool in READ_TOOLS and case.tool not in READ_TOOLS:  # a look-up: does it show what is needed?
            if not error and choose and choose.casefold() in text.casefold():
                return "repaired", f"look-up {tool} shows {choose!r}"
            return "unhelpful", f"look-up {tool} does not show {choose!r}: {text[:300]}"
        if not error:
            problem = meant(case, roles, before, world.docs(), data, text)
            return (
                ("broken", f"followed {tool} {json.dumps(args)[:200]}: {problem}")
                if problem
                else ("repaired", "")
            )
    return "unhelpful", f"still refused after {MAX_STEPS} steps: {text[:300]}"


async def _refused_right(
    case: Case, world: World, client: Client, before: Any, text: str, tools: list[str]
) -> tuple[str, str]:
    assert case.refuse is not None
    missing = [w for w in case.refuse if w.casefold() not in text.casefold()]
    if missing:
        return "unhelpful", f"the refusal does not say {missing}: {text[:400]}"
    if world.docs() != before:
        return "silent", "a refusal that wrote"
    offered = suggestions(text, tools)
    writes = [o for o in offered if o[1] not in READ_TOOLS]
    if len(writes) == 1:  # a single call to follow: it must not write what the person did not mean
        _, tool, args = writes[0]
        await world.call(client, tool, args)
        if world.docs() != before:
            return (
                "broken",
                f"its suggestion {tool} {json.dumps(args)[:200]} wrote where only a refusal is right",
            )
    return "refused right", ""


# --- the run ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The seeded sandbox once; each case gets a copy. And the roles' ids."""
    where = tmp_path_factory.mktemp("unseen-template")
    app = create_app(
        SandboxConfig(db_path=where / "sandbox.db", seed_size=60, clock=ManualClock(START), rate_limit=0)
    )
    state = app.state.sandbox
    state.sweep()
    docs = [json.loads(d) for d in state.store.query("1=1", [], DEFAULT_ORDER, 1000, 0)]
    roles: dict[str, str] = {}
    for role, wanted in ROLES.items():
        match = [d for d in docs if all(d.get(k) == v for k, v in wanted.items())]
        assert len(match) == 1, (role, len(match))
        roles[role] = match[0]["id"]
    return where / "sandbox.db", roles


def _fill(value: Any, roles: dict[str, str]) -> Any:
    """``fill_roles``, keys included (a batch's items may be keyed by referral)."""
    if isinstance(value, dict):
        return {fill_roles(k, roles): _fill(v, roles) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, roles) for v in value]
    return fill_roles(value, roles)


def _touches(case: Case, roles: dict[str, str]) -> set[str]:
    """The seeded referrals a case names (in its call, its checks or the person's answer)."""
    text = json.dumps([case.args, case.choose, [getattr(c, "role", "") for c in case.meant]], default=str)
    return {roles[m] for m in re.findall(r"\$\w+", text) if m in roles}


def _worlds(roles: dict[str, str]) -> Iterator[tuple[str, list[tuple[int, Case]]]]:
    """The cases grouped so that a world (a copy of the seed) is shared only where it cannot change the
    outcome: every read in one pristine world; writes in a world until one names a referral an earlier
    case there named or changed (the runner starts a new one then); a case with setup alone (its change
    ids start at 1). Sharing keeps the corpus fast: a world costs more than most calls."""
    reads = [(i, c) for i, c in enumerate(CASES) if c.tool in READ_TOOLS and not c.setup]
    yield "reads", reads
    for i, c in enumerate(CASES):
        if c.setup:
            yield "alone", [(i, c)]
    yield "writes", [(i, c) for i, c in enumerate(CASES) if c.tool not in READ_TOOLS and not c.setup]


async def run_corpus(template: tuple[Path, dict[str, str]], tmp_path: Path) -> list[tuple[Case, str, str]]:
    db, roles = template
    outcomes: dict[int, tuple[Case, str, str]] = {}
    tools: list[str] = []
    worlds = 0

    async def one(world: World, client: Client, i: int, case: Case) -> None:
        world.texts.clear()
        outcome, detail = await judge(case, world, client, roles, tools)
        if outcome != "crash" and any(r in t.casefold() for t in world.texts for r in RAW):
            outcome, detail = "raw", next(t for t in world.texts if any(r in t.casefold() for r in RAW))[:300]
        outcomes[i] = (case, outcome, detail)

    for kind, group in _worlds(roles):
        pending = list(group)
        while pending:
            worlds += 1
            world = World(db, tmp_path / f"world{worlds}")
            try:
                async with Client(world.server, raise_exceptions=True) as client:
                    if not tools:
                        tools = [t.name for t in (await client.list_tools()).tools]
                    dirty: set[str] = set()
                    later: list[tuple[int, Case]] = []
                    for i, case in pending:
                        touches = _touches(case, roles)
                        if kind == "writes" and touches & dirty:
                            later.append((i, case))
                            continue
                        before = world.docs()
                        await one(world, client, i, case)
                        after = world.docs()
                        dirty |= touches | {k for k in after if before.get(k) != after[k]}
                    pending = later
            finally:
                await world.runtime.aclose()
    return [outcomes[i] for i in sorted(outcomes)]


def summary(outcomes: list[tuple[Case, str, str]]) -> dict[str, Any]:
    counts = Counter(o for _, o, _ in outcomes)
    refusals = sum(counts[k] for k in ("repaired", "broken", "unhelpful", "refused right"))
    repairable = refusals - counts["refused right"]
    return {
        "cases": len(outcomes),
        "done": counts["done"],
        "refused": refusals,
        "repaired": counts["repaired"],
        "refused right": counts["refused right"],
        "unhelpful": counts["unhelpful"],
        "silent": counts["silent"] + counts["broken"],
        "broken": counts["broken"],
        "raw": counts["raw"],
        "crash": counts["crash"],
        "repair rate": counts["repaired"] / repairable if repairable else 1.0,
        "families": dict(Counter(c.family for c, _, _ in outcomes)),
    }


async def test_unseen_corpus(
    template: tuple[Path, dict[str, str]], tmp_path: Path, frozen_today: None
) -> None:
    outcomes = await run_corpus(template, tmp_path)
    figures = summary(outcomes)
    for case, outcome, detail in outcomes:
        if outcome not in ("done", "repaired", "refused right"):
            print(f"[{outcome}] {case.family}: {case.said} :: {detail}")
    print(json.dumps(figures))
    assert figures["cases"] >= 120
    assert figures["silent"] == 0, figures
    assert figures["raw"] == 0, figures
    assert figures["crash"] == 0, figures
    assert figures["unhelpful"] <= 0.02 * figures["cases"], figures
    assert figures["repair rate"] >= 0.80, figures
