"""Errors a person reads: pydantic's validation errors as plain sentences.

Every rule speaks to a person: the field, the value given and what is allowed. Pydantic's own
errors are rewritten by ``validation_message`` (one table of sentences, ``_TEMPLATES``);
``parse_or_raise`` raises ``InvalidInput`` with it. Every model a write reads (the request models,
the person's input models, the patch values) reports through here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals.problems import FieldProblem, RuleError

__all__ = ["parse_or_raise", "validation_message"]

M = TypeVar("M", bound=BaseModel)


# --- errors a person reads ------------------------------------------------------------------------


def validation_message(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One plain paragraph for every error in ``exc``, each naming the field, value and what is allowed."""
    sentences: list[str] = []
    for error in exc.errors():
        sentence = _sentence(error, model)
        if sentence not in sentences:
            sentences.append(sentence)
    return " ".join(sentences)


def parse_or_raise(model: type[M], data: Any) -> M:
    """``model.model_validate(data)``, or ``InvalidInput`` with ``validation_message``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(
            validation_message(exc, model),
            field=_field_name(first["loc"]) or None,
            value=first.get("input") if first["type"] != "missing" else None,
        ) from None


# --- pydantic errors -> sentences -----------------------------------------------------------------

# pydantic error type -> sentence; {field}, {value} and the error's ctx keys are filled in
_TEMPLATES: dict[str, str] = {
    "missing": "{field} is required.",
    "extra_forbidden": "{field} is not a known field{allowed}.",
    "enum": "{field} {value} is not allowed; use one of: {expected}.",
    "literal_error": "{field} {value} is not allowed; use one of: {expected}.",
    "greater_than_equal": "{field} {value} is too small; use a number of at least {ge}.",
    "greater_than": "{field} {value} is too small; use a number greater than {gt}.",
    "less_than_equal": "{field} {value} is too large; use a number of at most {le}.",
    "less_than": "{field} {value} is too large; use a number below {lt}.",
    "int_type": "{field} {value} is not a whole number.",
    "int_from_float": "{field} {value} is not a whole number.",
    "string_too_long": "{field} is too long; use at most {max_length} characters.",
    "string_pattern_mismatch": "{field} {value} does not have the expected form ({pattern}).",
    "too_long": "{field} has too many items; give at most {max_length}.",
    "date_parsing": "{field} {value} is not a date; use YYYY-MM-DD.",
    "date_from_datetime_parsing": "{field} {value} is not a date; use YYYY-MM-DD.",
    "date_type": "{field} {value} is not a date; use YYYY-MM-DD.",
    "datetime_parsing": "{field} {value} is not a date-time; use e.g. '2026-11-27T10:00:00Z'.",
    "datetime_from_date_parsing": "{field} {value} is not a date-time; use e.g. '2026-11-27T10:00:00Z'.",
    "json_invalid": "{field} is not valid JSON.",
    "none_required": "{field} must be empty.",
    "finite_number": "{field} {value} is not a finite number.",
    "float_parsing": "{field} {value} is not a number; use digits such as 120000.",
    "float_type": "{field} {value} is not a number; use digits such as 120000.",
    "int_parsing": "{field} {value} is not a whole number.",
    "bool_parsing": "{field} {value} is not true or false.",
    "bool_type": "{field} {value} is not true or false.",
    "string_type": "{field} {value} must be text.",
    "string_too_short": "{field} must not be empty.",
    "too_short": "{field} needs at least {min_length} item(s).",
    "list_type": "{field} must be a list.",
    "model_type": "{field} must be an object with named fields.",
    "model_attributes_type": "{field} must be an object with named fields.",
    "dict_type": "{field} must be an object with named fields.",
    "date_from_datetime_inexact": "{field} {value} must be a date without a time.",
}


def _sentence(error: Any, model: type[BaseModel] | None) -> str:
    loc = tuple(error["loc"])
    field = _field_name(loc) or "input"
    if error["type"] == "value_error":
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, FieldProblem):
            return cause.render(field)
        if isinstance(cause, RuleError):
            return str(cause)
        return f"{field} {_show(error.get('input'))}: {cause}."
    template = _TEMPLATES.get(error["type"])
    if template is None:  # a rule without a sentence yet: pydantic's words, never its phrasing or links
        said = re.sub(r"^Input should (?:be )?", "must be ", str(error["msg"])).replace("Input", "the value")
        return f"{field} {_show(error.get('input'))} is not accepted: {said}."
    ctx = {key: _show_number(value) for key, value in error.get("ctx", {}).items()}
    allowed = ""
    if error["type"] == "extra_forbidden" and model is not None and len(loc) == 1:
        allowed = "; allowed fields: " + ", ".join(model.model_fields)
    return template.format(field=field, value=_show(error.get("input")), allowed=allowed, **ctx)


def _field_name(loc: Sequence[Any]) -> str:
    """``("customer_contacts", 0, "email")`` -> ``customer_contacts[0].email``."""
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part in {"function-after[check()]", "function-before[parse_when()]"}:
            continue
        else:
            name += f".{part}" if name else str(part)
    return name


def _show_number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _show(value: Any) -> str:
    """A value as the caller gave it, cut short: a message never echoes a whole document back."""
    if isinstance(value, datetime | date):
        return repr(value.isoformat())
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else f"{text[:60]}…({len(text)} characters)"
