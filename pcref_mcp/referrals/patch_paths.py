"""The service's PATCH allow-list (connector definition, UpdateReferralDetails and
UpdateDealRegistration) as friendly names and value types, derived from the field table
(:mod:`pcref_mcp.referrals.fields`); and the reading of changes into operations. Anything else is
refused before it is sent."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, TypeAdapter, ValidationError

from pcref_mcp.errors import InvalidInput, LifecycleViolation
from pcref_mcp.referrals import catalog, lifecycle
from pcref_mcp.referrals.edits import Edit as Edit  # re-exported: the tools name it without the rules
from pcref_mcp.referrals.edits import Mode as Mode
from pcref_mcp.referrals.fields import REFERRAL_FIELDS, REGISTRATION_FIELDS, WireField, held_at
from pcref_mcp.referrals.fields import REGISTRATION_ADD_POINTER as REGISTRATION_ADD_POINTER  # re-exported
from pcref_mcp.referrals.lifecycle import (
    REGISTRATION_EDITABLE,
    SERVICE_ONLY_SUBSTATUSES,
    SUBSTATUSES,
    TRANSITIONS,
    TransitionCheck,
    check_transition,
    registration_editable,
)
from pcref_mcp.referrals.models import (
    PatchOperation,
    Referral,
    ReferralStatus,
)
from pcref_mcp.referrals.untrusted import quote
from pcref_mcp.referrals.write_models import (
    Amount,
    CurrencyCode,
    FieldProblem,
    UtcDateTime,
    validation_message,
)

# The allow-list, from the field table (pcref_mcp.referrals.fields): JSON pointers a PATCH may change.
REFERRAL_POINTERS: tuple[str, ...] = tuple(f.pointer for f in REFERRAL_FIELDS)
REGISTRATION_POINTERS: tuple[str, ...] = tuple(f.pointer for f in REGISTRATION_FIELDS)


# --- the allow-list as a table: friendly names, aliases, value types ------------------------------


@dataclass(frozen=True)
class PatchPath:
    """One updatable JSON pointer, the words a person uses for it and the type of its value.

    The value's JSON schema is derived from ``value_type`` (``json_schema()``), never written by hand.
    ``value_type`` may be given as the function that builds it: the table's rows are, so that no
    adapter (nor the write twins some of them hold) is built before a change is read (cold start).
    """

    pointer: str
    name: str
    value_type: TypeAdapter[Any] | Callable[[], TypeAdapter[Any]] = field(compare=False, repr=False)
    aliases: tuple[str, ...] = ()
    ops: tuple[str, ...] = ("replace", "add")
    registration: bool = False

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        """``value_type``, built on first use when it was given as a function."""
        given = self.value_type
        return given if isinstance(given, TypeAdapter) else given()

    @property
    def op(self) -> str:
        """The op to send: ``add`` for an append (``/-``), ``replace`` otherwise."""
        return self.ops[0]

    def validate(self, value: Any) -> Any:
        """The wire JSON for ``value``, or ``InvalidInput`` naming this field, the value and what is allowed."""
        try:
            checked = self.adapter.validate_python(value)
        except ValidationError as exc:
            raise InvalidInput(
                _named(validation_message(exc), self.name),
                field=self.name,
                value=value,
                allowed=self.allowed(),
            ) from None
        return self.adapter.dump_python(checked, mode="json", by_alias=True, exclude_none=True)

    def json_schema(self) -> dict[str, Any]:
        return self.adapter.json_schema()

    def allowed(self) -> list[str] | None:
        """The allowed values when the value is an enum, for error payloads."""
        enum = self.json_schema().get("enum")
        return [str(v) for v in enum] if enum else None


# Other words for an enum's values, as sellers say them ("proposal" stage -> Propose).
ENUM_WORDS: dict[str, str] = {
    "proposal": "Propose",
    "proposing": "Propose",
    "closing": "Close",
    "qualification": "Qualify",
    "qualifying": "Qualify",
    "qualified": "Qualify",
    "development": "Develop",
    "developing": "Develop",
    "payasyougo": "PayAsYouGo",
    "payg": "PayAsYouGo",
    "consumption": "PayAsYouGo",
}


def _enum_input(enum: type[StrEnum]) -> BeforeValidator:
    """Accept an enum value in any case or spacing ("closed" -> "Closed", "pay as you go" ->
    PayAsYouGo), or in another word for it (``ENUM_WORDS``)."""
    by_fold = {re.sub(r"[\s_-]", "", member.value.casefold()): member for member in enum}
    for word, value in ENUM_WORDS.items():
        member = by_fold.get(value.casefold())
        if member is not None:
            by_fold.setdefault(word, member)

    def fold(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return by_fold.get(re.sub(r"[\s_-]", "", value.casefold()), value)

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


DeployedOnAzure = Annotated[bool, AfterValidator(_must_be_deployed)]

# A field's kind -> the type its value is written as (enums: see _value_type)
_KIND_TYPES: dict[str, Any] = {
    "amount": Amount,
    "currency": CurrencyCode,
    "datetime": UtcDateTime,
    "bool": bool,
}
# ... people and solutions: a write twin (referrals.write_requests, built with the first write), or a
# list of them
_TWIN_KINDS: dict[str, tuple[str, bool]] = {
    "member": ("MemberIn", False),
    "members": ("MemberIn", True),
    "solution": ("SolutionTagIn", False),
    "solutions": ("SolutionTagIn", True),
}


def _kind_type(kind: str) -> Any:
    if kind not in _TWIN_KINDS:
        return _KIND_TYPES[kind]
    from pcref_mcp.referrals import write_requests

    name, many = _TWIN_KINDS[kind]
    model = getattr(write_requests, name)
    return write_requests.list_of(model) if many else model


def _value_type(wire: WireField) -> TypeAdapter[Any]:
    """The type a PATCH value of ``wire`` is checked and written as, from its row in the field table."""
    if wire.kind == "text":
        base: Any = Annotated[str, Field(max_length=wire.limit)]
    elif wire.kind == "enum":
        assert wire.enum is not None, wire.pointer
        base = Annotated[wire.enum, _enum_input(wire.enum)]
    elif wire.must_be_true:
        base = DeployedOnAzure
    else:
        base = _kind_type(wire.kind)
    return TypeAdapter(base | None if wire.nullable else base)


def _path(wire: WireField) -> PatchPath:
    return PatchPath(
        wire.pointer,
        wire.name,
        lambda: _value_type(wire),
        wire.aliases,
        wire.ops,
        registration=wire.registration,
    )


REFERRAL_PATHS: tuple[PatchPath, ...] = tuple(_path(f) for f in REFERRAL_FIELDS)
REGISTRATION_PATHS: tuple[PatchPath, ...] = tuple(_path(f) for f in REGISTRATION_FIELDS)

# Names the MCP layer uses for the two tables.
PATCH_PATHS = REFERRAL_PATHS
REGISTRATION_PATCH_PATHS = REGISTRATION_PATHS


def lookup(field_or_pointer: Any, *, registration: bool = False) -> PatchPath | None:
    """The path a person means (as :func:`resolve`), or None: for readers that only ask, so a miss
    costs a dict look-up, not a refusal message."""
    if not isinstance(field_or_pointer, str):
        return None
    table = _REGISTRATION_INDEX if registration else _REFERRAL_INDEX
    found = table.get(_fold(field_or_pointer))
    if found is None and re.fullmatch(r"[\w.\[\]/-]+", field_or_pointer):
        # a pointer written as a path ("details.dealValue", "details/dealValue", "team[-]")
        pointer = "/" + re.sub(r"\[(\w+|-)\]", r"/\1", field_or_pointer.strip("/")).replace(".", "/")
        found = table.get(_fold(pointer))
    return found


def resolve(field_or_pointer: str, *, registration: bool = False) -> PatchPath:
    """The path a person means: a friendly name, an alias or a JSON pointer (case, spaces, ``_`` ignored)."""
    found = lookup(field_or_pointer, registration=registration)
    if found is not None:
        return found
    table = _REGISTRATION_INDEX if registration else _REFERRAL_INDEX
    key = _fold(field_or_pointer) if isinstance(field_or_pointer, str) else ""
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


def read_dollars(edits: Sequence[Edit], current: Referral) -> tuple[list[Edit], list[str]]:
    """A deal value written with a bare "$" ("$250,000") read in the referral's own currency where
    that is a dollar (the person's plain meaning), with a note for the preview; elsewhere, or beside
    a currency change, it is left for the value check to refuse ("$" names several currencies)."""
    if not any(isinstance(edit.value, str) and "$" in edit.value for edit in edits):
        return list(edits), []  # the usual call: nothing to read, no serialising of the referral
    currency = str(pointer_get(current.to_wire(), "/details/currency") or "").upper()
    pointers = [_pointer_or_none(edit.field) for edit in edits]
    if currency not in catalog.DOLLAR_CURRENCIES or "/details/currency" in pointers:
        return list(edits), []
    read, notes = [], []
    for edit, pointer in zip(edits, pointers, strict=True):
        found = _BARE_DOLLARS.fullmatch(edit.value) if isinstance(edit.value, str) else None
        if pointer == "/details/dealValue" and found:
            notes.append(
                f"deal value {edit.value!r} read as {found['amount']} {currency} (the referral's currency)."
            )
            edit = Edit(edit.field, found["amount"], edit.mode)
        read.append(edit)
    return read, notes


# "$250,000", "250k $": one "$" before or after the amount, nothing else
_BARE_DOLLARS = re.compile(r"\s*(?=[^$]*\$[^$]*$)\$?\s*(?P<amount>\d[\d,.]*\s*[kKmM]?)\s*\$?\s*")


def _pointer_or_none(name: Any) -> str | None:
    found = lookup(name)
    return found.pointer if found is not None else None


def build_operations(
    changes: Sequence[Edit | tuple[str, Any]], *, current: Referral | None = None
) -> list[PatchOperation]:
    """Validated JSON-patch operations for the changes, in one canonical order.

    Every problem is reported at once. Plain-language states ("won", "Closed/Won", "close as won
    because ...") become status, substatus and reason; a status change is checked against the
    lifecycle from ``current`` (when given) before anything else about it. Replacing a list that
    would drop entries of ``current`` is refused unless the edit says ``mode="replace"``. The
    operations follow the allow-list's order (status, substatus, reason together; appends in the
    order given), so the same changes in another order make the same operations.
    """
    edits = [change if isinstance(change, Edit) else Edit(*change) for change in changes]
    resolved, problems = _resolve_edits(edits, registration=False)
    resolved, intent_problems = _read_intents(resolved, current)
    problems += intent_problems
    checked: list[tuple[PatchPath, Any, Mode | None]] = []
    for path, value, mode in resolved:
        try:
            checked.append((path, path.validate(value) if path.pointer in _STATES else value, mode))
        except InvalidInput as exc:
            problems.append(exc.message)
    given = {path.pointer: value for path, value, _ in checked}
    status_problems, check, inferred = _status_problems(given, current)
    if check is not None and not check.ok and not problems:
        raise LifecycleViolation(
            check.message, field="status", allowed=[f"{s}/{sub}" for s, sub in check.allowed]
        )
    problems += status_problems
    checked += inferred
    operations: list[PatchOperation] = []
    for path, value, mode in checked:
        try:
            operations += _operations_for(path, value, mode, current)
        except InvalidInput as exc:
            problems.append(exc.message)
    if problems:
        raise InvalidInput(" ".join(problems))
    return canonical_order(operations)


def canonical_order(operations: Sequence[PatchOperation]) -> list[PatchOperation]:
    """The allow-list's order (status, substatus, reason side by side); appends keep the order given."""
    return sorted(operations, key=lambda op: _RANK.get(op.path, len(_RANK)))


_RANK = {pointer: i for i, pointer in enumerate(p.pointer for p in (*REFERRAL_PATHS, *REGISTRATION_PATHS))}


# List fields whose replacement can remove entries: pointer -> how an entry is told apart and named.
LIST_POINTERS: dict[str, str] = {f.pointer: f.entries for f in REFERRAL_FIELDS if f.entries is not None}


def removed_entries(current: Referral, operations: Sequence[PatchOperation]) -> dict[str, list[str]]:
    """For each list the operations replace: the entries of ``current`` that would go (names only)."""
    wire: Any = None
    removed: dict[str, list[str]] = {}
    for op in operations:
        kind = LIST_POINTERS.get(op.path)
        if kind is None or op.op != "replace":
            continue
        wire = wire if wire is not None else current.to_wire()  # only when a list is replaced
        keep = {_entry_key(kind, entry) for entry in op.value or []}
        gone = [
            _entry_label(kind, entry)
            for entry in pointer_get(wire, op.path) or []
            if _entry_key(kind, entry) not in keep
        ]
        if gone:
            removed[resolve(op.path).name] = gone
    return removed


def build_registration_operations(
    changes: Sequence[Edit | tuple[str, Any]], current: Referral
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
    edits = [change if isinstance(change, Edit) else Edit(*change) for change in changes]
    resolved, problems = _resolve_edits(edits, registration=True)
    operations = []
    for path, value, mode in resolved:
        try:
            if mode == "append":
                raise InvalidInput(f"{path.name!r} holds one value; mode 'append' works for notes and lists.")
            operations.append(PatchOperation(op=path.op, path=path.pointer, value=path.validate(value)))
        except InvalidInput as exc:
            problems.append(exc.message)
    if problems:
        raise InvalidInput(" ".join(problems))
    return canonical_order(operations)


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


def _resolve_edits(
    edits: Sequence[Edit], *, registration: bool
) -> tuple[list[tuple[PatchPath, Any, Mode | None]], list[str]]:
    """Each edit's path with its raw value; a field given twice is a problem (appends may repeat)."""
    resolved: list[tuple[PatchPath, Any, Mode | None]] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    if not edits:
        problems.append("No change was given; name at least one field and its new value.")
    for edit in edits:
        try:
            path = resolve(edit.field, registration=registration)
        except InvalidInput as exc:
            problems.append(exc.message)
            continue
        if path.pointer in seen and not path.pointer.endswith("/-") and edit.mode != "append":
            problems.append(
                f"{path.name!r} is given twice ({seen[path.pointer]!r} and {edit.field!r}); give it once."
            )
            continue
        seen[path.pointer] = edit.field
        if path.pointer in _STATES:  # read as a state first ("won"), checked after
            resolved.append((path, edit.value, edit.mode))
            continue
        try:
            resolved.append((path, path.validate(edit.value), edit.mode))
        except InvalidInput as exc:
            problems.append(exc.message)
    return resolved, problems


# Values read as a lifecycle state ("won", "Closed/Won") before they are checked; a reason may come along.
_STATES = ("/status", "/substatus", "/statusReason")


def _read_intents(
    resolved: list[tuple[PatchPath, Any, Mode | None]], current: Referral | None
) -> tuple[list[tuple[PatchPath, Any, Mode | None]], list[str]]:
    """Status or substatus values that name a state ("won", "Closed/Won", "close as won because ...")
    become status, substatus and reason; a bare substatus brings its status when that differs."""
    given = {path.pointer: value for path, value, _ in resolved}
    out: list[tuple[PatchPath, Any, Mode | None]] = []
    extra: dict[str, Any] = {}
    problems: list[str] = []
    for path, value, mode in resolved:
        if path.pointer not in ("/status", "/substatus"):
            out.append((path, value, mode))
            continue
        intent = lifecycle.read_intent(value)
        plain = isinstance(value, str) and _plain_state(path.pointer, value)
        if intent is None or (plain and path.pointer == "/status"):
            out.append((path, value, mode))
            continue
        implied = {"/status": str(intent.status), "/substatus": str(intent.substatus)}
        if intent.reason:
            implied["/statusReason"] = intent.reason
        if plain:  # a bare substatus: its status only where it is not already the current one
            same = current is not None and str(current.status) == implied["/status"]
            if "/status" in given or same or current is None:
                implied.pop("/status")
        for pointer, meant in implied.items():
            if pointer == path.pointer:
                out.append((path, meant, mode))
            elif pointer in given and not _same_state(given[pointer], meant):
                problems.append(
                    f"{path.name} {value!r} means {resolve(pointer).name} {meant!r}, but "
                    f"{resolve(pointer).name} {given[pointer]!r} was also given; give one of them."
                )
            elif pointer not in given:
                extra[pointer] = meant
    out += [(resolve(pointer), meant, None) for pointer, meant in extra.items()]
    return out, problems


def _plain_state(pointer: str, value: str) -> bool:
    """Whether ``value`` is one of the status's (or substatus's) own values, not a state said in words."""
    enum = held_at(pointer).enum or ()
    return any(member.value.casefold() == value.strip().casefold() for member in enum)


def _same_state(given: Any, meant: str) -> bool:
    return isinstance(given, str) and given.strip().casefold() == meant.casefold()


def _status_problems(
    given: dict[str, Any], current: Referral | None
) -> tuple[list[str], TransitionCheck | None, list[tuple[PatchPath, Any, Mode | None]]]:
    """Problems with a status/substatus change, the lifecycle check when one was made, and the
    substatus inferred where the new status has only one a partner may set (Active -> Accepted).

    The move between statuses is checked against the current state first, so the first refusal is
    the true one (a closed referral cannot be reopened) and names the allowed moves.
    """
    if "/status" not in given and "/substatus" not in given:
        return [], None, []
    to_status, to_sub = given.get("/status"), given.get("/substatus")
    inferred: list[tuple[PatchPath, Any, Mode | None]] = []
    from_status = current.status if current is not None else None
    if to_status is not None and to_sub is None and to_status != from_status:
        if current is not None:
            move = check_transition(current.status, current.substatus, to_status, None)
            moves = {str(t) for s, to in TRANSITIONS.items() if str(s) == str(current.status) for t in to}
            if not move.ok and str(to_status) not in moves:
                return [move.message], move, []
        choices = [
            s for s in SUBSTATUSES.get(ReferralStatus(to_status), ()) if s not in SERVICE_ONLY_SUBSTATUSES
        ]
        if len(choices) != 1:
            return (
                [
                    f"status {to_status!r} needs a substatus in the same change; with {to_status} use one of: "
                    f"{', '.join(choices)} (or say it plainly: status 'won', 'lost' or 'declined')."
                ],
                None,
                [],
            )
        to_sub = str(choices[0])
        inferred.append((resolve("/substatus"), to_sub, None))
    if current is not None:
        check = check_transition(current.status, current.substatus, to_status, to_sub)
        return ([] if check.ok else [check.message]), check, inferred
    if to_status is not None and to_sub not in SUBSTATUSES.get(ReferralStatus(to_status), ()):
        subs = ", ".join(SUBSTATUSES.get(ReferralStatus(to_status), ()))
        return (
            [
                f"substatus {to_sub!r} does not belong to status {to_status!r}; with {to_status} use one of: {subs}."
            ],
            None,
            inferred,
        )
    return [], None, inferred


def _operations_for(
    path: PatchPath, value: Any, mode: Mode | None, current: Referral | None
) -> list[PatchOperation]:
    """The operation(s) for one checked value: notes appended, list entries added, removals guarded."""
    if mode == "append":
        if path.pointer == "/details/notes":
            before = pointer_get(current.to_wire(), path.pointer) if current is not None else None
            if before and notes_end_with(str(before), str(value)):
                # a retried append whose first try landed: the text is there already, not added again
                return [PatchOperation(op="replace", path=path.pointer, value=before)]
            joined = f"{before.rstrip()}{NOTES_SEPARATOR}{value}" if before else value
            return [PatchOperation(op="replace", path=path.pointer, value=path.validate(joined))]
        if path.pointer in LIST_POINTERS:
            return [PatchOperation(op="add", path=f"{path.pointer}/-", value=item) for item in value]
        if not path.pointer.endswith("/-"):
            raise InvalidInput(
                f"{path.name!r} holds one value; mode 'append' works for notes and lists "
                "(sales team, customer contacts, solutions)."
            )
    operation = PatchOperation(op=path.op, path=path.pointer, value=value)
    if current is not None and mode != "replace" and path.pointer in LIST_POINTERS:
        gone = removed_entries(current, [operation]).get(path.name)
        if gone:
            adder = resolve(f"{path.pointer}/-").name
            raise InvalidInput(
                f"{path.name}: this list replaces the current one and would remove "
                f"{', '.join(gone)}. To add, use {adder!r} (or mode 'append'); to remove them, send the "
                "same change with mode 'replace'.",
                field=path.name,
            )
    return [operation]


# Between the existing notes and what mode "append" adds.
NOTES_SEPARATOR = "\n\n"


def notes_end_with(notes: str, text: str) -> bool:
    """Whether ``notes`` already end with ``text`` as a paragraph of its own (or are just ``text``):
    an append of ``text`` that landed before. Line endings and trailing blanks do not count."""
    tail, added = _squeeze(notes), _squeeze(text)
    return bool(added) and (tail == added or tail.endswith("\n" + added))


def _squeeze(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().replace("\r\n", "\n").split("\n"))


def _entry_key(kind: str, entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry).casefold()
    if kind == "solution":
        return str(entry.get("id", "")).casefold()
    email = entry.get("email")
    if email:
        return str(email).casefold()
    return f"{entry.get('firstName', '')} {entry.get('lastName', '')}".strip().casefold()


def _entry_label(kind: str, entry: Any) -> str:
    """A name only (never an e-mail or a phone), quoted: it was written by others."""
    if not isinstance(entry, dict):
        return quote(str(entry)) or ""
    if kind == "solution":
        return quote(entry.get("name") or entry.get("id")) or ""
    name = f"{entry.get('firstName') or ''} {entry.get('lastName') or ''}".strip()
    return quote(name or entry.get("title") or "a person without a name") or ""


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
