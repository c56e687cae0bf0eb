"""Where Printmotor webhook signatures are checked: HMAC-SHA256 over the raw body bytes.

Printmotor sends `X-Printmotor-Hmac-SHA256: base64(HMAC-SHA256(key, body))`. Hex of the same
digest has been seen tried by integrators, so both encodings are accepted. Every configured key
is compared (rotation: old and new key both valid), always all of them, in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
from collections.abc import Sequence

from pydantic import SecretStr

SIGNATURE_HEADER = "x-printmotor-hmac-sha256"
DIGEST_SIZE = hashlib.sha256().digest_size

log = logging.getLogger("printhook.printmotor")

_HEX = re.compile(r"[0-9a-fA-F]{64}")
_WHITESPACE = re.compile(r"\s+")


def _decodings(header: str) -> list[bytes]:
    """Every 32-byte digest the header could be an encoding of (hex and/or base64)."""
    text = _WHITESPACE.sub("", header)
    candidates: list[bytes] = []
    if _HEX.fullmatch(text):
        candidates.append(bytes.fromhex(text))
    padded = text.rstrip("=")
    padded += "=" * (-len(padded) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == DIGEST_SIZE:
        candidates.append(raw)
    return candidates


class WebhookVerifier:
    """Checks signatures against a fixed set of keys (the key bytes are prepared once)."""

    def __init__(self, secrets: Sequence[SecretStr]) -> None:
        self._keys = [secret.get_secret_value().encode() for secret in secrets]
        self._warned = False

    @property
    def has_keys(self) -> bool:
        return bool(self._keys)

    def verify(self, body: bytes, header: str | None) -> bool:
        """True when `header` is the HMAC-SHA256 of exactly `body` under any configured key."""
        if not self._keys:
            if not self._warned:
                self._warned = True
                log.warning(
                    "printmotor.webhook.no_secrets",
                    extra={"setting": "PRINTHOOK_PRINTMOTOR_WEBHOOK_SECRETS"},
                )
            return False
        if not header:
            return False
        candidates = _decodings(header)
        if not candidates:
            return False
        valid = False
        # No early exit: the time taken does not tell which key (or encoding) matched.
        for key in self._keys:
            expected = hmac.new(key, body, hashlib.sha256).digest()
            for candidate in candidates:
                valid |= hmac.compare_digest(expected, candidate)
        return valid


def sign(body: bytes, secret: str, encoding: str = "base64") -> str:
    """The header value Printmotor would send for `body` (base64, or hex when asked)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    if encoding == "hex":
        return digest.hex()
    return base64.b64encode(digest).decode()
