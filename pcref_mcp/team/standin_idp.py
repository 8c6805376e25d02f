"""A local stand-in for Microsoft Entra ID, so team mode can be tried with no Microsoft account.

It speaks the parts of the Microsoft identity platform v2.0 protocol that team mode uses, with the
same paths and claim names, so pcref-mcp runs against it with configuration only:

- OIDC discovery (``/{tenant}/v2.0/.well-known/openid-configuration``) and a JWKS whose signing key
  can be rotated (the old key stays published until dropped, as Entra does);
- authorization code + PKCE (S256 required) with a sign-in page that lists the test users;
- refresh tokens that rotate and are single use;
- the on-behalf-of grant (``jwt-bearer`` with ``requested_token_use=on_behalf_of``), including the
  Conditional Access answer for a user whose policy demands MFA (``interaction_required`` with a
  ``claims`` request), which a new sign-in carrying those claims satisfies.

Tokens are RS256 JWTs with ``iss``/``aud``/``tid``/``oid``/``preferred_username``/``scp`` like Entra's
v2 access tokens. msal insists on https authorities, so :func:`serve` runs it over TLS with a
throw-away self-signed certificate (its path is printed and goes into ``PCREF_TEAM_CA_BUNDLE``).
Test and demo use only: it has no passwords and signs in whoever is picked.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import ipaddress
import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

__all__ = [
    "API_CLIENT_ID",
    "API_CLIENT_SECRET",
    "OTHER_TENANT",
    "PARTNER_CENTER",
    "PUBLIC_CLIENT_ID",
    "TENANT",
    "USERS",
    "StandInIdp",
    "StandInUser",
    "make_tls_cert",
    "oauth_error",
    "serve_in_thread",
    "token_response",
]

TENANT = "c0ffee00-0000-4000-8000-000000000001"
OTHER_TENANT = "c0ffee00-0000-4000-8000-000000000002"
API_CLIENT_ID = "5e1f0000-0000-4000-8000-00000000a001"  # the pcref-mcp API app registration
API_CLIENT_SECRET = "stand-in-secret"
PUBLIC_CLIENT_ID = "5e1f0000-0000-4000-8000-00000000c001"  # a pre-authorised public client (VS Code…)
PARTNER_CENTER = "https://api.partner.microsoft.com"
RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
MFA_CLAIMS = json.dumps(
    {"access_token": {"acrs": {"essential": True, "values": ["c1"]}}}, separators=(",", ":")
)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class StandInUser:
    """A person who can sign in: ``login`` is what the sign-in page offers."""

    login: str
    upn: str
    name: str
    oid: str
    tenant: str = TENANT
    mfa_required: bool = False  # Conditional Access: Partner Center (OBO) needs an MFA sign-in


USERS: dict[str, StandInUser] = {
    u.login: u
    for u in (
        StandInUser("ada", "ada@contoso.example", "Ada Lovelace", "0a0a0a0a-0000-4000-8000-000000000ada"),
        StandInUser("bob", "bob@contoso.example", "Bob Okafor", "0b0b0b0b-0000-4000-8000-000000000b0b"),
        StandInUser(
            "mia",
            "mia@contoso.example",
            "Mia Chen",
            "0c0c0c0c-0000-4000-8000-000000000c1a",
            mfa_required=True,
        ),
        StandInUser(
            "eve",
            "eve@fabrikam.example",
            "Eve Fabrikam",
            "0e0e0e0e-0000-4000-8000-000000000e0e",
            OTHER_TENANT,
        ),
    )
}


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    scopes: list[str]
    user: StandInUser
    mfa: bool
    expires: float
    nonce: str | None = None


@dataclass
class _Refresh:
    client_id: str
    scopes: list[str]
    user: StandInUser
    mfa: bool


@dataclass
class _Key:
    kid: str
    private: Any
    jwk: dict[str, Any]


@dataclass
class StandInIdp:
    """The identity provider: ``app`` is its ASGI app; ``base`` must be set to where it is served."""

    base: str = ""
    token_lifetime: int = 3600
    users: dict[str, StandInUser] = field(default_factory=lambda: dict(USERS))
    clock: Callable[[], float] = time.time
    grants: dict[str, int] = field(default_factory=dict)
    # Client ID metadata documents it hosts at /clients/{name} (so CIMD clients can be tried too).
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    _keys: list[_Key] = field(default_factory=list)
    _codes: dict[str, _Code] = field(default_factory=dict)
    _refresh: dict[str, _Refresh] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self._keys:
            self.rotate_key()

    # --- keys and tokens ---------------------------------------------------------------------------

    def issuer(self, tenant: str) -> str:
        return f"{self.base}/{tenant}/v2.0"

    def rotate_key(self, *, drop_old: bool = False) -> str:
        """Sign with a new key from now on; the old one stays in the JWKS unless ``drop_old``."""
        from cryptography.hazmat.primitives.asymmetric import rsa
        from jwt.algorithms import RSAAlgorithm

        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = secrets.token_hex(8)
        jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
        jwk.update(kid=kid, use="sig", alg="RS256")
        if drop_old:
            self._keys.clear()
        self._keys.append(_Key(kid, private, jwk))
        return kid

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk for k in self._keys]}

    def sign(self, claims: dict[str, Any], *, key: Any = None, kid: str | None = None) -> str:
        """An RS256 JWT with the current key (tests pass their own key or kid to forge one)."""
        import jwt

        current = self._keys[-1]
        return jwt.encode(
            claims,
            key or current.private,
            algorithm="RS256",
            headers={"kid": kid or current.kid, "typ": "JWT"},
        )

    def access_token(
        self,
        user: StandInUser,
        *,
        audience: str = API_CLIENT_ID,
        scopes: str = "access_as_user",
        client_id: str = PUBLIC_CLIENT_ID,
        mfa: bool = False,
        lifetime: int | None = None,
        **overrides: Any,
    ) -> str:
        """An access token as Entra would issue it for ``user`` (``overrides`` replace claims)."""
        now = int(self.clock())
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.issuer(user.tenant),
            "iat": now,
            "nbf": now,
            "exp": now + (self.token_lifetime if lifetime is None else lifetime),
            "tid": user.tenant,
            "oid": user.oid,
            "sub": hashlib.sha256(f"{user.oid}:{client_id}".encode()).hexdigest()[:43],
            "preferred_username": user.upn,
            "upn": user.upn,
            "name": user.name,
            "azp": client_id,
            "scp": scopes,
            "amr": ["pwd", "mfa"] if mfa else ["pwd"],
            "ver": "2.0",
            "uti": secrets.token_urlsafe(16),  # a unique token id, as Entra's
        }
        claims.update(overrides)
        return self.sign({k: v for k, v in claims.items() if v is not None})

    # --- the ASGI app ------------------------------------------------------------------------------

    @property
    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.routing import Route

        return Starlette(
            routes=[
                Route("/", self._home),
                Route("/{tenant}/v2.0/.well-known/openid-configuration", self._discovery),
                Route("/{tenant}/discovery/v2.0/keys", self._keys_endpoint),
                Route("/{tenant}/oauth2/v2.0/authorize", self._authorize, methods=["GET"]),
                Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
                Route("/clients/{name}", self._document),
            ]
        )

    async def _home(self, request: Any) -> Any:
        from starlette.responses import PlainTextResponse

        return PlainTextResponse(
            f"pcref-mcp stand-in identity provider. Tenant {TENANT}; users: {', '.join(self.users)}.\n"
        )

    def client_document(self, name: str, redirect_uris: list[str], client_name: str = "") -> str:
        """Host a client ID metadata document; returns its URL (which is the client's id)."""
        url = f"{self.base}/clients/{name}"
        self.documents[name] = {
            "client_id": url,
            "client_name": client_name or name,
            "redirect_uris": redirect_uris,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
        return url

    async def _document(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, PlainTextResponse

        doc = self.documents.get(request.path_params["name"])
        return JSONResponse(doc) if doc else PlainTextResponse("not found", status_code=404)

    async def _discovery(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        tenant = request.path_params["tenant"]
        root = f"{self.base}/{tenant}"
        return JSONResponse(
            {
                "issuer": self.issuer(TENANT if tenant in ("common", "organizations") else tenant),
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "jwks_uri": f"{root}/discovery/v2.0/keys",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "grant_types_supported": ["authorization_code", "refresh_token", JWT_BEARER],
                "id_token_signing_alg_values_supported": ["RS256"],
                "subject_types_supported": ["pairwise"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "tenant_region_scope": "EU",
            }
        )

    async def _keys_endpoint(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse(self.jwks())

    async def _authorize(self, request: Any) -> Any:
        from starlette.responses import HTMLResponse, RedirectResponse

        q = request.query_params
        redirect_uri, state = q.get("redirect_uri", ""), q.get("state")
        problem = None
        if q.get("response_type") != "code":
            problem = "response_type must be code"
        elif not q.get("client_id") or not redirect_uri:
            problem = "client_id and redirect_uri are required"
        elif q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            problem = "PKCE with S256 is required"
        if problem:
            return HTMLResponse(f"<p>Sign-in request refused: {html.escape(problem)}.</p>", status_code=400)
        login = q.get("login") or q.get("login_hint", "").split("@")[0]
        user = self.users.get(login)
        if user is None:  # the sign-in page: pick a test user
            items = "".join(
                f'<li><a href="?{html.escape(urlencode({**dict(q), "login": u.login}))}">{html.escape(u.name)} '
                f"({html.escape(u.upn)})</a></li>"
                for u in self.users.values()
            )
            return HTMLResponse(f"<h1>Stand-in sign-in</h1><p>Sign in as:</p><ul>{items}</ul>")
        code = secrets.token_urlsafe(24)
        self._codes[code] = _Code(
            client_id=q["client_id"],
            redirect_uri=redirect_uri,
            challenge=q["code_challenge"],
            scopes=q.get("scope", "").split(),
            user=user,
            mfa="acrs" in (q.get("claims") or "") or q.get("mfa") == "1",
            expires=self.clock() + 300,
            nonce=q.get("nonce"),
        )
        params = {"code": code, **({"state": state} if state else {})}
        if q.get("response_mode") == "form_post":  # the code travels in a POST body, not the URL
            fields = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in params.items()
            )
            return HTMLResponse(
                f'<form method="post" action="{html.escape(redirect_uri)}">{fields}</form>'
                "<script>document.forms[0].submit()</script>"
            )
        return RedirectResponse(
            f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(params)}", 302
        )

    async def _token(self, request: Any) -> Any:
        form = await request.form()
        grant = str(form.get("grant_type"))
        self.grants[grant] = self.grants.get(grant, 0) + 1
        client_id = str(form.get("client_id") or "")
        secret = form.get("client_secret")
        if client_id == API_CLIENT_ID and secret != API_CLIENT_SECRET:
            return oauth_error("invalid_client", "AADSTS7000215: Invalid client secret provided.", 401)
        if grant == "authorization_code":
            return self._redeem_code(form, client_id)
        if grant == "refresh_token":
            held = self._refresh.pop(str(form.get("refresh_token")), None)
            if held is None or held.client_id != client_id:
                return oauth_error(
                    "invalid_grant", "AADSTS70000: The refresh token was already used or revoked."
                )
            scopes = str(form.get("scope") or "").split() or held.scopes
            return self._tokens(held.user, client_id, scopes, mfa=held.mfa)
        if grant == JWT_BEARER and form.get("requested_token_use") == "on_behalf_of":
            return self._on_behalf_of(form, client_id)
        return oauth_error("unsupported_grant_type", f"AADSTS70003: grant type {grant} is not supported.")

    def _redeem_code(self, form: Any, client_id: str) -> Any:
        held = self._codes.pop(str(form.get("code")), None)
        if held is None or held.expires < self.clock():
            return oauth_error(
                "invalid_grant", "AADSTS70008: The authorization code is invalid or has expired."
            )
        if held.client_id != client_id or held.redirect_uri != form.get("redirect_uri"):
            return oauth_error(
                "invalid_grant", "AADSTS50148: The code was issued to another client or redirect URI."
            )
        verifier = str(form.get("code_verifier") or "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not secrets.compare_digest(digest, held.challenge):
            return oauth_error(
                "invalid_grant", "AADSTS501481: The code_verifier does not match the code_challenge."
            )
        return self._tokens(held.user, client_id, held.scopes, mfa=held.mfa, nonce=held.nonce)

    def _on_behalf_of(self, form: Any, client_id: str) -> Any:
        import jwt

        try:
            header = jwt.get_unverified_header(str(form.get("assertion")))
            key = next(k for k in self._keys if k.kid == header.get("kid"))
            claims = jwt.decode(
                str(form.get("assertion")),
                key.private.public_key(),
                algorithms=["RS256"],
                audience=[client_id, f"api://{client_id}"],
                options={"require": ["exp", "oid", "tid"]},
            )
        except (jwt.PyJWTError, StopIteration):
            return oauth_error(
                "invalid_grant", "AADSTS50013: Assertion failed signature validation or has expired."
            )
        user = next((u for u in self.users.values() if u.oid == claims["oid"]), None)
        if user is None:
            return oauth_error("invalid_grant", "AADSTS50034: The user account does not exist.")
        mfa = "mfa" in (claims.get("amr") or [])
        if user.mfa_required and not mfa:
            body = {
                "error": "interaction_required",
                "error_description": "AADSTS50076: Due to a configuration change made by your administrator, "
                "or because you moved to a new location, you must use multi-factor authentication.",
                "error_codes": [50076],
                "suberror": "basic_action",
                "claims": MFA_CLAIMS,
            }
            from starlette.responses import JSONResponse

            return JSONResponse(body, status_code=400)
        return self._tokens(user, client_id, str(form.get("scope") or "").split(), mfa=mfa)

    def _tokens(
        self, user: StandInUser, client_id: str, scopes: list[str], *, mfa: bool, nonce: str | None = None
    ) -> Any:
        audience, scp = _resource_of(scopes)
        if audience is None:
            return oauth_error("invalid_scope", "AADSTS70011: The provided scope is not valid.")
        at = self.access_token(user, audience=audience, scopes=scp, client_id=client_id, mfa=mfa)
        rt = secrets.token_urlsafe(32)
        self._refresh[rt] = _Refresh(client_id, scopes, user, mfa)
        now = int(self.clock())
        id_token = self.sign(
            {
                "aud": client_id,
                "iss": self.issuer(user.tenant),
                "iat": now,
                "nbf": now,
                "exp": now + self.token_lifetime,
                "tid": user.tenant,
                "oid": user.oid,
                "sub": user.oid,
                "preferred_username": user.upn,
                "name": user.name,
                "ver": "2.0",
                **({"nonce": nonce} if nonce else {}),
            }
        )
        return token_response(
            access_token=at,
            refresh_token=rt,
            id_token=id_token,
            scope=" ".join(s for s in scopes if s not in RESERVED_SCOPES),
            expires_in=self.token_lifetime,
            uid=user.oid,
            utid=user.tenant,
        )


def make_tls_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (cert.pem, key.pem) in ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pcref-mcp stand-in identity provider")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "standin-idp-cert.pem", directory / "standin-idp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


# --- private helpers ------------------------------------------------------------------------------


def _resource_of(scopes: list[str]) -> tuple[str | None, str]:
    """(audience, scp) for requested scopes, as Entra derives them: one resource per token."""
    wanted = [s for s in scopes if s not in RESERVED_SCOPES]
    if not wanted:
        return None, ""
    resources, names = set(), []
    for scope in wanted:
        resource, _, name = scope.rpartition("/")
        resources.add(resource or API_CLIENT_ID)
        names.append(name)
    if len(resources) != 1:
        return None, ""
    resource = resources.pop()
    if resource.rstrip("/") == PARTNER_CENTER:
        return PARTNER_CENTER, "user_impersonation"
    if resource in (API_CLIENT_ID, f"api://{API_CLIENT_ID}"):
        return API_CLIENT_ID, " ".join("access_as_user" if n == ".default" else n for n in names)
    return None, ""


def oauth_error(code: str, description: str, status: int = 400) -> Any:
    """An OAuth error answer as Entra sends it (``AADSTS…`` codes go in ``description``)."""
    from starlette.responses import JSONResponse

    return JSONResponse({"error": code, "error_description": description}, status_code=status)


def token_response(
    *,
    access_token: str,
    refresh_token: str,
    id_token: str,
    scope: str,
    expires_in: int,
    uid: str,
    utid: str,
) -> Any:
    """A v2.0 token endpoint answer for a user, with the ``client_info`` msal reads the account from."""
    from starlette.responses import JSONResponse

    client_info = json.dumps({"uid": uid, "utid": utid}).encode()
    return JSONResponse(
        {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": expires_in,
            "ext_expires_in": expires_in,
            "access_token": access_token,
            "refresh_token": refresh_token,
            "id_token": id_token,
            "client_info": base64.urlsafe_b64encode(client_info).rstrip(b"=").decode(),
        }
    )


class RunningIdp:
    """The stand-in served by uvicorn over TLS in a daemon thread (``with`` starts and stops it)."""

    def __init__(self, idp: StandInIdp, cert_dir: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.idp = idp
        self.cert, self._key = make_tls_cert(cert_dir)
        self._host, self._port = host, port
        self._stack = ExitStack()
        self.url = ""

    def __enter__(self) -> RunningIdp:
        self.url = self._stack.enter_context(
            serve_in_thread(
                self.idp.app,
                host=self._host,
                port=self._port,
                certfile=self.cert,
                keyfile=self._key,
                name="standin-idp",
            )
        )
        self.idp.base = self.url
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


@contextmanager
def serve_in_thread(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    lifespan: Literal["auto", "on", "off"] = "off",
    log_level: str = "warning",
    name: str = "asgi-server",
) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a daemon thread until the block ends; yields its base URL.

    One place for the stand-in and for everything the tests run on a real socket: it waits until
    uvicorn is listening (or fails loudly if it died), serves over TLS when given a certificate, and
    always shuts the server down and joins its thread.
    """
    import threading

    import uvicorn

    tls: dict[str, Any] = {}
    if certfile is not None:
        tls = {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, lifespan=lifespan, access_log=False, **tls
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"{name} did not start on {host}:{port}")
            time.sleep(0.02)
        bound_host, bound_port = server.servers[0].sockets[0].getsockname()[:2]
        yield f"{'https' if certfile is not None else 'http'}://{bound_host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=2)
        if thread.is_alive():  # idle keep-alive connections (TLS ones close slowly): no need to wait
            server.force_exit = True
            thread.join(timeout=10)
