"""Every request body checked against the service's published contract just before it is sent.

The bodies are built from the domain's derived models; this check does not trust them. It reads the
connector's own request schemas (bundled as ``request_schemas.json``: the published definitions
verbatim, and the fields newer documents add, each with its source), closes every object to the
fields they name, and validates with ``jsonschema``, independent of pydantic. A body that fails is
never sent: :class:`~pcref_mcp.errors.InvalidInput` names the field in plain words.

PATCH bodies are checked twice over: each operation against its operation schema (``op`` and the
allow-listed ``path``), and its ``value`` against the Referral definition at that pointer (the
published operation schemas leave ``value`` open). ``null`` is allowed for a ``replace``: it clears.

``jsonschema`` is imported at the first send, not at start: the stdio server's cold start stays
what it was, and the validators are compiled once.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from pcref_mcp.errors import InvalidInput

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

__all__ = ["check_request", "published_schemas"]

REGISTRATION_ADD = "/registrations/-"
_KINDS = {"string": "text", "number": "a number", "integer": "a whole number", "boolean": "true or false"}
_KINDS |= {"object": "an object", "array": "a list", "null": "empty"}


def check_request(method: str, path: str, body: Any) -> None:
    """Refuse (``InvalidInput``) a body the published contract does not allow for ``method`` on
    ``path`` (the URL's path); nothing to check for a request without a body."""
    if body is None:
        return
    if method == "PATCH":
        _check_operations(body)
    elif method in ("POST", "PUT"):  # a new referral, or the whole referral (PUT, obsolete)
        _refuse(_validators()["Referral"].iter_errors(body), "the referral")


@cache
def published_schemas() -> dict[str, Any]:
    """The bundled request schemas: ``published`` (verbatim) and ``additions``."""
    text = resources.files("pcref_mcp.partner_center").joinpath("request_schemas.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validators() -> dict[str, Validator]:
    from jsonschema import Draft7Validator  # here, not at import: see the module's docstring

    schemas = published_schemas()
    published, additions = schemas["published"], schemas["additions"]
    referral = _closed(_with_additions(published["Referral"], additions.get("Referral", {})))
    registration = _closed(published["DealRegistration"]["items"]["properties"]["value"])
    out: dict[str, Validator] = {
        "Referral": Draft7Validator(referral),
        "DealRegistration": Draft7Validator(registration),
    }
    for name in ("UpdateReferralDetails", "DealRegistration", "UpdateDealRegistration"):
        operation = copy.deepcopy(published[name]["items"])
        operation["properties"]["value"] = {}  # checked at its pointer, below
        operation["required"] = ["op", "path", "value"]
        out[f"{name}.op"] = Draft7Validator(_closed(operation))
    return out


def _check_operations(body: Any) -> None:
    validators = _validators()
    if not isinstance(body, list):
        raise InvalidInput("A change must be sent as a list of operations; nothing was sent.", field="body")
    for index, operation in enumerate(body):
        pointer = operation.get("path") if isinstance(operation, dict) else None
        if pointer == REGISTRATION_ADD:
            kind = "DealRegistration"
        elif isinstance(pointer, str) and pointer.startswith("/registrations/"):
            kind = "UpdateDealRegistration"
        else:
            kind = "UpdateReferralDetails"
        _refuse(validators[f"{kind}.op"].iter_errors(operation), f"operation {index + 1}")
        value, pointer = operation["value"], str(operation["path"])  # both checked just above
        if kind == "DealRegistration":
            _refuse(validators["DealRegistration"].iter_errors(value), "the deal registration")
            continue
        if value is None and operation["op"] == "replace":
            continue
        validator = _value_validator(pointer)
        name = pointer.strip("/").replace("/-", "").replace("/", ".")
        _refuse(validator.iter_errors(value), name, base=name)


@cache
def _value_validator(pointer: str) -> Validator:
    """The validator of a PATCH value at ``pointer``: the Referral definition there (compiled once)."""
    referral = _validators()["Referral"]
    return type(referral)(_at_pointer(referral.schema, pointer))


def _at_pointer(schema: dict[str, Any], pointer: str) -> dict[str, Any]:
    """The sub-schema of the Referral definition a JSON pointer lands on (``-`` and indexes are items)."""
    node = schema
    for part in pointer.strip("/").split("/"):
        if part == "-" or part.isdigit():
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(part, {})
    return node


def _refuse(errors: Iterator[ValidationError], what: str, *, base: str = "") -> None:
    found = sorted(errors, key=lambda e: list(e.absolute_path))
    if not found:
        return
    sentences = list(dict.fromkeys(_sentence(error, base) for error in found[:5]))
    first = found[0]
    raise InvalidInput(
        f"The request for {what} does not match Partner Center's published contract, so nothing was sent: "
        + " ".join(sentences),
        field=_extra_fields(first, base)[0]
        if first.validator == "additionalProperties"
        else _field(first, base) or None,
        hint="This is a fault in pcref-mcp, not in what you asked for; report it with the field named.",
    )


def _sentence(error: ValidationError, base: str) -> str:
    """A plain sentence for one error: the field, and what the contract allows there."""
    field = _field(error, base) or "the body"
    if error.validator == "additionalProperties":
        extra = _extra_fields(error, base)
        return f"{', '.join(extra)} {'is not a field' if len(extra) == 1 else 'are not fields'} the contract knows."
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return f"{field} must be {' or '.join(_KINDS.get(str(t), str(t)) for t in wanted)}."
    if error.validator == "enum":
        return f"{field} must be one of: {', '.join(str(v) for v in error.validator_value)}."
    if error.validator == "required":
        return f"{field} needs {', '.join(str(n) for n in error.validator_value)}."
    return f"{field} is not allowed there ({error.validator})."


def _extra_fields(error: ValidationError, base: str) -> list[str]:
    """The full names of the fields an object has beyond those the contract names."""
    at = _field(error, base)
    extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
    return [f"{at}.{name}" if at else str(name) for name in extra]


def _field(error: ValidationError, base: str = "") -> str:
    """``customerProfile.team[0].email``: where the error is, under ``base``."""
    name = base
    for part in error.absolute_path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def _with_additions(schema: dict[str, Any], additions: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the documented additions merged in (``additions`` maps pointers to schemas)."""
    merged = copy.deepcopy(schema)
    for pointer, addition in additions.items():
        if pointer.startswith("$"):
            continue
        parent_pointer, _, name = pointer.rpartition("/")
        parent = _at_pointer(merged, parent_pointer) if parent_pointer else merged
        parent.setdefault("properties", {})[name] = addition["schema"]
    return merged


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy where every object admits only the properties it names (the published definitions leave
    objects open; a field they do not name is one the service never documented)."""
    schema = copy.deepcopy(schema)

    def close(node: Any) -> None:
        if not isinstance(node, dict):
            return
        if "properties" in node:
            node.setdefault("additionalProperties", False)
            for child in node["properties"].values():
                close(child)
        if isinstance(node.get("items"), dict):
            close(node["items"])

    close(schema)
    return schema
