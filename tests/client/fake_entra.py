"""A local stand-in for the Microsoft identity platform, served over TLS on 127.0.0.1.

msal insists on https authorities, so the tests serve it with the stand-in identity provider's
throw-away self-signed certificate (``make_tls_cert``, ``serve_in_thread``) and hand msal a
``requests.Session`` that trusts it. It keeps what the product's stand-in does not speak and the
msal tests need: the device code and client credentials grants. The endpoints follow the v2.0
protocol closely enough for msal's real code: OIDC discovery, device code (one "authorization_pending" first),
refresh tokens that rotate and are single-use, client credentials, unsigned-but-well-formed id
tokens with ``oid``/``tid``/``preferred_username``, and a configurable ``expires_in``.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections import Counter

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pcref_mcp.team.standin_idp import oauth_error, token_response

TENANT = "11111111-2222-3333-4444-555555555555"
OID = "99999999-8888-7777-6666-555555555555"
USERNAME = "ada@fabrikam.example"
RESERVED = {"openid", "profile", "offline_access"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakeEntra:
    def __init__(self, *, client_secret: str = "app-secret") -> None:
        self.base = ""
        self.expires_in = 3600
        self.client_secret = client_secret
        self.grants: Counter[str] = Counter()
        self.issued_access: list[str] = []
        self.issued_refresh: list[str] = []
        self.live_refresh: set[str] = set()
        self.pending_device_codes: dict[str, int] = {}
        self.device_scopes: dict[str, str] = {}
        self._n = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/{tenant}/v2.0/.well-known/openid-configuration", self.discovery),
                Route("/{tenant}/oauth2/v2.0/devicecode", self.devicecode, methods=["POST"]),
                Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
            ]
        )

    async def discovery(self, request: Request) -> JSONResponse:
        t = request.path_params["tenant"]
        root = f"{self.base}/{t}"
        return JSONResponse(
            {
                "issuer": f"{self.base}/{TENANT}/v2.0",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
                "response_types_supported": ["code"],
            }
        )

    async def devicecode(self, request: Request) -> JSONResponse:
        form = await request.form()
        code = f"device-code-{next(self._n)}"
        self.pending_device_codes[code] = 1  # one "authorization_pending" before success
        self.device_scopes[code] = str(form.get("scope", ""))
        return JSONResponse(
            {
                "device_code": code,
                "user_code": "ABCD-EFGH",
                "verification_uri": "https://microsoft.com/devicelogin",
                "expires_in": 900,
                "interval": 0,
                "message": "To sign in, use a web browser to open https://microsoft.com/devicelogin "
                "and enter the code ABCD-EFGH to authenticate.",
            }
        )

    async def token(self, request: Request) -> JSONResponse:
        form = await request.form()
        grant = str(form.get("grant_type"))
        self.grants[grant] += 1
        client_id = str(form.get("client_id"))
        requested = str(form.get("scope") or self.device_scopes.get(str(form.get("device_code")), ""))
        scope = " ".join(s for s in requested.split() if s not in RESERVED)
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            code = str(form.get("device_code"))
            if code not in self.pending_device_codes:
                return oauth_error("invalid_grant", "unknown device code")
            if self.pending_device_codes[code] > 0:
                self.pending_device_codes[code] -= 1
                return oauth_error("authorization_pending", "waiting for the user")
            del self.pending_device_codes[code]
            return self._user_tokens(client_id, scope)
        if grant == "refresh_token":
            rt = str(form.get("refresh_token"))
            if rt not in self.live_refresh:
                return oauth_error("invalid_grant", "AADSTS70000: refresh token was already used or revoked")
            self.live_refresh.discard(rt)  # single use: the rotated one replaces it
            return self._user_tokens(client_id, scope)
        if grant == "client_credentials":
            if form.get("client_secret") != self.client_secret:
                return oauth_error("invalid_client", "AADSTS7000215: Invalid client secret provided.", 401)
            at = f"app-access-{next(self._n)}"
            self.issued_access.append(at)
            return JSONResponse({"token_type": "Bearer", "expires_in": self.expires_in, "access_token": at})
        return oauth_error("unsupported_grant_type", grant)

    def revoke_all(self) -> None:
        self.live_refresh.clear()

    def _user_tokens(self, client_id: str, scope: str) -> JSONResponse:
        n = next(self._n)
        at, rt = f"user-access-{n}", f"user-refresh-{n}"
        self.issued_access.append(at)
        self.issued_refresh.append(rt)
        self.live_refresh.add(rt)
        now = int(time.time())
        claims = {
            "aud": client_id,
            "iss": f"{self.base}/{TENANT}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "oid": OID,
            "tid": TENANT,
            "sub": "subject-1",
            "preferred_username": USERNAME,
            "name": "Ada",
            "ver": "2.0",
        }
        id_token = ".".join(
            [b64url(b'{"alg":"none","typ":"JWT"}'), b64url(json.dumps(claims).encode()), "sig"]
        )
        return token_response(
            access_token=at,
            refresh_token=rt,
            id_token=id_token,
            scope=scope,
            expires_in=self.expires_in,
            uid=OID,
            utid=TENANT,
        )
