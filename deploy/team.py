"""Team mode for the stack: one stand-in identity provider for every replica, and N people in it.

In team mode the replicas run ``pcref-mcp team`` as a resource server (``PCREF_TEAM_PROXY=false``):
every request carries a person's own Entra-style access token
(RS256, checked against the provider's JWKS, issuer, tenant, audience and lifetime), and Partner
Center is called with that person's on-behalf-of token, which the provider's token endpoint issues
and the shared store keeps (sealed) for every replica. The provider runs once, in the process that
starts the stack (a thread, over TLS with a throw-away certificate), as Entra is one service for
every replica. With ``proxy`` they run in proxy mode instead (``PCREF_TEAM_PROXY=true``, what
Claude.ai and ChatGPT need): the replicas are the authorization server clients register with and
sign in through, at nginx's URL, and broker each sign-in to the provider, which sends the person back
to nginx's ``/oauth/callback`` (the provider, like Entra, redeems a code only for the redirect URI it
was issued to, so every replica must name the same one: the public URL's).

People sign in without a browser here: :meth:`TeamIdentity.token` mints a person's access token as
the provider issues it after a sign-in (``StandInIdp.access_token``). Test and demo use only, like
the stand-in itself.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from pcref_mcp.team.standin_idp import (
    API_CLIENT_ID,
    API_CLIENT_SECRET,
    TENANT,
    RunningIdp,
    StandInIdp,
    StandInUser,
)

__all__ = ["TeamIdentity", "people"]


def people(count: int) -> list[StandInUser]:
    """``count`` people of the stand-in's tenant, ``person01``…, each with an oid of their own."""
    return [
        StandInUser(
            f"person{n:02d}",
            f"person{n:02d}@contoso.example",
            f"Person {n:02d}",
            f"0d0d0d0d-0000-4000-8000-{n:012d}",
        )
        for n in range(1, count + 1)
    ]


class TeamIdentity:
    """The stand-in identity provider of one stack, the people it signs in, and the replicas' settings."""

    def __init__(self, root: Path, count: int, *, token_lifetime: int = 3600, proxy: bool = False) -> None:
        self.root = Path(root)
        self.proxy = proxy
        self.people = people(count)
        self.idp = StandInIdp(token_lifetime=token_lifetime, users={p.login: p for p in self.people})
        self._running: RunningIdp | None = None
        self._stack = ExitStack()

    @property
    def url(self) -> str:
        return self.idp.base

    @property
    def cert(self) -> Path:
        assert self._running is not None, "the identity provider is not running"
        return self._running.cert

    def start(self) -> None:
        self._running = self._stack.enter_context(RunningIdp(self.idp, self.root / "idp"))

    def stop(self) -> None:
        self._stack.close()
        self._running = None

    def token(self, person: int) -> str:
        """Person ``person``'s (0-based) access token for the pcref-mcp API, as after their sign-in."""
        return self.idp.access_token(self.people[person])

    def replica_env(self, public_url: str) -> dict[str, str]:
        """What a replica needs to serve this team: the API app registration at the provider, its
        certificate, the URL people reach the replicas at (nginx's: the resource, and in proxy mode
        the authorization server and its callback too) and whether they broker sign-ins (proxy)."""
        return {
            "PCREF_TENANT_ID": TENANT,
            "PCREF_CLIENT_ID": API_CLIENT_ID,
            "PCREF_CLIENT_SECRET": API_CLIENT_SECRET,
            "PCREF_AUTHORITY_HOST": self.url,
            "PCREF_TEAM_CA_BUNDLE": str(self.cert),
            "PCREF_TEAM_PROXY": "true" if self.proxy else "false",
            "PCREF_TEAM_PUBLIC_URL": public_url,
        }
