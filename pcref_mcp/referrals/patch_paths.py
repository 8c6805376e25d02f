"""The service's PATCH allow-list as data (connector definition, UpdateReferralDetails and
UpdateDealRegistration). Anything else is refused before it is sent."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, TypeAdapter, ValidationError

from pcref_mcp.errors import InvalidInput, LifecycleViolation
from pcref_mcp.referrals.lifecycle import (
    REGISTRATION_EDITABLE,
    SERVICE_ONLY_SUBSTATUSES,
    SUBSTATUSES,
    TransitionCheck,
    check_transition,
    registration_editable,
)
from pcref_mcp.referrals.models import (
    ContractTerm,
    PatchOperation,
    PricingModel,
    PrimaryDeploymentOn,
    Referral,
    ReferralStatus,
    ReferralSubstatus,
    SalesStage,
)
from pcref_mcp.referrals.write_models import (
    Amount,
    CurrencyCode,
    FieldProblem,
    MemberIn,
    SolutionTagIn,
    UtcDateTime,
    validation_message,
)

# JSON pointers the service accepts in PATCH /referrals/{id} (ops: add, replace).
REFERRAL_POINTERS: tuple[str, ...] = (
    "/campaignId",
    "/consent/consentToShareReferralWithMicrosoftSellers",
    "/customerProfile/team",
    "/customerProfile/team/-",
    "/details/closingDateTime",
    "/details/currency",
    "/details/dealValue",
    "/details/notes",
    "/details/requirements/solutions",
    "/details/requirements/solutions/-",
    "/externalReferenceId",
    "/referralProgram",
    "/salesStage",
    "/status",
    "/substatus",
    "/statusReason",
    "/team",
    "/team/-",
)

# Creating a deal registration: op "add" on this pointer only, value = DealRegistrationCreate.
REGISTRATION_ADD_POINTER = "/registrations/-"

# Updating the (first) deal registration while it is ActionRequired.
REGISTRATION_POINTERS: tuple[str, ...] = (
    "/registrations/0/contract/startDateTime",
    "/registrations/0/contract/endDateTime",
    "/registrations/0/contract/signDateTime",
    "/registrations/0/contract/term",
    "/registrations/0/contract/value",
    "/registrations/0/solutionDetails/0/value",
    "/registrations/0/solutionDetails/0/currency",
    "/registrations/0/solutionDetails/0/isDeployedOnAzure",
    "/registrations/0/solutionDetails/0/primaryDeploymentOn",
    "/registrations/0/solutionDetails/0/pricingModel",
    "/registrations/0/solutionDetails/0/marketplaceTransactionDetails/isMarketplaceTransacted",
    "/registrations/0/solutionDetails/0/marketplaceTransactionDetails/marketplaceTransactionDateTime",
)


# --- the allow-list as a table: friendly names, aliases, value types ------------------------------


@dataclass(frozen=True)
class PatchPath:
    """One updatable JSON pointer, the words a person uses for it and the type of its value.

    The value's JSON schema is derived from ``value_type`` (``json_schema()``), never written by hand.
    """

    pointer: str
    name: str
    value_type: TypeAdapter[Any] = field(compare=False, repr=False)
    aliases: tuple[str, ...] = ()
    ops: tuple[str, ...] = ("replace", "add")
    registration: bool = False

    @property
    def op(self) -> str:
        """The op to send: ``add`` for an append (``/-``), ``replace`` otherwise."""
        return self.ops[0]

    def validate(self, value: Any) -> Any:
        """The wire JSON for ``value``, or ``InvalidInput`` naming this field, the value and what is allowed."""
        try:
            checked = self.value_type.validate_python(value)
        except ValidationError as exc:
            raise InvalidInput(
                _named(validation_message(exc), self.name),
                field=self.name,
                value=value,
                allowed=self.allowed(),
            ) from None
        return self.value_type.dump_python(checked, mode="json", by_alias=True, exclude_none=True)

    def json_schema(self) -> dict[str, Any]:
        return self.value_type.json_schema()

    def allowed(self) -> list[str] | None:
        """The allowed values when the value is an enum, for error payloads."""
        enum = self.json_schema().get("enum")
        return [str(v) for v in enum] if enum else None


def _enum_input(enum: type[StrEnum]) -> BeforeValidator:
    """Accept an enum value in any case ("closed" -> "Closed")."""
    by_fold = {member.value.casefold(): member for member in enum}

    def fold(value: Any) -> Any:
        return by_fold.get(value.strip().casefold(), value) if isinstance(value, str) else value

    return BeforeValidator(fold)


def _must_be_deployed(value: bool) -> bool:
    if value is False:
        raise FieldProblem(
            lambda f: (
                f"{f} False would make Partner Center close the referral without a registration; "
                "only solutions deployed on Azure can be registered."
            )
        )
    return value


Status = Annotated[ReferralStatus, _enum_input(ReferralStatus)]
Substatus = Annotated[ReferralSubstatus, _enum_input(ReferralSubstatus)]
Stage = Annotated[SalesStage, _enum_input(SalesStage)]
Term = Annotated[ContractTerm, _enum_input(ContractTerm)]
Pricing = Annotated[PricingModel, _enum_input(PricingModel)]
Deployment = Annotated[PrimaryDeploymentOn, _enum_input(PrimaryDeploymentOn)]
DeployedOnAzure = Annotated[bool, AfterValidator(_must_be_deployed)]
Text = Annotated[str, Field(max_length=4000)]

_TEXT: TypeAdapter[Any] = TypeAdapter(Text)
_NULLABLE_TEXT: TypeAdapter[Any] = TypeAdapter(Text | None)
_WHEN: TypeAdapter[Any] = TypeAdapter(UtcDateTime)
_AMOUNT: TypeAdapter[Any] = TypeAdapter(Amount)
_CURRENCY: TypeAdapter[Any] = TypeAdapter(CurrencyCode)
_BOOL: TypeAdapter[Any] = TypeAdapter(bool)
_MEMBER: TypeAdapter[Any] = TypeAdapter(MemberIn)
_MEMBERS: TypeAdapter[Any] = TypeAdapter(list[MemberIn])
_SOLUTION: TypeAdapter[Any] = TypeAdapter(SolutionTagIn)
_SOLUTIONS: TypeAdapter[Any] = TypeAdapter(list[SolutionTagIn])
_APPEND = ("add",)

REFERRAL_PATHS: tuple[PatchPath, ...] = (
    PatchPath(
        "/details/dealValue",
        "deal value",
        _AMOUNT,
        ("value", "amount", "deal amount", "dealValue", "deal size"),
    ),
    PatchPath(
        "/details/closingDateTime",
        "closing date",
        _WHEN,
        ("close date", "closing date time", "closingDateTime", "expected close date", "close by"),
    ),
    PatchPath("/details/notes", "notes", _TEXT, ("note", "deal notes", "description")),
    PatchPath("/details/currency", "currency", _CURRENCY, ("deal currency",)),
    PatchPath("/status", "status", TypeAdapter(Status), ("state",)),
    PatchPath("/substatus", "substatus", TypeAdapter(Substatus), ("sub status", "sub-status")),
    PatchPath("/statusReason", "status reason", _NULLABLE_TEXT, ("reason", "statusReason", "close reason")),
    PatchPath(
        "/externalReferenceId",
        "external reference id",
        _NULLABLE_TEXT,
        ("external id", "externalReferenceId", "crm id", "reference id"),
    ),
    PatchPath("/campaignId", "campaign id", _NULLABLE_TEXT, ("campaign", "campaignId")),
    PatchPath("/referralProgram", "referral program", _NULLABLE_TEXT, ("program", "referralProgram")),
    PatchPath("/salesStage", "sales stage", TypeAdapter(Stage), ("stage", "salesStage")),
    PatchPath(
        "/consent/consentToShareReferralWithMicrosoftSellers",
        "share with microsoft sellers",
        _BOOL,
        (
            "shared with microsoft sellers",
            "share with microsoft",
            "consentToShareReferralWithMicrosoftSellers",
            "visible to microsoft sellers",
        ),
    ),
    PatchPath("/team", "sales team", _MEMBERS, ("team", "partner team")),
    PatchPath("/team/-", "add sales team member", _MEMBER, ("add team member", "sales team member"), _APPEND),
    PatchPath("/customerProfile/team", "customer contacts", _MEMBERS, ("customer team", "contacts")),
    PatchPath(
        "/customerProfile/team/-",
        "add customer contact",
        _MEMBER,
        ("customer contact", "add contact"),
        _APPEND,
    ),
    PatchPath("/details/requirements/solutions", "solutions", _SOLUTIONS, ("solution list",)),
    PatchPath("/details/requirements/solutions/-", "add solution", _SOLUTION, ("solution",), _APPEND),
)

_R0, _S0 = "/registrations/0/contract", "/registrations/0/solutionDetails/0"

REGISTRATION_PATHS: tuple[PatchPath, ...] = tuple(
    PatchPath(pointer, name, value_type, aliases, ("replace",), registration=True)
    for pointer, name, value_type, aliases in (
        (f"{_R0}/value", "contract value", _AMOUNT, ("contract amount",)),
        (f"{_R0}/startDateTime", "contract start date", _WHEN, ("start date", "startDateTime")),
        (
            f"{_R0}/endDateTime",
            "contract end date",
            TypeAdapter(UtcDateTime | None),
            ("end date", "endDateTime"),
        ),
        (f"{_R0}/signDateTime", "contract sign date", _WHEN, ("sign date", "signed date", "signDateTime")),
        (f"{_R0}/term", "contract term", TypeAdapter(Term), ("term",)),
        (f"{_S0}/value", "solution value", _AMOUNT, ("solution amount",)),
        (f"{_S0}/currency", "solution currency", _CURRENCY, ("registration currency",)),
        (
            f"{_S0}/isDeployedOnAzure",
            "deployed on azure",
            TypeAdapter(DeployedOnAzure),
            ("isDeployedOnAzure",),
        ),
        (
            f"{_S0}/primaryDeploymentOn",
            "primary deployment",
            TypeAdapter(Deployment),
            ("primary deployment on", "primaryDeploymentOn"),
        ),
        (f"{_S0}/pricingModel", "pricing model", TypeAdapter(Pricing), ("pricing", "pricingModel")),
        (
            f"{_S0}/marketplaceTransactionDetails/isMarketplaceTransacted",
            "marketplace transacted",
            _BOOL,
            ("isMarketplaceTransacted", "transacted in marketplace"),
        ),
        (
            f"{_S0}/marketplaceTransactionDetails/marketplaceTransactionDateTime",
            "marketplace transaction date",
            TypeAdapter(UtcDateTime | None),
            ("marketplaceTransactionDateTime", "transaction date"),
        ),
    )
)

# Names the MCP layer uses for the two tables.
PATCH_PATHS = REFERRAL_PATHS
REGISTRATION_PATCH_PATHS = REGISTRATION_PATHS

# status, substatus and statusReason travel together, in this order
_STATUS_GROUP = ("/status", "/substatus", "/statusReason")


def resolve(field_or_pointer: str, *, registration: bool = False) -> PatchPath:
    """The path a person means: a friendly name, an alias or a JSON pointer (case, spaces, ``_`` ignored)."""
    table = _REGISTRATION_INDEX if registration else _REFERRAL_INDEX
    key = _fold(field_or_pointer) if isinstance(field_or_pointer, str) else ""
    found = table.get(key)
    if found is not None:
        return found
    paths = REGISTRATION_PATHS if registration else REFERRAL_PATHS
    names = ", ".join(repr(p.name) for p in paths)
    other = (_REFERRAL_INDEX if registration else _REGISTRATION_INDEX).get(key)
    if other is not None:
        where = "a referral field" if registration else "a deal registration field"
        message = f"{field_or_pointer!r} is {where}; here use one of: {names}."
    else:
        close = difflib.get_close_matches(key, list(table), n=1, cutoff=0.6)
        guess = f"did you mean {table[close[0]].name!r}? Fields" if close else "use one of"
        kind = "deal registration field" if registration else "referral field that can be changed"
        message = f"{field_or_pointer!r} is not a {kind}; {guess}: {names}."
    raise InvalidInput(
        message, field=str(field_or_pointer), value=field_or_pointer, allowed=[p.name for p in paths]
    )


def build_operations(
    changes: Sequence[tuple[str, Any]], *, current: Referral | None = None
) -> list[PatchOperation]:
    """Validated JSON-patch operations for ``[(field or pointer, value)]``.

    Every problem is reported at once. A status change is checked against the lifecycle from
    ``current`` (when given) and must name its substatus; status, substatus and statusReason are
    kept together in that order.
    """
    resolved, problems = _resolve_all(changes, registration=False)
    status_problems, check = _status_problems({path.pointer: value for path, value in resolved}, current)
    if check is not None and not check.ok and not problems:
        raise LifecycleViolation(
            check.message, field="status", allowed=[f"{s}/{sub}" for s, sub in check.allowed]
        )
    problems += status_problems
    if problems:
        raise InvalidInput(" ".join(problems))
    operations = [PatchOperation(op=path.op, path=path.pointer, value=value) for path, value in resolved]
    return _status_together(operations)


def build_registration_operations(
    changes: Sequence[tuple[str, Any]], current: Referral
) -> list[PatchOperation]:
    """``replace`` operations on the first deal registration; refused unless it is ActionRequired."""
    registrations = current.registrations or []
    if not registrations:
        raise InvalidInput(
            "The referral has no deal registration to change; create one first (add /registrations/-).",
            field="registrations",
        )
    status = registrations[0].status
    if not registration_editable(status):
        raise InvalidInput(
            f"The deal registration is {status}; it can be changed only while it is ActionRequired "
            "(Microsoft asked for changes).",
            field="registration status",
            value=str(status),
            allowed=[str(s) for s in REGISTRATION_EDITABLE],
        )
    resolved, problems = _resolve_all(changes, registration=True)
    if problems:
        raise InvalidInput(" ".join(problems))
    return [PatchOperation(op=path.op, path=path.pointer, value=value) for path, value in resolved]


# --- helpers --------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    return re.sub(r"[\s_\-]", "", text).casefold()


def _index(paths: tuple[PatchPath, ...]) -> dict[str, PatchPath]:
    index: dict[str, PatchPath] = {}
    for path in paths:
        for key in (path.pointer, path.name, *path.aliases):
            folded = _fold(key)
            if folded in index and index[folded] is not path:
                raise ValueError(f"patch path alias {key!r} is ambiguous")
            index[folded] = path
    return index


_REFERRAL_INDEX = _index(REFERRAL_PATHS)
_REGISTRATION_INDEX = _index(REGISTRATION_PATHS)


def _named(message: str, name: str) -> str:
    """Messages from a bare TypeAdapter say "input"/"value"; name the field as the person said it."""
    if message.startswith(("input", "value")):
        return name + message[5:]
    if message.startswith("["):  # an error inside a list: "[0].email ..."
        return name + message
    return f"{name}: {message}" if not message.startswith(name) else message


def _resolve_all(
    changes: Sequence[tuple[str, Any]], *, registration: bool
) -> tuple[list[tuple[PatchPath, Any]], list[str]]:
    resolved: list[tuple[PatchPath, Any]] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    if not changes:
        problems.append("No change was given; name at least one field and its new value.")
    for field_or_pointer, value in changes:
        try:
            path = resolve(field_or_pointer, registration=registration)
            if path.pointer in seen and not path.pointer.endswith("/-"):
                problems.append(
                    f"{path.name!r} is given twice ({seen[path.pointer]!r} and {field_or_pointer!r}); give it once."
                )
                continue
            seen[path.pointer] = field_or_pointer
            resolved.append((path, path.validate(value)))
        except InvalidInput as exc:
            problems.append(exc.message)
    return resolved, problems


def _status_problems(
    given: dict[str, Any], current: Referral | None
) -> tuple[list[str], TransitionCheck | None]:
    """Problems with a status/substatus change, and the lifecycle check when one was made."""
    if "/status" not in given and "/substatus" not in given:
        return [], None
    to_status, to_sub = given.get("/status"), given.get("/substatus")
    from_status = current.status if current is not None else None
    if to_status is not None and to_sub is None and to_status != from_status:
        subs = ", ".join(
            s for s in SUBSTATUSES.get(ReferralStatus(to_status), ()) if s not in SERVICE_ONLY_SUBSTATUSES
        )
        return [
            f"status {to_status!r} needs a substatus in the same change; with {to_status} use one of: {subs}."
        ], None
    if current is not None:
        check = check_transition(current.status, current.substatus, to_status, to_sub)
        return ([] if check.ok else [check.message]), check
    if to_status is not None and to_sub not in SUBSTATUSES.get(ReferralStatus(to_status), ()):
        subs = ", ".join(SUBSTATUSES.get(ReferralStatus(to_status), ()))
        return [
            f"substatus {to_sub!r} does not belong to status {to_status!r}; with {to_status} use one of: {subs}."
        ], None
    return [], None


def _status_together(operations: list[PatchOperation]) -> list[PatchOperation]:
    """Status, substatus and statusReason side by side (in that order) where the first of them was."""
    group = sorted(
        (op for op in operations if op.path in _STATUS_GROUP), key=lambda op: _STATUS_GROUP.index(op.path)
    )
    if not group:
        return operations
    first = next(i for i, op in enumerate(operations) if op.path in _STATUS_GROUP)
    rest = [op for op in operations if op.path not in _STATUS_GROUP]
    return rest[:first] + group + rest[first:]


def pointer_get(document: Any, pointer: str, default: Any = None) -> Any:
    """The value at a JSON pointer (RFC 6901) in a wire document, or ``default`` where there is none."""
    node = document
    for raw in pointer.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return default
    return node
