"""Signed unsubscribe tokens for ``List-Unsubscribe`` (RFC 2369 / RFC 8058 one-click).

Pure: the secret is a parameter. A token names the subscription and the
recipient and carries an HMAC-SHA256 tag over both, so the web endpoint can
act on it without a database lookup of the token itself and nobody can forge
one for another address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

_TAG_BYTES = 16


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    subscription: str
    address: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, b"unsubscribe\x00" + payload, hashlib.sha256).digest()[:_TAG_BYTES]


def make_token(secret: bytes, subscription: str, address: str) -> str:
    payload = f"{subscription}\x00{address.lower()}".encode()
    return f"{_b64(payload)}.{_b64(_tag(secret, payload))}"


def verify_token(secret: bytes, token: str) -> Unsubscribe | None:
    """The subscription and address a valid token names; None for anything forged or malformed."""
    try:
        payload_text, tag_text = token.split(".", 1)
        payload, tag = _unb64(payload_text), _unb64(tag_text)
    except (ValueError, TypeError):
        return None
    if not hmac.compare_digest(tag, _tag(secret, payload)):
        return None
    subscription, _, address = payload.decode("utf-8", "replace").partition("\x00")
    return Unsubscribe(subscription, address) if subscription and address else None
