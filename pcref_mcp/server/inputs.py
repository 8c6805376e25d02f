"""Every tool call's raw arguments, read before the SDK validates them: every key used or refused.

Models call tools imperfectly: flattened arguments, a scalar for a list, camelCase wire names,
other words for a field, an extra key, text copied back inside our «…» marks. ``normalise`` reads
the raw arguments against the tool's own argument model (field names, types and enums derived from
it, synonyms from the table below) and returns what was meant plus a note for every liberty taken;
the answer carries those notes as ``read_as``. A key it cannot place unambiguously is refused,
naming the key, the nearest valid names and a corrected call. Nothing is dropped silently.

``GuardedTool`` is the hook: it normalises before the SDK's own validation and turns every input
error, the SDK's included, into one short message (``referrals.write_models.validation_message``
is the one pydantic-to-sentence table). No raw validation text reaches the model.
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
import json
import re
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools.base import Tool
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import SkipJsonSchema

from pcref_mcp.errors import Ambiguous, Answered, ConfirmationError, InvalidInput, PcrefError
from pcref_mcp.referrals import catalog, lifecycle, money, patch_paths, when
from pcref_mcp.referrals.untrusted import unwrap
from pcref_mcp.referrals.write_models import Contact, MemberIn, NewReferral, SolutionTagIn, validation_message
from pcref_mcp.server.sdk_adapter import raised_in_tool
from pcref_mcp.server.search import Filters

E = TypeVar("E", bound=BaseException)

# What the current call's arguments were read as; views.respond puts it in the answer.
READ_AS: ContextVar[tuple[str, ...]] = ContextVar("pcref_read_as", default=())

# The ``read_as`` field of every result model. Left out of the published output schemas: it is in the
# answer the model reads whenever there is something to say, and nine copies of its schema would cost
# ~470 bytes of tools/list (which must stay under 20 KB). Output schemas allow extra properties.
ReadAs = Annotated[list[str] | None, SkipJsonSchema()]

# Other words for a field, by field name; used in any model that has that field (and only one
# field claiming the word). camelCase, case, spaces and singular/plural are derived, not listed.
SYNONYMS: dict[str, tuple[str, ...]] = {
    # tool arguments
    "referral_id": ("id", "referral", "engagement_referral_id"),
    "id": ("referral_id", "url", "uri", "referral"),
    "change_id": ("id", "journal_id", "change"),
    "limit": ("top", "max", "max_results", "page_size", "per_page"),
    "cursor": ("next_cursor", "page_token", "next_page_token", "continuation_token", "next"),
    "query": ("q", "text", "search", "keyword", "keywords"),
    "format": ("export", "output", "output_format", "file_format", "as"),
    "since": (
        "from",
        "after",
        "start",
        "since_date",
        "start_date",
        "from_date",
        "changed_since",
        "period",
        "window",
        "timeframe",
        "time_range",
    ),
    "status": ("outcome", "result", "state"),
    "confirm_token": ("token", "confirmation_token", "confirmation"),
    "changes": ("updates", "edits", "patch", "patches", "operations"),
    "items": ("updates", "referrals", "rows", "records", "entries"),
    # change items
    "field": ("path", "name", "field_name", "key", "attribute", "property", "pointer"),
    "value": ("new_value", "to", "set_to", "new", "val"),
    # search filters
    "text": ("query", "q", "search", "keyword", "keywords", "contains"),
    "name_contains": ("name", "referral_name"),
    "customer_contains": ("customer", "customer_name", "company", "account"),
    "min_value": (
        "min_deal_value",
        "value_from",
        "min_amount",
        "minimum_value",
        "min_deal_size",
        "min_size",
        "value_over",
        "value_above",
        "over",
        "above",
        "at_least",
        "more_than",
        "greater_than",
    ),
    "max_value": (
        "max_deal_value",
        "value_to",
        "max_amount",
        "maximum_value",
        "max_deal_size",
        "max_size",
        "value_under",
        "value_below",
        "under",
        "below",
        "at_most",
        "less_than",
    ),
    "closing_from": ("closing_after", "closes_after", "close_after", "closing_since"),
    "closing_to": (
        "closing_before",
        "closes_before",
        "close_before",
        "closing_by",
        "closes_by",
        "due_before",
    ),
    "updated_from": ("updated_since", "updated_after", "modified_since", "modified_after", "changed_after"),
    "updated_to": ("updated_before", "modified_before", "changed_before"),
    "created_from": ("created_since", "created_after"),
    "created_to": ("created_before",),
    # a new referral
    "deal_value": ("value", "amount", "deal_amount", "deal_size", "estimated_value"),
    "closing_date": ("close_date", "expected_close_date", "closing_date_time", "close_by", "expected_close"),
    "customer_name": ("customer", "company", "company_name", "account", "account_name"),
    "customer_country": ("country", "country_code"),
    "customer_city": ("city",),
    "customer_state": ("state", "province"),
    "customer_postal_code": ("postal_code", "zip", "zip_code", "postcode"),
    "customer_address_line1": ("address", "address_line1", "street", "street_address"),
    "customer_size": ("size", "company_size"),
    "customer_contacts": ("contacts", "customer_team", "customer_contact"),
    "customer_consent_to_contact": ("consent_to_contact", "customer_consent", "consent"),
    "deal_kind": ("kind", "deal_type", "referral_kind", "type", "referral_type", "sharing"),
    "help_notes": ("help_note", "help", "invite_notes", "note_to_microsoft", "help_text"),
    "assistance_request_code": ("assistance_code", "help_code", "assistance", "assistance_request"),
    "external_reference_id": ("external_id", "crm_id", "reference_id"),
    "team": ("sales_team", "team_members"),
    "notes": ("note", "description"),
    # people
    "phone": ("phone_number", "telephone", "mobile", "tel"),
    "phone_number": ("phone", "telephone", "mobile", "tel"),
    "email": ("e_mail", "mail", "email_address"),
    "first_name": ("given_name", "firstname", "first"),
    "last_name": ("family_name", "surname", "lastname", "last"),
    # a deal registration
    "solution_id": ("solution",),
    "solution_value": ("solution_amount",),
    "contract_value": ("contract_amount", "total_contract_value"),
    "contract_currency": (),
    "sign_date": ("signed_date", "signature_date", "contract_sign_date", "sign_date_time"),
    "start_date": ("contract_start_date", "contract_start", "start_date_time"),
    "end_date": ("contract_end_date", "contract_end", "end_date_time"),
    "term": ("contract_term",),
    "deployed_on_azure": ("is_deployed_on_azure", "azure_deployed", "on_azure"),
    "primary_deployment_on": ("primary_deployment", "deployment"),
    "marketplace_transacted": ("is_marketplace_transacted", "transacted_in_marketplace", "transacted"),
    "marketplace_transaction_date": ("transaction_date", "marketplace_transaction_date_time"),
}

# A change item's mode, in the words a model uses (JSON-patch "add" on a list appends).
MODES: dict[str, str | None] = {
    "append": "append",
    "add": "append",
    "add_to": "append",
    "extend": "append",
    "replace": "replace",
    "overwrite": "replace",
    "replace_all": "replace",
    "set": None,
}

# A JSON-patch op in a change item: "add" appends; "replace"/"set" set the field (never a licence to
# remove list entries: that takes mode "replace"); anything else is refused.
OPS: dict[str, str | None] = {"add": "append", "replace": None, "set": None, "update": None}

# search_referrals: the sort column words and their natural direction.
SORT_COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "updated": (
        "desc",
        ("updated", "updateddatetime", "lastmodified", "modified", "lastupdated", "updatedat"),
    ),
    "created": ("desc", ("created", "createddatetime", "createdat", "newest")),
    "closing": ("asc", ("closing", "closingdate", "closingdatetime", "closedate", "close", "expectedclose")),
    "value": ("desc", ("value", "dealvalue", "amount", "dealamount", "size", "dealsize")),
}
# A sort said as people say it ("biggest first"): the word decides column and direction.
_SORT_PHRASES: dict[str, str] = {
    "biggest": "value_desc",
    "largest": "value_desc",
    "highest": "value_desc",
    "smallest": "value_asc",
    "lowest": "value_asc",
    "soonest": "closing_asc",
    "latest": "updated_desc",
    "oldest": "created_asc",
}
DIRECTIONS: dict[str, str] = {"asc": "asc", "ascending": "asc", "desc": "desc", "descending": "desc"}

# What to do when an argument cannot be read, per tool: a plain step, never a template call.
LOOK_UP: dict[str, str] = {
    "undo_change": "recent_changes {} lists your changes with their change_id.",
}

# Pointers whose values are people or solutions: their dicts are read against these models.
_VALUE_MODELS: dict[str, type[BaseModel]] = {
    "/team": MemberIn,
    "/team/-": MemberIn,
    "/customerProfile/team": MemberIn,
    "/customerProfile/team/-": MemberIn,
    "/details/requirements/solutions": SolutionTagIn,
    "/details/requirements/solutions/-": SolutionTagIn,
}
# Change-item keys that are part of the item itself.
_ITEM_KEYS = ("field", "value", "mode")
_SECRET_ARGUMENTS = frozenset({"confirm_token", "cursor"})


@dataclass
class Reading:
    """The arguments as meant, a note for every liberty taken, and what could not be placed."""

    arguments: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fixed: int = 0  # problems the arguments now carry a confident fix for
    dropped: list[str] = field(default_factory=list)  # keys with no equivalent (left out of the call)

    def refusal(self, tool: str) -> str:
        """The problems, then the call as it should have been made: only when every problem has a
        fix that keeps the whole request (a suggestion is followed literally). Where the person must
        choose (``Choice``), one call per reading; otherwise no call, and what is missing said plainly."""
        text = " ".join(p.rstrip(".") + "." for p in self.problems)
        choices = list(_choices(self.arguments))
        if len(choices) > 1 or (choices and len(self.problems) - self.fixed > 1):
            return (
                text
                + " Ask the person about each; nothing was sent. Then resend the call with their answers."
            )
        if choices and _has_masked(_choose(self.arguments, 0)):  # the call cannot be echoed whole
            labels = "; ".join(label.removeprefix("If ") for label, _ in choices[0].readings)
            return (
                text + f" Ask the person which it is ({labels}); nothing was sent. Then resend the same call "
                "with their answer in it."
            )
        if choices:
            return (
                text
                + " Ask the person which they mean; nothing was sent. "
                + " ".join(
                    f"{label}: {tool} {_dumps(_choose(self.arguments, option))}"
                    for label, option in _options(choices)
                )
            )
        if _has_masked(self.arguments) or self.fixed + len(self.dropped) < len(self.problems):
            return text + " Nothing was sent; resend the call with this fixed (ask the person if unsure)."
        if self.dropped:  # the rest of the call can be done; only the person may let the part go
            keys = ", ".join(repr(k) for k in self.dropped)
            return (
                text
                + f" {keys} has no equivalent in this tool; nothing was sent. Ask the person whether to go "
                f"ahead without it. If they agree: {tool} {_dumps(self.arguments)}"
            )
        return text + f" Corrected call: {tool} {_dumps(self.arguments)}"


class Choice:
    """A value the person must choose: each reading with its label ("calendar Q1: 2027-03-31")."""

    def __init__(self, readings: list[tuple[str, Any]]) -> None:
        self.readings = readings

    def __repr__(self) -> str:
        return f"Choice({self.readings!r})"


def _choices(value: Any) -> Iterator[Choice]:
    if isinstance(value, Choice):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _choices(v)
    elif isinstance(value, list):
        for v in value:
            yield from _choices(v)


def _options(choices: list[Choice]) -> list[tuple[str, int]]:
    """The readings of the one choice (a call is suggested only when there is exactly one)."""
    return [(label, i) for i, (label, _) in enumerate(choices[0].readings)]


def _choose(value: Any, option: int) -> Any:
    """The arguments with the choice made (``option``)."""
    if isinstance(value, Choice):
        return value.readings[option][1]
    if isinstance(value, dict):
        return {k: _choose(v, option) for k, v in value.items()}
    if isinstance(value, list):
        return [_choose(v, option) for v in value]
    return value


def _dumps(arguments: Any) -> str:
    return json.dumps(_shown(arguments), ensure_ascii=False, separators=(",", ":"))


def _has_masked(arguments: Any) -> bool:
    """A corrected call would show a contact detail or a token masked, or a long text cut short:
    followed literally, it would send the mask or the cut. Such calls are not suggested."""
    return "as given>" in json.dumps(_shown(arguments), ensure_ascii=False, default=str) or _cut(arguments)


def _cut(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_cut(v) for v in value.values())
    if isinstance(value, list):
        return any(_cut(v) for v in value)
    return isinstance(value, str) and len(value) > 80


def normalise(tool: str, arguments: dict[str, Any], model: type[BaseModel]) -> Reading:
    """``arguments`` read against ``model`` (the tool's argument model): renamed, moved, wrapped,
    unquoted where the intent is plain, with a note for each; everything else is a problem."""
    reader = _Reader(tool)
    data = dict(arguments)
    hook = _TOOL_HOOKS.get(tool)
    if hook is not None:
        hook(reader, data, model)
    out = reader.object(data, model, "")
    return Reading(out, reader.notes, reader.problems, reader.fixed, reader.dropped)


def read_as() -> list[str] | None:
    """The notes for the call being answered (None when it was read exactly as sent)."""
    return list(READ_AS.get()) or None


def input_error(tool: str, exc: ValidationError, model: type[BaseModel]) -> str:
    """An argument error the SDK raised, as a sentence; no template call (it would be followed)."""
    text = validation_message(exc, model)
    step = LOOK_UP.get(tool)
    return f"{text} {step}" if step else text


class GuardedTool(Tool):
    """A tool whose arguments are normalised first and whose input errors are sentences."""

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        model = self.fn_metadata.arg_model
        reading = normalise(self.name, arguments, model)
        if reading.problems:
            raise ToolError(
                _with_notes(f"Error executing tool {self.name}: {reading.refusal(self.name)}", reading)
            )
        try:
            await _references(self.name, reading, context)
            await _stored_currency(self.name, reading, context)
        except PcrefError as exc:
            raise ToolError(_with_notes(f"Error executing tool {self.name}: {exc}", reading)) from exc
        if reading.problems:
            raise ToolError(
                _with_notes(f"Error executing tool {self.name}: {reading.refusal(self.name)}", reading)
            )
        with _notes(reading.notes):
            try:
                return await super().run(reading.arguments, context, convert_result=convert_result)
            except ToolError as exc:
                cause = raised_in_tool(exc)
                answered = _cause(cause, Answered)
                if answered is not None:  # not an error: the planner found the whole answer
                    from pcref_mcp.server.views import respond

                    result = respond(answered.answer)
                    return self.fn_metadata.convert_result(result) if convert_result else result
                if _cause(cause, ConfirmationError) is not None and "confirm_token" in reading.arguments:
                    again = {k: v for k, v in reading.arguments.items() if k != "confirm_token"}
                    if not _has_masked(again):  # the same call, to preview it and ask the person again
                        raise ToolError(
                            _with_notes(f"{exc} Corrected call: {self.name} {_dumps(again)}", reading)
                        ) from cause
                if isinstance(cause, ValidationError):
                    message = input_error(self.name, cause, model)
                    raise ToolError(
                        _with_notes(f"Error executing tool {self.name}: {message}", reading)
                    ) from cause
                if reading.notes and not isinstance(exc, UnexpectedToolError):
                    raise ToolError(_with_notes(str(exc), reading)) from cause
                raise


# Where each tool names a referral: a top-level argument, or inside each batch item.
_REFERENCES: dict[str, str] = {
    "get_referral": "referral_id",
    "update_field": "referral_id",
    "register_deal": "referral_id",
    "fetch": "id",
}


async def _references(tool: str, reading: Reading, context: Any) -> None:
    """Referrals named by a unique name, customer or id prefix, read as their ids (server.references)."""
    from pcref_mcp.server import references
    from pcref_mcp.server.confirmation import runtime_of

    args = reading.arguments
    spots: list[tuple[dict[str, Any], str, str]] = []
    key = _REFERENCES.get(tool)
    if key is not None and isinstance(args.get(key), str):
        spots.append((args, key, key))
    if tool == "batch_update" and isinstance(args.get("items"), list) and len(args["items"]) <= 50:
        spots += [
            (item, "referral_id", f"items[{i}].referral_id")
            for i, item in enumerate(args["items"])
            if isinstance(item, dict) and isinstance(item.get("referral_id"), str)
        ]
    for holder, name, where in spots:
        if references.is_full_id(holder[name]):
            continue
        try:
            holder[name], note = await references.resolve(
                runtime_of(context), holder[name], where, strict=tool != "batch_update"
            )
        except Ambiguous as exc:
            raise InvalidInput(_offer(tool, reading, holder, name, exc)) from exc
        if note:
            reading.notes.append(note)


def _offer(tool: str, reading: Reading, holder: dict[str, Any], name: str, exc: Ambiguous) -> str:
    """An ambiguous value as a choice: the caller's own call once per reading (none where it would
    show a masked value: followed literally it would send the mask)."""
    said = holder[name]
    calls = []
    for label, value in exc.readings:
        holder[name] = value
        calls.append(f"{label}: {tool} {_dumps(reading.arguments)}")
    masked = _has_masked(reading.arguments)
    holder[name] = said
    if masked:
        return str(exc)
    return f"{exc.message} Ask the person which one they mean; nothing was sent. " + " ".join(calls)


def _cause(exc: BaseException | None, kind: type[E]) -> E | None:
    """The error of ``kind`` in ``exc``'s chain of causes (what the tool raised, read through the
    SDK's wrapper by ``sdk_adapter.raised_in_tool``, may itself wrap it)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None or isinstance(seen, kind):
            return seen
        seen = seen.__cause__
    return None


