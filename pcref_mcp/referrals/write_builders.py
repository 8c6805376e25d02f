"""The request bodies of a new referral, built from the person's input (``NewReferral``).

``partner_referral_body`` is the partner's own referral; ``microsoft_referral_body`` the second POST
of a co-sell deal, previewed with ``ENGAGEMENT_ID_PLACEHOLDER`` until ``with_engagement_id`` puts
the partner referral's id in its one place.
"""

from __future__ import annotations

from typing import Any

from pcref_mcp.errors import InvalidInput
from pcref_mcp.referrals.models import AssistanceRequestCode, ReferralQualification, ReferralType
from pcref_mcp.referrals.when import parse_when
from pcref_mcp.referrals.write_inputs import DEAL_KINDS, DealKind, NewReferral
from pcref_mcp.referrals.write_requests import (
    AdditionalRequirementsIn,
    AddressIn,
    ConsentIn,
    CustomerProfileIn,
    DetailsIn,
    IndustryTag,
    InviteContextIn,
    InvitedByIn,
    ProductTag,
    ReferralAttributesIn,
    ReferralCreate,
    RequirementsIn,
    ServiceTag,
    SolutionTagIn,
    TrackingInfoIn,
    WriteModel,
)

__all__ = [
    "ENGAGEMENT_ID_PLACEHOLDER",
    "MICROSOFT_ORG_ID",
    "consent_line",
    "microsoft_referral_body",
    "partner_referral_body",
    "with_engagement_id",
]

MICROSOFT_ORG_ID = "msft"
# Where the partner referral's engagementId goes in the Microsoft-side body of a co-sell pair: the id
# exists only once the first POST is answered, so the body is previewed (and approved) with this
# marker, and ``with_engagement_id`` puts the real id there and changes nothing else.
ENGAGEMENT_ID_PLACEHOLDER = "<engagementId of referral 1, filled in when it is created>"


def partner_referral_body(new: NewReferral, *, mpn_id: str | None = None) -> WriteModel:
    """The partner's own referral for ``new`` (for co_sell, the first of the two POSTs).

    Shaped like the Partner Center UI's request in "Create a referral" (step 1 of a co-sell):
    ``attributes.objectType`` and, when the partner's MPN id is known, ``mpnId``.
    """
    rule = DEAL_KINDS[new.deal_kind]
    return ReferralCreate(
        name=new.name,
        external_reference_id=new.external_reference_id,
        campaign_id=new.campaign_id,
        type=rule.referral_type,
        qualification=ReferralQualification.SALES_QUALIFIED,
        mpn_id=mpn_id,
        customer_profile=_customer_profile(new),
        consent=_consent(new, share=rule.share_with_microsoft_sellers),
        details=_details(new, notes=new.notes),
        team=[contact.to_member() for contact in new.team] or None,
        attributes=ReferralAttributesIn(object_type="Referral"),
    )


