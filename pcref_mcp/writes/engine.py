"""The guarded write engine: validate → plan (preview) → [confirmed elsewhere] → send → journal.

Planning reads the referral once and validates everything the service would refuse (allow-list,
value schemas, lifecycle, deal-registration eligibility) so a bad request changes nothing. Sending
carries the ETag that was previewed, so a referral changed by someone else in between is never
overwritten: the engine reports what changed underneath instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pcref_mcp.errors import (
    InvalidInput,
    NotEligible,
    PcrefError,
    PreconditionFailed,
    ServiceError,
    UndoNotPossible,
    WriteOutcomeUnknown,
)
from pcref_mcp.partner_center import odata
from pcref_mcp.referrals import lifecycle, patch_paths
from pcref_mcp.referrals.models import PatchOperation, Referral
from pcref_mcp.referrals.patch_paths import pointer_get
from pcref_mcp.referrals.untrusted import quote
from pcref_mcp.referrals.write_models import (
    DealKind,
    NewDealRegistration,
    NewReferral,
    microsoft_referral_body,
    partner_referral_body,
)
from pcref_mcp.writes.preview import (
    FieldChange,
    WritePlan,
    changed_since,
    field_name,
    snapshot,
)

if TYPE_CHECKING:  # annotations only: httpx and sqlite3 load with the first tool call that needs them
    from pcref_mcp.partner_center.client import PartnerCenterClient
    from pcref_mcp.writes.journal import Journal, JournalEntry

Outcome = Literal["applied", "stale", "failed", "in_doubt", "partial"]


@dataclass
class WriteOutcome:
    status: Outcome
    message: str
    change_id: int | None = None
    referral: Referral | None = None
    created: list[Referral] = field(default_factory=list)
    changed_underneath: list[FieldChange] = field(default_factory=list)
    correlation_id: str | None = None


class WriteEngine:
    def __init__(self, client: PartnerCenterClient, journal: Journal) -> None:
        self.client = client
        self.journal = journal

    # -- planning (reads only) --------------------------------------------------------------------

    async def plan_update(self, referral_id: str, changes: Sequence[tuple[str, Any]]) -> WritePlan:
        referral = await self.client.get(referral_id)
        operations = patch_paths.build_operations(changes, current=referral)
        plan = self._patch_plan("update_field", "update", referral, operations)
        if not plan.changes:
            raise InvalidInput(
                "Every requested value already equals the referral's current value; there is nothing to change."
            )
        return plan

    async def plan_registration_update(
        self, referral_id: str, changes: Sequence[tuple[str, Any]]
    ) -> WritePlan:
        referral = await self.client.get(referral_id)
        operations = patch_paths.build_registration_operations(changes, current=referral)
        plan = self._patch_plan("register_deal", "update_registration", referral, operations)
        plan.summary = f"Update the deal registration of {_label(referral)}"
        return plan

    async def plan_registration(self, referral_id: str, registration: NewDealRegistration) -> WritePlan:
        referral = await self.client.get(referral_id)
        unmet = lifecycle.registration_unmet(
            referral, solution_ids=[registration.solution_id], now=datetime.now(UTC)
        )
        if unmet:
            raise NotEligible(
                f"Referral {referral.id} cannot be registered yet: " + "; ".join(unmet) + ".",
                unmet=unmet,
            )
        body = registration.to_wire().model_dump(mode="json", by_alias=True, exclude_none=True)
        op = PatchOperation(op="add", path=patch_paths.REGISTRATION_ADD_POINTER, value=body)
        plan = WritePlan(
            tool="register_deal",
            kind="register",
            summary=f"Register the won deal {_label(referral)} for Azure IP co-sell",
            referral_id=referral.id,
            etag=referral.e_tag,
            operations=[op],
            referral=referral,
            changes=[FieldChange("deal registration", op.path, None, body)],
            warnings=registration.warnings(),
        )
        return plan

    async def plan_create(self, new: NewReferral) -> WritePlan:
        body = partner_referral_body(new).model_dump(mode="json", by_alias=True, exclude_none=True)
        # Stamped from the request itself: the preview and the confirmed call build the same body,
        # and the same referral asked for twice is caught as a duplicate instead of created twice.
        external_ref = body.get("externalReferenceId") or _stamp(body)
        body["externalReferenceId"] = external_ref
        kind = DealKind(new.deal_kind)
        existing = await self._by_external_ref(external_ref)
        if existing:
            resume = await self._resume_cosell(new, kind, existing[0])
            if resume is not None:
                return resume
            ids = ", ".join(str(r.id) for r in existing)
            raise InvalidInput(
                f"A referral with external reference id {external_ref!r} already exists ({ids}); "
                "creating another would duplicate it.",
                field="external_reference_id",
                value=external_ref,
                hint="Use update_field on the existing referral instead, or give a new external reference id.",
            )
        warnings = await self._duplicate_warnings(body)
        summary = {
            DealKind.PRIVATE: "Create a private referral (not shared with Microsoft)",
            DealKind.PARTNER_LED: "Create a partner-led referral shared with Microsoft sellers",
            DealKind.CO_SELL: "Create a co-sell referral and invite Microsoft (two linked referrals)",
        }[kind]
        changes = [
            FieldChange(name, pointer, None, pointer_get(body, pointer))
            for name, pointer in _CREATE_FIELDS
            if pointer_get(body, pointer) not in (None, [], "")
        ]
        return WritePlan(
            tool="create_referral",
            kind="create",
            summary=f"{summary}: {body.get('name') or ''} for {pointer_get(body, '/customerProfile/name')}",
            bodies=[body],
            changes=changes,
            warnings=warnings,
            external_ref=external_ref,
            cosell=new if kind is DealKind.CO_SELL else None,
        )

    async def plan_undo(self, change_id: int) -> WritePlan:
        entry = self.journal.get(change_id)
        if entry is None:
            raise UndoNotPossible(f"There is no journaled change {change_id}.")
        _check_undoable(entry)
        referral = await self.client.get(str(entry.referral_id))
        if referral.e_tag != entry.etag_after:
            raise UndoNotPossible(
                f"Referral {referral.id} has changed since change {change_id} was made, so undoing it "
                "could overwrite someone else's work.",
                hint="Use get_referral to see its current state and update_field to change it.",
            )
        operations = _inverse_operations(entry)
        status_op = {op.path: op.value for op in operations}
        if "/status" in status_op or "/substatus" in status_op:
            check = lifecycle.check_transition(
                referral.status, referral.substatus, status_op.get("/status"), status_op.get("/substatus")
            )
            if not check.ok:
                raise UndoNotPossible(f"Change {change_id} cannot be undone: {check.message}")
        plan = self._patch_plan("undo_change", "undo", referral, operations)
        plan.undo_of = change_id
        plan.summary = f"Undo change {change_id} on {_label(referral)}"
        return plan

    # -- sending (after confirmation) -------------------------------------------------------------

    async def execute(self, plan: WritePlan) -> WriteOutcome:
        with self.client.correlation() as correlation_id:
            if plan.kind == "create":
                return await self._execute_create(plan, correlation_id)
            return await self._execute_patch(plan, correlation_id)

    async def _execute_patch(self, plan: WritePlan, correlation_id: str) -> WriteOutcome:
        if not plan.referral_id:  # e.g. a referral read without its id: refuse before journaling anything
            raise InvalidInput(
                "Partner Center sent this referral without its id, so a change cannot be addressed to it; "
                "nothing was sent.",
                field="referral_id",
                hint="Read the referral again with get_referral; if its id is still missing, report it to support.",
            )
        if not plan.etag:  # no If-Match, no write: it could overwrite someone else's change unseen
            raise InvalidInput(
                f"Referral {plan.referral_id} came without an ETag (neither in its body nor in the ETag header), "
                "so a change could overwrite someone else's; nothing was sent.",
                field="etag",
                hint="Read the referral again with get_referral; if it still has no ETag, report it to support.",
            )
        entry_id = self.journal.record_intent(
            tool=plan.tool,
            kind=plan.kind,
            referral_id=plan.referral_id,
            correlation_id=correlation_id,
            operations=plan.wire_operations,
            before_image=plan.before_image,
            etag_before=plan.etag,
            undo_of=plan.undo_of,
        )
        _test_crash_point("before_send")
        try:
            if plan.kind == "register":
                after = await self.client.create_deal_registration(
                    plan.referral_id, plan.operations[0].value, etag=plan.etag
                )
            elif plan.kind == "update_registration":
                after = await self.client.update_deal_registration(
                    plan.referral_id, plan.operations, etag=plan.etag
                )
            else:
                after = await self.client.patch(plan.referral_id, plan.operations, etag=plan.etag)
        except PreconditionFailed:
            # Recorded first: the read below may fail too, and the write is settled (not sent) either way.
            self.journal.record_outcome(
                entry_id, "failed", error="stale ETag: the referral changed after the preview"
            )
            try:
                current = await self.client.get(plan.referral_id)
            except PcrefError as exc:
                return WriteOutcome(
                    "stale",
                    "Nothing was written: the referral changed after the preview, and reading its current "
                    f"state failed ({exc}). Use get_referral, then preview the change again.",
                    change_id=entry_id,
                    correlation_id=correlation_id,
                )
            moved = changed_since(snapshot(plan.referral), current)
            return WriteOutcome(
                "stale",
                "Nothing was written: the referral changed after the preview"
                + (
                    " (" + "; ".join(f"{c.field}: {c.before!r} → {c.after!r}" for c in moved) + ")."
                    if moved
                    else "."
                )
                + " Preview the change again against the current referral.",
                change_id=entry_id,
                referral=current,
                changed_underneath=moved,
                correlation_id=correlation_id,
            )
        except WriteOutcomeUnknown as exc:
            self.journal.record_outcome(entry_id, "in_doubt", error=str(exc))
            return WriteOutcome(
                "in_doubt", _in_doubt_message(exc, plan), change_id=entry_id, correlation_id=correlation_id
            )
        except PcrefError as exc:
            # NetworkError included: from a write the client raises it only once it has settled that the
            # request was not applied (never connected, or read back unchanged); unknown is WriteOutcomeUnknown.
            self.journal.record_outcome(entry_id, "failed", error=str(exc))
            raise
        except BaseException as exc:  # cancelled mid-send (or a bug): the outcome is unknown, say so now
            self.journal.record_outcome(
                entry_id, "in_doubt", error=f"interrupted while sending ({type(exc).__name__})"
            )
            raise
        _test_crash_point("after_send")
        self.journal.record_outcome(entry_id, "applied", etag_after=after.e_tag)
        return WriteOutcome(
            "applied",
            f"Done: {plan.summary[0].lower()}{plan.summary[1:]}.",
            change_id=entry_id,
            referral=after,
            correlation_id=correlation_id,
        )

    async def _execute_create(self, plan: WritePlan, correlation_id: str) -> WriteOutcome:
        body = plan.bodies[0]
        entry_id = self.journal.record_intent(
            tool=plan.tool,
            kind="create",
            referral_id=None,
            correlation_id=correlation_id,
            operations=[{"op": "create", "body": b} for b in plan.bodies],
            before_image={},
            etag_before=None,
            external_ref=plan.external_ref,
        )
        _test_crash_point("before_send")
        try:
            # plan_create looked this external reference id up moments ago in the same call
            created = await self.client.create(body, existing_ids=() if plan.external_ref else None)
        except WriteOutcomeUnknown as exc:
            self.journal.record_outcome(entry_id, "in_doubt", error=str(exc))
            return WriteOutcome(
                "in_doubt", _in_doubt_message(exc, plan), change_id=entry_id, correlation_id=correlation_id
            )
        except PcrefError as exc:  # NetworkError included: settled as not created (see _execute_patch)
            self.journal.record_outcome(entry_id, "failed", error=str(exc))
            raise
        except BaseException as exc:
            self.journal.record_outcome(
                entry_id, "in_doubt", error=f"interrupted while sending ({type(exc).__name__})"
            )
            raise
        _test_crash_point("after_send")
        results = [created]
        if plan.cosell is not None and created.engagement_id:
            ms_body = microsoft_referral_body(
                plan.cosell, created.engagement_id, created.organization_id, created.organization_name
            ).model_dump(mode="json", by_alias=True, exclude_none=True)
            try:
                results.append(await self.client.create(ms_body))
            except PcrefError as exc:
                unknown = isinstance(exc, WriteOutcomeUnknown)
                what = (
                    "the Microsoft invitation may or may not have landed"
                    if unknown
                    else "inviting Microsoft failed"
                )
                self.journal.record_outcome(
                    entry_id,
                    "partial",
                    referral_id=created.id,
                    etag_after=created.e_tag,
                    error=f"{what}: {exc}",
                )
                return WriteOutcome(
                    "partial",
                    f"The partner referral {created.id} was created, but {what}: {exc}. "
                    "To finish, call create_referral again with the same arguments: it sends only the "
                    "Microsoft invitation, and only if it is still missing.",
                    change_id=entry_id,
                    referral=created,
                    created=results,
                    correlation_id=correlation_id,
                )
        self.journal.record_outcome(entry_id, "applied", referral_id=created.id, etag_after=created.e_tag)
        return WriteOutcome(
            "applied",
            f"Created referral {created.id}"
            + (f" and invited Microsoft ({results[1].id})" if len(results) > 1 else "")
            + ".",
            change_id=entry_id,
            referral=created,
            created=results,
            correlation_id=correlation_id,
        )

    # -- private ------------------------------------------------------------------------------------

    def _patch_plan(
        self, tool: str, kind: Any, referral: Referral, operations: list[PatchOperation]
    ) -> WritePlan:
        wire = referral.to_wire()
        changes: list[FieldChange] = []
        before: dict[str, Any] = {}
        for op in operations:
            collection = op.path[: -len("/-")] if op.path.endswith("/-") else op.path
            current = pointer_get(wire, collection)
            before[collection] = current
            after = [*(current or []), op.value] if op.path.endswith("/-") else op.value
            if after != current:
                changes.append(FieldChange(field_name(op.path), op.path, current, after))
        status_ops = {op.path: op.value for op in operations if op.path in ("/status", "/substatus")}
        step = None
        if status_ops:
            to_status = status_ops.get("/status", referral.status)
            to_sub = status_ops.get("/substatus", referral.substatus)
            step = f"{referral.status}/{referral.substatus} → {to_status}/{to_sub}"
        return WritePlan(
            tool=tool,
            kind=kind,
            summary=f"Update {_label(referral)}",
            referral_id=referral.id,
            etag=referral.e_tag,
            operations=operations,
            changes=changes,
            lifecycle=step,
            before_image=before,
            referral=referral,
        )

    async def _by_external_ref(self, ref: str) -> list[Referral]:
        page = await self.client.list_page(odata.Query(filter=odata.eq("externalReferenceId", ref), top=5))
        return list(page.value)

    async def _resume_cosell(self, new: NewReferral, kind: DealKind, partner: Referral) -> WritePlan | None:
        """The same co-sell asked for again after its Microsoft invitation failed: send only that."""
        if kind is not DealKind.CO_SELL or not partner.engagement_id:
            return None
        linked = await self.client.list_page(
            odata.Query(filter=odata.eq("engagementId", partner.engagement_id), top=5)
        )
        if len(linked.value) > 1:
            return None
        body = microsoft_referral_body(
            new, partner.engagement_id, partner.organization_id, partner.organization_name
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
        return WritePlan(
            tool="create_referral",
            kind="create",
            summary=f"Finish the co-sell: invite Microsoft to the existing {_label(partner)}",
            referral_id=partner.id,
            bodies=[body],
            changes=[FieldChange("engagement id", "/engagementId", None, partner.engagement_id)],
            warnings=[
                f"Referral {partner.id} already exists without its Microsoft invitation; only the invitation is sent."
            ],
        )

    async def _duplicate_warnings(self, body: dict[str, Any]) -> list[str]:
        warnings: list[str] = []
        customer = pointer_get(body, "/customerProfile/name")
        name = body.get("name")
        if customer and name:
            page = await self.client.list_page(
                odata.Query(
                    filter=odata.and_(odata.eq("customerProfile/name", customer), odata.eq("name", name)),
                    top=5,
                )
            )
            for existing in page.value:
                warnings.append(
                    f"A referral named {name!r} for {customer!r} already exists "
                    f"({existing.id}, {existing.status}/{existing.substatus}); make sure this is not a duplicate."
                )
        return warnings


_CREATE_FIELDS: tuple[tuple[str, str], ...] = (
    ("name", "/name"),
    ("type", "/type"),
    ("customer", "/customerProfile/name"),
    ("country", "/customerProfile/address/country"),
    ("customer size", "/customerProfile/size"),
    ("shared with Microsoft sellers", "/consent/consentToShareReferralWithMicrosoftSellers"),
    ("deal value", "/details/dealValue"),
    ("currency", "/details/currency"),
    ("closing date", "/details/closingDateTime"),
    ("notes", "/details/notes"),
    ("products", "/details/requirements/products"),
    ("services", "/details/requirements/services"),
    ("industries", "/details/requirements/industries"),
    ("solutions", "/details/requirements/solutions"),
    ("help requested", "/inviteContext/assistanceRequestCode"),
    ("external reference id", "/externalReferenceId"),
)


def _stamp(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return "pcref-" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


def _label(referral: Referral) -> str:
    """``referral <id> («name» — «customer»)``: the names were written by others, so they are quoted."""
    customer = referral.customer_profile.name if referral.customer_profile else None
    return f"referral {referral.id} ({quote(referral.name or 'unnamed')} — {quote(customer or 'unknown customer')})"


def _check_undoable(entry: JournalEntry) -> None:
    if entry.status != "applied":
        raise UndoNotPossible(f"Change {entry.id} is {entry.status}, so there is nothing to undo.")
    if entry.undone_by is not None:
        raise UndoNotPossible(f"Change {entry.id} was already undone by change {entry.undone_by}.")
    if entry.kind == "create":
        raise UndoNotPossible(
            f"Change {entry.id} created a referral; Partner Center has no delete.",
            hint="Close it instead with update_field (status Closed, substatus Declined or Lost) and a reason.",
        )
    if entry.kind in ("register", "update_registration"):
        raise UndoNotPossible(
            f"Change {entry.id} is a deal registration; registrations cannot be withdrawn through the API."
        )


def _inverse_operations(entry: JournalEntry) -> list[PatchOperation]:
    """Restore every pointer the change touched to its before-image, in the original order."""
    operations: list[PatchOperation] = []
    seen: set[str] = set()
    for op in entry.operations:
        path = op["path"][: -len("/-")] if op["path"].endswith("/-") else op["path"]
        if path in seen:
            continue
        seen.add(path)
        operations.append(PatchOperation(op="replace", path=path, value=entry.before_image.get(path)))
    return operations


def _test_crash_point(point: str) -> None:
    """Test hook for tests/reliability/test_crash.py, never set in use: with PCREF_TEST_CRASH_AT set to
    ``before_send`` or ``after_send`` the process kills itself there (SIGKILL), between the journal's
    intent record and the request, or between the answer and the outcome record."""
    if os.environ.get("PCREF_TEST_CRASH_AT") == point:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
        os._exit(137)  # pragma: no cover - not reached where SIGKILL exists


def _in_doubt_message(exc: PcrefError, plan: WritePlan) -> str:
    return (
        f"The service did not confirm the write ({exc}). It may or may not have landed; it is journaled "
        f"as in doubt. "
        + (
            "Search by external reference id " + repr(plan.external_ref) + " to check."
            if plan.external_ref
            else "Use get_referral to check before retrying."
        )
    )


__all__ = ["ServiceError", "WriteEngine", "WriteOutcome"]
