"""A deal registration's 72-hour check reads the project's one clock (``referrals.when.now``), which
the tests set, not the machine's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pcref_mcp.errors import NotEligible
from pcref_mcp.referrals import when
from pcref_mcp.referrals.models import Referral
from pcref_mcp.referrals.write_models import NewDealRegistration
from pcref_mcp.writes.engine import WriteEngine
from tests.server.test_write_tools import _registration  # the registration the tool tests send

pytestmark = pytest.mark.anyio

# later than this machine's clock will read for years: only the project's clock is set past it
CREATED = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)


class Service:
    """Answers the one read a registration plan makes: an active referral created at CREATED."""

    async def get(self, referral_id: str) -> Referral:
        return Referral.model_validate(
            {
                "id": referral_id,
                "eTag": '"e1"',
                "status": "Active",
                "substatus": "Accepted",
                "type": "Shared",
                "createdDateTime": CREATED.isoformat().replace("+00:00", "Z"),
                "consent": {"consentToShareReferralWithMicrosoftSellers": True},
                "details": {"requirements": {"solutions": [{"id": "SOL-6115380-IPC", "type": "Name"}]}},
                "registrations": [],
            }
        )


@pytest.mark.parametrize(("hours_after_creation", "too_soon"), [(1, True), (100, False)])
async def test_the_72_hour_check_reads_the_projects_clock(
    monkeypatch: pytest.MonkeyPatch, hours_after_creation: int, too_soon: bool
) -> None:
    monkeypatch.setattr(when, "now", lambda: CREATED + timedelta(hours=hours_after_creation))
    engine = WriteEngine(Service(), journal=None)  # type: ignore[arg-type]  # planning reads only
    with pytest.raises(NotEligible) as refused:  # not won yet: refused either way, with its reasons
        await engine.plan_registration("r-1", NewDealRegistration.model_validate(_registration()))
    unmet: list[Any] = refused.value.unmet
    assert any("created less than 72 hours ago" in reason for reason in unmet) is too_soon, unmet
