"""Referral domain: wire models, write models, catalogs, lifecycle and PATCH rules."""
