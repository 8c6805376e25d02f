"""The test run's remembered metaschema checks (tests/schema_checks.py) decide as jsonschema does."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from jsonschema import Draft7Validator, Draft202012Validator, SchemaError

from tests import schema_checks


def test_installed_for_the_run() -> None:
    for cls in (Draft7Validator, Draft202012Validator):
        assert cls.__dict__["check_schema"] is not schema_checks._originals[cls]


def test_a_valid_schema_is_remembered_by_class_and_content() -> None:
    schema = {"type": "object", "properties": {"remembered-test": {"type": "integer", "minimum": 1}}}
    Draft202012Validator.check_schema(schema)
    assert schema_checks._key(Draft202012Validator, schema) in schema_checks._valid
    assert schema_checks._key(Draft7Validator, schema) not in schema_checks._valid
    Draft202012Validator.check_schema(dict(reversed(schema.items())))  # same content: answered at once


@pytest.mark.parametrize(
    ("valid", "invalid"),
    [
        ({"type": ["string"]}, {"type": ("string",)}),  # a tuple is no JSON array to jsonschema
        ({"minimum": 1}, {"minimum": True}),  # true is no number
        ({"minLength": 1}, {"minLength": 1.5}),
        ({"enum": ["a"]}, {"enum": "a"}),
    ],
)
def test_an_invalid_schema_raises_every_time(valid: dict[str, Any], invalid: dict[str, Any]) -> None:
    for _ in range(2):
        Draft202012Validator.check_schema(valid)
        with pytest.raises(SchemaError):
            Draft202012Validator.check_schema(invalid)
        with pytest.raises(SchemaError):
            jsonschema.validate({}, invalid)
    assert schema_checks._key(Draft202012Validator, invalid) not in schema_checks._valid


def test_a_format_checker_of_the_callers_own_is_checked_as_before() -> None:
    checker = jsonschema.FormatChecker()
    Draft202012Validator.check_schema({"format": "date"}, format_checker=checker)
    with pytest.raises(SchemaError):
        Draft202012Validator.check_schema({"format": 7}, format_checker=checker)
