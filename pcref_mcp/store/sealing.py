"""Keys derived from the one configured store key, and sealing of secrets kept at rest.

Refresh tokens (the on-behalf-of token cache) are stored sealed with AES-256-GCM, bound to the
person they belong to (associated data), so a row copied to another person does not open. Every
other shared key (the SDK's request-state keys, the cursor key) is derived from the same secret
with HKDF, one label per use, so replicas that share the secret share the keys and nothing else
needs distributing. ``cryptography`` comes with msal already.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pcref_mcp.errors import ConfigError

__all__ = ["Sealer", "derive"]

_VERSION = b"\x01"
_NONCE = 12


def derive(secret: bytes, label: str, length: int = 32) -> bytes:
    """A key for one purpose (``label``) from the configured secret."""
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=None, info=b"pcref-mcp/" + label.encode()
    ).derive(secret)


class Sealer:
    """Seals and opens small secrets; ``keys[0]`` seals, every key opens (rotation)."""

    def __init__(self, *secrets: bytes) -> None:
        if not secrets:
            raise ValueError("at least one key")
        self._keys = [AESGCM(derive(s, "token-cache")) for s in secrets]

    def seal(self, plaintext: bytes, *, bound_to: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._keys[0].encrypt(nonce, plaintext, bound_to.encode())

    def open(self, sealed: bytes, *, bound_to: str) -> bytes:
        from cryptography.exceptions import InvalidTag

        if sealed[:1] != _VERSION or len(sealed) < 1 + _NONCE + 16:
            raise ConfigError("A stored token cache is not in a format this version reads.")
        nonce, body = sealed[1 : 1 + _NONCE], sealed[1 + _NONCE :]
        for key in self._keys:
            try:
                return key.decrypt(nonce, body, bound_to.encode())
            except InvalidTag:
                continue
        raise ConfigError(
            "A stored token cache does not open with PCREF_STORE_KEY (the key changed, or the row was "
            "tampered with); that person signs in again.",
        )
