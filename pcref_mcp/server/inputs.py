"""Every tool call's raw arguments, read before the SDK validates them: every key used or refused.

Models call tools imperfectly: flattened arguments, a scalar for a list, camelCase wire names,
other words for a field, an extra key, text copied back inside our «…» marks. ``normalise`` reads
the raw arguments against the tool's own argument model (field names, types and enums derived from
it, synonyms from ``reading.words.SYNONYMS``) and returns what was meant plus a note for every liberty taken;
the answer carries those notes as ``read_as``. A key it cannot place unambiguously is refused,
naming the key, the nearest valid names and a corrected call. Nothing is dropped silently.

``GuardedTool`` is the hook: it normalises before the SDK's own validation and turns every input
error, the SDK's included, into one short message (``referrals.write_models.validation_message``
is the one pydantic-to-sentence table). No raw validation text reaches the model.

The reading itself lives in ``server.reading``, by job (the generic reader and its refusal, the name
index, amounts, each tool family's hooks); this module is the guard. The reader is call-time code: it
is imported by the first call that reads arguments (``_reading``), never by building the server or
answering ``tools/list``; the change-item declarations the tools make at import wait for it in
``_DECLARED``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools.base import Tool
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import SkipJsonSchema

from pcref_mcp.errors import Ambiguous, Answered, ConfirmationError, InvalidInput, PcrefError
from pcref_mcp.server.sdk_adapter import raised_in_tool

if TYPE_CHECKING:  # the reader loads with the first call that reads arguments, not with the tool list
    from types import ModuleType

    from pcref_mcp.server.reading.reader import Reading

E = TypeVar("E", bound=BaseException)


# What the current call's arguments were read as; views.respond puts it in the answer.
READ_AS: ContextVar[tuple[str, ...]] = ContextVar("pcref_read_as", default=())


# The ``read_as`` field of every result model. Left out of the published output schemas: it is in the
# answer the model reads whenever there is something to say, and nine copies of its schema would cost
# ~470 bytes of tools/list (which must stay under 20 KB). Output schemas allow extra properties.
ReadAs = Annotated[list[str] | None, SkipJsonSchema()]


# What to do when an argument cannot be read, per tool: a plain step, never a template call.
LOOK_UP: dict[str, str] = {
    "undo_change": "recent_changes {} lists your changes with their change_id.",
}


def normalise(tool: str, arguments: dict[str, Any], model: type[BaseModel]) -> Reading:
    """``arguments`` read against ``model`` (the tool's argument model): renamed, moved, wrapped,
    unquoted where the intent is plain, with a note for each; everything else is a problem."""
    reading = _reading()
    reader = reading.reader._Reader(tool)
    data = dict(arguments)
    hook = reading._TOOL_HOOKS.get(tool)
    if hook is not None:
        hook(reader, data, model)
    out = reader.object(data, model, "")
    return reading.reader.Reading(out, reader.notes, reader.problems, reader.fixed, reader.dropped)


# Change-item declarations (``read_changes``, ``read_change_holder``) made before the reader loaded:
# applied, in order, when it does.
_DECLARED: list[tuple[str, type[BaseModel], dict[str, Any]]] = []
_LOADED: list[ModuleType] = []


def read_changes(model: type[BaseModel], *, registration: bool) -> None:
    """Declare ``model`` a change item (``reading.changes.read_changes``), read as such from the first
    call on."""
    _declare("read_changes", model, registration=registration)


def read_change_holder(model: type[BaseModel]) -> None:
    """Declare ``model`` an object holding ``changes`` (``reading.changes.read_change_holder``)."""
    _declare("read_change_holder", model)


def _declare(how: str, model: type[BaseModel], **options: Any) -> None:
    _DECLARED.append((how, model, options))
    if _LOADED:
        getattr(_LOADED[0].changes, how)(model, **options)


def _reading() -> ModuleType:
    """The ``server.reading`` package, imported on first use with every declaration applied."""
    if not _LOADED:
        import importlib

        reading = importlib.import_module("pcref_mcp.server.reading")
        for part in ("amounts", "changes", "fields", "new_referral", "queries", "reader", "words"):
            importlib.import_module(f"pcref_mcp.server.reading.{part}")

        for how, model, options in _DECLARED:
            getattr(reading.changes, how)(model, **options)
        _LOADED.append(reading)
    return _LOADED[0]


def read_as() -> list[str] | None:
    """The notes for the call being answered (None when it was read exactly as sent)."""
    return list(READ_AS.get()) or None


def input_error(tool: str, exc: ValidationError, model: type[BaseModel]) -> str:
    """An argument error the SDK raised, as a sentence; no template call (it would be followed)."""
    from pcref_mcp.referrals.write_models import validation_message

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
            await _reading().amounts._stored_currency(self.name, reading, context)
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
                    reader = _reading().reader
                    if not reader._has_masked(again):  # the same call, to preview it and ask the person again
                        raise ToolError(
                            _with_notes(f"{exc} Corrected call: {self.name} {reader._dumps(again)}", reading)
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
        calls.append(f"{label}: {tool} {_reading().reader._dumps(reading.arguments)}")
    masked = _reading().reader._has_masked(reading.arguments)
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


__all__ = [
    "LOOK_UP",
    "READ_AS",
    "GuardedTool",
    "ReadAs",
    "Reading",
    "guarded_tool",
    "input_error",
    "normalise",
    "read_as",
    "read_changes",
]
