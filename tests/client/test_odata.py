"""The OData builder always escapes: no value can change the meaning of a filter."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pcref_mcp.errors import InvalidInput
from pcref_mcp.partner_center.odata import (
    Expr,
    OrderBy,
    Query,
    and_,
    any_,
    contains,
    eq,
    ge,
    gt,
    le,
    literal,
    lt,
    ne,
    not_,
    or_,
    startswith,
)
from pcref_mcp.referrals.models import ReferralStatus

# An OData token: a quoted string ('' inside), or a run of anything else up to space/paren/comma.
TOKEN = re.compile(r"'(?:[^']|'')*'|[^\s(),']+|[(),]")


def tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos] == " ":
            pos += 1
            continue
        m = TOKEN.match(text, pos)
        assert m, f"untokenizable at {pos}: {text!r}"
        out.append(m.group(0))
        pos = m.end()
    return out


def unquote(lit: str) -> str:
    assert lit.startswith("'") and lit.endswith("'")
    return lit[1:-1].replace("''", "'")


@given(st.text())
def test_any_string_literal_round_trips(value: str) -> None:
    lit = literal(value)
    assert TOKEN.fullmatch(lit)  # one single quoted token, however many quotes it holds
    assert unquote(lit) == value


@given(st.text(), st.text())
def test_comparison_is_always_three_tokens(a: str, b: str) -> None:
    expr = and_(eq("name", a), ne("customerProfile/name", b))
    toks = tokens(str(expr))
    assert toks[0] == "(" and toks[-1] == ")"
    assert toks[1:4][:2] == ["name", "eq"] and unquote(toks[3]) == a
    assert toks[4] == "and"
    assert toks[5:7] == ["customerProfile/name", "ne"] and unquote(toks[7]) == b
    assert len(toks) == 9


@given(st.text())
def test_function_argument_stays_one_literal(text: str) -> None:
    toks = tokens(str(contains("name", text)))
    assert toks[:4] == ["contains", "(", "name", ","] and toks[-1] == ")"
    assert len(toks) == 6 and unquote(toks[4]) == text


def test_literals() -> None:
    assert literal(None) == "null"
    assert literal(True) == "true" and literal(False) == "false"
    assert literal(3) == "3" and literal(2.5) == "2.5" and literal(Decimal("10.00")) == "10.00"
    assert literal("O'Brien") == "'O''Brien'"
    assert literal(ReferralStatus.ACTIVE) == "'Active'"
    assert literal(UUID("302d9c01-7bd6-4a99-b38d-bad528144545")) == "'302d9c01-7bd6-4a99-b38d-bad528144545'"
    assert literal(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05Z"
    plus2 = timezone(timedelta(hours=2))
    assert literal(datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=plus2)) == "2024-01-02T01:04:05.120000Z"
    assert literal(date(2024, 1, 2)) == "2024-01-02"
    for bad in (float("nan"), float("inf"), object(), [1]):
        with pytest.raises(InvalidInput):
            literal(bad)


def test_operators_and_logic() -> None:
    assert str(gt("details/dealValue", 5)) == "details/dealValue gt 5"
    assert str(ge("a", 1)) == "a ge 1" and str(lt("a", 1)) == "a lt 1" and str(le("a", 1)) == "a le 1"
    assert str(or_(eq("status", "New"), eq("status", "Active"))) == "(status eq 'New' or status eq 'Active')"
    assert str(not_(eq("isSpam", True))) == "not (isSpam eq true)"
    assert str(startswith("name", "Con")) == "startswith(name,'Con')"
    assert str(any_("team", "t", eq("t/email", "x@y.com"))) == "team/any(t:t/email eq 'x@y.com')"
    assert str(eq("a", 1) & eq("b", 2)) == "(a eq 1 and b eq 2)"
    assert str(and_(eq("a", 1))) == "a eq 1"


@pytest.mark.parametrize("bad", ["", "1abc", "a b", "a/", "/a", "a//b", "a'b", "a eq 1", "a-b", "a/any(x:x)"])
def test_bad_paths_rejected(bad: str) -> None:
    with pytest.raises(InvalidInput):
        eq(bad, 1)
    with pytest.raises(InvalidInput):
        Query(select=[bad]).to_params()


def test_bad_lambda_var_and_raw_strings() -> None:
    with pytest.raises(InvalidInput):
        any_("team", "t:x", eq("t/email", "a"))
    with pytest.raises(InvalidInput):
        Query(filter="status eq 'New'").to_params()  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        and_("status eq 'New'")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        and_()


def test_query_params() -> None:
    q = Query(
        filter=eq("status", "New"),
        orderby=[OrderBy("createdDateTime", "desc"), "updatedDateTime"],
        top=50,
        skip=10,
        count=True,
        select=["id", "status"],
    )
    assert q.to_params() == {
        "$filter": "status eq 'New'",
        "$orderby": "createdDateTime desc,updatedDateTime asc",
        "$top": "50",
        "$skip": "10",
        "$count": "true",
        "$select": "id,status",
    }
    assert Query().to_params() == {}
    for bad in (Query(top=0), Query(skip=-1), Query(orderby=["name sideways"])):
        with pytest.raises(InvalidInput):
            bad.to_params()
    assert isinstance(eq("a", 1), Expr)


def test_query_string_encodes_spaces_as_percent_20_and_keeps_odata_punctuation() -> None:
    from pcref_mcp.partner_center.odata import Query, and_, contains, eq

    query = Query(
        filter=and_(
            eq("customerProfile/name", "O'Brien & Co+1 #2"), contains("name", "Blue Yonder", ignore_case=True)
        ),
        orderby=["createdDateTime desc"],
        top=5,
        count=True,
    )
    text = query.to_query_string()
    assert "+" not in text and " " not in text
    assert text.startswith("$filter=(customerProfile/name%20eq%20'O''Brien%20%26%20Co%2B1%20%232'")
    assert "contains(tolower(name),'blue%20yonder')" in text
    assert text.endswith("&$orderby=createdDateTime%20desc&$top=5&$count=true")
    assert Query().to_query_string() == ""