def guarded_tool(fn: Callable[..., Any], **options: Any) -> GuardedTool:
    """``fn`` as a GuardedTool (the SDK's ``Tool.from_function``, with arguments read first); the
    server takes the list (``MCPServer(tools=...)``, server.app)."""
    tool = GuardedTool.from_function(fn, **options)
    assert isinstance(tool, GuardedTool)
    return tool


@contextmanager
def _notes(notes: list[str]) -> Iterator[None]:
    token = READ_AS.set(tuple(notes))
    try:
        yield
    finally:
        READ_AS.reset(token)


def _with_notes(message: str, reading: Reading) -> str:
    if not reading.notes:
        return message
    return f"{message} (Read as: {'; '.join(reading.notes)}.)"


# --- the generic reader ------------------------------------------------------------------------


class _Reader:
    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.notes: list[str] = []
        self.problems: list[str] = []
        self.fixed = 0
        self.dropped: list[str] = []
        self.currency_choice: tuple[str, str] | None = None

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # -- objects ----------------------------------------------------------------------------------

    def object(self, data: dict[str, Any], model: type[BaseModel], where: str) -> dict[str, Any]:
        """``data`` with every key placed on a field of ``model`` (or a nested model), values read too."""
        fields = _fields(model)
        out: dict[str, Any] = {}
        given_as: dict[str, str] = {}
        moved: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            name = self.place(key, value, fields, where)
            if name is None:
                home = self.nested_home(key, value, fields)
                if home is not None:
                    moved.setdefault(home, {})[key] = value
                    continue
                flattened = self.prefix_flatten(key, value, fields, where)
                if flattened is not None:
                    for name2, value2 in flattened.items():
                        self.put(out, given_as, name2, value2, f"{key}.{name2}", where)
                    continue
                self.unknown(key, value, fields, where, out)
                continue
            self.put(out, given_as, name, value, key, where)
        for home, inner_data in moved.items():
            self.note(f"{', '.join(_at(where, k) for k in inner_data)} read as inside {_at(where, home)}")
            existing = out.get(home)
            if existing is None:
                out[home] = inner_data
            elif isinstance(existing, dict):
                for key, value in inner_data.items():
                    if key in existing and existing[key] != value:
                        self.problems.append(
                            f"{_at(where, key)} and {_at(where, home)}.{key} differ; give it once, inside {home}."
                        )
                    existing.setdefault(key, value)
            else:  # nothing is dropped: a home that is not an object cannot take what was meant for it
                self.problems.append(
                    f"{', '.join(_at(where, k) for k in inner_data)} belong inside {_at(where, home)}, "
                    f"which is not an object; put them there."
                )
        for name, value in list(out.items()):
            out[name] = self.value(value, fields[name].annotation, _at(where, name), name)
        return out

    def put(
        self, out: dict[str, Any], given_as: dict[str, str], name: str, value: Any, key: str, where: str
    ) -> None:
        if name in out and out[name] != value:
            self.problems.append(
                f"{_at(where, given_as.get(name, name))} and {_at(where, key)} both mean {_at(where, name)} with different "
                "values; give it once."
            )
            return
        out[name] = value
        given_as.setdefault(name, key)

    def place(self, key: str, value: Any, fields: dict[str, Any], where: str) -> str | None:
        """The field ``key`` means, noting any renaming; None when it is no field of this model."""
        if key in fields:
            return key
        index = _index_of(fields)
        if key in index.aliases:
            return index.aliases[key]
        folded = _fold(key)
        if folded in index.folded:
            name = index.folded[folded]
            self.note(f"{_at(where, key)} read as {_at(where, name)}")
            return name
        claimed = index.claimed.get(folded, ())
        if len(claimed) == 1 and not (isinstance(value, dict) and self.prefix_fields(key, fields)):
            self.note(f"{_at(where, key)} read as {_at(where, claimed[0])}")
            return claimed[0]
        plural = index.plural.get(folded, ())
        if len(plural) == 1:
            self.note(f"{_at(where, key)} read as {_at(where, plural[0])}")
            return plural[0]
        return None

    def nested_home(self, key: str, value: Any, fields: dict[str, Any]) -> str | None:
        """The one nested object a key belongs to (``status`` sent beside ``filters``), if exactly one."""
        homes = []
        for name, info in fields.items():
            shape, inner = _shape(info.annotation)
            if shape == "model":
                probe = _Reader(self.tool)
                inner_fields = _fields(inner)
                if probe.place(key, value, inner_fields, name) is not None or probe.prefix_fields(
                    key, inner_fields
                ):
                    homes.append(name)
        return homes[0] if len(homes) == 1 else None

    def prefix_fields(self, key: str, fields: dict[str, Any]) -> list[str]:
        prefix = _snake(key) + "_"
        return [name for name in fields if name.startswith(prefix)]

    def prefix_flatten(
        self, key: str, value: Any, fields: dict[str, Any], where: str
    ) -> dict[str, Any] | None:
        """``customer: {name, country, city}`` -> ``customer_name``, ``customer_country``, ``customer_city``."""
        candidates = self.prefix_fields(key, fields)
        if not isinstance(value, dict) or not candidates:
            return None
        prefix = _snake(key) + "_"
        out: dict[str, Any] = {}
        for inner_key, inner_value in value.items():
            wanted = prefix + _snake(inner_key)
            match = next((c for c in candidates if _fold(c) == _fold(wanted)), None)
            if match is None:
                match = next(
                    (
                        c
                        for c in candidates
                        if _fold(wanted) in _folded_synonyms(c) or _fold(inner_key) in _folded_synonyms(c)
                    ),
                    None,
                )
            if match is None:
                return None
            out[match] = inner_value
        self.note(f"{_at(where, key)} {{…}} read as {', '.join(out)}")
        return out

    def unknown(self, key: str, value: Any, fields: dict[str, Any], where: str, out: dict[str, Any]) -> None:
        names = list(fields)
        guesses = difflib.get_close_matches(_snake(key), names, n=3, cutoff=0.6)
        likely = difflib.get_close_matches(_snake(key), names, n=1, cutoff=0.75)
        what = "argument" if not where else "field"
        guess = f" Did you mean {' or '.join(repr(g) for g in guesses)}?" if guesses else ""
        allowed = (
            f"Allowed: {', '.join(names)}."
            if names
            else f"This {'tool' if not where else 'object'} takes none."
        )
        self.problems.append(
            f"{_at(where, key)!r} is not a known {what}{' of ' + where if where else ''}.{guess} {allowed}"
        )
        if likely and likely[0] not in out:  # the corrected call carries only a confident guess
            out[likely[0]] = value
            self.fixed += 1
        elif not guesses and names:  # nothing near it: it has no equivalent here
            self.dropped.append(_at(where, key))

    # -- values -----------------------------------------------------------------------------------

    def value(self, value: Any, annotation: Any, where: str, name: str) -> Any:
        if value is None:
            return None
        if name in _DATE_FIELDS and isinstance(value, str):
            return self.day(value, where)
        if name in _RANGE_BOUNDS and isinstance(value, str):
            return self.day(value, where, bound=_RANGE_BOUNDS[name])
        if name in _UNIT_FIELDS and isinstance(value, str):
            said = re.fullmatch(rf"\s*(\d+)\s*(?:{_UNIT_FIELDS[name]})\s*", value, re.IGNORECASE)
            if said is not None:
                self.note(f"{where} {value!r} read as {int(said[1])}")
                return int(said[1])
        if name in _INT_FIELDS and isinstance(value, str) and _fold(value) in _NUMBER_WORDS:
            self.note(f"{where} {value!r} read as {_NUMBER_WORDS[_fold(value)]}")
            return _NUMBER_WORDS[_fold(value)]
        shape, inner = _shape(annotation)
        if shape == "list":
            if isinstance(value, str) and value.strip().startswith("["):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            if not isinstance(value, list | tuple):
                self.note(f"{where} {_brief(value)} read as a list of one")
                value = [value]
            item_shape, item_model = _shape(inner)
            if item_shape == "model" and item_model in _LIST_HOOKS:
                value = _LIST_HOOKS[item_model](self, list(value), where)
            return [self.value(item, inner, f"{where}[{i}]", name) for i, item in enumerate(value)]
        if shape == "model":
            if isinstance(value, str) and value.strip().startswith("{"):
                try:
                    value = json.loads(value)
                except ValueError:
                    return value
            if isinstance(value, dict):
                hook = _MODEL_HOOKS.get(inner)
                if hook is not None:
                    value = hook(self, dict(value), where)
                return self.object(value, inner, where)
            return value
        if shape == "enum":
            read = _enum_value(value, inner)
            word = _ENUM_WORDS.get(_fold(read)) if isinstance(read, str) else None
            if read not in inner and word in inner:
                self.note(f"{where} {value!r} read as {word!r}")
                return word
            return read
        if shape in ("text", "any") and name not in _SECRET_ARGUMENTS:
            return self.unquote(value, where)
        return value

    def day(self, value: str, where: str, bound: int | None = None) -> Any:
        """A date field's value in words or with an offset, as the day meant (when.read_day). A range's
        bound (``bound`` 0: from, 1: to) takes a period's first or last day ("updated_from: last week")."""
        read = when.read_day(unwrap(value) or value)
        if read is None:
            return self.unquote(value, where)
        if read.iso is not None:
            self.note(f"{where} {_brief(value)} read as {read.how}")
            return read.iso
        if bound is not None and read.period is not None:
            day = read.period[bound]  # refused (a date is YYYY-MM-DD), with that bound in the call
            self.problems.append(
                f"{where} {_brief(value)} is no date (YYYY-MM-DD): {read.how.split('; ask')[0]}; as the "
                f"{('start', 'end')[bound]} of a range it is its {('first', 'last')[bound]} day, {day}"
            )
            self.fixed += 1
            return day
        self.problems.append(f"{where} {read.how}")
        if read.readings:
            return Choice([(f"If {label} ({iso})", iso) for label, iso in read.readings])
        return value

    def unquote(self, value: Any, where: str) -> Any:
        """Strings (anywhere inside) carrying our «…» or ‹…› marks lose them, with a note: whole
        values and marks inside a longer text alike (copied from an answer, never meant as data)."""
        if isinstance(value, str):
            plain = unwrap(value)
            if plain is None and _MARKS.search(value):
                plain = _MARKS.sub("", value)
            if plain is not None:
                self.note(f"{where} {_brief(value)} read without our quote marks: {_brief(plain)}")
                return plain
            return value
        if isinstance(value, dict):
            return {k: self.unquote(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.unquote(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value


# --- per-tool and per-model hooks (what the generic reader cannot derive) ---------------------------


def _search_hook(reader: _Reader, data: dict[str, Any], model: type[BaseModel]) -> None:
    """Sort words (``sortBy``, ``orderBy``, ``direction: desc``) and page/offset in search_referrals;
    filters as a list of conditions (all must match) as one object."""
    filters = data.get("filters")
    if isinstance(filters, list) and filters and all(isinstance(f, dict) for f in filters):
        keys = [k for f in filters for k in f]
        if len(keys) == len(set(keys)):
            data["filters"] = {k: v for f in filters for k, v in f.items()}
            reader.note("filters [{…}, {…}] read as one filters object (all must match)")
    sort_keys = [
        k for k in data if _fold(k) in {"sortby", "orderby", "sort", "order", "sortfield", "sortcolumn"}
    ]
    direction_keys = [
        k
        for k in data
        if _fold(k) in {"direction", "sortdirection", "sortorder", "orderdirection", "order", "dir"}
        and isinstance(data[k], str)
        and _fold(data[k]) in DIRECTIONS
    ]
    if sort_keys or direction_keys:
        raw_sort = " ".join(_words(data[k]) for k in sort_keys if k not in direction_keys)
        raw_direction = " ".join(_words(data[k]) for k in direction_keys)
        allowed = get_args(_fields(model)["sort"].annotation)
        literal = _enum_value(raw_sort, allowed) if raw_sort and not raw_direction else None
        if literal in allowed:
            for k in sort_keys:
                data.pop(k)
            data["sort"] = literal
            if sort_keys != ["sort"]:
                reader.note(f"{'+'.join(sort_keys)} read as sort {literal!r}")
        else:
            sort = _read_sort(raw_sort, raw_direction)
            if sort is None:
                reader.problems.append(
                    f"Sort {_brief((raw_sort + ' ' + raw_direction).strip())} is not one this tool knows; "
                    f"use sort one of: {', '.join(allowed)}."
                )
            for k in {*sort_keys, *direction_keys}:
                data.pop(k)
            data["sort"] = sort or raw_sort
            if sort is not None:
                reader.note(f"{'+'.join([*sort_keys, *direction_keys])} read as sort {sort!r}")
    limit_key = next((k for k in data if _fold(k) in {"limit", *map(_fold, SYNONYMS["limit"])}), None)
    limit = data.get(limit_key) if limit_key else None
    if isinstance(limit, int | str) and str(limit).strip().isdigit() and int(str(limit).strip()) > 100:
        data.pop(limit_key or "limit")
        data["limit"] = 100
        reader.problems.append(
            f"{limit_key} {limit}: a page holds at most 100 referrals; ask for 100, then pass next_cursor from "
            "the answer as cursor for the next 100 (or format csv for every match in one file)"
        )
        reader.fixed += 1
    for key in list(data):
        if _fold(key) in {"page", "pagenumber", "offset", "skip", "start"}:
            value = data.pop(key)
            first = 1 if _fold(key) in {"page", "pagenumber"} else 0
            if value in (first, str(first)):
                reader.note(f"{key} {value} read as the first page (no cursor)")
            else:
                reader.problems.append(
                    f"{key} {_brief(value)}: this tool pages with a cursor, not by {key}; call it first without "
                    "cursor, then pass next_cursor from each answer as cursor for the next page."
                )


def _get_referral_hook(reader: _Reader, data: dict[str, Any], model: type[BaseModel]) -> None:
    """``include_contacts: true`` (any ``include_<section>``, or ``include: [...]``) -> sections."""
    allowed = [str(a) for a in get_args(_shape(_fields(model)["sections"].annotation)[1])]
    for key in list(data):
        match = re.fullmatch(r"include_?(\w*)", _snake(key))
        if match is None:
            continue
        wanted = [match[1]] if match[1] else data[key]
        wanted = wanted if isinstance(wanted, list) else [wanted]
        if match[1] == "contacts" and data[key] in (False, "false", 0, None):
            data.pop(key)
            reader.note(f"{key} false read as the default sections (contacts are left out unless asked for)")
            continue
        if match[1] and data[key] not in (True, "true", 1):
            continue
        sections = [_enum_value(w, allowed) for w in wanted if isinstance(w, str)]
        if not sections or any(s not in allowed for s in sections):
            continue
        data.pop(key, None)
        current = data.get("sections")
        current = [current] if isinstance(current, str) else list(current or [])
        if not current:
            current = [s for s in allowed if s not in ("contacts", "all")]
        data["sections"] = current + [s for s in sections if s not in current]
        reader.note(f"{key} read as sections {data['sections']}")


# Flags a model adds to a write to preview it ("dry_run": true): what every write does first, so read as
# said. Flags that would have it written at once ("confirm": true, "dry_run": false) are no approval
# (only the person approves): refused, with the call without them (it previews, then asks the person).
_PREVIEW_FLAGS = frozenset({"dryrun", "preview", "previewonly", "validateonly", "whatif"})
_WRITE_FLAGS = frozenset(
    {"confirm", "confirmed", "approve", "approved", "execute", "commit", "apply", "force"}
)


def _preview_words(reader: _Reader, data: dict[str, Any]) -> None:
    """``dry_run: true`` (``preview``, ``validate_only``) on a write: what every write does first (a
    preview; nothing is sent until the person approves), so it is read as said, with a note."""
    for key in list(data):
        said = str(data[key]).casefold()
        if _fold(key) in _PREVIEW_FLAGS and said == "true":
            data.pop(key)
            reader.note(
                f"{key} read as a preview: every write is previewed first and sent only after the person approves"
            )
        elif (_fold(key) in _WRITE_FLAGS and said == "true") or (
            _fold(key) in _PREVIEW_FLAGS and said == "false"
        ):
            data.pop(key)
            reader.problems.append(
                f"{key} {said}: this is no approval; every write is previewed first and sent only after the "
                "person approves it (then call again with the confirm_token the preview gives)"
            )
            reader.fixed += 1


def _changes_hook(reader: _Reader, data: dict[str, Any], model: type[BaseModel]) -> None:
    """update_field and register_deal: a change given flat at the top level, or changes as a mapping."""
    _preview_words(reader, data)
    registration = reader.tool == "register_deal"
    fields = _fields(model)
    if "changes" not in fields:
        return
    if "changes" not in data and "field" in data and not ("registration" in data and registration):
        item = {k: data.pop(k) for k in list(data) if k in ("field", "value", "mode")}
        data["changes"] = [item]
        reader.note("field/value read as changes[0]")
    changes = data.get("changes")
    if isinstance(changes, dict) and not any(_fold(k) in ("field", "path", "name") for k in changes):
        data["changes"] = [{"field": k, "value": v} for k, v in changes.items()]
        reader.note("changes {name: value} read as a list of changes")
    if registration and ("registration" in data or _new_registration_given(data, fields)):
        return
    extra: list[dict[str, Any]] = []
    for key in list(data):
        if key in fields or _fold(key) in {_fold(f) for f in fields}:
            continue
        try:
            path = patch_paths.resolve(key, registration=registration)
        except InvalidInput:
            continue
        extra.append({"field": key, "value": data.pop(key)})
        reader.note(f"{key} read as a change of {path.name!r}")
    if extra:
        existing = data.get("changes")
        data["changes"] = [
            *(existing if isinstance(existing, list) else [existing] if existing else []),
            *extra,
        ]


def _new_registration_given(data: dict[str, Any], fields: dict[str, Any]) -> bool:
    """A flattened new registration (``solution_id``, ``pricing_model`` …): some key belongs to the
    registration model and is no field a registration change could name, so the keys are a new one."""
    shape, model = _shape(fields["registration"].annotation)
    if shape != "model":
        return False
    probe = _Reader("register_deal")
    return any(
        key not in fields
        and probe.place(key, value, _fields(model), "registration") is not None
        and _path_of(key, registration=True) is None
        for key, value in data.items()
    )


def _recent_hook(reader: _Reader, data: dict[str, Any], model: type[BaseModel]) -> None:
    """recent_changes: a window as ``days``/``hours``/``weeks`` (-> since), ``since`` in words or with an
    offset (-> a UTC time, said), and ``limit`` (the tool lists the latest 20: said, with the call)."""
    for key in list(data):
        unit = {"days": "d", "hours": "h", "weeks": "w", "lastndays": "d"}.get(_fold(key))
        if unit is not None and "since" not in data and str(data[key]).strip().isdigit():
            value = data.pop(key)
            data["since"] = f"{int(str(value).strip())}{unit}"
            reader.note(f"{key} {value} read as since {data['since']!r}")
    since_key = next((k for k in data if _fold(k) in {_fold(s) for s in ("since", *SYNONYMS["since"])}), None)
    since = data.get(since_key) if since_key else None
    if isinstance(since, str | int) and re.fullmatch(r"\d{1,4}\s*[dhw]", str(since).strip()):
        count, unit = int(str(since).strip()[:-1]), str(since).strip()[-1]
        since = f"{count} {dict(d='day', h='hour', w='week')[unit]}s"
    if isinstance(since, str) and since_key is not None:
        read = when.read_since(since)
        if read is not None:
            moment, how = read
            data.pop(since_key)
            data["since"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            reader.note(f"{since_key} {_brief(since)} read as {data['since']} ({how})")
    for key in list(data):
        if _fold(key) in {"limit", "top", "max", "count", "n"}:
            value = data.pop(key)
            reader.problems.append(
                f"{key} {_brief(value)}: recent_changes takes no limit; it lists your latest 20 writes, newest "
                f"first, so the first {_brief(value)} lines are the ones asked for"
            )
            reader.fixed += 1


def _batch_hook(reader: _Reader, data: dict[str, Any], model: type[BaseModel]) -> None:
    """batch_update: items as a mapping of referral to its changes (``{"<id>": {"deal value": 1}}``),
    one set of changes for several referrals (``referral_ids`` + ``changes``), and csv given as rows
    (a list of objects, the columns as keys) written as the CSV text it stands for."""
    _preview_words(reader, data)
    items = data.get("items")
    if isinstance(items, dict) and items and not {"referral_id", "changes", "field"} & set(items):
        data["items"] = [{"referral_id": rid, "changes": changes} for rid, changes in items.items()]
        reader.note("items {referral: changes} read as one item per referral")
    ids_key = next((k for k in data if _fold(k) in {"referralids", "ids", "referrals"}), None)
    if ids_key and "items" not in data and isinstance(data[ids_key], list) and "changes" in data:
        changes = data.pop("changes")
        ids = data.pop(ids_key)
        data["items"] = [{"referral_id": rid, "changes": changes} for rid in ids]
        reader.note(f"{ids_key} with changes read as one item per referral, each with those changes")
    rows = data.get("csv")
    if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
        columns = list(dict.fromkeys(k for r in rows for k in r))
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        data["csv"] = out.getvalue()
        reader.note(f"csv as {len(rows)} row object(s) read as CSV text with columns {', '.join(columns)}")


_TOOL_HOOKS = {
    "recent_changes": _recent_hook,
    "create_referral": lambda reader, data, model: _preview_words(reader, data),
    "batch_update": _batch_hook,
    "search_referrals": _search_hook,
    "get_referral": _get_referral_hook,
    "update_field": _changes_hook,
    "register_deal": _changes_hook,
}


def _change_items(reader: _Reader, items: list[Any], where: str, *, registration: bool) -> list[Any]:
    """Change items as meant, each step saying what it read: the item's own keys under other names,
    op/mode words, another field's value carried by the item, an amount with its currency, a single
    entry for a list (an addition), a lifecycle word, and people read against their own model."""
    items = _named_items(reader, items, where, registration)
    given: dict[str, Any] = {}
    for item in items:
        path = _path_of(item.get("field"), registration) if isinstance(item, dict) else None
        if path is not None:
            given[path.pointer] = item.get("value")
    out: list[Any] = []
    for i, raw in enumerate(items):
        if not isinstance(raw, dict):
            out.append(raw)  # refused by validation: a change is an object
            continue
        at, item = f"{where}[{i}]", dict(raw)
        _item_keys(reader, item, at)
        _item_mode(reader, item, at)
        path = _path_of(item.get("field"), registration)
        if path is None and isinstance(item.get("field"), str):
            path = _append_words(reader, item, at, registration) or _misspelt(reader, item, at, registration)
        extra: list[dict[str, Any]] = []
        if path is not None:
            _value_parts(reader, item, path, at)
            if path.pointer.endswith(("/dealValue", "/value")) and "value" in item:
                item["value"] = _decimal_comma(reader, item.get("value"), f"{at}.value")
            extra = _companions(reader, item, path, given, at, registration)
            extra += _money(reader, item, path, given, at)
            _grouping(reader, item, path, at)
            path = _single_entry(reader, item, path, at)
            if path.pointer.endswith("DateTime") and isinstance(item.get("value"), str):
                item["value"] = reader.day(item["value"], f"{at}.value")
            _close_words(reader, item, path, at, given)
            _intent_note(reader, item, path, at)
            if "value" in item:
                item["value"] = _member_values(reader, path.pointer, item["value"], f"{at}.value")
        out += [item, *extra]
    if reader.currency_choice is not None:
        _choose_currency(reader, out)
    return out


def _choose_currency(reader: _Reader, items: list[Any]) -> None:
    """A currency conflict: the currency change becomes the choice between the two currencies."""
    marked, given = reader.currency_choice or ("", "")
    reader.currency_choice = None
    for item in items:
        path = _path_of(item.get("field"), False) if isinstance(item, dict) else None
        if path is not None and path.pointer == "/details/currency":
            item["value"] = Choice([(f"If {marked}", marked), (f"If {given}", given)])
            return


def _named_items(reader: _Reader, items: list[Any], where: str, registration: bool) -> list[Any]:
    """``[{"deal value": 5000, "currency": "EUR"}]``: an item keyed by field names is one change per key."""
    out: list[Any] = []
    for i, item in enumerate(items):
        named = (
            isinstance(item, dict)
            and item
            and not {"field", "value"} & set(item)
            and all(_path_of(key, registration) is not None for key in item)
        )
        if not named:
            out.append(item)
            continue
        out += [{"field": key, "value": value} for key, value in item.items()]
        reader.note(f"{where}[{i}] {{name: value}} read as {len(item)} change(s)")
    return out


def _item_keys(reader: _Reader, item: dict[str, Any], at: str) -> None:
    """``path``/``name`` for field, ``new_value``/``to`` for value: renamed where the item lacks them."""
    for key in [k for k in item if k not in _ITEM_KEYS]:
        name = reader.place(key, item[key], _ITEM_FIELDS, at)
        if name is not None and name not in item:
            item[name] = item.pop(key)
        elif name is None and "value" not in item and MODES.get(_snake(key)) is not None:
            item["value"], item["mode"] = item.pop(key), MODES[_snake(key)]  # {"append": "…"}
            reader.note(f"{at}.{key} read as value with mode {item['mode']!r}")


def _item_mode(reader: _Reader, item: dict[str, Any], at: str) -> None:
    """A JSON-patch ``op`` or a mode word. Only ``mode: "replace"`` may remove list entries: a wire-style
    ``op: "replace"`` is what every patch says, so it sets the field and removal stays refused."""
    if "op" in item and "mode" not in item:
        op = item.pop("op")
        if _snake(str(op)) not in OPS:
            reader.problems.append(
                f"{at}.op {op!r} is not an operation this tool performs; leave op out to set a field, or use "
                "mode 'append' (notes, lists) or 'replace' (a whole list, removing what is not in it)."
            )
        elif (mode := OPS[_snake(str(op))]) is not None:
            item["mode"] = mode
            reader.note(f"{at}.op {op!r} read as mode {mode!r}")
    if isinstance(item.get("mode"), str):
        said = item["mode"]
        mode = MODES.get(_snake(said), said)
        if mode != said:
            reader.note(
                f"{at}.mode {said!r} read as {mode!r}" if mode else f"{at}.mode {said!r} read as no mode"
            )
        if mode is None:
            item.pop("mode")
        else:
            item["mode"] = mode


def _companions(
    reader: _Reader,
    item: dict[str, Any],
    path: patch_paths.PatchPath,
    given: dict[str, Any],
    at: str,
    registration: bool,
) -> list[dict[str, Any]]:
    """Another field's value carried by the item ("currency" beside a deal value, "reason" beside a
    status) becomes its own change. Beside a list entry such a key may belong inside the entry, so it
    is left to be refused."""
    extra: list[dict[str, Any]] = []
    if path.pointer.endswith("/-") or path.pointer in _LISTS:
        return extra
    for key in [k for k in item if k not in _ITEM_KEYS]:
        # "currency" beside "solution value" is the solution currency
        companion = _path_of(key, registration) or _path_of(
            f"{path.name.rsplit(' ', 1)[0]} {key}", registration
        )
        if companion is None or companion.pointer == path.pointer:
            continue
        value = item.pop(key)
        if companion.pointer in given and given[companion.pointer] != value:
            reader.problems.append(
                f"{at}.{key} {_brief(value)} and the change of {companion.name!r} to "
                f"{_brief(given[companion.pointer])} disagree; give it once."
            )
        elif companion.pointer not in given:
            extra.append({"field": companion.name, "value": value})
            given[companion.pointer] = value
            reader.note(f"{at}.{key} {_brief(value)} read as its own change of {companion.name!r}")
    return extra


def _money(
    reader: _Reader, item: dict[str, Any], path: patch_paths.PatchPath, given: dict[str, Any], at: str
) -> list[dict[str, Any]]:
    """A deal value with its currency in one string ("250,000 EUR", "€250k"), when no currency is given."""
    if path.registration and path.pointer.endswith("/value") and isinstance(item.get("value"), str):
        said = _split_money(item["value"])
        if said is not None:  # the registration's own currency, checked against it (_stored_currency)
            item["value"] = _marked(item["value"], said[0], said[1])
        return []
    split = _split_money(item.get("value")) if path.pointer == "/details/dealValue" else None
    if split is None:
        return []
    if "/details/currency" in given:  # the mark may only repeat the currency given
        if _same_currency(split[1], given["/details/currency"]):
            reader.note(f"{at}.value {_brief(item['value'])} read as {split[0]} (in the currency given)")
            item["value"] = split[0]
        else:
            reader.problems.append(
                _currency_conflict(f"{at}.value", item["value"], split[1], given["/details/currency"])
            )
            if split[1] != "$" and isinstance(given["/details/currency"], str):
                item["value"] = split[0]  # the amount stands; the currency is the person's to choose
                reader.currency_choice = (split[1], given["/details/currency"].strip().upper())
        return []
    if split[1] == "$":  # which dollar? the referral's own, or the person's choice (_stored_currency)
        item["value"] = _marked(item["value"], split[0], "$")
        return []
    item["value"], currency = split
    given["/details/currency"] = currency
    reader.note(f"{at}.value {_brief(split[0])} {currency} read as deal value and currency")
    return [{"field": "currency", "value": currency}]


_GROUPED = re.compile(r"\s*(\d{1,3})\.(\d{3})\s*")


def _grouping(reader: _Reader, item: dict[str, Any], path: patch_paths.PatchPath, at: str) -> None:
    """``"250.000"``: a dot that groups thousands (250000) or a decimal point (250)? The person says."""
    value = item.get("value")
    found = (
        _GROUPED.fullmatch(value) if isinstance(value, str) and path.pointer.endswith("/dealValue") else None
    )
    if found is None or not isinstance(value, str):
        return
    item["value"] = _grouping_choice(reader, value, f"{at}.value")


def _decimal_comma(reader: _Reader, value: Any, at: str) -> Any:
    """ "1,5 Mio. €": refused (a comma is no decimal point everywhere), with the decimal-comma reading as
    the corrected call (money.decimal_comma)."""
    read = money.decimal_comma(value) if isinstance(value, str) else None
    if read is None:
        return value
    amount = read[0] if read[1] is None else f"{read[0]} {read[1]}"
    reader.problems.append(
        f"{at} {value!r} is not an unambiguous amount; read with a decimal comma it is {amount}"
    )
    reader.fixed += 1
    return amount


def _grouping_choice(reader: _Reader, value: str, at: str) -> Choice:
    found = _GROUPED.fullmatch(value)
    assert found is not None
    grouped, decimal = int(found[1] + found[2]), float(f"{found[1]}.{found[2]}")
    reader.problems.append(
        f"{at} {value!r} can be read two ways: {grouped:,} (the dot groups thousands) or {decimal:g} "
        "(the dot is a decimal point)"
    )
    return Choice([(f"If {grouped:,}", grouped), (f"If {decimal:g}", decimal)])


# Words around a catalog value that add nothing ("architecture help" -> architecture).
_CATALOG_FILLER = frozenset(
    {"help", "with", "support", "need", "needed", "needs", "please", "request", "on", "for"}
)


def _catalog_words(reader: _Reader, value: str, table: Any, where: str) -> str:
    """A catalog value said with words around it: the value, said; else as given (its check judges)."""
    try:
        table.lookup(value)
        return value
    except InvalidInput:
        pass
    core = " ".join(w for w in re.split(r"\s+", value.strip()) if w.casefold() not in _CATALOG_FILLER)
    try:
        found = str(table.lookup(core))
    except InvalidInput:
        return value
    reader.note(f"{where} {_brief(value)} read as {found!r}")
    return found


def _single_entry(
    reader: _Reader, item: dict[str, Any], path: patch_paths.PatchPath, at: str
) -> patch_paths.PatchPath:
    """One entry (or a string) for a whole list is an addition: it must never wipe the list."""
    value = item.get("value")
    if path.pointer not in _LISTS or item.get("mode") is not None or value is None or isinstance(value, list):
        return path
    adder = patch_paths.resolve(path.pointer + "/-")
    item["field"] = adder.name
    reader.note(f"{at} {path.name} {_brief(value)} read as {adder.name!r} (the current entries are kept)")
    return adder


def _intent_note(reader: _Reader, item: dict[str, Any], path: patch_paths.PatchPath, at: str) -> None:
    """Say how a lifecycle word was read ("won" -> Closed/Won); patch_paths does the reading."""
    raw = item.get("value")
    intent = lifecycle.read_intent(raw) if path.pointer in ("/status", "/substatus") else None
    if intent is None or not isinstance(raw, str):
        return
    if path.pointer == "/substatus" and raw.strip().casefold() == str(intent.substatus).casefold():
        return  # a plain substatus; its status shows in the preview's lifecycle line
    reason = f" with reason {intent.reason!r}" if intent.reason else ""
    reader.note(f"{at} {path.name} {raw!r} read as {intent.status}/{intent.substatus}{reason}")


# Status words that close a referral without naming the outcome ("close it out"), or that name it only
# among some outcomes ("not interested": lost once accepted, declined before): the person says which.
_OUTCOME_WORDS: dict[str, tuple[str, ...]] = {
    **{w: ("won", "lost", "declined") for w in ("close", "closeit", "closeout", "closeitout", "closure")},
    **{w: ("won", "lost", "declined") for w in ("markclosed", "markasclosed", "closed", "done", "finished")},
    **{w: ("lost", "declined") for w in ("notinterested", "nointerest", "nolongerinterested", "dead")},
    **{w: ("lost", "declined") for w in ("customernotinterested", "gonedark", "wentdark", "nogo", "pass")},
}
# Those that say only "closed", in a search filter (where "Closed" is itself a status).
_CLOSE_WORDS = frozenset(w for w, outcomes in _OUTCOME_WORDS.items() if len(outcomes) == 3) - {"closed"}


def _close_words(
    reader: _Reader, item: dict[str, Any], path: patch_paths.PatchPath, at: str, given: dict[str, Any]
) -> None:
    value = item.get("value")
    if path.pointer != "/status" or not isinstance(value, str) or _fold(value) not in _OUTCOME_WORDS:
        return
    if _fold(value) == "closed" and given.get("/substatus") is not None:
        return  # Closed with its substatus beside it
    outcomes = _OUTCOME_WORDS[_fold(value)]
    reader.problems.append(
        f"{at} status {value!r} closes the referral, which needs a substatus, its outcome: "
        f"{' or '.join(outcomes)} (a closed referral cannot be reopened)"
    )
    item["value"] = Choice([(f"If {word}", word) for word in outcomes])


def _value_parts(reader: _Reader, item: dict[str, Any], path: patch_paths.PatchPath, at: str) -> None:
    """A field's value given as an object of parts (``{"amount": 70000, "currency": "USD"}``,
    ``{"status": "Closed", "substatus": "Lost", "reason": …}``): the part naming the field is its
    value, the other parts are the item's own keys (each then read as its own change, or refused);
    a list of one for a field that holds one value is that value."""
    value = item.get("value")
    if path.pointer in _LISTS or path.pointer.endswith("/-") or path.pointer in _VALUE_MODELS:
        return
    if isinstance(value, list) and len(value) == 1 and not isinstance(value[0], dict | list):
        item["value"] = value[0]
        reader.note(f"{at}.value {_brief(value)} read as {_brief(value[0])}")
        return
    if not isinstance(value, dict):
        return
    own = [
        k
        for k in value
        if _fold(k) in {"value", "amount", _fold(path.name), _fold(path.pointer.rsplit("/", 1)[-1])}
    ]
    if len(own) != 1 or any(k in item for k in value if k not in own):
        return
    parts = dict(value)
    item["value"] = parts.pop(own[0])
    item.update(parts)
    reader.note(
        f"{at}.value {_brief(value)} read as {path.name} {_brief(item['value'])} with {', '.join(parts)}"
    )


def _misspelt(reader: _Reader, item: dict[str, Any], at: str, registration: bool) -> Any:
    """A field name one slip away from exactly one field ("deal vlaue"): refused (a write names its
    fields exactly), with that field in the corrected call."""
    paths = patch_paths.REGISTRATION_PATHS if registration else patch_paths.REFERRAL_PATHS
    names = {_fold(word): p for p in paths for word in (p.name, *p.aliases)}
    close = difflib.get_close_matches(_fold(item["field"]), list(names), n=2, cutoff=0.85)
    if not close or len({names[c].pointer for c in close}) != 1:
        return None
    path = names[close[0]]
    reader.problems.append(f"{at}.field {item['field']!r} is not a field; did you mean {path.name!r}?")
    reader.fixed += 1
    item["field"] = path.name
    return path


def _append_words(reader: _Reader, item: dict[str, Any], at: str, registration: bool) -> Any:
    """ "add note", "append to notes", "add solutions": the rest names notes or a list -> mode append."""
    words = re.fullmatch(
        r"\s*(?:add|append)(?:\s+(?:to|a|an|new))?\s+(.+)", str(item["field"]), re.IGNORECASE
    )
    if words is None:
        return None
    path = _path_of(words[1], registration)
    if path is None or (path.pointer != "/details/notes" and path.pointer not in _LISTS):
        return None
    reader.note(f"{at}.field {item['field']!r} read as {path.name!r} with mode 'append'")
    item["field"], item["mode"] = path.name, "append"
    return path


def _member_values(reader: _Reader, pointer: str, value: Any, where: str) -> Any:
    model = _VALUE_MODELS.get(pointer)
    if model is None:
        return value
    hook = _MODEL_HOOKS.get(model)

    def read(item: Any, at: str) -> Any:
        if not isinstance(item, dict):
            return item
        return reader.object(hook(reader, dict(item), at) if hook else item, model, at)

    if isinstance(value, list):
        return [read(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return read(value, where)


def _split_money(value: Any) -> tuple[str, str] | None:
    """``"250,000 EUR"``, ``"€250k"``, ``"80k pounds"``, ``"CHF 1'200'000"`` -> (the amount in digits,
    the currency code); a bare ``"$250k"`` -> (amount, "$"); None when no currency is said
    (``referrals.money`` reads them; a bare "$" names many: catalog.DOLLAR_CURRENCIES)."""
    read = money.split(value) if isinstance(value, str) else None
    if read is None or read[1] is None:
        return None
    return read[0], read[1]


def _currency_conflict(where: str, value: Any, mark: str, given: Any) -> str:
    """Two currencies for one amount: named as such, for the person to settle."""
    said = "a dollar currency" if mark == "$" else mark
    return (
        f"Currency conflict: {where} {_brief(value)} is in {said} and the currency given is {_brief(given)}: they disagree"
        + ("; ask the person which currency, then send the amount in digits with it" if mark == "$" else "")
    )


def _same_currency(code: str, given: Any) -> bool:
    """The mark on an amount agrees with the currency given beside it ("$" with any dollar)."""
    have = given.strip().upper() if isinstance(given, str) else None
    return have is not None and (have == code or (code == "$" and have in catalog.DOLLAR_CURRENCIES))


def _new_referral_hook(reader: _Reader, data: dict[str, Any], where: str) -> dict[str, Any]:
    """The customer's consent, asked for when absent; the help a co-sell asks Microsoft for, chosen by the
    person when absent; a deal value with its currency in one string."""
    _ask_consent(reader, data, where)
    _cosell_help(reader, data, where)
    return _deal_value_currency(reader, data, where)


def _cosell_help(reader: _Reader, data: dict[str, Any], where: str) -> None:
    """Assistance words read against the catalog; a co-sell referral without the help wanted from
    Microsoft: the person chooses it, one call per code."""
    kinds = {_fold(k) for k in ("deal_kind", *SYNONYMS["deal_kind"])}
    kind = next((v for k, v in data.items() if _fold(k) in kinds and isinstance(v, str)), None)
    codes = {_fold(k) for k in ("assistance_request_code", *SYNONYMS["assistance_request_code"])}
    code_key = next((k for k in data if _fold(k) in codes), None)
    if code_key is not None and isinstance(data[code_key], str):
        data[code_key] = _catalog_words(
            reader, data[code_key], catalog.ASSISTANCE_REQUEST_CODES, f"{where}.{code_key}"
        )
    if kind is not None and _fold(kind) == "cosell" and code_key is None:
        schema = NewReferral.model_json_schema()["properties"]["assistance_request_code"]
        allowed: list[str] = next((a["enum"] for a in schema.get("anyOf", [schema]) if "enum" in a), [])
        reader.problems.append(
            f"{where}.deal_kind co_sell asks Microsoft for help, which needs assistance_request_code (the help "
            "wanted; help_notes may say more to the Microsoft seller)"
        )
        data["assistance_request_code"] = Choice([(f"If {code}", code) for code in allowed])


# The consent a new referral carries, and what the person is asked: the model never answers it.
CONSENT_KEY = "customer_consent_to_contact"
CONSENT_QUESTION = "whether the customer agreed to be contacted and to sharing their details"


def _ask_consent(reader: _Reader, data: dict[str, Any], where: str) -> None:
    """No consent in the call: refused, with one call per answer (each the caller's own call), so the
    model must ask the person; consent is never filled in for them."""
    placed = _Reader(reader.tool).object(dict(data), NewReferral, where)
    if placed.get(CONSENT_KEY) is not None:
        return
    data[CONSENT_KEY] = Choice([("If the customer agreed", True), ("If the customer did not agree", False)])
    reader.problems.append(
        f"{_at(where, CONSENT_KEY)} is missing: consent is never assumed; ask the person {CONSENT_QUESTION}"
    )


def _deal_value_currency(reader: _Reader, data: dict[str, Any], where: str) -> dict[str, Any]:
    """A deal value with its currency in one string ("250k EUR"): value and currency, when currency is unset."""
    key = next((k for k in data if _fold(k) in ("dealvalue", "value", "amount", "dealamount")), None)
    if key is not None:
        data[key] = _decimal_comma(reader, data[key], f"{where}.{key}")
    split = _split_money(data.get(key)) if key else None
    if key is not None and split is not None and _GROUPED.fullmatch(split[0]):
        data[key] = _grouping_choice(reader, split[0], f"{where}.{key}") if split[1] != "$" else data[key]
        if split[1] != "$" and not any(_fold(k) == "currency" for k in data):
            data["currency"] = split[1]
        return data
    if key is None or split is None:
        return data
    given = next((data[k] for k in data if _fold(k) == "currency"), None)
    if given is not None:  # the mark may only repeat the currency given
        if _same_currency(split[1], given):
            reader.note(f"{where}.{key} {_brief(data[key])} read as {split[0]} (in the currency given)")
            data[key] = split[0]
        else:
            reader.problems.append(_currency_conflict(f"{where}.{key}", data[key], split[1], given))
    elif split[1] != "$":
        data[key], data["currency"] = split
        reader.note(f"{where}.{key} read as deal_value {split[0]} and currency {split[1]}")
    else:  # which dollar? the person says; each reading is the amount with its code
        reader.problems.append(f"{where}.{key} {_brief(data[key])}: '$' names several currencies")
        data[key] = _dollar_choice(split[0])
    return data


# The dollars offered when "$" names no currency the call or the referral settles.
_DOLLARS_OFFERED = ("USD", "CAD", "AUD", "NZD")


def _dollar_choice(amount: str) -> Choice:
    return Choice([(f"If {code}", f"{amount} {code}") for code in _DOLLARS_OFFERED])


class _Dollars(str):
    """An amount said with a currency the call cannot settle: "$" beside a deal value (the referral's
    own dollar currency settles it, in the planner: patch_paths.read_dollars; else the person), or any
    currency beside a registration amount (it must be the registration's own). ``_stored_currency``
    checks it against what is stored."""

    amount: str
    currency: str


def _marked(value: str, amount: str, currency: str) -> _Dollars:
    out = _Dollars(value)
    out.amount, out.currency = amount, currency
    return out


# Where a marked amount's currency is stored, per tool: the referral's deal currency, the registration's
# contract currency.
_STORED_CURRENCY: dict[str, Callable[[Any], str | None]] = {
    "update_field": lambda r: r.details.currency if r.details else None,
    "register_deal": lambda r: (
        r.registrations[0].contract.currency if r.registrations and r.registrations[0].contract else None
    ),
}


async def _stored_currency(tool: str, reading: Reading, context: Any) -> None:
    """A marked amount (``_Dollars``) read against the currency stored: the same (or "$" beside a dollar)
    is the amount, said; "$" beside another currency is the person's choice of dollar; another code is
    a conflict for the person to settle."""
    from pcref_mcp.server.confirmation import runtime_of

    changes = reading.arguments.get("changes")
    marked = [c for c in changes or [] if isinstance(c, dict) and isinstance(c.get("value"), _Dollars)]
    if (
        not marked
        or not isinstance(reading.arguments.get("referral_id"), str)
        or tool not in _STORED_CURRENCY
    ):
        return
    try:
        referral = await runtime_of(context).client.get(reading.arguments["referral_id"])
    except PcrefError:
        return  # the planner says what is wrong with the referral
    stored = _STORED_CURRENCY[tool](referral)
    for change in marked:
        said = change["value"]
        if said.currency == stored or (said.currency == "$" and stored in catalog.DOLLAR_CURRENCIES):
            if tool != "update_field" or said.currency != "$":  # update_field reads "$" in the planner
                change["value"] = said.amount
                reading.notes.append(
                    f"{change.get('field')} {_brief(str(said))} read as {said.amount} {stored}"
                )
            continue
        if said.currency == "$":
            reading.problems.append(
                f"{change.get('field')} {_brief(str(said))}: '$' names several currencies and the referral is in "
                f"{stored or 'no currency'}"
            )
            change["value"] = _dollar_choice(said.amount)
        else:
            reading.problems.append(
                _currency_conflict(
                    str(change.get("field")), str(said), said.currency, stored or "no currency"
                )
                + "; ask the person which currency is right"
            )


def _contact_hook(reader: _Reader, data: dict[str, Any], where: str) -> dict[str, Any]:
    """A person given as one ``name`` ("Jane Doe") -> first_name and last_name."""
    full = next((k for k in data if _fold(k) in ("name", "fullname", "displayname")), None)
    if (
        full is not None
        and isinstance(data[full], str)
        and not {"first_name", "last_name"} & set(map(_snake, data))
    ):
        parts = data[full].split()
        if len(parts) >= 2:
            data.pop(full)
            data["first_name"], data["last_name"] = parts[0], " ".join(parts[1:])
            reader.note(
                f"{where}.{full} {data['first_name']} {data['last_name']!r} read as first_name and last_name"
            )
    return data


_LISTS = frozenset(patch_paths.LIST_POINTERS)  # lists whose replacement can remove entries

# Our quote marks (untrusted.quote), wherever they appear in a value.
_MARKS = re.compile(r"[«»‹›]")
# Fields holding a day (read by when.read_day) and whole numbers (which may come in words).
_DATE_FIELDS = frozenset(
    {"closing_date", "sign_date", "start_date", "end_date", "marketplace_transaction_date"}
)
# A range's bounds (search filters): a period said in words gives its first day to a "from" (0) and its
# last day to a "to" (1).
_RANGE_BOUNDS = {
    f"{what}_{end}": i for what in ("closing", "created", "updated") for i, end in enumerate(("from", "to"))
}
_INT_FIELDS = frozenset({"limit", "change_id", "expiring_within_days"})
# Whole-number fields that count a unit, and the unit's words ("7 days" -> 7).
_UNIT_FIELDS = {"expiring_within_days": r"d|days?"}
_NUMBER_WORDS = {
    w: n
    for n, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
} | {"thirty": 30, "forty": 40, "fifty": 50, "hundred": 100, "ahundred": 100, "onehundred": 100}
# Other words for an allowed value, where the enum has it (sections "everything" -> "all").
_ENUM_WORDS = {
    "everything": "all",
    "full": "all",
    "whole": "all",
    "allsections": "all",
    "spreadsheet": "csv",
    "excel": "csv",
    "xlsx": "csv",
    "file": "csv",
}


@dataclass(frozen=True)
class _AnyField:
    annotation: Any = Any
    alias: str | None = None


_ANY_FIELD = _AnyField()


def _path_of(name: Any, registration: bool) -> patch_paths.PatchPath | None:
    return patch_paths.lookup(name, registration=registration)


def _filters_hook(reader: _Reader, data: dict[str, Any], where: str) -> dict[str, Any]:
    """A status filter as a search row shows it ("Closed/Won") or as a word ("won"): status and substatus.
    A flag named by a filter's value (``incoming: true``) is that filter with that value."""
    fields = _fields(Filters)
    for flag in [k for k in data if k not in fields and data[k] in (True, "true", "yes")]:
        owners = [
            (name, value)
            for name, info in fields.items()
            for value in _enum_values(info.annotation)
            if _fold(value) == _fold(flag)
        ]
        if len(owners) == 1 and owners[0][0] not in data:
            name, value = owners[0]
            data.pop(flag)
            data[name] = value
            reader.note(f"{_at(where, flag)} true read as {_at(where, name)} {value!r}")
    key = next((k for k in data if _fold(k) in ("status", "outcome", "result", "state")), None)
    if key is None or any(_fold(k) == "substatus" for k in data):
        return data
    values = data[key] if isinstance(data[key], list) else [data[key]]
    if any(isinstance(v, str) and _fold(v) in _CLOSE_WORDS for v in values):
        values = ["Closed" if isinstance(v, str) and _fold(v) in _CLOSE_WORDS else v for v in values]
        reader.note(
            f"{_at(where, key)} {_brief(data[key])} read as status 'Closed' (won, lost, declined or expired)"
        )
        data[key] = values
    intents = [
        lifecycle.read_intent(v) if isinstance(v, str) and _fold(v) not in _STATUS_WORDS else None
        for v in values
    ]
    if not any(intents):
        return data
    if not all(intents):
        return data  # a mix of plain statuses and states: left for the model to judge
    data["status"] = sorted({str(i.status) for i in intents if i})
    if key != "status":
        data.pop(key)
    data["substatus"] = [str(i.substatus) for i in intents if i]
    reader.note(
        f"{_at(where, key)} {_brief(values)} read as status {data['status']} and substatus {data['substatus']}"
    )
    return data


_STATUS_WORDS = frozenset(s.value.casefold() for s in lifecycle.S)


# Readers for what the generic walk cannot derive, by model: a whole list of items, or one object.
_LIST_HOOKS: dict[type[BaseModel], Callable[[_Reader, list[Any], str], list[Any]]] = {}
_MODEL_HOOKS: dict[type[BaseModel], Callable[[_Reader, dict[str, Any], str], dict[str, Any]]] = {
    Contact: _contact_hook,
    MemberIn: _contact_hook,
    Filters: _filters_hook,
    NewReferral: _new_referral_hook,
}


def read_change_holder(model: type[BaseModel]) -> None:
    """Declare ``model`` an object holding ``changes`` (a batch item): one change given flat in it
    (``{"referral_id", "field", "value"}``) is read as its only change, and the answer says so."""

    def hook(reader: _Reader, data: dict[str, Any], where: str) -> dict[str, Any]:
        if "changes" not in data and "field" in data:
            data["changes"] = [{k: data.pop(k) for k in list(data) if k in ("field", "value", "mode")}]
            reader.note(f"{where} field/value read as {where}.changes[0]")
        return data

    _MODEL_HOOKS[model] = hook


def read_changes(model: type[BaseModel], *, registration: bool) -> None:
    """Declare ``model`` a change item (field, value, mode) of referral or registration fields."""

    def hook(reader: _Reader, items: list[Any], where: str) -> list[Any]:
        return _change_items(reader, items, where, registration=registration)

    _LIST_HOOKS[model] = hook


# --- helpers -------------------------------------------------------------------------------------


class _Fields(dict[str, Any]):
    """A model's fields (name -> FieldInfo), read-only by convention, with the lookups ``place``
    needs (aliases, folded names, synonyms, plurals) built once: every key of every call used to
    rebuild them, field by field."""

    _index: _Index | None = None


@dataclass(frozen=True)
class _Index:
    aliases: dict[str, str]  # alias -> field
    folded: dict[str, str]  # folded name or alias -> the first field it names
    claimed: dict[str, tuple[str, ...]]  # folded synonym -> the fields claiming it
    plural: dict[str, tuple[str, ...]]  # folded singular/plural form -> the fields it may mean

    @classmethod
    def build(cls, fields: dict[str, Any]) -> _Index:
        aliases = {info.alias: name for name, info in fields.items() if info.alias}
        folded: dict[str, str] = {}
        claimed: dict[str, list[str]] = {}
        plural: dict[str, list[str]] = {}
        for name, info in fields.items():
            folded.setdefault(_fold(name), name)
            folded.setdefault(_fold(info.alias or name), name)
            for synonym in _folded_synonyms(name):
                claimed.setdefault(synonym, []).append(name)
            own = _fold(name)
            # the key plus "s"/"es" is this field, or the key is this field plus "s"
            forms = {own + "s", *(own[: -len(end)] for end in ("s", "es") if own.endswith(end))}
            for form in sorted(forms):
                plural.setdefault(form, []).append(name)
        return cls(
            aliases,
            folded,
            {k: tuple(v) for k, v in claimed.items()},
            {k: tuple(dict.fromkeys(v)) for k, v in plural.items()},
        )


def _index_of(fields: dict[str, Any]) -> _Index:
    if isinstance(fields, _Fields):
        if fields._index is None:
            fields._index = _Index.build(fields)
        return fields._index
    return _Index.build(fields)


@functools.cache
def _fields(model: type[BaseModel]) -> _Fields:
    """The model's fields, built (with their index) once per model."""
    return _Fields(model.model_fields)


@functools.cache
def _folded_synonyms(name: str) -> frozenset[str]:
    return frozenset(_fold(s) for s in SYNONYMS.get(name, ()))


_ITEM_FIELDS = _Fields({k: _ANY_FIELD for k in _ITEM_KEYS})  # a change item's own keys


def _shape(annotation: Any) -> tuple[str, Any]:
    """What a field holds: ("model", cls), ("list", item), ("enum", values), ("text"|"any"|"other", None)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _shape(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return _shape(args[0]) if len(args) == 1 else ("other", None)
    if origin is list:
        return "list", get_args(annotation)[0]
    if origin is Literal:
        return "enum", tuple(str(a) for a in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "enum", tuple(str(m.value) for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    if annotation is str:
        return "text", None
    if annotation is Any:
        return "any", None
    return "other", None


def _enum_values(annotation: Any) -> tuple[str, ...]:
    """The allowed values of an enum field or of a list of an enum; () for any other field."""
    shape, inner = _shape(annotation)
    if shape == "list":
        shape, inner = _shape(inner)
    return tuple(inner) if shape == "enum" else ()


def _enum_value(value: Any, allowed: tuple[str, ...] | list[str]) -> Any:
    """An allowed value in any case or spacing ("Closed", "closed", "updated desc" -> "updated_desc")."""
    if not isinstance(value, str):
        return value
    folded = _fold(value)
    return next((a for a in allowed if _fold(a) == folded), value)


def _words(value: Any) -> str:
    """A sort given as text, an object ({"field": "value", "direction": "desc"}) or a list of them."""
    if isinstance(value, dict):
        return " ".join(_words(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_words(v) for v in value)
    return str(value)


def _read_sort(column: str, direction: str) -> str | None:
    """A sort literal from a column word ("dealValue", "closing date", "-value") and a direction
    ("desc", "ascending"); a column alone sorts its natural way (newest, soonest, largest first)."""
    words_said = set(re.findall(r"[a-z]+", f"{column} {direction}".casefold()))
    for said, sort in _SORT_PHRASES.items():
        if said in words_said:
            return sort
    whole = _fold(column.lstrip("-+"))
    minus = "desc" if column.strip().startswith("-") else None
    for name, (natural, spellings) in SORT_COLUMNS.items():
        if whole in spellings:
            return f"{name}_{DIRECTIONS.get(_fold(direction)) or minus or natural}"
    words = re.split(r"[\s,]+", f"{column} {direction}".strip())
    sign: str | None = minus
    col: str | None = None
    for word in words:
        folded = _fold(word.lstrip("-+"))
        if folded in DIRECTIONS:
            sign = DIRECTIONS[folded]
            continue
        for name, (_, spellings) in SORT_COLUMNS.items():
            if folded in spellings or any(folded == s + d for s in spellings for d in DIRECTIONS):
                col = name
                sign = sign or next(
                    (DIRECTIONS[d] for d in DIRECTIONS if folded.endswith(d) and folded != d), None
                )
    if col is None:
        col = "updated" if not column.strip() else None
    if col is None:
        return None
    return f"{col}_{sign or SORT_COLUMNS[col][0]}"


def _fold(text: str) -> str:
    return re.sub(r"[\s_\-/.]", "", text).casefold()


def _snake(text: str) -> str:
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", text.strip())
    return re.sub(r"[\s\-]+", "_", text).casefold()


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _brief(value: Any) -> str:
    """A value for a note or a message: short, and without anyone's e-mail or phone number."""
    text = json.dumps(_shown(value), ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "…"


def _shown(value: Any, key: str | None = None) -> Any:
    """A value echoed back (a corrected call, a note): tokens and contact details masked, text cut short.

    Messages are logged as well as returned, and the brief allows no contact details in logs.
    """
    if value and key is not None and (key in _SECRET_ARGUMENTS or _fold(key) in _CONTACT_KEYS):
        return f"<{key} as given>"
    if isinstance(value, dict):
        return {k: _shown(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    if isinstance(value, str) and len(value) > 80:
        return value[:77] + "…"
    return value


# Keys whose values are contact details (folded): never echoed in a message.
_CONTACT_KEYS = frozenset(
    _fold(k) for k in (*SYNONYMS["phone"], *SYNONYMS["email"], "phone", "email", "phone_number")
)


__all__ = [
    "LOOK_UP",
    "READ_AS",
    "SYNONYMS",
    "Choice",
    "GuardedTool",
    "ReadAs",
    "Reading",
    "guarded_tool",
    "input_error",
    "normalise",
    "read_as",
    "read_changes",
]