def microsoft_referral_body(
    new: NewReferral,
    engagement_id: str = ENGAGEMENT_ID_PLACEHOLDER,
    partner_org_id: str | None = None,
    partner_org_name: str | None = None,
) -> WriteModel:
    """The second POST of a co-sell deal: Microsoft's referral, linked by the partner's ``engagement_id``.

    The form "Create a referral" shows today (step 2): no target and no solutions of the partner's
    (the 2019 form targeted ``BusinessProfileLocation msft`` and copied them), the help note as the
    details' notes and the invite note, and no externalReferenceId of ours (the id is the partner
    referral's; Microsoft's referral is found through the shared engagementId). Built with
    ``ENGAGEMENT_ID_PLACEHOLDER`` at preview time; ``with_engagement_id`` fills it in.
    """
    if new.deal_kind is not DealKind.CO_SELL:
        raise InvalidInput(
            f"deal_kind {new.deal_kind.value!r} does not invite Microsoft; only 'co_sell' creates a Microsoft referral.",
            field="deal_kind",
            value=new.deal_kind.value,
            allowed=[DealKind.CO_SELL.value],
        )
    if not engagement_id:
        raise InvalidInput(
            "engagement_id is required: the engagementId of the partner referral created first.",
            field="engagement_id",
        )
    invited_by = None
    if partner_org_id or partner_org_name:
        invited_by = InvitedByIn(organization_id=partner_org_id, organization_name=partner_org_name)
    details = _details(new, notes=new.help_notes, for_microsoft=True)
    return ReferralCreate(
        engagement_id=engagement_id,
        organization_id=MICROSOFT_ORG_ID,
        organization_name="Microsoft",
        name=new.name,
        type=ReferralType.SHARED,
        qualification=ReferralQualification.SALES_QUALIFIED,
        target=[],
        customer_profile=_customer_profile(new),
        consent=_consent(new, share=True),
        details=details,
        team=[],
        invite_context=InviteContextIn(
            notes=new.help_notes,
            assistance_request_code=(
                AssistanceRequestCode(new.assistance_request_code) if new.assistance_request_code else None
            ),
            invited_by=invited_by,
        ),
        attributes=ReferralAttributesIn(object_type="Referral"),
        deal_sensitivity="None",
        tracking_info=TrackingInfoIn(),
    )


def with_engagement_id(template: dict[str, Any], engagement_id: str) -> dict[str, Any]:
    """The previewed Microsoft-side body with the partner referral's engagementId in its one place.

    Nothing else changes: the approval covered every other byte. A template without the placeholder
    (already filled, or not a template) is refused rather than sent with a guessed id.
    """
    if template.get("engagementId") != ENGAGEMENT_ID_PLACEHOLDER:
        raise InvalidInput("This body has no engagementId placeholder to fill.", field="engagementId")
    if not engagement_id:
        raise InvalidInput("The partner referral's engagementId is empty.", field="engagementId")
    return {**template, "engagementId": engagement_id}


def _customer_profile(new: NewReferral) -> WriteModel:
    return CustomerProfileIn(
        name=new.customer_name,
        address=AddressIn(
            address_line1=new.customer_address_line1,
            city=new.customer_city,
            state=new.customer_state,
            postal_code=new.customer_postal_code,
            country=new.customer_country,
        ),
        size=new.customer_size,
        team=[contact.to_member() for contact in new.customer_contacts] or None,
    )


def _consent(new: NewReferral, *, share: bool) -> WriteModel:
    return ConsentIn(
        consent_to_to_share_info_with_others=new.customer_consent_to_contact,
        consent_to_contact=new.customer_consent_to_contact,
        consent_to_share_referral_with_microsoft_sellers=share,
    )


def consent_line(new: NewReferral) -> str:
    """The customer's consent as the preview states it, on its first line: the person's to confirm."""
    said = "YES" if new.customer_consent_to_contact else "NO"
    return f"Customer agreed to be contacted and to sharing their details: {said} (as given in the call)."


def _details(new: NewReferral, *, notes: str | None, for_microsoft: bool = False) -> WriteModel:
    """The details; Microsoft's referral of a co-sell carries none of the partner's solutions and
    empty additional requirements, as the form sends them."""
    requirements = RequirementsIn(
        industries=[IndustryTag(id=i) for i in new.industries] or None,
        products=[ProductTag(id=p) for p in new.products] or None,
        services=[ServiceTag(id=s) for s in new.services] or None,
        solutions=[] if for_microsoft else [SolutionTagIn.model_validate(s) for s in new.solutions] or None,
        additional_requirements=AdditionalRequirementsIn(iot={}, attributes=[]) if for_microsoft else None,
    )
    return DetailsIn(
        notes=notes,
        deal_value=new.deal_value,
        currency=new.currency,
        closing_date_time=parse_when(new.closing_date) if new.closing_date is not None else None,
        requirements=requirements if requirements.model_dump(exclude_none=True) else None,
    )
