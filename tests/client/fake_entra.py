"""A local stand-in for the Microsoft identity platform, served over TLS on 127.0.0.1.

msal insists on https authorities, so the test generates a throw-away self-signed certificate and
hands msal a ``requests.Session`` that trusts it. The endpoints follow the v2.0 protocol closely
enough for msal's real code: OIDC discovery, device code (one "authorization_pending" first),
refresh tokens that rotate and are single-use, client credentials, unsigned-but-well-formed id
tokens with ``oid``/``tid``/``preferred_username``, and a configurable ``expires_in``.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import itertools
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TENANT = "11111111-2222-3333-4444-555555555555"
OID = "99999999-8888-7777-6666-555555555555"
USERNAME = "ada@fabrikam.example"
RESERVED = {"openid", "profile", "offline_access"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_cert(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


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
                return self._error("invalid_grant", "unknown device code")
            if self.pending_device_codes[code] > 0:
                self.pending_device_codes[code] -= 1
                return self._error("authorization_pending", "waiting for the user")
            del self.pending_device_codes[code]
            return self._user_tokens(client_id, scope)
        if grant == "refresh_token":
            rt = str(form.get("refresh_token"))
            if rt not in self.live_refresh:
                return self._error("invalid_grant", "AADSTS70000: refresh token was already used or revoked")
            self.live_refresh.discard(rt)  # single use: the rotated one replaces it
            return self._user_tokens(client_id, scope)
        if grant == "client_credentials":
            if form.get("client_secret") != self.client_secret:
                return self._error("invalid_client", "AADSTS7000215: Invalid client secret provided.", 401)
            at = f"app-access-{next(self._n)}"
            self.issued_access.append(at)
            return JSONResponse({"token_type": "Bearer", "expires_in": self.expires_in, "access_token": at})
        return self._error("unsupported_grant_type", grant)

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
        client_info = b64url(json.dumps({"uid": OID, "utid": TENANT}).encode())
        return JSONResponse(
            {
                "token_type": "Bearer",
                "scope": scope,
                "expires_in": self.expires_in,
                "ext_expires_in": self.expires_in,
                "access_token": at,
                "refresh_token": rt,
                "id_token": id_token,
                "client_info": client_info,
            }
        )

    @staticmethod
    def _error(code: str, description: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": code, "error_description": description}, status_code=status)


class TlsServer:
    """Run an ASGI app with uvicorn in a thread on 127.0.0.1 (TLS if cert/key given)."""

    def __init__(self, app: Any, *, certfile: Path | None = None, keyfile: Path | None = None) -> None:
        kwargs: dict[str, Any] = {}
        if certfile is not None:
            kwargs.update(ssl_certfile=str(certfile), ssl_keyfile=str(keyfile))
        self.config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", **kwargs
        )
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.scheme = "https" if certfile else "http"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"{self.scheme}://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
