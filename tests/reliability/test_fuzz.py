"""Bad input: hypothesis sends generated argument sets to every tool (and the referral:// resource)
through the MCP client — wrong types, huge strings, unicode, injection-shaped OData, JSON pointers,
nested junk, plus plausible values so the deeper layers are reached too.

Every answer must be a result or a clear tool error (never the SDK's bare "Error executing tool X"),
nothing is written unless the call carried a confirm token this session issued, and every $filter the
sandbox receives parses, with each string the caller gave arriving intact as one literal (escaped).

Default run: PCREF_FUZZ_EXAMPLES (400); `make fuzz` runs 10,000 (marked slow)."""

from __future__ import annotations

import logging
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from mcp import Client

from pcref_mcp.config import Settings
from pcref_mcp.referrals import patch_paths
from pcref_mcp.referrals.untrusted import unwrap
from pcref_mcp.referrals.write_models import Contact, NewDealRegistration, NewReferral
from pcref_mcp.sandbox import SandboxConfig, create_app
from pcref_mcp.sandbox.clock import ManualClock
from pcref_mcp.sandbox.config import default_profile
from pcref_mcp.sandbox.odata import compile_filter
from pcref_mcp.server.app import build_server
from pcref_mcp.server.search import SORTS
from pcref_mcp.server.views import EXTRA_FIELDS
from tests.reliability.helpers import TOOLS, fast_runtime, text_of, unhandled
from tests.server.conftest import START

EXAMPLES = int(os.environ.get("PCREF_FUZZ_EXAMPLES", "400"))
FIGURES: dict[str, Any] = {}

INJECTION = [
    "') or 1 eq 1 or ('",
    "' or ''='",
    "x' eq 'x",
    "a'b",
    "''",
    "'",
    "\\'",
    "%27 or 1 eq 1",
    "name eq 'a'",
    "$filter=status eq 'Active'",
    "contains(name,'x')",
    "1; DROP TABLE referrals; --",
    "' and substatus eq '",
    "?$top=100000",
    "&$skip=1",
    "#",
    "/../../_sandbox/reset",
    "referrals('x')",
    "\x00",
    "\r\n",
    "\u202e",
]
POINTERS = [
    "/registrations/0/../..",
    "~1",
    "~0",
    "/details/~1notes",
    "/~0",
    "/registrations/-",
    "/registrations/0",
    "/registrations/0/status",
    "/status/",
    "",
    "/",
    "//",
    "/details/dealValue/0",
    "/__proto__",
    "/eTag",
    "/id",
    "/registrations/999999/status",
    "details/notes",
    "/details/notes/-",
    "/team/-",
    "/customerProfile/team/0/email",
]
UNICODE = ["Ünïcødé", "名前", "😀" * 30, "\u0301" * 50, "\ud7ff", "ß" * 201, "«quoted» »close", "\t\n", " "]
FIELD_NAMES = [p.name for p in (*patch_paths.PATCH_PATHS, *patch_paths.REGISTRATION_PATCH_PATHS)] + [
    p.pointer for p in patch_paths.PATCH_PATHS
]
FILTER_TEXT_KEYS = ("name_contains", "customer_contains", "text", "engagement_id", "external_reference_id")
CONTAINS_KEYS = ("name_contains", "customer_contains", "text")
SENT_IN_BOTH = ("engagement_id",)  # documented: the strict profile takes it; the others are matched here
STRICT = default_profile() == "strict"


