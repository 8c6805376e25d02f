"""The writes' hooks: update_field, register_deal and batch_update (a change given flat, as a mapping, a
batch as a mapping or CSV rows, preview and approval words) and their change items (field, value, mode:
op and mode words, another field's value carried by the item, a single entry for a list, lifecycle words,
people read against their own model)."""

from __future__ import annotations

import csv
import difflib
import io
import re
from typing import Any

from pydantic import BaseModel

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals import lifecycle, patch_paths, write_models
from pcref_mcp.server.reading.amounts import _decimal_comma, _grouping, _money
from pcref_mcp.server.reading.fields import _ANY_FIELD, _Fields, _fields, _shape
from pcref_mcp.server.reading.new_referral import _contact_hook
from pcref_mcp.server.reading.reader import _LIST_HOOKS, _MODEL_HOOKS, Choice, _Reader
from pcref_mcp.server.reading.words import _brief, _fold, _snake

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


# Pointers whose values are people or solutions: their dicts are read against these write models (named:
# the write twins are built with the first write, referrals.write_models), people as a new referral's
# contacts are.
_VALUE_MODELS: dict[str, tuple[str, Any]] = {
    "/team": ("MemberIn", _contact_hook),
    "/team/-": ("MemberIn", _contact_hook),
    "/customerProfile/team": ("MemberIn", _contact_hook),
    "/customerProfile/team/-": ("MemberIn", _contact_hook),
    "/details/requirements/solutions": ("SolutionTagIn", None),
    "/details/requirements/solutions/-": ("SolutionTagIn", None),
}


# Change-item keys that are part of the item itself.
_ITEM_KEYS = ("field", "value", "mode")


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
    if pointer not in _VALUE_MODELS:
        return value
    name, hook = _VALUE_MODELS[pointer]
    model = getattr(write_models, name)

    def read(item: Any, at: str) -> Any:
        if not isinstance(item, dict):
            return item
        return reader.object(hook(reader, dict(item), at) if hook else item, model, at)

    if isinstance(value, list):
        return [read(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return read(value, where)


_LISTS = frozenset(patch_paths.LIST_POINTERS)  # lists whose replacement can remove entries


def _path_of(name: Any, registration: bool) -> patch_paths.PatchPath | None:
    return patch_paths.lookup(name, registration=registration)


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


_ITEM_FIELDS = _Fields({k: _ANY_FIELD for k in _ITEM_KEYS})  # a change item's own keys
