"""The OData parser: SQL is parameterised, indexed columns are used, errors say where and what."""

from __future__ import annotations

import pytest

from pcref_mcp.sandbox.odata import ODataError, compile_filter, compile_orderby, parse_select


def test_values_never_reach_the_sql_text() -> None:
    sql, params = compile_filter("customerProfile/name eq 'x''); DROP TABLE referrals; --'")
    assert "DROP" not in sql
    assert params == ["x'); DROP TABLE referrals; --"]


def test_indexed_columns_and_json_paths() -> None:
    assert compile_filter("status eq 'New'") == ("(status = ?)", ["New"])
    sql, params = compile_filter("customerProfile/address/city eq 'Redmond'")
    assert sql == "(json_extract(doc, '$.customerProfile.address.city') = ?)" and params == ["Redmond"]


def test_any_becomes_exists_over_json_each() -> None:
    sql, params = compile_filter("team/any(t: t/email eq 'x@y.com')")
    assert sql.startswith("EXISTS (SELECT 1 FROM json_each(doc, '$.team')")
    assert params == ["x@y.com"]


def test_precedence_and_not() -> None:
    sql, _ = compile_filter("status eq 'A' or status eq 'B' and not type eq 'Shared'")
    assert sql == "((status = ?) OR ((status = ?) AND (NOT COALESCE((type = ?), 0))))"


def test_null_datetime_guid_number_bool() -> None:
    assert compile_filter("closedDateTime eq null")[0] == "(closedDateTime IS NULL)".replace(
        "closedDateTime", "json_extract(doc, '$.closedDateTime')"
    )
    assert compile_filter("createdDateTime ge 2024-01-01T00:00:00Z")[1] == ["2024-01-01T00:00:00.0000000Z"]
    assert compile_filter("createdDateTime ge '2024-01-01T02:00:00+02:00'")[1] == [
        "2024-01-01T00:00:00.0000000Z"
    ]
    assert compile_filter("engagementId eq 37EF26AA-1d15-4533-9f93-a69bd33ab1e5")[1] == [
        "37ef26aa-1d15-4533-9f93-a69bd33ab1e5"
    ]
    assert compile_filter("details/dealValue gt 1.5e3")[1] == [1500.0]
    assert compile_filter("isSpam eq false")[1] == [False]
    assert compile_filter("isSpam")[0] == "(json_extract(doc, '$.isSpam') IS 1)"


@pytest.mark.parametrize(
    "text,position,token",
    [
        ("status eq", 9, ""),
        ("status eqq 'New'", 7, "eqq"),
        ("(status eq 'New'", 16, ""),
        ("status eq 'New' foo", 16, "foo"),
        ("status eq 'unterminated", 10, "'"),
        ("nosuch eq 1", 0, "nosuch"),
        ("customerProfile/nosuch eq 1", 0, "customerProfile/nosuch"),
        ("details/dealValue eq 'text'", 21, "'text'"),
        ("status gt null", 10, "null"),
        ("team eq 'x'", 0, "team"),
        ("team/any(t: t/nosuch eq 1)", 12, "nosuch"),
        ("frobnicate(status)", 0, "frobnicate"),
        ("status eq 'a' and", 17, ""),
        ("2024-13-45T00:00:00Z eq createdDateTime", 0, "2024-13-45T00:00:00Z"),
    ],
)
def test_errors_name_position_and_token(text: str, position: int, token: str) -> None:
    with pytest.raises(ODataError) as info:
        compile_filter(text)
    assert info.value.position == position, str(info.value)
    assert info.value.token == token, str(info.value)
    assert f"position {position}" in info.value.message


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(ODataError):
        compile_filter("(" * 200 + "status eq 'New'" + ")" * 200)


def test_orderby() -> None:
    assert compile_orderby("createdDateTime desc") == "created_date_time DESC, id DESC"
    assert compile_orderby("status, customerProfile/address/city desc") == (
        "status ASC, json_extract(doc, '$.customerProfile.address.city') DESC, id ASC"
    )
    for bad in ("team", "nosuch", "status sideways", ""):
        with pytest.raises(ODataError):
            compile_orderby(bad)


def test_select() -> None:
    assert parse_select("id, status") == ["id", "status"]
    with pytest.raises(ODataError):
        parse_select("id,customerProfile/name")