def strategies(ids: list[str]) -> st.SearchStrategy[tuple[str, dict[str, Any] | str]]:
    words = st.sampled_from(INJECTION + POINTERS + UNICODE)
    text = st.one_of(
        st.text(max_size=40),
        words,
        st.text(min_size=195, max_size=205),
        st.sampled_from(["A" * 5000, "«" * 1000, "x" * 100_001]),
    )
    scalar = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=2**63, max_value=2**200),
        st.floats(allow_nan=True, allow_infinity=True),
        text,
    )
    junk = st.recursive(
        scalar,
        lambda k: st.lists(k, max_size=4) | st.dictionaries(st.text(max_size=12), k, max_size=4),
        max_leaves=8,
    )
    rid = st.one_of(st.sampled_from(ids), text, junk)

    def maybe(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(plausible, plausible, junk)

    def obj(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
        return st.one_of(st.fixed_dictionaries({}, optional={k: maybe(v) for k, v in fields.items()}), junk)

    day = st.dates().map(str)
    filters = obj(
        {
            "status": st.lists(st.sampled_from(["New", "Active", "Closed", "Nope"]), max_size=3),
            "substatus": st.lists(st.sampled_from(["Accepted", "Won", "Lost", "Pending"]), max_size=3),
            "direction": st.sampled_from(["Incoming", "Outgoing"]),
            "type": st.sampled_from(["Independent", "Shared"]),
            **{k: text for k in FILTER_TEXT_KEYS},
            "country": st.sampled_from(["US", "de", "Narnia", "' or '"]),
            "created_from": day,
            "created_to": day,
            "updated_from": day,
            "closing_to": day,
            "min_value": st.floats(allow_nan=True),
            "max_value": st.integers(),
        }
    )
    change = st.fixed_dictionaries(
        {"field": st.one_of(st.sampled_from(FIELD_NAMES + POINTERS), text), "value": junk}
    )
    changes = maybe(st.lists(change, max_size=4))
    token = st.one_of(st.none(), text, st.just("e30.AAAA"))
    referral = obj(
        {k: text for k in NewReferral.model_fields}
        | {
            "deal_kind": st.sampled_from(["private", "partner_led", "co_sell", "evil"]),
            "customer_country": st.sampled_from(["DE", "US", "XX"]),
            "deal_value": st.floats(),
            "customer_contacts": st.lists(obj({k: text for k in Contact.model_fields}), max_size=2),
        }
    )
    registration = obj({k: text for k in NewDealRegistration.model_fields})

    def tool(name: str, fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[tuple[str, Any]]:
        extra = st.dictionaries(
            st.sampled_from(["x", "__class__", "confirm", "referralId"]), junk, max_size=1
        )
        args = st.fixed_dictionaries({}, optional={k: maybe(v) for k, v in fields.items()})
        junk_args = st.dictionaries(st.text(max_size=12), junk, max_size=4)  # the client only sends objects
        return st.tuples(
            st.just(name), st.one_of(args, st.builds(lambda a, b: {**a, **b}, args, extra), junk_args)
        )

    # near-valid calls, so the generated values reach the OData builder and the write planner too
    short = st.one_of(st.text(min_size=1, max_size=60), words.filter(bool))
    valid_search = st.fixed_dictionaries(
        {"filters": st.fixed_dictionaries({}, optional={k: short for k in FILTER_TEXT_KEYS})},
        optional={"limit": st.integers(1, 100)},
    )
    valid_update = st.fixed_dictionaries(
        {
            "referral_id": st.sampled_from(ids),
            "changes": st.lists(
                st.fixed_dictionaries(
                    {
                        "field": st.sampled_from(
                            [
                                "notes",
                                "deal value",
                                "closing date",
                                "status reason",
                                "sales stage",
                                "external reference id",
                            ]
                        ),
                        "value": st.one_of(short, st.integers(-10, 10**7), day),
                    }
                ),
                min_size=1,
                max_size=2,
            ),
        }
    )
    return st.one_of(
        st.tuples(st.just("search_referrals"), valid_search),
        st.tuples(st.just("search"), st.fixed_dictionaries({"query": short})),
        st.tuples(st.just("update_field"), valid_update),
        tool(
            "search_referrals",
            {
                "filters": filters,
                "sort": st.sampled_from([*SORTS, "name"]),
                "limit": st.integers(-5, 500),
                "cursor": text,
                "fields": st.lists(st.sampled_from([*EXTRA_FIELDS, "password"]), max_size=4),
            },
        ),
        tool(
            "get_referral",
            {
                "referral_id": rid,
                "sections": st.lists(
                    st.sampled_from(
                        [
                            "overview",
                            "customer",
                            "details",
                            "invite",
                            "registrations",
                            "contacts",
                            "all",
                            "secrets",
                        ]
                    ),
                    max_size=3,
                ),
            },
        ),
        tool("update_field", {"referral_id": rid, "changes": changes, "confirm_token": token}),
        tool("create_referral", {"referral": referral, "confirm_token": token}),
        tool(
            "register_deal",
            {"referral_id": rid, "registration": registration, "changes": changes, "confirm_token": token},
        ),
        tool("undo_change", {"change_id": st.integers(-3, 2**70), "confirm_token": token}),
        tool("search", {"query": text}),
        tool("fetch", {"id": rid}),
        st.tuples(st.just("resource"), st.one_of(st.sampled_from(ids), text).map(str)),
    )


class _Crashes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[BlockingPortal, Client, Any, Any]]:
    app = create_app(
        SandboxConfig(db_path=tmp_path / "sandbox.db", seed_size=60, clock=ManualClock(START), rate_limit=0)
    )
    backend = fast_runtime(Settings(journal_path=tmp_path / "journal.sqlite3"), app)
    server = build_server(backend.runtime.settings, runtime=backend.runtime)
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(Client(server)) as client:
        yield portal, client, app, backend
        portal.call(backend.runtime.aclose)


def _fuzz(world: tuple[BlockingPortal, Client, Any, Any], examples: int) -> None:
    portal, client, app, backend = world
    state = app.state.sandbox
    ids = [d["id"] for d in state.store.iter_docs()]
    crashes = _Crashes()
    logging.getLogger().addHandler(crashes)
    issued: set[str] = set()
    tally: Counter[str] = Counter()
    filters_checked = {"n": 0, "strings": 0}
    started = time.perf_counter()

    def writes() -> int:
        return int(state.stats()["writesApplied"])

    def check(name: str, result: Any) -> None:
        assert not unhandled(name, result), (name, text_of(result))
        if result.is_error:
            tally["tool error"] += 1
            assert text_of(result).strip()
        else:
            sc = result.structured_content or {}
            tally[f"result {sc.get('status', 'ok')}"] += 1
            if sc.get("confirm_token"):
                issued.add(sc["confirm_token"])

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @seed(20261102)
    @given(call=strategies(ids), approve=st.booleans())
    def run(call: tuple[str, Any], approve: bool) -> None:
        name, args = call
        tally[name] += 1
        before_writes, before_requests = writes(), len(backend.spy.seen)
        used_token = False
        if name == "resource":
            try:
                portal.call(client.read_resource, f"referral://{args}")
                tally["result resource"] += 1
            except Exception as exc:  # an MCP error answer: must say what is wrong
                tally["resource error"] += 1
                assert str(exc).strip() and "Traceback" not in str(exc), exc
        else:
            result = portal.call(client.call_tool, name, args)
            check(name, result)
            sc = result.structured_content or {}
            if (
                isinstance(args, dict)
                and isinstance(args.get("confirm_token"), str)
                and args["confirm_token"] in issued
            ):
                used_token = True
            if not result.is_error and sc.get("status") == "confirmation_required" and approve:
                used_token = True  # the person approved: the same call again with this session's token
                again = portal.call(client.call_tool, name, {**args, "confirm_token": sc["confirm_token"]})
                check(name, again)
                tally["confirmed call"] += 1
        # no write without a confirmation from this session
        if not used_token:
            assert writes() == before_writes, (name, args)
        # every $filter sent parses, and each string the caller gave arrives as one intact literal
        sent = backend.spy.filters(before_requests)
        params: list[Any] = []
        for f in sent:
            _, p = compile_filter(f)
            params.extend(p)
            filters_checked["n"] += 1
        if (
            sent
            and name == "search_referrals"
            and isinstance(args, dict)
            and isinstance(args.get("filters"), dict)
        ):
            for key in FILTER_TEXT_KEYS:
                value = args["filters"].get(key)
                if isinstance(value, str) and value.strip() and (key in SENT_IN_BOTH or not STRICT):
                    # text searches are case-insensitive: contains(tolower(…), 'lower-cased text')
                    expected = value.lower() if key in CONTAINS_KEYS else value
                    expected = unwrap(expected) or re.sub("[«»‹›]", "", expected)  # our marks never go out
                    if not expected.strip():
                        continue
                    if key == "text" and len(value.split()) > 1:  # every word, in any order (issue 21)
                        assert all(w in params for w in expected.split()), (key, value, sent)
                    else:
                        assert expected in params, (key, value, sent)
                    filters_checked["strings"] += 1
        if (
            sent
            and name == "search"
            and isinstance(args, dict)
            and isinstance(args.get("query"), str)
            and args["query"].strip()
            and not STRICT  # the strict profile refuses contains(): the text is matched here instead
        ):
            query = args["query"].strip().lower()
            query = unwrap(query) or re.sub("[«»‹›]", "", query)  # our marks never go out
            # every word, in any order (issue 21); one word arrives as one literal
            assert all(w in params for w in query.split()) if len(query.split()) > 1 else query in params, (
                args["query"],
                sent,
            )
            filters_checked["strings"] += 1

    try:
        run()
    finally:
        logging.getLogger().removeHandler(crashes)
    crash_logs = [
        r for r in crashes.records if "Error executing" in r or "Traceback" in r or "crash" in r.lower()
    ]
    assert not crash_logs, crash_logs[:3]
    stats = state.stats()
    FIGURES.update(
        examples=examples,
        calls=dict(sorted(tally.items())),
        filters_parsed=filters_checked["n"],
        strings_checked=filters_checked["strings"],
        sandbox_requests=stats["requests"],
        sandbox_writes=stats["writesByKind"],
        seconds=round(time.perf_counter() - started, 1),
    )
    print("\nFUZZ FIGURES", FIGURES)
    assert all(tally[t] for t in TOOLS), tally


def test_fuzz_every_tool(world: Any) -> None:
    _fuzz(world, min(EXAMPLES, 400) if "PCREF_FUZZ_EXAMPLES" not in os.environ else EXAMPLES)


@pytest.mark.slow
def test_fuzz_every_tool_long(world: Any) -> None:
    _fuzz(world, int(os.environ.get("PCREF_FUZZ_EXAMPLES", "10000")))
