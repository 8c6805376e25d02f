"""The service's PATCH allow-list as data (connector definition, UpdateReferralDetails and
UpdateDealRegistration). Anything else is refused before it is sent."""

from __future__ import annotations

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
