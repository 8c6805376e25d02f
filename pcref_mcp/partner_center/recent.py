"""The newest referrals as one task read them, shared by that task's look-ups.

Where the service refuses to filter a look-up (by external reference id, by name and customer), the
client reads the newest referrals the documented way and matches them itself
(:meth:`PartnerCenterClient.find <pcref_mcp.partner_center.client.PartnerCenterClient.find>`). A create
makes two such look-ups a moment apart (is it there already, is it a duplicate); with one
:class:`RecentScan` they match the same pages, read once. Its own module so that the write engine can
make one without loading the HTTP client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pcref_mcp.referrals.models import ReferralPage

__all__ = ["RecentScan"]


class RecentScan:
    """One task's read of the newest referrals (None until a look-up needed it). Never kept past the
    task: a check that must see what landed since (the look-up just before sending) reads afresh."""

    def __init__(self) -> None:
        self.pages: list[ReferralPage] | None = None
