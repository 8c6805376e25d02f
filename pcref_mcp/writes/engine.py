"""The guarded write engine: validate → plan (preview) → [confirmed elsewhere] → send → journal.

Planning reads the referral once and validates everything the service would refuse (allow-list,
value schemas, lifecycle, deal-registration eligibility) so a bad request changes nothing. Sending
carries the ETag that was previewed, so a referral changed by someone else in between is never
overwritten: the engine reports what changed underneath instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pcref_mcp.errors import (
    BadRequest,
    InvalidInput,
    NotEligible,
    PcrefError,
    PreconditionFailed,
    ServiceError,
    UndoNotPossible,
    WriteOutcomeUnknown,
)
from pcref_mcp.partner_center import odata
from pcref_mcp.partner_center.recent import RecentScan
from pcref_mcp.referrals import contacts, lifecycle, patch_paths, when
from pcref_mcp.referrals.models import PatchOperation, Referral
from pcref_mcp.referrals.patch_paths import pointer_get
from pcref_mcp.referrals.untrusted import quote
from pcref_mcp.referrals.write_models import (
    ENGAGEMENT_ID_PLACEHOLDER,
    MICROSOFT_ORG_ID,
    DealKind,
    NewDealRegistration,
    NewReferral,
    consent_line,
    microsoft_referral_body,
    partner_referral_body,
    with_engagement_id,
)
from pcref_mcp.writes import undo
from pcref_mcp.writes.creates import (
    RECENT_CREATE_SECONDS,
    Organization,
    body_changes,
    check_create_body,
    create_lock,
    stamp_external_ref,
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
    from pcref_mcp.writes.journal import Journal

T = TypeVar("T")
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


# The fault-injection seam: each callable here is called with the step's name at the two points
# where a crash leaves a write in doubt, "before_send" (the intent is journaled, the request not yet
# sent) and "after_send" (the service answered, the outcome not yet journaled). Empty in use; the
# crash tests add one that kills the process there (tests/reliability/crashing_server.py).
STEP_HOOKS: list[Callable[[str], None]] = []


class WriteEngine:
    def __init__(self, client: PartnerCenterClient, journal: Journal) -> None:
        self.client = client
        self.journal = journal
        self._org: Organization | None = None

    # -- planning (reads only) --------------------------------------------------------------------

    async def plan_update(
        self,
        referral_id: str,
        changes: Sequence[patch_paths.Edit | tuple[str, Any]],
        *,
        current: Referral | None = None,
    ) -> WritePlan:
        """``current``: the referral as the caller has just read it (its ETag is the one approved)."""
        referral = (
            current
            if current is not None and current.id == referral_id
            else await self.client.get(referral_id)
        )
        edits, read = patch_paths.read_dollars(
            [c if isinstance(c, patch_paths.Edit) else patch_paths.Edit(*c) for c in changes], referral
        )
        operations = patch_paths.build_operations(edits, current=referral)
        plan = self._patch_plan("update_field", "update", referral, operations)
        plan.warnings += read
        # nothing is lost unseen: entries a list replacement removes, notes it overwrites
        for name, gone in patch_paths.removed_entries(referral, operations).items():
            plan.warnings.append(f"{name}: replacing the list removes {', '.join(gone)}.")
        new_notes = next((op.value for op in operations if op.path == "/details/notes"), None)
        old_notes = pointer_get(referral.to_wire(), "/details/notes") if new_notes is not None else None
        if old_notes and new_notes is not None and not str(new_notes).startswith(str(old_notes).rstrip()):
            plan.warnings.append(
                "notes: the current text (shown as before) is replaced; to add to it, use mode 'append'."
            )
        already = new_notes is not None and old_notes is not None and new_notes == old_notes
        if already and any(e.mode == "append" for e in edits):
            plan.warnings.append(
                "notes: they already end with the text to add (an earlier append landed); it is not "
                "added again."
            )
        if not plan.changes:
            raise InvalidInput(
                "Every requested value already equals the referral's current value; there is nothing to change."
                + (" The notes already end with the text to add: it is not added twice." if already else "")
            )
        return plan

    async def plan_registration_update(
        self, referral_id: str, changes: Sequence[patch_paths.Edit | tuple[str, Any]]
    ) -> WritePlan:
        referral = await self.client.get(referral_id)
        operations = patch_paths.build_registration_operations(changes, current=referral)
        plan = self._patch_plan("register_deal", "update_registration", referral, operations)
        plan.summary = f"Update the deal registration of {_label(referral)}"
        return plan

    async def plan_registration(self, referral_id: str, registration: NewDealRegistration) -> WritePlan:
        referral = await self.client.get(referral_id)
        unmet = (
            lifecycle.registration_unmet(referral, solution_ids=[registration.solution_id], now=when.now())
            + registration.problems()
        )  # every condition at once: the referral's and the registration's
        if unmet:
            raise NotEligible(
                f"Referral {referral.id} cannot be registered yet: "
                + " ".join(f"({n}) {u.rstrip('.')}." for n, u in enumerate(unmet, 1)),
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
        """Both bodies a create will send, checked like the service checks them, and looked up first.

        A co-sell sends two: the partner referral, then Microsoft's, whose engagementId is known only
        once the first is answered. Both are built here (``plan.bodies == [partner, microsoft
        template]``, the template carrying ``ENGAGEMENT_ID_PLACEHOLDER``) so the person approves every
        byte of both; ``execute`` fills in the id and changes nothing else.
        """
        warnings: list[str] = []
        kind = DealKind(new.deal_kind)
        body = partner_referral_body(new).model_dump(mode="json", by_alias=True, exclude_none=True)
        # Stamped from the request itself: the preview and the confirmed call build the same body,
        # and the same referral asked for twice is caught as a duplicate instead of created twice.
        external_ref = body.get("externalReferenceId") or stamp_external_ref(body)
        body["externalReferenceId"] = external_ref
        recent = RecentScan()  # where the service refuses both look-ups' filters, one scan serves both
        existing = await self._best_effort(
            self._by_external_ref(external_ref, recent),
            warnings,
            f"Partner Center refused the look-up of external reference id {quote(external_ref)}, so an "
            "earlier referral with the same id could not be ruled out",
        )
        if existing:
            resume = await self._resume_cosell(new, kind, existing[0])
            if resume is not None:
                return resume
            ids = ", ".join(str(r.id) for r in existing)
            raise InvalidInput(
                f"A referral with external reference id {quote(external_ref)} already exists ({ids}); "
                "creating another would duplicate it.",
                field="external_reference_id",
                value=external_ref,
                hint="Use update_field on the existing referral instead, or give a new external reference id.",
            )
        warnings += await self._duplicate_warnings(body, recent)
        org = await self._organization()
        if org.mpn_id:
            body["mpnId"] = org.mpn_id
        bodies = [body]
        if kind is DealKind.CO_SELL:
            bodies.append(
                microsoft_referral_body(new, ENGAGEMENT_ID_PLACEHOLDER, org.id, org.name).model_dump(
                    mode="json", by_alias=True, exclude_none=True
                )
            )
        for each in bodies:
            check_create_body(each)
        summary = {
            DealKind.PRIVATE: "Create a private referral (not shared with Microsoft)",
            DealKind.PARTNER_LED: "Create a partner-led referral shared with Microsoft sellers",
            DealKind.CO_SELL: "Create a co-sell referral and invite Microsoft (two linked referrals)",
        }[kind]
        return WritePlan(
            tool="create_referral",
            kind="create",
            summary=f"{summary}: {quote(body.get('name') or '')} for "
            f"{quote(pointer_get(body, '/customerProfile/name'))}. {consent_line(new)}",
            bodies=bodies,
            changes=body_changes(bodies),
            warnings=warnings,
            external_ref=external_ref,
        )

    async def plan_undo(self, change_id: int) -> WritePlan:
        entry = await self.journal.get(change_id)
        if entry is None:
            raise UndoNotPossible(f"There is no journaled change {change_id}.")
        undo.check_undoable(entry)
        referral = await self.client.get(str(entry.referral_id))
        if referral.e_tag != entry.etag_after:
            raise UndoNotPossible(
                f"Referral {referral.id} has changed since change {change_id} was made, so undoing it "
                "could overwrite someone else's work.",
                hint="Use get_referral to see its current state and update_field to change it.",
            )
        operations = undo.inverse_operations(entry, referral)
        for op in operations:
            undo.check_restorable(op, change_id)
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
        entry_id = await self.journal.record_intent(
            tool=plan.tool,
            kind=plan.kind,
            referral_id=plan.referral_id,
            correlation_id=correlation_id,
            operations=plan.wire_operations,
            before_image=plan.before_image,
            etag_before=plan.etag,
            undo_of=plan.undo_of,
            summary=plan.summary,
        )
        _step("before_send")
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
            await self.journal.record_outcome(
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
            await self.journal.record_outcome(entry_id, "in_doubt", error=str(exc))
            return WriteOutcome(
                "in_doubt", _in_doubt_message(exc, plan), change_id=entry_id, correlation_id=correlation_id
            )
        except PcrefError as exc:
            # NetworkError included: from a write the client raises it only once it has settled that the
            # request was not applied (never connected, or read back unchanged); unknown is WriteOutcomeUnknown.
            await self.journal.record_outcome(entry_id, "failed", error=str(exc))
            raise
        except BaseException as exc:  # cancelled mid-send (or a bug): the outcome is unknown, say so now
            await self.journal.record_outcome(
                entry_id, "in_doubt", error=f"interrupted while sending ({type(exc).__name__})"
            )
            raise
        _step("after_send")
        await self.journal.record_outcome(entry_id, "applied", etag_after=after.e_tag)
        return WriteOutcome(
            "applied",
            f"Done: {plan.summary[0].lower()}{plan.summary[1:]}.",
            change_id=entry_id,
            referral=after,
            correlation_id=correlation_id,
        )

    async def _execute_create(self, plan: WritePlan, correlation_id: str) -> WriteOutcome:
        if plan.referral_id is not None:  # finishing a co-sell: only Microsoft's referral is sent
            return await self._execute_invitation(plan, correlation_id)
        # One create per external reference id at a time (in this process: the lock; across processes:
        # the journal refuses a second pending create), and the service is asked again right before
        # the POST, so two approvals of the same create confirmed at once make one referral.
        ref = plan.external_ref or ""
        async with create_lock(ref):
            entry_id = await self.journal.record_intent(
                tool=plan.tool,
                kind="create",
                referral_id=None,
                correlation_id=correlation_id,
                operations=[{"op": "create", "body": b} for b in plan.bodies],
                before_image={},
                etag_before=None,
                external_ref=plan.external_ref,
                summary=plan.summary,
                exclusive=True,
            )
            return await self._send_create(plan, entry_id, correlation_id)

    async def _send_create(self, plan: WritePlan, entry_id: int, correlation_id: str) -> WriteOutcome:
        ref = plan.external_ref or ""
        try:
            landed = await self._by_external_ref(ref) if ref else []
        except BadRequest:
            # the service refuses the look-up: the journal knows what this machine created just now
            recent = await self.journal.recent_create(ref, RECENT_CREATE_SECONDS)
            landed = [Referral(id=recent.referral_id or f"change {recent.id}")] if recent else []
        except PcrefError as exc:
            await self.journal.record_outcome(
                entry_id, "failed", error=f"look-up before sending failed: {exc}"
            )
            raise
        if landed:
            ids = ", ".join(str(r.id) for r in landed)
            await self.journal.record_outcome(entry_id, "failed", error=f"already exists: {ids}")
            raise InvalidInput(
                f"Nothing was created: a referral with external reference id {quote(ref)} exists by now "
                f"({ids}), probably from an approval confirmed at the same time.",
                field="external_reference_id",
                value=ref,
                hint="Use get_referral on it; update_field changes it.",
            )
        _step("before_send")
        try:
            created = await self.client.create(plan.bodies[0], existing_ids=())
        except WriteOutcomeUnknown as exc:
            await self.journal.record_outcome(entry_id, "in_doubt", error=str(exc))
            return WriteOutcome(
                "in_doubt", _in_doubt_message(exc, plan), change_id=entry_id, correlation_id=correlation_id
            )
        except PcrefError as exc:  # NetworkError included: settled as not created (see _execute_patch)
            await self.journal.record_outcome(entry_id, "failed", error=str(exc))
            raise
        except BaseException as exc:
            await self.journal.record_outcome(
                entry_id, "in_doubt", error=f"interrupted while sending ({type(exc).__name__})"
            )
            raise
        _step("after_send")
        if not created.id:  # accepted, but the answer is not one we can read (e.g. PascalCase keys)
            return await self._unreadable_create(plan, entry_id, correlation_id)
        self._learn_organization(created)
        if len(plan.bodies) < 2:
            await self.journal.record_outcome(
                entry_id, "applied", referral_id=created.id, etag_after=created.e_tag
            )
            return WriteOutcome(
                "applied",
                f"Created referral {created.id}.",
                change_id=entry_id,
                referral=created,
                created=[created],
                correlation_id=correlation_id,
            )
        if not created.engagement_id:
            what = "Partner Center's answer carried no engagementId, so Microsoft was not invited yet"
            await self.journal.record_outcome(
                entry_id, "partial", referral_id=created.id, etag_after=created.e_tag, error=what
            )
            return WriteOutcome(
                "partial",
                f"The partner referral {created.id} was created, but {what}. To finish, call "
                "create_referral again with the same arguments: it finds the referral, reads its "
                "engagementId and sends only the Microsoft invitation.",
                change_id=entry_id,
                referral=created,
                created=[created],
                correlation_id=correlation_id,
            )
        return await self._invite_microsoft(plan, plan.bodies[1], created, entry_id, correlation_id)

    async def _unreadable_create(self, plan: WritePlan, entry_id: int, correlation_id: str) -> WriteOutcome:
        cosell = len(plan.bodies) > 1
        what = "Partner Center accepted the create, but its answer carried no referral id that could be read"
        await self.journal.record_outcome(entry_id, "partial" if cosell else "in_doubt", error=what)
        return WriteOutcome(
            "partial" if cosell else "in_doubt",
            f"{what}. Search by external reference id {quote(plan.external_ref)} to see it"
            + (
                "; then call create_referral again with the same arguments to send the Microsoft "
                "invitation (it was not sent)."
                if cosell
                else "."
            ),
            change_id=entry_id,
            correlation_id=correlation_id,
        )

    async def _execute_invitation(self, plan: WritePlan, correlation_id: str) -> WriteOutcome:
        assert plan.referral_id is not None and plan.referral is not None
        entry_id = await self.journal.record_intent(
            tool=plan.tool,
            kind="create",
            referral_id=plan.referral_id,
            correlation_id=correlation_id,
            operations=[{"op": "create", "body": b} for b in plan.bodies],
            before_image={},
            etag_before=plan.etag,
            summary=plan.summary,
        )
        return await self._invite_microsoft(plan, plan.bodies[0], plan.referral, entry_id, correlation_id)

    async def _invite_microsoft(
        self,
        plan: WritePlan,
        template: dict[str, Any],
        partner: Referral,
        entry_id: int,
        correlation_id: str,
    ) -> WriteOutcome:
        """The second POST of a co-sell: the approved template with the engagementId filled in."""
        assert partner.engagement_id

        async def record(status: Literal["applied", "partial"], error: str | None = None) -> None:
            """The outcome: the partner referral exists, whatever became of the invitation."""
            await self.journal.record_outcome(
                entry_id, status, referral_id=partner.id, etag_after=partner.e_tag, error=error
            )

        body = (
            with_engagement_id(template, partner.engagement_id)
            if template.get("engagementId") == ENGAGEMENT_ID_PLACEHOLDER
            else template
        )
        try:
            invitation = await self.client.create(body, stamp=False)
        except PcrefError as exc:
            landed = await self._linked_invitation(partner) if isinstance(exc, WriteOutcomeUnknown) else None
            if landed is None:
                what = (
                    "whether the Microsoft invitation landed is not known: it was not found yet (it may "
                    "still appear), so check before retrying"
                    if isinstance(exc, WriteOutcomeUnknown)
                    else "inviting Microsoft failed"
                )
                await record("partial", f"{what}: {exc}")
                return WriteOutcome(
                    "partial",
                    f"The partner referral {partner.id} exists, but {what} ({exc}). To finish, call "
                    "create_referral again with the same arguments: it looks for Microsoft's referral on "
                    f"engagement {partner.engagement_id} and sends the invitation only if it is still missing.",
                    change_id=entry_id,
                    referral=partner,
                    created=[partner] if plan.referral_id is None else [],
                    correlation_id=correlation_id,
                )
            invitation = landed
        except BaseException as exc:  # cancelled mid-send: the partner referral exists, the rest is unknown
            await record("partial", f"interrupted while inviting Microsoft ({type(exc).__name__})")
            raise
        await record("applied")
        first = plan.referral_id is None
        return WriteOutcome(
            "applied",
            (
                f"Created referral {partner.id} and invited Microsoft ({invitation.id})."
                if first
                else f"Invited Microsoft ({invitation.id}) to the existing referral {partner.id}."
            ),
            change_id=entry_id,
            referral=partner,
            created=[partner, invitation] if first else [invitation],
            correlation_id=correlation_id,
        )

    async def _linked_invitation(self, partner: Referral) -> Referral | None:
        """Microsoft's referral on ``partner``'s engagement, if one is visible (None if not, or unknown)."""
        try:
            page = await self.client.list_page(
                odata.Query(filter=odata.eq("engagementId", str(partner.engagement_id)), top=5)
            )
        except PcrefError:
            return None
        for referral in page.value:
            if str(referral.organization_id or "").lower() == MICROSOFT_ORG_ID:
                return referral
        return None

    # -- private ------------------------------------------------------------------------------------

    def _patch_plan(
        self, tool: str, kind: Any, referral: Referral, operations: list[PatchOperation]
    ) -> WritePlan:
        """Preview ``operations`` against ``referral``: each field before → after, the lifecycle step.

        An entry appended to a list that already holds the same entry (a retried "add sales team
        member" that had landed) is left out and the preview says so. Contacts the change is not
        about are shown by name only. The before-image of an appended list is kept as its length, so
        the journal holds no one else's contact details and undo still restores the list exactly.
        """
        for op in operations:  # a value the tolerant read left out must not vanish unseen
            unread = [] if op.path.endswith("/-") else referral.left_out_under(op.path)
            if unread:
                raise InvalidInput(
                    f"Referral {referral.id} holds values under {op.path} that could not be read "
                    f"({'; '.join(p.describe(show_values=False) for p in unread[:3])}); replacing "
                    f"{op.path} as a whole would drop them without the preview showing them.",
                    field=op.path,
                    hint="Add to the list instead of replacing it, or fix the referral in Partner Center first.",
                )
        wire = referral.to_wire()
        changes: list[FieldChange] = []
        before: dict[str, Any] = {}
        kept: list[PatchOperation] = []
        skipped: list[str] = []
        lists: dict[str, list[Any]] = {}  # each appended list as it will be after the earlier appends
        for op in operations:
            if op.path.endswith("/-"):
                collection = op.path[: -len("/-")]
                current = lists.get(collection)
                if current is None:
                    current = list(pointer_get(wire, collection) or [])
                    before.setdefault(collection, {undo.APPENDED_TO: len(current)})
                if contacts.find_same(collection, current, op.value) is not None:
                    skipped.append(
                        f"{quote(contacts.describe(collection, op.value))} is already in "
                        f"{field_name(op.path).removeprefix('add ')}; it is not added again."
                    )
                    continue
                after = [*current, op.value]
                lists[collection] = after
                changes.append(
                    FieldChange(
                        field_name(op.path),
                        op.path,
                        contacts.hide_contact_details(collection, current),
                        contacts.hide_contact_details(collection, after, [op.value]),
                    )
                )
            else:
                current_value = pointer_get(wire, op.path)
                before.setdefault(op.path, current_value)
                if op.value != current_value:
                    about = _changed_entries(op.path, current_value, op.value)
                    changes.append(
                        FieldChange(
                            field_name(op.path),
                            op.path,
                            contacts.hide_contact_details(op.path, current_value, about),
                            contacts.hide_contact_details(op.path, op.value, about),
                        )
                    )
            kept.append(op)
        if skipped and not kept:
            raise InvalidInput(" ".join(skipped) + " There is nothing to change.")
        status_ops = {op.path: op.value for op in kept if op.path in ("/status", "/substatus")}
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
            operations=kept,
            changes=changes,
            lifecycle=step,
            warnings=skipped,
            before_image=before,
            referral=referral,
        )

    async def _by_external_ref(self, ref: str, recent: RecentScan | None = None) -> list[Referral]:
        # the client filters where the service allows it, else reads the newest referrals the documented way
        return await self.client.find_by_external_id(ref, recent=recent)

    async def _resume_cosell(self, new: NewReferral, kind: DealKind, partner: Referral) -> WritePlan | None:
        """The same co-sell asked for again after its Microsoft invitation failed: send only that."""
        if kind is not DealKind.CO_SELL:
            return None
        if not partner.engagement_id:  # a list row without it: read the referral itself
            partner = await self.client.get(str(partner.id))
            if not partner.engagement_id:
                return None
        if await self._linked_invitation(partner) is not None:
            return None
        org = await self._organization()
        body = microsoft_referral_body(
            new,
            partner.engagement_id,
            partner.organization_id or org.id,
            partner.organization_name or org.name,
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
        check_create_body(body)
        return WritePlan(
            tool="create_referral",
            kind="create",
            summary=f"Finish the co-sell: invite Microsoft to the existing {_label(partner)}",
            referral_id=partner.id,
            etag=partner.e_tag,
            referral=partner,
            bodies=[body],
            changes=body_changes([body]),
            warnings=[
                f"Referral {partner.id} already exists without its Microsoft invitation; only the invitation is sent."
            ],
        )

    async def _duplicate_warnings(self, body: dict[str, Any], recent: RecentScan) -> list[str]:
        """Same name and customer already there: a warning, never a refusal (and best effort)."""
        warnings: list[str] = []
        customer = pointer_get(body, "/customerProfile/name")
        name = body.get("name")
        if customer and name:
            same = (name.casefold(), customer.casefold())
            found = await self._best_effort(
                self.client.find(
                    odata.and_(odata.eq("customerProfile/name", customer), odata.eq("name", name)),
                    lambda r: _name_and_customer(r) == same,
                    recent=recent,
                ),
                warnings,
                "Partner Center refused the duplicate check (same name and customer), so it was skipped",
            )
            for existing in (found or ())[:5]:
                warnings.append(
                    f"A referral named {quote(name)} for {quote(customer)} already exists "
                    f"({existing.id}, {existing.status}/{existing.substatus}); make sure this is not a duplicate."
                )
        return warnings

    async def _best_effort(self, read: Awaitable[T], warnings: list[str], refused: str) -> T | None:
        """A look-up the public documents do not show: if the service refuses it (400), say so and go on."""
        try:
            return await read
        except BadRequest:
            warnings.append(refused + ".")
            return None

    async def _organization(self) -> Organization:
        """Who "we" are (organization id, name, MPN id), for the fields the Partner Center UI sends.

        Read once, best effort, from one of our own outgoing referrals (a documented filter); unknown
        on a tenant with none yet, and then learnt from the first referral we create.
        """
        if self._org is None:
            self._org = Organization()
            try:
                page = await self.client.list_page(
                    odata.Query(filter=odata.eq("direction", "Outgoing"), top=10)
                )
            except PcrefError:
                return self._org
            for referral in page.value:
                if self._learn_organization(referral):
                    break
        return self._org

    def _learn_organization(self, referral: Referral) -> bool:
        if not referral.organization_id or referral.organization_id.lower() == MICROSOFT_ORG_ID:
            return False
        if self._org is None or self._org.id is None:
            mpn = referral.mpn_id if referral.mpn_id and str(referral.mpn_id).isdigit() else None
            self._org = Organization(referral.organization_id, referral.organization_name, mpn)
        return True


def _name_and_customer(referral: Referral) -> tuple[str, str]:
    """Name and customer as compared for a duplicate: case left out, as a person would."""
    customer = referral.customer_profile.name if referral.customer_profile else None
    return (referral.name or "").casefold(), (customer or "").casefold()


def _label(referral: Referral) -> str:
    """``referral <id> («name» — «customer»)``: the names were written by others, so they are quoted."""
    customer = referral.customer_profile.name if referral.customer_profile else None
    return f"referral {referral.id} ({quote(referral.name or 'unnamed')} — {quote(customer or 'unknown customer')})"


def _changed_entries(pointer: str, before: Any, after: Any) -> list[Any]:
    """The entries a list replacement adds or removes: the contacts that change is about."""
    if not isinstance(before, list) or not isinstance(after, list):
        return []
    added = [e for e in after if contacts.find_same(pointer, before, e) is None]
    removed = [e for e in before if contacts.find_same(pointer, after, e) is None]
    return added + removed


def _step(name: str) -> None:
    for hook in STEP_HOOKS:
        hook(name)


def _in_doubt_message(exc: PcrefError, plan: WritePlan) -> str:
    return (
        f"The service did not confirm the write ({exc}). It may or may not have landed; it is journaled "
        f"as in doubt. "
        + (
            "Search by external reference id " + str(quote(plan.external_ref)) + " to check before retrying."
            if plan.external_ref
            else "Use get_referral to check before retrying."
        )
    )


__all__ = ["STEP_HOOKS", "ServiceError", "WriteEngine", "WriteOutcome"]
