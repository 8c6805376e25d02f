"""Team mode: one remote server for a sales team, each person signed in as themselves.

Every request carries the person's own Microsoft Entra access token (checked by :mod:`.tokens`), runs
as that person (:mod:`.principal`), and reaches Partner Center through the on-behalf-of flow with
their own token cache and rate limit (:mod:`.obo`, :mod:`.runtime`). For clients that must register
themselves, :mod:`.proxy` is the authorization server they see and brokers to Entra. :mod:`.app`
puts it together; :mod:`.standin_idp` is a local identity provider for trying it without Microsoft.
This package sits on top of ``pcref_mcp.server``; nothing below imports it.
"""
